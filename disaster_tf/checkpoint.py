"""What a checkpoint holds, where it lives, and how to get a model back from one.

A model dir written by training holds:
  config.json       the run's Config (model shape and training settings)
  flags.txt         the flags train.py was called with (for humans)
  vocabulary.txt    the adapted vocabulary, one token a line
  checkpoints/      the last few saves, named by global step (tf.train.CheckpointManager):
                    one at the end of every epoch, and one at a clean stop (SIGINT/SIGTERM)
  best/             the epoch with the best tune (or validation) score
  thresholds.json   per-category decision thresholds, tuned after training
  metrics.json      per-epoch and final reports
  train/, tune/     TensorBoard events (`validation/` instead of `tune/` with
                    --tune_fraction=0: events go to the split that picks the epoch)
  scratch/          while a run is going: its text spool and vectorised caches

Every checkpoint also stores a fingerprint of the vocabulary and the category
list, so that a checkpoint is never silently paired with another vocabulary.
"""

import hashlib
import json
import os
from typing import List, NamedTuple, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from disaster_tf import config as config_lib
from disaster_tf import labels
from disaster_tf import model as model_lib
from disaster_tf import text

CHECKPOINTS_DIR = "checkpoints"
BEST_DIR = "best"
THRESHOLDS_FILE = "thresholds.json"


def fingerprint(vocabulary: Sequence[str]) -> str:
  """A short hash of the category list and the vocabulary."""
  h = hashlib.sha256()
  for item in ("\x00".join(labels.CATEGORIES), "\x00".join(vocabulary)):
    h.update(item.encode("utf-8"))
    h.update(b"\x01")
  return h.hexdigest()[:16]


class TrainState(tf.Module):
  """Loop counters that must survive a restart, as checkpointed variables."""

  def __init__(self, vocabulary_fingerprint: str):
    super().__init__(name="train_state")
    self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
    self.best_metric = tf.Variable(float("-inf"), dtype=tf.float64, trainable=False, name="best_metric")
    self.best_epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="best_epoch")
    self.bad_epochs = tf.Variable(0, dtype=tf.int64, trainable=False, name="bad_epochs")
    # Batches of epoch `epoch + 1` already trained: non-zero only in a checkpoint
    # written by a clean stop mid-epoch; a resumed run skips that many batches.
    self.step_in_epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="step_in_epoch")
    self.fingerprint = tf.Variable(vocabulary_fingerprint, dtype=tf.string, trainable=False,
                                   name="fingerprint")


def make_checkpoint(model: keras.Model, optimizer: Optional[keras.optimizers.Optimizer],
                    state: TrainState) -> tf.train.Checkpoint:
  """The checkpoint object; export builds the same one without the optimizer."""
  if optimizer is None:
    return tf.train.Checkpoint(model=model, state=state)
  return tf.train.Checkpoint(model=model, optimizer=optimizer, state=state)


def check_fingerprint(path: str, expected: str) -> None:
  """Raises ValueError if the checkpoint at `path` was trained on another vocabulary."""
  reader = tf.train.load_checkpoint(path)
  key = "state/fingerprint/.ATTRIBUTES/VARIABLE_VALUE"
  if not reader.has_tensor(key):
    raise ValueError(f"{path}: not a disaster_tf checkpoint (no vocabulary fingerprint)")
  found = reader.get_tensor(key)
  found = found.decode("utf-8") if isinstance(found, bytes) else str(found)
  if found != expected:
    raise ValueError(f"{path}: this checkpoint was trained with another vocabulary or category list "
                     f"(fingerprint {found}, the model dir's vocabulary.txt gives {expected}); "
                     "export it from the model dir it was trained in")


def resolve(model_dir: str, which: str = "best") -> str:
  """Finds a checkpoint: "best", "latest", or an explicit checkpoint prefix."""
  if which in ("best", "latest"):
    directory = os.path.join(model_dir, BEST_DIR if which == "best" else CHECKPOINTS_DIR)
    path = tf.train.latest_checkpoint(directory)
    if path is None:
      raise FileNotFoundError(f"{directory}: no checkpoint; has train.py finished an epoch in {model_dir!r}?")
    return path
  if not tf.io.gfile.exists(which + ".index"):
    raise FileNotFoundError(f"{which}: no such checkpoint (expected {which}.index)")
  return which


class LoadedModel(NamedTuple):
  """A trained model rebuilt from its model dir, with the text pipeline it was trained with."""

  config: config_lib.Config
  vocabulary: List[str]
  vectorizer: keras.layers.TextVectorization  # raw strings [batch] -> the model's input
  model: keras.Model  # with the checkpoint's weights
  checkpoint_path: str


def load_model(model_dir: str, which: str = "best") -> LoadedModel:
  """Rebuilds a trained model from its model dir alone.

  Args:
    model_dir: a directory written by training.
    which: "best", "latest", or a checkpoint prefix.

  Returns:
    The config, vocabulary, vectorizer, model with restored weights, and the
    checkpoint's path.
  """
  config = config_lib.load(model_dir)
  vocabulary = text.load_vocabulary(model_dir)
  path = resolve(model_dir, which)
  check_fingerprint(path, fingerprint(vocabulary))
  model = model_lib.build_model(config.model, vocab_size=len(vocabulary))
  state = TrainState(fingerprint(vocabulary))
  make_checkpoint(model, None, state).restore(path).expect_partial().assert_existing_objects_matched()
  return LoadedModel(config, vocabulary, text.make_vectorizer(config.model, vocabulary), model, path)


def write_thresholds(thresholds: np.ndarray, model_dir: str) -> None:
  """Writes [36] thresholds as `<model_dir>/thresholds.json` ({category: threshold}), atomically."""
  by_name = dict(zip(labels.CATEGORIES, np.asarray(thresholds, np.float64).tolist()))
  config_lib.write_text_atomic(os.path.join(model_dir, THRESHOLDS_FILE), json.dumps(by_name, indent=1) + "\n")


def read_thresholds(model_dir: str) -> np.ndarray:
  """[36] float32 thresholds from `<model_dir>/thresholds.json` (0.5 everywhere if absent)."""
  path = os.path.join(model_dir, THRESHOLDS_FILE)
  if not os.path.exists(path):
    logging.warning("%s: not found; every category is decided at 0.5", path)
    return labels.default_thresholds()
  with open(path, encoding="utf-8") as f:
    by_name = json.load(f)
  if sorted(by_name) != sorted(labels.CATEGORIES):
    raise ValueError(f"{path}: expected one threshold for each of the 36 categories, found {len(by_name)} "
                     "names; was it written for another category list?")
  return np.array([by_name[c] for c in labels.CATEGORIES], np.float32)
