"""A three-member export (--encoder_member) on a tiny BERT checkpoint: trained in its phases, its WordPiece op in
the graph, its scores the members' mix, reloaded as TF Serving loads it; an unfinished one refused."""

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from disaster_tf.serve import savedmodel
from disaster_tf.train import checkpoint as ckpt_lib
from disaster_tf.train import course
from disaster_tf.train import members
from tests import fixtures
from tests.model import test_encoder
from tests.serve import test_savedmodel

TEXTS = ["We need water and food", "fire near the school, we need help", "", "the of and"]


def write_bert(directory) -> str:
  """The tiny checkpoint of tests/model/test_encoder.py with 64 positions: the encoder member reads 64 pieces."""
  weights = test_encoder.tiny_weights()
  weights["embeddings.position_embeddings.weight"] = np.random.default_rng(1).normal(
      0, 0.5, (64, test_encoder.SHAPE["hidden_size"])).astype(np.float32)
  return test_encoder.write_checkpoint(directory, weights=weights,
                                       config=dict(test_encoder.SHAPE, max_position_embeddings=64))


@pytest.fixture(scope="module")
def three(tmp_path_factory):
  """A tiny three-member run (the linear member, the CNN, the encoder member, one epoch each) and its export:
  (model dir, version dir, the run's final report)."""
  from disaster_tf.train import loop  # pylint: disable=import-outside-toplevel
  root = tmp_path_factory.mktemp("three")
  fixtures.write_two_file(root / "data", fixtures.synthetic_rows(200))
  config = fixtures.tiny_config(str(root / "data"), epochs=1, linear_epochs=1, language_gate=False,
                                encoder_member=write_bert(root / "bert"), encoder_epochs=1)
  final = loop.train_and_evaluate(config, str(root / "model"), verbose=0)
  return str(root / "model"), savedmodel.export(str(root / "model"), str(root / "models"), warmup=False), final


def test_the_encoder_member_trains_in_its_own_phase_and_the_blend_is_what_the_run_reports(three):
  model_dir, _, final = three
  assert [p.key for p in course.phases(ckpt_lib_config(model_dir), model_dir)] == [
      course.LINEAR, course.NETWORK, course.ENCODER]
  encoder_dir = os.path.join(model_dir, ckpt_lib.ENCODER_DIR)
  assert ckpt_lib.finished(encoder_dir) and ckpt_lib.finished(os.path.join(model_dir, ckpt_lib.LINEAR_DIR))
  blend = members.read(model_dir)
  assert blend.weight in members.WEIGHTS and sorted(blend.tune_totals) == ["0.333", "0.500"]
  assert blend.report == final and "the encoder weighing" in final.threshold_source
  assert blend.encoder_checkpoint == ckpt_lib.resolve(encoder_dir, "best")


def ckpt_lib_config(model_dir):
  from disaster_tf import config as config_lib  # pylint: disable=import-outside-toplevel
  return config_lib.load(model_dir)


def test_the_export_serves_the_members_mix_with_the_wordpiece_op_and_tf_serving_loads_it(three):
  model_dir, path, final = three
  weight = members.read(model_dir).weight
  ensemble = test_savedmodel.in_memory_scores(model_dir, TEXTS)
  encoder = test_savedmodel.in_memory_scores(os.path.join(model_dir, ckpt_lib.ENCODER_DIR), TEXTS)
  assert not np.allclose(ensemble[:2], encoder[:2])  # two models that differ
  out = tf.saved_model.load(path).signatures["serving_default"](text=tf.constant(TEXTS))
  np.testing.assert_allclose(out["scores"].numpy()[:2], (1 - weight) * ensemble[:2] + weight * encoder[:2],
                             rtol=1e-5, atol=1e-6)
  assert encoder[3].any()  # WordPiece reads stop words ([UNK] here); the export still answers them with nothing
  thresholds = np.array(final.thresholds_array(), np.float32)
  scores = out["scores"].numpy()
  np.testing.assert_array_equal(out["labels"].numpy()[:, 1:], ((scores >= thresholds) & (scores > 0))[:, 1:])
  assert not out["scores"].numpy()[2:].any()  # no token: nothing applies, whatever the members say
  assert "WordpieceTokenizeWithOffsets" in test_savedmodel.graph_ops(path)
  test_savedmodel.assert_only_allowed_ops(path, text_ops=True)
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:  # the TF Serving way
    signature = tf.compat.v1.saved_model.loader.load(sess, ["serve"], path).signature_def["serving_default"]
    served = sess.run(signature.outputs["scores"].name, {signature.inputs["text"].name: TEXTS})
  np.testing.assert_allclose(served, out["scores"].numpy(), rtol=1e-5, atol=1e-6)


