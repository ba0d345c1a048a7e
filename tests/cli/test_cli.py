"""The entry points' shared tail (disaster_tf/cli/__init__.py): a user's error is one sentence and exit code 1."""

import importlib.util
import io
import logging as std_logging
import os
import re
import subprocess
import sys
import types

import pytest
from absl import flags

from disaster_tf import cli
from disaster_tf.data import csv_files
from disaster_tf.train import stops
from tests import fixtures


def run_main(monkeypatch, error, errors=()):
  """Runs a main that raises `error` as a command named `train.py` would; returns the SystemExit."""
  monkeypatch.setattr(sys, "argv", ["/somewhere/train.py"])
  def main(argv):
    del argv
    raise error
  with pytest.raises(SystemExit) as exited:
    cli._main_or_sentence(main, errors, ["train.py"])  # pylint: disable=protected-access
  return exited.value


@pytest.mark.parametrize("error", [csv_files.DataError("d.csv:3: label 7 is out of range"), OSError("disk full"),
                                   FloatingPointError("epoch 2: the training loss is nan"), ValueError("bad")])
def test_a_users_error_exits_with_the_commands_name_and_the_sentence(monkeypatch, error):
  assert run_main(monkeypatch, error).code == f"train.py: {error}"  # sys.exit(str): stderr, exit code 1


def test_a_commands_own_error_types_join_and_others_stay_tracebacks(monkeypatch):
  class Unreachable(RuntimeError):
    pass
  assert run_main(monkeypatch, Unreachable("no server"), errors=(Unreachable,)).code == "train.py: no server"
  with pytest.raises(stops.TrainingInterrupted):  # train.py's own exit code 130, not a sentence
    run_main(monkeypatch, stops.TrainingInterrupted("SIGTERM"))
  with pytest.raises(KeyError):  # a bug stays a traceback
    run_main(monkeypatch, KeyError("x"))


def test_help_lists_the_commands_own_flags_and_helpfull_lists_them_first(monkeypatch):
  fv = flags.FlagValues()
  flags.DEFINE_string("model_dir", None, "Where the run writes.", flag_values=fv, module_name="disaster_tf.cli.train")
  flags.DEFINE_integer("port", 8080, "The page's port.", flag_values=fv, module_name="disaster_tf.cli.predict")
  flags.DEFINE_bool("logtostderr", False, "absl's own.", flag_values=fv, module_name="absl.logging")
  monkeypatch.setattr(sys, "argv", ["train.py"])
  assert "--model_dir" not in fv.main_module_help()  # absl's --help: the key flags of sys.argv[0]'s module only
  cli.own_flags_first("train.py", fv)
  assert "--model_dir" in fv.main_module_help() and "--port" in fv.main_module_help()
  assert "--logtostderr" not in fv.main_module_help()
  full = fv.get_help()  # --helpfull
  assert full.index("--model_dir") < full.index("absl.logging:") and full.count("--model_dir") == 1


class Terminal(io.StringIO):
  def isatty(self):
    return True


def test_a_terminal_gets_plain_log_lines_and_a_log_file_keeps_absls_prefix(monkeypatch):
  monkeypatch.delenv(cli.VERBOSE_ENV, raising=False)
  assert cli.plain_lines_wanted(Terminal()) and not cli.plain_lines_wanted(io.StringIO())
  monkeypatch.setenv(cli.VERBOSE_ENV, "1")  # asked for everything: absl's lines as they are
  assert not cli.plain_lines_wanted(Terminal())
  plain = cli.PlainFormatter()
  assert plain.format(std_logging.LogRecord("absl", std_logging.INFO, "/x/loop.py", 133, "epoch %d/%d: train loss",
                                            (1, 10), None)) == "epoch 1/10: train loss"
  assert plain.format(std_logging.LogRecord("absl", std_logging.WARNING, "/x/app.py", 80, "kept %s: broken",
                                            ("models/3",), None)) == "warning: kept models/3: broken"


