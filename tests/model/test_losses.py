"""Class weights become per-head sample weights; the combined loss by hand."""

import math

import numpy as np
import pytest
import tensorflow as tf

from disaster_tf import labels
from disaster_tf.model import losses


def outputs_from(binary_logit: float, related_logits):
  """Logits dict: every binary head gives `binary_logit`, related gives `related_logits` [B, 3]."""
  related = tf.constant(related_logits, tf.float32)
  batch = related.shape[0]
  out = {name: tf.fill([batch, 1], binary_logit) for name in labels.BINARY_CATEGORIES}
  out[labels.RELATED] = related
  return out


def bce(y, logit):
  p = 1 / (1 + math.exp(-logit))
  return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def test_combined_loss_matches_a_hand_computation():
  # Two examples. Binary logits all 0 (p = 0.5); related logits favour class 1.
  y = np.zeros((2, 36), np.int32)
  y[0, labels.RELATED_INDEX] = 1
  y[1, labels.RELATED_INDEX] = 2
  y[0, labels.CATEGORIES.index("water")] = 1
  related_logits = [[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]]
  class_weights = losses.class_weight_table("article", np.zeros((36, 3)), cap=100)
  loss_weights = losses.loss_weight_vector([("water", 2.0)])
  total, components = losses.combined_loss(tf.constant(y), outputs_from(0.0, related_logits),
                                           tf.constant(class_weights), tf.constant(loss_weights),
                                           global_batch_size=4)
  log_softmax = [v - math.log(sum(math.exp(u) for u in [0.0, 1.0, 0.0])) for v in [0.0, 1.0, 0.0]]
  ln2 = math.log(2)
  # Example 0: related=1 (weight 0.43); water=1 (class weight 7, loss weight 2); 34 zeros (0.5).
  ex0 = 0.43 * -log_softmax[1] + 7 * 2 * ln2 + 34 * 0.5 * ln2
  # Example 1: related=2 (weight 7); water=0 (0.5, loss weight 2); 34 zeros (0.5).
  ex1 = 7 * -log_softmax[2] + 0.5 * 2 * ln2 + 34 * 0.5 * ln2
  assert float(total) == pytest.approx((ex0 + ex1) / 4, rel=1e-5)  # divided by the global batch
  assert float(tf.reduce_sum(components)) == pytest.approx(float(total), rel=1e-5)
  water = labels.CATEGORIES.index("water")
  assert float(components[water]) == pytest.approx((7 * 2 * ln2 + 0.5 * 2 * ln2) / 4, rel=1e-5)
  assert float(components[0]) == pytest.approx((0.43 * -log_softmax[1] + 7 * -log_softmax[2]) / 4, rel=1e-5)


def test_per_head_loss_at_non_zero_logits_matches_the_cross_entropy_by_hand():
  # Logit 1.5 on every binary head, so a label of 1 and of 0 cost differently; related favours class 1.
  y = np.zeros((2, 36), np.int32)
  y[0, labels.CATEGORIES.index("food")] = 1
  y[1, labels.RELATED_INDEX] = 2
  related_logits = [[0.5, 2.0, -1.0], [0.5, 2.0, -1.0]]
  class_weights = losses.class_weight_table("article", np.zeros((36, 3)), cap=100)
  per_head = losses.per_head_loss(tf.constant(y), outputs_from(1.5, related_logits), tf.constant(class_weights),
                                  tf.constant(losses.loss_weight_vector([("food", 3.0)]))).numpy()
  assert per_head.shape == (2, 36)
  food, water = labels.CATEGORIES.index("food"), labels.CATEGORIES.index("water")
  assert per_head[0, food] == pytest.approx(3.0 * 7.0 * bce(1, 1.5), rel=1e-5)
  assert per_head[1, food] == pytest.approx(3.0 * 0.5 * bce(0, 1.5), rel=1e-5)
  assert per_head[0, water] == pytest.approx(0.5 * bce(0, 1.5), rel=1e-5)
  log_z = math.log(sum(math.exp(v) for v in related_logits[0]))
  assert per_head[0, labels.RELATED_INDEX] == pytest.approx(1.4 * (log_z - 0.5), rel=1e-5)  # class 0
  assert per_head[1, labels.RELATED_INDEX] == pytest.approx(7.0 * (log_z + 1.0), rel=1e-5)  # class 2


def test_label_counts():
  y = np.zeros((5, 36), np.int32)
  y[:3, 0] = [0, 1, 2]
  y[:2, 4] = 1
  counts = losses.label_counts(y)
  assert counts.shape == (36, 3)
  np.testing.assert_array_equal(counts[0], [3, 1, 1])
  np.testing.assert_array_equal(counts[4], [3, 2, 0])


def test_class_weight_schemes_on_a_tiny_count_table():
  counts = np.zeros((36, 3), np.int64)
  counts[:, :2] = [90, 10]  # every binary head: 90 negatives, 10 positives
  counts[0] = [20, 70, 10]  # related
  counts[labels.CATEGORIES.index("child_alone")] = [100, 0, 0]
  none = losses.class_weight_table("none", counts, cap=50)
  assert (none == 1).all()
  article = losses.class_weight_table("article", counts, cap=50)
  np.testing.assert_allclose(article[0], [1.4, 0.43, 7.0])
  np.testing.assert_allclose(article[1, :2], [0.5, 7.0])
  balanced = losses.class_weight_table("balanced", counts, cap=50)
  np.testing.assert_allclose(balanced[1, :2], [100 / (2 * 90), 100 / (2 * 10)], rtol=1e-6)
  np.testing.assert_allclose(balanced[0], [100 / (3 * 20), 100 / (3 * 70), 100 / (3 * 10)], rtol=1e-6)
  np.testing.assert_allclose(balanced[labels.CATEGORIES.index("child_alone"), :2], [0.5, 1.0])  # absent: 1
  sqrt = losses.class_weight_table("sqrt_balanced", counts, cap=50)
  np.testing.assert_allclose(sqrt[1, :2], np.sqrt(balanced[1, :2]), rtol=1e-6)
  capped = losses.class_weight_table("balanced", counts, cap=2.0)
  assert capped.max() == pytest.approx(2.0)
  with pytest.raises(ValueError, match="class_weight='focal'"):
    losses.class_weight_table("focal", counts, cap=50)


