"""The flagfiles shipped with the package (`disaster_tf/configs/*.flags`), by name.

`--flagfile=disaster_response` works wherever the package is installed; a
path to a file works as absl always allows.
"""

import os
from typing import List, Sequence

DIRECTORY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")
SUFFIX = ".flags"


def names() -> List[str]:
  """The eight shipped flagfiles' names, sorted: disaster_response (the default), english, linear, multi_cnn,
  multilingual, pretrained, routed, seed_article."""
  return sorted(f[:-len(SUFFIX)] for f in os.listdir(DIRECTORY) if f.endswith(SUFFIX))


def path(name: str) -> str:
  """The file of shipped flagfile `name` (with or without `.flags`).

  Raises:
    ValueError: no shipped flagfile has that name.
  """
  stem = name[:-len(SUFFIX)] if name.endswith(SUFFIX) else name
  if stem not in names():
    raise ValueError(f"{name!r}: no such shipped flagfile; expected a file or one of {', '.join(names())}")
  return os.path.join(DIRECTORY, stem + SUFFIX)


def expand(argv: Sequence[str]) -> List[str]:
  """Replaces `--flagfile=NAME` by the shipped file's path where NAME is not a file; leaves the rest."""
  out = []
  for arg in argv:
    key, eq, value = arg.partition("=")
    if key in ("--flagfile", "-flagfile") and eq and not os.path.exists(value) and os.sep not in value:
      arg = f"{key}={path(value)}"
    out.append(arg)
  return out
