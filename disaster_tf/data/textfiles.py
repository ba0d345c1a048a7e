"""What every text file a user brings must be (UTF-8), a sentence naming what it is instead, and a labelled CSV
file's rows read strictly (`csv_rows`), without TensorFlow.

Spreadsheets save "Unicode text" as UTF-16 and older ones save Windows-1252:
read as UTF-8, the first looks empty and the second breaks mid-file. Both
readers of users' files (`csv_files` for training, `scorefile` for scoring)
ask `encoding_problem` about a file's first line before reading it. The
labelled data's reader (`csv_files`) and the decisions applied over it
(`decided`) read rows through `csv_rows`, so both take the same files: a
byte-order mark, spaces around the column names, columns in any order.
"""

import csv
import hashlib
from typing import Dict, Iterator, Optional, Sequence, Tuple

from disaster_tf.data import hxl

MAX_FIELD_CHARS = 64 * 2**20  # a field (a message) may hold up to 64 Mi characters


class DataError(ValueError):
  """Bad input data; the message names the file, line and field."""

# Byte-order marks of encodings that are not UTF-8, longest first (UTF-32 LE begins like UTF-16 LE).
_BOMS = ((b"\xff\xfe\x00\x00", "UTF-32 LE"), (b"\x00\x00\xfe\xff", "UTF-32 BE"), (b"\xff\xfe", "UTF-16 LE"),
         (b"\xfe\xff", "UTF-16 BE"))
SAVE_AS = 'save it as "CSV UTF-8"'


def encoding_problem(start: bytes) -> Optional[str]:
  """What is wrong with a file whose first line is `start`, or None if it may be UTF-8."""
  for bom, name in _BOMS:
    if start.startswith(bom):
      return f"the file is {name} (its byte-order mark says so), not UTF-8; {SAVE_AS}"
  if b"\x00" in start[:200]:
    return f"the file holds NUL bytes, as UTF-16 text does, not UTF-8; {SAVE_AS}"
  try:
    start.decode("utf-8")
  except UnicodeDecodeError as e:
    return f"byte {e.start + 1} of the first line is not valid UTF-8 (Windows-1252 or Latin-1?); {SAVE_AS}"
  return None


def read_rows(path: str, required: Sequence[str]) -> Iterator[Tuple[int, Dict[str, str]]]:
  """Yields (line number, row by column name) of a labelled CSV file, read as training reads it (`csv_rows`).

  Raises:
    DataError: as `csv_rows`.
  """
  return csv_rows(path, required, hashlib.sha256())


def csv_rows(path: str, required: Sequence[str], digest) -> Iterator[Tuple[int, Dict[str, str]]]:
  """Yields (line number, row) for each data row of a CSV file, strictly parsed; feeds every byte to `digest`.

  Raises:
    DataError: empty file, missing columns, a row with the wrong number of
      fields, broken quoting, or bytes that are not UTF-8 (named by line).
  """
  # The csv module refuses fields over 128 KiB by default; a pasted document can be
  # longer, and the vectorizer truncates it anyway. Unclosed quotes still fail (strict).
  csv.field_size_limit(max(csv.field_size_limit(), MAX_FIELD_CHARS))
  reader = csv.reader(_decoded_lines(path, digest), strict=True)
  try:
    header = next(reader, None)
    if header is None:
      raise DataError(f"{path}: the file is empty; expected a header line with {', '.join(required)}")
    header = [h.strip() for h in header]
    missing = [c for c in required if c not in header]
    if missing:
      raise DataError(f"{path}:1: header lacks column(s) {', '.join(missing)}; found {', '.join(header)}")
    for number, row in enumerate(reader):
      if not row:
        continue  # a blank line carries no record
      if number == 0 and hxl.is_hashtag_row(row):
        continue  # HXL's hashtag row (disaster-decisions --hxl, or the sector's tools): not a record
      if len(row) != len(header):
        raise DataError(f"{path}:{reader.line_num}: expected {len(header)} fields "
                        f"({', '.join(header)}), found {len(row)}")
      yield reader.line_num, dict(zip(header, row))
  except csv.Error as e:
    raise DataError(f"{path}:{reader.line_num}: malformed CSV ({e}); check the quoting") from None


def _decoded_lines(path: str, digest) -> Iterator[str]:
  """Yields the lines of `path` as str, naming the line of any invalid UTF-8; feeds each line's bytes to `digest`."""
  with open(path, "rb") as f:
    for number, raw in enumerate(f, start=1):
      digest.update(raw)
      problem = encoding_problem(raw) if number == 1 else None
      if problem:
        raise DataError(f"{path}: {problem}")
      try:
        line = raw.decode("utf-8")
      except UnicodeDecodeError as e:
        raise DataError(f"{path}:{number}: byte {e.start + 1} of the line is not valid UTF-8 "
                        f"({raw[e.start:e.start + 4]!r}); save the file as UTF-8") from None
      yield line.lstrip("\ufeff") if number == 1 else line