def test_the_metadata_and_the_model_card_list_the_three_members(three):
  model_dir, path, final = three
  metadata = savedmodel.read_metadata(path)
  assert [m["name"].split(" (")[0] for m in metadata.members] == ["the CNN", "the linear member", "the encoder"]
  assert abs(sum(m["weight"] for m in metadata.members) - 1.0) < 1e-9
  assert metadata.members[2]["model_dir"] == os.path.abspath(os.path.join(model_dir, ckpt_lib.ENCODER_DIR))
  assert metadata.report == final and list(metadata.thresholds) == pytest.approx(final.thresholds_array())
  with open(os.path.join(path, "assets.extra", savedmodel.MODEL_CARD_FILE), encoding="utf-8") as f:
    card = f.read()
  assert "## Its members" in card and card.count("of the scores") == 3


def test_a_three_member_run_whose_blend_or_encoder_is_missing_is_not_exported(three, tmp_path):
  model_dir, _, _ = three
  for removed in (ckpt_lib.MEMBERS_FILE, os.path.join(ckpt_lib.ENCODER_DIR, ckpt_lib.METRICS_FILE)):
    copy = tmp_path / removed.replace(os.sep, "-")
    shutil.copytree(model_dir, copy)
    os.remove(copy / removed)  # as if the run had stopped in its encoder phase
    with pytest.raises(ValueError, match=r"a three-member run \(--encoder_member\) exports with its encoder"):
      savedmodel.export(str(copy), str(tmp_path / "models"), warmup=False)
  assert not (tmp_path / "models").exists()  # refused before anything was written


def test_a_members_file_not_written_by_training_is_named(three, tmp_path):
  model_dir, _, _ = three
  copy = tmp_path / "model"
  shutil.copytree(model_dir, copy)
  (copy / ckpt_lib.MEMBERS_FILE).write_text("{\"weight\": 0.5}")
  with pytest.raises(ValueError, match=r"members.json: not a members file written by train.py \(KeyError"):
    members.read(str(copy))
  with open(os.path.join(model_dir, ckpt_lib.MEMBERS_FILE), encoding="utf-8") as f:
    raw = json.load(f)
  (copy / ckpt_lib.MEMBERS_FILE).write_text(json.dumps(dict(raw, weight=1.5)))
  with pytest.raises(ValueError, match=r"weight 1.5 or its thresholds are not a blend's"):
    members.read(str(copy))


def test_the_same_command_again_keeps_every_phase_and_the_blend(three, tmp_path):
  from disaster_tf.train import loop  # pylint: disable=import-outside-toplevel
  model_dir, _, final = three
  copy = tmp_path / "model"
  shutil.copytree(model_dir, copy)
  before = (copy / ckpt_lib.MEMBERS_FILE).read_bytes()
  again = loop.train_and_evaluate(ckpt_lib_config(str(copy)), str(copy), verbose=0)
  assert (copy / ckpt_lib.MEMBERS_FILE).read_bytes() == before  # made of the same checkpoints: kept
  assert again.scores == final.scores


def test_a_pruned_three_member_run_still_exports_and_keeps_only_what_export_reads(three, tmp_path):
  from disaster_tf.train import prune  # pylint: disable=import-outside-toplevel
  model_dir, path, _ = three
  copy = tmp_path / "model"
  shutil.copytree(model_dir, copy)
  pruned = prune.prune(str(copy))
  assert os.path.join(ckpt_lib.ENCODER_DIR, ckpt_lib.CHECKPOINTS_DIR) in dict(pruned.removed)
  again = savedmodel.export(str(copy), str(tmp_path / "models"), warmup=False)
  texts = tf.constant(TEXTS)
  np.testing.assert_allclose(tf.saved_model.load(again).signatures["serving_default"](text=texts)["scores"],
                             tf.saved_model.load(path).signatures["serving_default"](text=texts)["scores"], atol=1e-6)
