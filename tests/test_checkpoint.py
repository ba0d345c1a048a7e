"""Finding a checkpoint and rebuilding a trained model from a model dir."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from disaster_tf import checkpoint as ckpt_lib
from disaster_tf import config as config_lib
from disaster_tf import model as model_lib
from disaster_tf import text
from tests import fixtures

VOCABULARY = ["", "[UNK]", "water", "food", "fire", "help"]


def write_model_dir(model_dir, config):
  """A model dir as training leaves it: config, vocabulary and a best checkpoint (untrained weights)."""
  os.makedirs(model_dir)
  config_lib.save(config, str(model_dir))
  text.save_vocabulary(VOCABULARY, str(model_dir))
  keras.utils.set_random_seed(0)
  model = model_lib.build_model(config.model, vocab_size=len(VOCABULARY))
  checkpoint = ckpt_lib.make_checkpoint(model, None, ckpt_lib.TrainState(ckpt_lib.fingerprint(VOCABULARY)))
  path = tf.train.CheckpointManager(checkpoint, str(model_dir / ckpt_lib.BEST_DIR), 1).save(3)
  return model, path


def test_load_model_rebuilds_the_model_and_its_vectorizer(tmp_path):
  config = fixtures.tiny_config(str(tmp_path / "data"))
  model, path = write_model_dir(tmp_path / "model", config)
  loaded = ckpt_lib.load_model(str(tmp_path / "model"))
  assert loaded.config == config and loaded.vocabulary == VOCABULARY and loaded.checkpoint_path == path
  ids = loaded.vectorizer(tf.constant(["Water and FIRE, help!", "zzz"]))
  np.testing.assert_array_equal(ids.numpy()[:, :3], [[2, 4, 5], [1, 0, 0]])
  np.testing.assert_allclose(loaded.model(ids)["water"], model(ids)["water"], rtol=1e-6)


def test_identity_is_checked_only_against_a_recorded_one(tmp_path):
  _, path = write_model_dir(tmp_path / "model", fixtures.tiny_config(str(tmp_path / "data")))  # identity {}
  ckpt_lib.check_identity(path, {"data": "abc", "split_seed": "s", "model": {"embedding_dim": 8}})  # passes


def test_error_reason_is_the_first_line_or_the_type():
  assert ckpt_lib.error_reason(OSError("No space left on device\n  at line 2")) == "No space left on device"
  assert ckpt_lib.error_reason(IndexError()) == "IndexError"  # an empty message still gives a sentence


def test_a_checkpoint_from_another_vocabulary_is_refused(tmp_path):
  write_model_dir(tmp_path / "model", fixtures.tiny_config(str(tmp_path / "data")))
  text.save_vocabulary(VOCABULARY[:-1] + ["someotherword"], str(tmp_path / "model"))
  with pytest.raises(ValueError, match="trained with another vocabulary or category list"):
    ckpt_lib.load_model(str(tmp_path / "model"))


def test_resolve_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match="no checkpoint; has train.py finished an epoch"):
    ckpt_lib.resolve(str(tmp_path))
  with pytest.raises(FileNotFoundError, match=r"nope: no such checkpoint \(expected .*nope.index\)"):
    ckpt_lib.resolve(str(tmp_path), str(tmp_path / "nope"))
  tf.train.Checkpoint(v=tf.Variable(1)).write(str(tmp_path / "foreign"))
  with pytest.raises(ValueError, match="not a disaster_tf checkpoint"):
    ckpt_lib.check_fingerprint(str(tmp_path / "foreign"), "x")
