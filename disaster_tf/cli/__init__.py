"""The entry points: `disaster-train`, `disaster-export`, `disaster-evaluate` (and `python train.py` ...).

Each module defines its absl flags in `define_flags()` and reads them once in
`main()`; `run()` is what the console script and the top-level script call.
The library below never reads FLAGS.
"""

import os
import sys
from typing import Callable

from absl import app

from disaster_tf import flagfiles


def prog() -> str:
  """The command's name as the user typed it (`train.py`, `disaster-train`, ...), for error messages."""
  return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "disaster_tf"


def run(define_flags: Callable[[], None], main: Callable, doc: str) -> None:
  """Defines the flags, expands shipped flagfile names, and runs `main` under absl."""
  define_flags()
  entry = sys.modules["__main__"]
  if not getattr(entry, "__doc__", None):  # a console script has none; absl's --help prints it
    entry.__doc__ = doc
  try:
    argv = flagfiles.expand(sys.argv)
  except ValueError as e:
    sys.exit(f"{prog()}: --flagfile: {e}")
  app.run(main, argv=argv)
