"""The entry points, seven commands: disaster-train, -export, -evaluate, -predict, -triage, -decisions and
-vectors (and, in a checkout, `python train.py`, export.py, evaluate.py, predict.py, triage.py).

Each module defines its absl flags in `define_flags()` and reads them once in
`main()`; `run()` is what the console script and the top-level script call.
The library below never reads FLAGS, and no library module imports these.
A module here imports TensorFlow (through the library) inside `main` only, so
that `--help` answers at once.
"""

import functools
import logging as std_logging
import os
import re
import signal
import sys
import tempfile
from typing import Callable, Sequence, Type

from absl import app
from absl import flags
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
  """Exits with `<command>: <error>` on stderr, once, and code 1."""
  sys.exit(f"{prog()}: {error}")


VERBOSE_ENV = "DISASTER_TF_VERBOSE"  # =1: TensorFlow's start-up lines printed as TensorFlow prints them
# What TensorFlow's C++ libraries print while they load and probe for a GPU on a machine without one: known,
# harmless, and read by a new user as failure (`E0000 ... failed call to cuInit`).
START_UP_NOISE = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called|\] oneDNN custom operations are on|"
    r"cudart_stub\.cc:\d+\]|cpu_feature_guard\.cc:\d+\]|^To enable the following instructions:|"
    r"\] failed call to cuInit|Unable to register cu(DNN|FFT|BLAS) factory|computation_placer\.cc:\d+\]|"
    r"TF-TRT Warning: Could not find TensorRT")


def import_tensorflow():
  """Imports TensorFlow quietly (`import_quietly`), then keeps TensorFlow's and Keras' own INFO lines out.

  --verbosity=1 or DISASTER_TF_VERBOSE=1 leaves everything as TensorFlow prints it.

  Returns:
    The tensorflow module.
  """
  if "tensorflow" in sys.modules or os.environ.get(VERBOSE_ENV, "") not in ("", "0") or logging.level_debug():
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    return tf
  tf = import_quietly()
  _keep_library_info_out(tf)
  return tf


def import_quietly():
  """Imports TensorFlow and probes its devices with their start-up lines (START_UP_NOISE) kept off stderr.

  Those lines are printed by C++ before any TensorFlow setting applies (TF_CPP_MIN_LOG_LEVEL does not reach
  them), so stderr's file descriptor is caught while TensorFlow loads, and every other line is printed as it came.
  TF_CPP_MIN_LOG_LEVEL=1, unless set, then keeps TensorFlow's later C++ INFO lines out (its warnings and errors
  in). The test suite's processes import TensorFlow through this too.

  Returns:
    The tensorflow module.
  """
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile() as caught:
    os.dup2(caught.fileno(), 2)
    try:
      import tensorflow as tf  # pylint: disable=import-outside-toplevel
      tf.config.list_physical_devices()  # the CUDA probe, which prints on a machine without a GPU
    finally:
      sys.stderr.flush()
      os.dup2(saved, 2)
      os.close(saved)
      caught.seek(0)
      for line in caught.read().decode("utf-8", "replace").splitlines():
        if not START_UP_NOISE.search(line):
          print(line, file=sys.stderr)
  return tf


def _keep_library_info_out(tf) -> None:
  """TensorFlow's and Keras' own INFO lines ("Sharding callback duration", "Function `predict` contains input
  name(s) input_1, ..." over a screen) leave stderr; their warnings and errors, and ours, stay."""
  import keras  # pylint: disable=import-outside-toplevel
  logging.get_absl_handler().addFilter(library_info_filter(os.path.dirname(m.__file__) for m in (tf, keras)))
  tf.get_logger().setLevel(std_logging.WARNING)


def library_info_filter(directories) -> Callable[[std_logging.LogRecord], bool]:
  """A logging filter that drops records below WARNING logged from a file under one of `directories`."""
  libraries = tuple(os.path.join(d, "") for d in directories)
  return lambda record: record.levelno >= std_logging.WARNING or not record.pathname.startswith(libraries)


class PlainFormatter(std_logging.Formatter):
  """Log lines as a terminal shows them: the message alone, `warning: ` (or `error: `) before what is not INFO.

  absl's prefix (`I1201 19:32:30.172800 139977289366400 loop.py:133]`) is for log files: its time, thread and
  source line help there, and a person watching a run reads past them.
  """

  def format(self, record: std_logging.LogRecord) -> str:
    message = record.getMessage()
    return message if record.levelno <= std_logging.INFO else f"{record.levelname.lower()}: {message}"


def plain_lines_wanted(stream) -> bool:
  """Whether log lines go plain: on a terminal, unless --verbosity=1 or DISASTER_TF_VERBOSE=1 asks for all."""
  verbose = os.environ.get(VERBOSE_ENV, "") not in ("", "0") or logging.level_debug()
  return not verbose and hasattr(stream, "isatty") and stream.isatty()


def _main_or_sentence(main: Callable, errors: Sequence[Type[BaseException]], argv) -> None:
  if plain_lines_wanted(sys.stderr):
    logging.get_absl_handler().setFormatter(PlainFormatter())
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
    doc: the command's usage, which --help prints (the same for the console script, the checkout's wrapper
      script and `python -m`).
    errors: further exception types that are the user's to fix (e.g. a TF Serving that cannot be reached).
  """
  define_flags()
  own_flags_first(sys.argv[0])
  sys.modules["__main__"].__doc__ = doc  # absl's --help prints __main__'s docstring
  try:
    argv = flagfiles.expand(sys.argv)
  except ValueError as e:
    sys.exit(f"{prog()}: --flagfile: {e}")
  app.run(functools.partial(_main_or_sentence, main, errors), argv=argv)


def own_flags_first(main_name: str, fv: flags.FlagValues = flags.FLAGS) -> None:
  """Makes absl's --help list the command's own flags, and --helpfull list them first.

  absl's --help shows the key flags of the module named `sys.argv[0]` (`main_name`) and --helpfull lists that
  module's flags before absl's own, but the commands define theirs in disaster_tf.cli.*: so they move there.
  """
  by_module = fv.flags_by_module_dict()
  for module in sorted(m for m in by_module if m == __name__ or m.startswith(__name__ + ".")):
    for flag in by_module.pop(module):
      fv.register_flag_by_module(main_name, flag)
      fv.register_key_flag_for_module(main_name, flag)