ROOT = fixtures.ROOT
CPP_LOG_LINE = re.compile(r"^[IWEF]\d{4} ", re.M)  # TensorFlow's C++ log format (I0000 00:00:... port.cc:153] ...)


def run_predict(*args, **env):
  environment = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", cli.VERBOSE_ENV)}
  return subprocess.run([sys.executable, os.path.join(ROOT, "predict.py"), *args], capture_output=True, text=True,
                        timeout=300, env=dict(environment, **env))


def test_a_command_starts_without_tensorflows_start_up_noise_unless_asked(exported, tmp_path):
  _, path = exported
  (tmp_path / "in.csv").write_text("message\nWe need water\n")
  job = [f"--export_dir={path}", f"--input={tmp_path / 'in.csv'}", f"--output={tmp_path / 'out.csv'}"]
  quiet = run_predict(*job)
  assert quiet.returncode == 0, quiet.stderr[-2000:]
  assert not START_UP_LINES(quiet.stderr) and not CPP_LOG_LINE.search(quiet.stderr), quiet.stderr
  assert quiet.stdout.splitlines() == [f"scoring with version 1 ({path})",
                                       f"{tmp_path / 'out.csv'}: 1 rows read, 1 scored, 0 not readable"]
  for asked in ({"env": {cli.VERBOSE_ENV: "1"}, "flags": []}, {"env": {}, "flags": ["--verbosity=1"]}):
    loud = run_predict(*job, *asked["flags"], **asked["env"])
    assert loud.returncode == 0 and START_UP_LINES(loud.stderr), asked  # this CPU machine's: oneDNN, CUDA probe


def START_UP_LINES(stderr):  # pylint: disable=invalid-name
  return [line for line in stderr.splitlines() if cli.START_UP_NOISE.search(line)]


def test_an_error_is_printed_once(tmp_path):
  result = run_predict("--export_dir=x", f"--input={tmp_path / 'missing.csv'}", f"--output={tmp_path / 'o.csv'}")
  assert result.returncode == 1
  assert result.stderr.splitlines() == [f"predict.py: --input={tmp_path / 'missing.csv'}: no such file"]


def test_lines_that_are_not_start_up_noise_are_printed_as_they_came(monkeypatch, capfd):
  """A line TensorFlow prints while it loads that is not a known start-up line reaches stderr."""
  monkeypatch.delenv(cli.VERBOSE_ENV, raising=False)
  monkeypatch.delitem(sys.modules, "tensorflow")  # so that the import runs again under the catch

  class Loader:  # stands in for TensorFlow's import: prints one known line and one other, on the descriptor
    def find_spec(self, name, *_):
      if name != "tensorflow":
        return None
      return importlib.util.spec_from_loader(name, self)

    def create_module(self, spec):
      del spec

    def exec_module(self, module):
      os.write(2, b"I0000 00:00:1 cudart_stub.cc:31] Could not find cuda drivers on your machine\n"
                  b"something TensorFlow has never said before\n")
      module.config = types.SimpleNamespace(list_physical_devices=lambda: [])

  monkeypatch.setattr(sys, "meta_path", [Loader()] + sys.meta_path)
  monkeypatch.setattr(cli, "_keep_library_info_out", lambda tf: None)  # the handler of this process stays as it is
  cli.import_tensorflow()
  assert capfd.readouterr().err == "something TensorFlow has never said before\n"


def test_tensorflows_own_info_lines_are_dropped_and_warnings_and_ours_kept():
  keep = cli.library_info_filter(["/site/tensorflow", "/site/keras"])
  def record(path, level):
    return std_logging.LogRecord("absl", level, path, 1, "message", (), None)
  assert not keep(record("/site/tensorflow/python/saved_model/signature_serialization.py", std_logging.INFO))
  assert not keep(record("/site/keras/src/saving/x.py", std_logging.DEBUG))
  assert keep(record("/site/tensorflow/python/x.py", std_logging.WARNING))
  assert keep(record("/work/disaster_tf/loop.py", std_logging.INFO))
  assert keep(record("/site/tensorflow_text/x.py", std_logging.INFO))  # another package that starts alike
