"""The network's outputs, probabilities and decisions."""

import numpy as np
import pytest
import tensorflow as tf

from disaster_tf import config as config_lib
from disaster_tf import labels
from disaster_tf import model as model_lib


def test_one_head_per_category():
  cfg = config_lib.ModelConfig(sequence_length=6, embedding_dim=4, conv_filters=4, rnn_units=4, rnn="gru")
  model = model_lib.build_model(cfg, vocab_size=13)
  outputs = model(tf.zeros([3, 6], tf.int64))
  assert list(outputs) == list(labels.CATEGORIES)
  assert outputs["related"].shape == (3, 3) and outputs["water"].shape == (3, 1)
  scores, related = model_lib.probabilities(outputs)
  assert scores.shape == (3, 36) and related.shape == (3, 3)
  np.testing.assert_allclose(scores[:, 0], related[:, 1], rtol=1e-6)


def test_decide_thresholds_binary_heads_and_argmaxes_related():
  scores = tf.constant([[0.9] + [0.3] * 35, [0.1] + [0.7] * 35])
  related = tf.constant([[0.05, 0.9, 0.05], [0.2, 0.1, 0.7]])
  thresholds = tf.constant([0.5] + [0.5] * 34 + [0.8])
  out = model_lib.decide(scores, related, thresholds).numpy()
  assert out.dtype == np.int32
  np.testing.assert_array_equal(out[0], [1] + [0] * 35)
  np.testing.assert_array_equal(out[1], [2] + [1] * 34 + [0])  # last category's threshold is 0.8


@pytest.mark.parametrize("architecture", config_lib.ARCHITECTURES)
def test_every_backbone_builds_with_the_same_heads(architecture):
  # Training one step of each backbone: tests/test_steps.py.
  cfg = config_lib.ModelConfig(architecture=architecture, max_tokens=30, sequence_length=6, embedding_dim=4,
                               conv_filters=4, conv_kernel_size=2, rnn_units=4, dropout=0.1)
  model = model_lib.build_model(cfg, vocab_size=30)
  assert model.name == f"disaster_{architecture}"
  outputs = model(tf.zeros([2, 30], tf.float32) if architecture == "linear" else tf.zeros([2, 6], tf.int64))
  assert list(outputs) == list(labels.CATEGORIES)
  assert outputs["related"].shape == (2, 3) and outputs["water"].shape == (2, 1)
