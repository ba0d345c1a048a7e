"""The entry points: disaster-train, -export, -evaluate, -predict and -triage (and `python train.py` ...).

Each module defines its absl flags in `define_flags()` and reads them once in
`main()`; `run()` is what the console script and the top-level script call.
The library below never reads FLAGS, and no library module imports these.
A module here imports TensorFlow (through the library) inside `main` only, so
that `--help` answers at once.
"""

import functools
import os
import signal
import sys
from typing import Callable, Sequence, Type

from absl import app
from absl import logging

from disaster_tf import flagfiles

# What a user can get wrong (bad data, flags, files, a full disk, a diverging run): each becomes one sentence on
# stderr and exit code 1, never a traceback. DataError and InputError are ValueErrors; DirectoryInUse an OSError.
USER_ERRORS = (ValueError, OSError, FloatingPointError)


def prog() -> str:
  """The command's name as the user typed it (`train.py`, `disaster-train`, ...), for error messages."""
  return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "disaster_tf"


def exit_on_sigterm() -> None:
  """Makes SIGTERM (a scheduler's stop, `kill`) unwind like Ctrl-C: `finally` blocks run, temporary files go.

  The exit code is 128 + 15, as a shell reports a process ended by SIGTERM.
  """
  signal.signal(signal.SIGTERM, lambda signum, _: sys.exit(128 + signum))


def fail(error: BaseException) -> None:
  """Logs `error` and exits with `<command>: <error>` on stderr and code 1."""
  logging.error("%s", error)
  sys.exit(f"{prog()}: {error}")


def _main_or_sentence(main: Callable, errors: Sequence[Type[BaseException]], argv) -> None:
  try:
    main(argv)
  except tuple(USER_ERRORS) + tuple(errors) as e:
    fail(e)


def run(define_flags: Callable[[], None], main: Callable, doc: str,
        errors: Sequence[Type[BaseException]] = ()) -> None:
  """Defines the flags, expands shipped flagfile names, and runs `main` under absl.

  Args:
    define_flags: defines the command's flags in absl's FLAGS.
    main: absl's main(argv); raising one of USER_ERRORS or `errors` exits with that error's sentence.
    doc: the command's usage, for --help of a console script (which has no module docstring of its own).
    errors: further exception types that are the user's to fix (e.g. a TF Serving that cannot be reached).
  """
  define_flags()
  entry = sys.modules["__main__"]
  if not getattr(entry, "__doc__", None):  # a console script has none; absl's --help prints it
    entry.__doc__ = doc
  try:
    argv = flagfiles.expand(sys.argv)
  except ValueError as e:
    sys.exit(f"{prog()}: --flagfile: {e}")
  app.run(functools.partial(_main_or_sentence, main, errors), argv=argv)
