"""train.py as a user runs it: a flagfile, later flags overriding it, clear errors."""

import json
import os
import subprocess
import sys

import pytest

from tests import fixtures

ROOT = fixtures.ROOT


def run_train(*args):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  return subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), *args], capture_output=True,
                        text=True, env=env, cwd=ROOT, timeout=300)


def test_flagfile_with_an_overriding_flag(tmp_path):
  fixtures.write_two_file(tmp_path / "data", fixtures.synthetic_rows(80))
  flagfile = tmp_path / "tiny.flags"
  flagfile.write_text(f"--data={tmp_path / 'data'}\n--model_dir={tmp_path / 'ignored'}\n--epochs=5\n"
                      "--max_tokens=50\n--sequence_length=8\n--embedding_dim=4\n--conv_filters=4\n"
                      "--rnn_units=4\n--batch_size=16\n--loss_weights=related=0.5,offer=2\n")
  result = run_train(f"--flagfile={flagfile}", f"--model_dir={tmp_path / 'model'}", "--epochs=1")
  assert result.returncode == 0, result.stderr[-3000:]
  assert "\x1b" not in result.stdout + result.stderr  # no progress bar escapes when output is not a terminal
  assert not (tmp_path / "ignored").exists()  # the later --model_dir won
  with open(tmp_path / "model" / "metrics.json") as f:
    body = json.load(f)
  assert len(body["epochs"]) == 1 and body["final"]["best_epoch"] == 1
  assert body["config"]["train"]["loss_weights"] == [["related", 0.5], ["offer", 2.0]]
  assert body["config"]["model"]["max_tokens"] == 50
  assert "--epochs=1" in (tmp_path / "model" / "flags.txt").read_text()
  assert "Total (sum of macro-F1, max 36)" in result.stdout


def test_bad_flags_are_usage_errors_naming_the_flag():
  # (Missing data, through the installed disaster-train: test_packaging; every command's error tail: test_cli.)
  from absl import app  # pylint: disable=import-outside-toplevel
  from disaster_tf.cli import train  # pylint: disable=import-outside-toplevel
  with pytest.raises(app.UsageError, match="--loss_weights: 'offer:2' is not category=weight"):
    train.config_from_flagfile("disaster_response", "--loss_weights=offer:2")
  with pytest.raises(app.UsageError, match=r"dropout=1.5: expected a rate in \[0, 1\)"):
    train.config_from_flagfile("disaster_response", "--dropout=1.5")
  config = train.config_from_flagfile("disaster_response", "--loss_weights=offer=2")
  assert config.train.loss_weights == (("offer", 2.0),)


def test_char_ngrams_flag_takes_two_widths_or_nothing():
  from absl import app  # pylint: disable=import-outside-toplevel
  from disaster_tf.cli import train  # pylint: disable=import-outside-toplevel
  assert train.config_from_flagfile("disaster_response").model.char_ngrams == (2, 5)  # the default
  assert train.config_from_flagfile("disaster_response", "--char_ngrams=3,4").model.char_ngrams == (3, 4)
  assert train.config_from_flagfile("disaster_response", "--char_ngrams=").model.char_ngrams == ()
  with pytest.raises(app.UsageError, match=r"--char_ngrams=two,5: expected two integers lo,hi \(e.g. 2,5\)"):
    train.config_from_flagfile("disaster_response", "--char_ngrams=two,5")
  with pytest.raises(app.UsageError, match=r"char_ngrams=\(5, 2\): expected two widths"):
    train.config_from_flagfile("disaster_response", "--char_ngrams=5,2")


def test_refit_flag_turns_the_refit_on_and_needs_a_tune_split():
  from absl import app  # pylint: disable=import-outside-toplevel
  from disaster_tf.cli import train  # pylint: disable=import-outside-toplevel
  assert not train.config_from_flagfile("disaster_response").train.refit
  assert train.config_from_flagfile("disaster_response", "--refit").train.refit
  with pytest.raises(app.UsageError, match="refit=True with tune_fraction=0"):
    train.config_from_flagfile("disaster_response", "--refit", "--tune_fraction=0")
