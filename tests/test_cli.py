"""The entry points' shared tail (disaster_tf/cli/__init__.py): a user's error is one sentence and exit code 1."""

import sys

import pytest

from disaster_tf import cli
from disaster_tf import csv_data
from disaster_tf import stops


def run_main(monkeypatch, error, errors=()):
  """Runs a main that raises `error` as a command named `train.py` would; returns the SystemExit."""
  monkeypatch.setattr(sys, "argv", ["/somewhere/train.py"])
  def main(argv):
    del argv
    raise error
  with pytest.raises(SystemExit) as exited:
    cli._main_or_sentence(main, errors, ["train.py"])  # pylint: disable=protected-access
  return exited.value


@pytest.mark.parametrize("error", [csv_data.DataError("d.csv:3: label 7 is out of range"), OSError("disk full"),
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
