"""Finding a checkpoint and rebuilding a trained model from a model dir."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from disaster_tf.data import text
from disaster_tf.model import features
from disaster_tf.model import networks
from disaster_tf.train import checkpoint as ckpt_lib
from tests import fixtures

VOCABULARY = ["", "[UNK]", "water", "food", "fire", "help"]
NGRAMS = features.Vocabulary(("[UNK]", "water", "help", "c", "d"), np.array([0, 1.5, 2, 1, 1], np.float32))
CHARS = features.Vocabulary(("[UNK]", " w", "wa", "at"), np.array([0, 1, 1, 1], np.float32))
VOCABULARIES = {features.TOKEN_IDS: features.Vocabulary(tuple(VOCABULARY)), features.WORD_NGRAMS: NGRAMS,
                features.CHAR_NGRAMS: CHARS}


def write_model_dir(model_dir, config):
  """A model dir as training leaves it: config, vocabularies and a best checkpoint (untrained weights)."""
  vocabularies = {name: VOCABULARIES[name] for name in features.input_names(config.model)}
  keras.utils.set_random_seed(0)
  model = networks.build_model(config.model, {name: len(v.tokens) for name, v in vocabularies.items()})
  for v in model.trainable_variables:  # non-zero linear weights too, so that a wrong restore shows
    v.assign(np.random.default_rng(len(v.name)).normal(size=v.shape).astype(np.float32))
  return model, ckpt_lib.write_model_dir(str(model_dir), config, vocabularies, model, step=3)


def test_load_model_rebuilds_the_model_and_its_featurizer(tmp_path):
  config = fixtures.tiny_config(str(tmp_path / "data"))
  assert config.model.architecture == "ensemble"  # every kind of input and both members
  model, path = write_model_dir(tmp_path / "model", config)
  loaded = ckpt_lib.load_model(str(tmp_path / "model"))
  assert loaded.config == config and loaded.checkpoint_path == path
  assert loaded.vocabularies[features.TOKEN_IDS].tokens == tuple(VOCABULARY)
  np.testing.assert_array_equal(loaded.vocabularies[features.WORD_NGRAMS].idf, NGRAMS.idf)
  inputs = loaded.featurizer(tf.constant(["Water and FIRE, help!", "zzz"]))
  np.testing.assert_array_equal(inputs[features.TOKEN_IDS].numpy()[:, :3], [[2, 4, 5], [1, 0, 0]])
  for key in (networks.output_key(0, "water"), networks.output_key(1, "water")):
    np.testing.assert_allclose(loaded.model(inputs)[key], model(inputs)[key], rtol=1e-6)


def test_identity_is_checked_only_against_a_recorded_one(tmp_path):
  _, path = write_model_dir(tmp_path / "model", fixtures.tiny_config(str(tmp_path / "data")))  # identity {}
  ckpt_lib.check_identity(path, {"data": "abc", "split_seed": "s", "model": {"embedding_dim": 8}})  # passes


def test_error_reason_is_the_first_line_or_the_type():
  assert ckpt_lib.error_reason(OSError("No space left on device\n  at line 2")) == "No space left on device"
  assert ckpt_lib.error_reason(IndexError()) == "IndexError"  # an empty message still gives a sentence


def test_a_checkpoint_from_another_vocabulary_is_refused(tmp_path):
  write_model_dir(tmp_path / "model", fixtures.tiny_config(str(tmp_path / "data")))
  text.save_vocabulary(VOCABULARY[:-1] + ["someotherword"], str(tmp_path / "model"))
  with pytest.raises(ValueError, match=r"the model dir's vocabulary.txt differs from the training's \(edited by hand"):
    ckpt_lib.load_model(str(tmp_path / "model"))


def test_resolve_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match="no checkpoint; has train.py finished an epoch"):
    ckpt_lib.resolve(str(tmp_path))
  with pytest.raises(FileNotFoundError, match=r"nope: no such checkpoint \(expected .*nope.index\)"):
    ckpt_lib.resolve(str(tmp_path), str(tmp_path / "nope"))
  tf.train.Checkpoint(v=tf.Variable(1)).write(str(tmp_path / "foreign"))
  with pytest.raises(ValueError, match="not a disaster_tf checkpoint"):
    ckpt_lib.check_fingerprint(str(tmp_path / "foreign"), {})


def test_a_relative_model_dir_finds_its_best_checkpoint(tmp_path, monkeypatch):
  # README's main command passes --model_dir=runs/default: the state file's paths must not be joined twice.
  _, path = write_model_dir(tmp_path / "runs" / "default", fixtures.tiny_config(str(tmp_path / "data")))
  monkeypatch.chdir(tmp_path)
  found, skipped = ckpt_lib.latest_readable(os.path.join("runs", "default", ckpt_lib.BEST_DIR))
  assert found == os.path.abspath(path) and skipped == []
  assert ckpt_lib.resolve(os.path.join("runs", "default"), "best") == os.path.abspath(path)
  assert ckpt_lib.load_model(os.path.join("runs", "default")).checkpoint_path == os.path.abspath(path)


def test_release_dir_is_a_finished_refit_and_passes_over_an_unfinished_one(tmp_path, caplog):
  model_dir = str(tmp_path)
  assert ckpt_lib.release_dir(model_dir) == model_dir  # no refit
  refit = tmp_path / ckpt_lib.REFIT_DIR
  refit.mkdir()
  (refit / ckpt_lib.METRICS_FILE).write_text('{"epochs": [{"epoch": 1}], "final": null}')  # still training
  assert ckpt_lib.release_dir(model_dir) == model_dir
  assert "has not finished" in caplog.text and "run train.py again to finish the refit" in caplog.text
  (refit / ckpt_lib.METRICS_FILE).write_text("{truncated")
  assert ckpt_lib.release_dir(model_dir) == model_dir
  (refit / ckpt_lib.METRICS_FILE).write_text('{"epochs": [], "final": {"total": 20.0}}')
  assert ckpt_lib.release_dir(model_dir) == str(refit)