def test_effective_number_weights():
  counts = np.zeros((36, 3), np.int64)
  counts[:, :2] = [900, 100]
  counts[0] = [200, 700, 100]
  table = losses.class_weight_table("effective_number", counts, cap=50)
  beta = losses.EFFECTIVE_NUMBER_BETA
  raw = np.array([(1 - beta) / (1 - beta ** 900), (1 - beta) / (1 - beta ** 100)])
  expected = raw * 1000 / (raw * [900, 100]).sum()  # weights average 1 over the head's examples
  np.testing.assert_allclose(table[1, :2], expected, rtol=1e-5)
  assert (table[1, :2] * [900, 100]).sum() / 1000 == pytest.approx(1.0, rel=1e-5)
  assert table[0, 2] > table[0, 0] > table[0, 1]  # rarer classes weigh more
  # Smoother than "balanced": the rare class gains less.
  balanced = losses.class_weight_table("balanced", counts, cap=50)
  assert table[1, 1] / table[1, 0] < balanced[1, 1] / balanced[1, 0]



def _outputs(binary_logits, related_logits):
  """One model's outputs: binary logits [B, 35] in BINARY_CATEGORIES order, related logits [B, 3]."""
  binary = tf.cast(binary_logits, tf.float32)
  out = {name: binary[:, k:k + 1] for k, name in enumerate(labels.BINARY_CATEGORIES)}
  out[labels.RELATED] = tf.cast(related_logits, tf.float32)
  return out


def test_consistency_is_the_kl_divergence_by_hand_and_zero_where_the_sides_agree():
  rng = np.random.default_rng(0)
  t_binary, t_related, s_binary, s_related = (rng.normal(size=(2, n)) for n in (35, 3, 35, 3))
  teacher, student = _outputs(t_binary, t_related), _outputs(s_binary, s_related)
  kl = losses.consistency(teacher, student).numpy()
  assert kl.shape == (2, 36) and (kl > 0).all()
  p, q = 1 / (1 + np.exp(-t_binary)), 1 / (1 + np.exp(-s_binary))
  by_hand = p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))
  binary_columns = [labels.CATEGORIES.index(c) for c in labels.BINARY_CATEGORIES]
  np.testing.assert_allclose(kl[:, binary_columns], by_hand, rtol=1e-4, atol=1e-6)
  pr, qr = tf.nn.softmax(t_related).numpy(), tf.nn.softmax(s_related).numpy()
  np.testing.assert_allclose(kl[:, labels.RELATED_INDEX], (pr * np.log(pr / qr)).sum(1), rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(losses.consistency(teacher, teacher).numpy(), 0.0, atol=1e-5)


def test_a_pair_adds_its_originals_weighted_loss_and_the_term_only_where_there_is_an_original():
  rng = np.random.default_rng(1)
  y = tf.constant(rng.integers(0, 2, size=(2, 36)), tf.int32)
  translated = _outputs(rng.normal(size=(2, 35)), rng.normal(size=(2, 3)))
  sent = _outputs(rng.normal(size=(2, 35)), rng.normal(size=(2, 3)))
  weights = tf.ones([36, 3]), tf.ones([36])
  plain, _ = losses.combined_loss(y, translated, *weights, 2)
  pair = losses.Pair(sent, tf.constant([1.0, 0.0]), losses.Pairing(original_weight=2.0, consistency=0.5))
  total, components = losses.combined_loss(y, translated, *weights, 2, pair)
  supervised = losses.per_head_loss(y, sent, *weights).numpy()[0].sum()
  term = losses.consistency(translated, sent).numpy()[0].sum()
  assert term > 0.1  # the two sides disagree
  # Row 0 adds 2x its original's loss and 0.5x the divergence; row 1 has no original and adds nothing.
  assert float(total) == pytest.approx(float(plain) + (2.0 * supervised + 0.5 * term) / 2, rel=1e-5)
  assert float(tf.reduce_sum(components)) == pytest.approx(float(total), rel=1e-5)


def test_the_consistency_term_moves_the_original_towards_its_translation_not_the_reverse():
  t_binary, t_related = tf.Variable(np.full((1, 35), 2.0)), tf.Variable([[0.0, 2.0, 0.0]])
  s_binary, s_related = tf.Variable(np.full((1, 35), -2.0)), tf.Variable([[2.0, 0.0, 0.0]])
  vs = [t_binary, t_related, s_binary, s_related]

  def term():
    return tf.reduce_sum(losses.consistency(_outputs(t_binary, t_related), _outputs(s_binary, s_related)))
  with tf.GradientTape() as tape:
    before = term()
  grads = tape.gradient(before, vs)
  assert all(g is None or not np.any(g.numpy()) for g in grads[:2])  # the teacher's side is held
  for v, g in zip(vs[2:], grads[2:]):  # one plain gradient step on the student's logits
    v.assign_sub(0.5 * tf.cast(g, v.dtype))
  assert float(term()) < float(before)
