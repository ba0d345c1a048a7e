"""The network's outputs, probabilities and decisions."""

import numpy as np
import pytest
import tensorflow as tf

from disaster_tf import config as config_lib
from disaster_tf import labels
from disaster_tf.model import encoder as encoder_lib
from disaster_tf.model import features
from disaster_tf.model import networks


def test_one_head_per_category():
  cfg = config_lib.ModelConfig(architecture="cnn_rnn", sequence_length=6, embedding_dim=4, conv_filters=4,
                               rnn_units=4, rnn="gru")
  with pytest.raises(ValueError, match="--model=cnn_rnn reads inputs token_ids; given sizes for word_ngrams"):
    networks.build_model(cfg, {networks.WORD_NGRAMS: 13})
  model = networks.build_model(cfg, {networks.TOKEN_IDS: 13})
  outputs = model({networks.TOKEN_IDS: tf.zeros([3, 6], tf.int64)})
  assert list(outputs) == list(labels.CATEGORIES)
  assert outputs["related"].shape == (3, 3) and outputs["water"].shape == (3, 1)
  scores, related = networks.probabilities(outputs)
  assert scores.shape == (3, 36) and related.shape == (3, 3)
  np.testing.assert_allclose(scores[:, 0], related[:, 1], rtol=1e-6)


def test_decide_thresholds_binary_heads_and_argmaxes_related():
  scores = tf.constant([[0.9] + [0.3] * 35, [0.1] + [0.7] * 35])
  related = tf.constant([[0.05, 0.9, 0.05], [0.2, 0.1, 0.7]])
  thresholds = tf.constant([0.5] + [0.5] * 34 + [0.8])
  out = networks.decide(scores, related, thresholds).numpy()
  assert out.dtype == np.int32
  np.testing.assert_array_equal(out[0], [1] + [0] * 35)
  np.testing.assert_array_equal(out[1], [2] + [1] * 34 + [0])  # last category's threshold is 0.8


@pytest.mark.parametrize("architecture", config_lib.ARCHITECTURES)
def test_every_backbone_builds_with_the_same_heads(architecture):
  # Training one step of each backbone: tests/test_steps.py.
  encoder = architecture == "encoder"  # a tiny BERT (its weights come from a checkpoint: tests/test_encoder.py)
  cfg = config_lib.ModelConfig(architecture=architecture, max_tokens=30, sequence_length=6, embedding_dim=4,
                               conv_filters=4, conv_kernel_size=2, rnn_units=4, dropout=0.1,
                               pretrained_encoder="bert" if encoder else "")
  sizes = {name: 30 + i for i, name in enumerate(features.input_names(cfg))}
  shape = encoder_lib.Shape(vocab_size=30, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                            intermediate_size=8, max_position_embeddings=8) if encoder else None
  model = networks.build_model(cfg, sizes, encoder_shape=shape)
  assert model.name == f"disaster_{architecture}"
  inputs = {name: tf.zeros([2, 6], tf.int64) if name in (features.TOKEN_IDS, features.WORDPIECE_IDS) else
            tf.sparse.from_dense(tf.one_hot([1, 3], size)) for name, size in sizes.items()}
  outputs = model(inputs)
  members = networks.members(outputs)
  assert len(members) == (2 if architecture == "ensemble" else 1)
  for member in members:
    assert list(member) == list(labels.CATEGORIES)
    assert member["related"].shape == (2, 3) and member["water"].shape == (2, 1)


def test_an_ensembles_probabilities_are_its_members_mean():
  rng = np.random.default_rng(0)
  def logits():
    return {name: tf.constant(rng.normal(size=(4, labels.num_classes(name) if name == labels.RELATED else 1)),
                              tf.float32) for name in labels.CATEGORIES}
  first, second = logits(), logits()
  both = {**first, **{networks.output_key(1, name): v for name, v in second.items()}}
  assert [list(m) for m in networks.members(both)] == [list(labels.CATEGORIES)] * 2
  scores, related = networks.probabilities(both, tf.constant([True, True, False, True]))
  (s1, r1), (s2, r2) = networks.probabilities(first), networks.probabilities(second)
  np.testing.assert_allclose(scores.numpy()[[0, 1, 3]], ((s1 + s2) / 2).numpy()[[0, 1, 3]], rtol=1e-6)
  np.testing.assert_allclose(related.numpy()[[0, 1, 3]], ((r1 + r2) / 2).numpy()[[0, 1, 3]], rtol=1e-6)
  assert not scores.numpy()[2].any() and related.numpy()[2].tolist() == [1, 0, 0]  # no token: nothing applies


def test_the_linear_part_is_multiplier_times_its_variables_and_starts_at_zero():
  cfg = config_lib.ModelConfig(architecture="linear", char_ngrams=(), linear_lr_multiplier=7.0, linear_l2=0.5)
  model = networks.build_model(cfg, {features.WORD_NGRAMS: 5})
  x = {features.WORD_NGRAMS: tf.sparse.from_dense(tf.constant([[0.0, 0.6, 0.0, 0.8, 0.0]]))}
  assert not any(v.numpy().any() for v in model.trainable_variables)  # logistic regression starts at 0
  v = np.arange(5 * 38, dtype=np.float32).reshape(5, 38) / 100
  model.get_layer(f"linear_{features.WORD_NGRAMS}").kernel.assign(v)
  water = labels.CATEGORIES.index("water") + 2  # related takes 3 columns, then one per binary category
  assert float(model(x)["water"][0, 0]) == pytest.approx(7.0 * (0.6 * v[1, water] + 0.8 * v[3, water]), rel=1e-5)
  # The penalty is on the effective weights W = 7 V: 0.5 * sum(W^2).
  assert float(tf.add_n(model.losses)) == pytest.approx(0.5 * 49 * float(np.sum(v ** 2)), rel=1e-5)
