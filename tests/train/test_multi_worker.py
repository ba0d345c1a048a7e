"""Two worker processes on localhost with MultiWorkerMirroredStrategy, against one worker."""

import json
import os
import re
import socket
import subprocess
import sys

import numpy as np
import tensorflow as tf

from disaster_tf.cli import train as train_cli
from disaster_tf.train import loop
from tests import fixtures

ROOT = fixtures.ROOT


def free_ports(n):
  sockets = [socket.socket() for _ in range(n)]
  for s in sockets:
    s.bind(("127.0.0.1", 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


def train_flags(tmp_path, model_dir, strategy):
  return [sys.executable, os.path.join(ROOT, "train.py"), f"--data={tmp_path / 'data'}", f"--model_dir={model_dir}",
          f"--strategy={strategy}", "--epochs=2", "--batch_size=16", "--max_tokens=60", "--sequence_length=8",
          "--embedding_dim=4", "--conv_filters=4", "--patience=0", "--verbose=0", "--steps_per_execution=4",
          "--dropout=0",  # dropout masks would come from different random streams
          "--shuffle_buffer=64"]  # ~3 blocks drawn at random: every worker must draw the same order


def weights_sum(log):
  return float(re.findall(r"final weights: sum of \|w\| = ([0-9.]+)", log)[-1])


def test_two_workers_agree_and_match_one_worker(tmp_path):
  fixtures.write_two_file(tmp_path / "data", fixtures.synthetic_rows(240))
  ports = free_ports(2)
  cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
  workers = []
  for index in range(2):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
               TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}))
    # --verbosity=1: the debug lines, which carry the weights' fingerprint.
    workers.append(subprocess.Popen(train_flags(tmp_path, tmp_path / "multi", "multi_worker") + ["--verbosity=1"],
                                    cwd=ROOT, env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
  logs = []
  for w in workers:
    _, err = w.communicate(timeout=400)
    logs.append(err)
    assert w.returncode == 0, err[-3000:]
  # Only the chief (worker 0) wrote to the model dir; the other cleaned up its temporary one.
  assert json.loads((tmp_path / "multi" / "metrics.json").read_text())["final"] is not None
  assert not [d for d in os.listdir(tmp_path / "multi") if d.startswith(".worker-")]
  assert weights_sum(logs[0]) == weights_sum(logs[1])  # the replicas hold the same weights
  # The same flags on one worker, in this process (the same Config: train.py's own flags -> Config mapping).
  flagfile = tmp_path / "single.flags"
  flagfile.write_text("\n".join(train_flags(tmp_path, tmp_path / "single", "default")[2:]) + "\n")
  loop.train_and_evaluate(train_cli.config_from_flagfile(str(flagfile)), str(tmp_path / "single"), verbose=0)
  # Same global batch, same examples per step, no dropout: the same training, up to the float
  # summation order of the all-reduced gradients.
  multi = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(tmp_path / "multi" / "checkpoints")))
  one = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(tmp_path / "single" / "checkpoints")))
  # The model's weights: the checkpoint stores each variable once, under the first path to it.
  keys = sorted(k for k in one.get_variable_to_shape_map() if k.startswith("optimizer/_trainable_variables/"))
  assert keys and keys == sorted(k for k in multi.get_variable_to_shape_map()
                                 if k.startswith("optimizer/_trainable_variables/"))
  for key in keys:
    np.testing.assert_allclose(multi.get_tensor(key), one.get_tensor(key), rtol=0, atol=1e-4, err_msg=key)
