"""train.py killed mid-run: SIGKILL loses only the unfinished epoch, SIGINT stops cleanly and resumes exactly.

In-process, tests/test_loop.py checks that a resumed epoch ends with the weights of an uninterrupted one.
"""

import json
import os
import signal
import subprocess
import sys

import tensorflow as tf

from disaster_tf import config as config_lib
from disaster_tf.data import csv_files
from disaster_tf.data import examples as examples_lib
from disaster_tf.train import checkpoint as ckpt_lib
from tests import fixtures

ROOT = fixtures.ROOT
EPOCHS = 3
BATCH = 8
ROWS = 1500  # ~140 one-step calls an epoch: a signal sent after the first call lands inside the epoch


def flags(tmp_path):
  return [f"--data={tmp_path / 'data'}", f"--model_dir={tmp_path / 'model'}", f"--epochs={EPOCHS}",
          f"--batch_size={BATCH}", "--max_tokens=60", "--sequence_length=8", "--embedding_dim=4",
          "--conv_filters=4", "--patience=0", "--verbose=0", "--steps_per_execution=1",
          "--shuffle_buffer=500"]  # several blocks (examples_lib.batched): the resumed epoch skips into a sampled order


def start(tmp_path):
  # --verbosity=1: the debug line "epoch 1: first 1 step(s)" says when the compiled steps run.
  return subprocess.Popen([sys.executable, os.path.join(ROOT, "train.py"), *flags(tmp_path), "--verbosity=1"], cwd=ROOT,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))


def wait_for_line(process, needle):
  """Reads the child's log until `needle` appears (the child's own progress; no sleeping)."""
  seen = []
  for line in process.stderr:
    seen.append(line)
    if needle in line:
      return
  raise AssertionError(f"{needle!r} never appeared; the child said:\n{''.join(seen[-20:])}")


def steps_per_epoch(tmp_path):
  examples, _ = csv_files.load(str(tmp_path / "data"), str(tmp_path))
  return len(examples_lib.split(examples, config_lib.TrainConfig()).train) // BATCH


def check_complete_run(tmp_path):
  """The finished run: every epoch once, every step once, only whole checkpoints."""
  model_dir = tmp_path / "model"
  body = json.loads((model_dir / "metrics.json").read_text())
  assert [e["epoch"] for e in body["epochs"]] == list(range(1, EPOCHS + 1)) and body["final"] is not None
  checkpoints = model_dir / ckpt_lib.CHECKPOINTS_DIR
  state = tf.train.get_checkpoint_state(str(checkpoints))
  for path in state.all_model_checkpoint_paths:  # every listed checkpoint is whole and readable
    assert os.path.exists(path + ".index") and tf.train.load_checkpoint(path)
  assert not [f for f in os.listdir(checkpoints) if "tmp" in f or "temp" in f]
  reader = tf.train.load_checkpoint(state.model_checkpoint_path)
  assert reader.get_tensor("state/epoch/.ATTRIBUTES/VARIABLE_VALUE") == EPOCHS
  return reader.get_tensor("optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE")


def test_sigkill_mid_epoch_then_restart_loses_only_that_epoch(tmp_path):
  fixtures.write_two_file(tmp_path / "data", fixtures.synthetic_rows(ROWS))
  process = start(tmp_path)
  wait_for_line(process, f"epoch 1/{EPOCHS}")  # epoch 1 is checkpointed; epoch 2 is starting
  process.send_signal(signal.SIGKILL)
  process.wait()
  first = json.loads((tmp_path / "model" / "metrics.json").read_text())
  assert [e["epoch"] for e in first["epochs"]] in ([1], [1, 2]) and first["final"] is None
  assert (tmp_path / "model" / "scratch").is_dir()  # the killed run's spool and caches
  resumed = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), *flags(tmp_path)], cwd=ROOT,
                           capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert "resumed from" in resumed.stderr
  assert not (tmp_path / "model" / "scratch").exists()  # rebuilt, used, removed
  # The killed epoch's partial steps were never saved: it ran again from its start, so the
  # optimizer saw exactly EPOCHS epochs of steps.
  assert check_complete_run(tmp_path) == EPOCHS * steps_per_epoch(tmp_path)


def test_sigint_saves_mid_epoch_and_the_restart_resumes_at_that_step(tmp_path):
  fixtures.write_two_file(tmp_path / "data", fixtures.synthetic_rows(ROWS))
  process = start(tmp_path)
  wait_for_line(process, "epoch 1: first 1 step(s)")  # compiled; ~140 steps of epoch 1 still to go
  process.send_signal(signal.SIGINT)
  _, err = process.communicate(timeout=120)
  assert process.returncode == 130, err[-3000:]
  reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(tmp_path / "model" / "checkpoints")))
  stopped_at = reader.get_tensor("state/step_in_epoch/.ATTRIBUTES/VARIABLE_VALUE")
  assert reader.get_tensor("state/epoch/.ATTRIBUTES/VARIABLE_VALUE") == 0  # no epoch finished yet
  assert 0 < stopped_at < steps_per_epoch(tmp_path), stopped_at
  assert f"SIGINT: stopped at step {stopped_at} of {steps_per_epoch(tmp_path)} in epoch 1" in err
  assert "Run the same command to resume" in err
  resumed = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), *flags(tmp_path)], cwd=ROOT,
                           capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert f"epoch 1: resuming after step {stopped_at} of" in resumed.stderr
  # No step lost and none repeated: the optimizer saw exactly EPOCHS epochs of steps.
  assert check_complete_run(tmp_path) == EPOCHS * steps_per_epoch(tmp_path)
