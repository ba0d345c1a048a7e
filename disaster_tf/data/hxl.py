"""The Humanitarian Exchange Language (HXL) hashtag row: what HDX and the sector's tools read beside a CSV header.

HXL puts a row of hashtags under the header (`#meta+id`, `#description`, ...; hxlstandard.org): a tool that
knows HXL reads the columns by their hashtags, any other reads the header. `--hxl` (predict.py, and
disaster-decisions --export_dir) writes one; every reader of the project skips such a row in an input file
(`is_hashtag_row`), so a file written with it is read back the same.
"""

import re
from typing import List, Sequence

from disaster_tf import labels

# One HXL tag: a hashtag and its attributes (#indicator+score+water), as the standard spells them
_TAG = re.compile(r"#[a-z][a-z0-9_]*(\s*\+\s*[a-z][a-z0-9_]*)*", re.IGNORECASE)
KNOWN = {  # the project's columns; an input's other columns get none (an empty cell: HXL allows it)
    "id": "#meta+id", "message": "#description+message", "original": "#description+original+native",
    "genre": "#meta+genre", "priority": "#meta+priority", "predicted": "#indicator+predicted+categories",
    "related": "#indicator+related", "language": "#meta+language", "categories": "#indicator+categories",
    "decision_id": "#meta+decision_id", "explanation": "#description+explanation",
    **{f"score_{c}": f"#indicator+score+{c}" for c in labels.CATEGORIES},
}


def hashtags(header: Sequence[str]) -> List[str]:
  """The HXL row for `header`: a hashtag for each column the project knows, "" for the others."""
  return [KNOWN.get(h, "") for h in header]


def is_hashtag_row(cells: Sequence[str]) -> bool:
  """Whether a row is HXL's hashtag row: at least one cell, and every non-empty cell one HXL tag."""
  filled = [c.strip() for c in cells if c.strip()]
  return bool(filled) and all(_TAG.fullmatch(c) for c in filled)
