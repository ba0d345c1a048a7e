"""Class weights as per-head, per-example sample weights, and the combined loss.

Keras' `class_weight` is rejected for multi-output models (keras-team/keras#8011),
so class weights are applied here: for each example and each head, the weight of
the example's true class for that head multiplies that head's loss.
"""

from typing import NamedTuple, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from disaster_tf import labels
from disaster_tf.model import networks

# The reference article's fixed dictionaries.
ARTICLE_BINARY_WEIGHTS = {0: 0.5, 1: 7.0}
ARTICLE_RELATED_WEIGHTS = {0: 1.4, 1: 0.43, 2: 7.0}
# Cui et al. 2019, "Class-balanced loss based on effective number of samples":
# 0.999 suits classes of hundreds to thousands of examples, as here.
EFFECTIVE_NUMBER_BETA = 0.999


def label_counts(label_matrix: np.ndarray) -> np.ndarray:
  """Counts each class of each category.

  Args:
    label_matrix: [N, 36] int labels.

  Returns:
    [36, 3] int64 counts; column 2 is 0 for binary categories.
  """
  return np.stack([np.bincount(label_matrix[:, k], minlength=labels.RELATED_CLASSES)[:labels.RELATED_CLASSES]
                   for k in range(labels.NUM_CATEGORIES)])


def class_weight_table(scheme: str, counts: np.ndarray, cap: float) -> np.ndarray:
  """Computes the weight of each class of each category.

  Args:
    scheme: "none" (all 1), "article" (the article's fixed dictionaries),
      "balanced" (n / (classes * count), as scikit-learn's), or
      "sqrt_balanced" (the square root of "balanced": a smoothed scheme), or
      "effective_number" ((1 - beta) / (1 - beta^count), scaled so that a
      category's weights average 1 over its examples: another smoothed scheme).
    counts: [36, 3] class counts of the training split (`label_counts`).
    cap: upper bound on any weight of the computed schemes.

  Returns:
    [36, 3] float32. Classes absent from the training split weigh 1 (they
    never occur in a training label, so their weight never applies).
  """
  table = np.ones((labels.NUM_CATEGORIES, labels.RELATED_CLASSES), dtype=np.float64)
  if scheme == "none":
    pass
  elif scheme == "article":
    for k, name in enumerate(labels.CATEGORIES):
      weights = ARTICLE_RELATED_WEIGHTS if name == labels.RELATED else ARTICLE_BINARY_WEIGHTS
      for cls, w in weights.items():
        table[k, cls] = w
  elif scheme in ("balanced", "sqrt_balanced"):
    for k, name in enumerate(labels.CATEGORIES):
      n_classes = labels.num_classes(name)
      c = counts[k, :n_classes].astype(np.float64)
      present = c > 0
      table[k, :n_classes][present] = c.sum() / (n_classes * c[present])
    if scheme == "sqrt_balanced":
      table = np.sqrt(table)
    table = np.minimum(table, cap)
  elif scheme == "effective_number":
    for k, name in enumerate(labels.CATEGORIES):
      n_classes = labels.num_classes(name)
      c = counts[k, :n_classes].astype(np.float64)
      present = c > 0
      w = (1 - EFFECTIVE_NUMBER_BETA) / (1 - EFFECTIVE_NUMBER_BETA ** c[present])
      table[k, :n_classes][present] = w * c.sum() / (w * c[present]).sum()
    table = np.minimum(table, cap)
  else:
    raise ValueError(f"class_weight={scheme!r}: expected one of none, article, balanced, sqrt_balanced, "
                     "effective_number")
  return table.astype(np.float32)


def loss_weight_vector(pairs: Sequence[Tuple[str, float]]) -> np.ndarray:
  """Per-head loss weights [36] float32: 1 for every head but those named."""
  weights = np.ones(labels.NUM_CATEGORIES, dtype=np.float32)
  for name, w in pairs:
    weights[labels.CATEGORIES.index(name)] = w
  return weights


def per_head_loss(label_matrix: tf.Tensor, outputs: networks.Outputs, class_weights: tf.Tensor,
                  loss_weights: tf.Tensor) -> tf.Tensor:
  """Weighted loss of each head on each example.

  Args:
    label_matrix: [batch, 36] int32 labels, CATEGORIES order.
    outputs: the model's output (`networks.members`); an ensemble's members
      each add their own loss (so each learns as if alone, while one run
      trains them all).
    class_weights: [36, 3] float32 (`class_weight_table`).
    loss_weights: [36] float32 (`loss_weight_vector`).

  Returns:
    [batch, 36] float32: for head k, loss_weights[k] * class_weights[k, y_k] *
    cross-entropy (sparse categorical for `related`, binary for the rest),
    summed over an ensemble's members.
  """
  binary_labels = tf.gather(label_matrix, labels.BINARY_INDICES, axis=1)
  ce = []
  for member in networks.members(outputs):
    binary_logits, related_logits = networks.split_logits(member)
    related_ce = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=label_matrix[:, labels.RELATED_INDEX], logits=related_logits)
    binary_ce = tf.nn.sigmoid_cross_entropy_with_logits(
        labels=tf.cast(binary_labels, binary_logits.dtype), logits=binary_logits)
    # Column order: related first, then binary heads, i.e. CATEGORIES order.
    ce.append(tf.concat([related_ce[:, tf.newaxis], binary_ce], axis=1))
  ce = ce[0] if len(ce) == 1 else tf.add_n(ce)
  sample_weights = tf.reduce_sum(
      tf.one_hot(label_matrix, labels.RELATED_CLASSES, dtype=ce.dtype) * class_weights[tf.newaxis], axis=-1)
  return ce * sample_weights * loss_weights[tf.newaxis, :]


class Pairing(NamedTuple):
  """How a message's original adds to its loss (--pairs): the run's weights, fixed for the run."""

  original_weight: float  # the original's supervised loss, relative to its translation's (--original_copies)
  consistency: float  # the KL term's weight (--consistency)


class Pair(NamedTuple):
  """One step's originals, row by row beside their translations (--pairs)."""

  outputs: networks.Outputs  # the model's output on the originals (rows without one read "")
  present: tf.Tensor  # [batch] float32: 1 where the row has an original, 0 where it has none
  weights: Pairing


def consistency(teacher: networks.Outputs, student: networks.Outputs) -> tf.Tensor:
  """KL(teacher || student) of each head on each example, summed over an ensemble's members.

  The teacher's side is held fixed (no gradient flows into it): the student's probabilities move towards it.
  Binary heads compare two Bernoulli distributions, `related` two categorical ones over its three classes.

  Args:
    teacher, student: the model's outputs on the same rows (translations, and their originals).

  Returns:
    [batch, 36] float32, >= 0 (up to rounding), 0 where the two sides agree; CATEGORIES order.
  """
  kl = []
  for t, s in zip(networks.members(teacher), networks.members(student)):
    t_binary, t_related = (tf.stop_gradient(tf.cast(x, tf.float32)) for x in networks.split_logits(t))
    s_binary, s_related = (tf.cast(x, tf.float32) for x in networks.split_logits(s))
    p_binary, p_related = tf.sigmoid(t_binary), tf.nn.softmax(t_related)
    # Cross-entropy against the teacher minus the teacher's own entropy: the divergence, stable from logits.
    binary = (tf.nn.sigmoid_cross_entropy_with_logits(labels=p_binary, logits=s_binary)
              - tf.nn.sigmoid_cross_entropy_with_logits(labels=p_binary, logits=t_binary))
    related = (tf.nn.softmax_cross_entropy_with_logits(labels=p_related, logits=s_related)
               - tf.nn.softmax_cross_entropy_with_logits(labels=p_related, logits=t_related))
    kl.append(tf.concat([related[:, tf.newaxis], binary], axis=1))
  return kl[0] if len(kl) == 1 else tf.add_n(kl)


def paired_per_head(label_matrix: tf.Tensor, outputs: networks.Outputs, pair: Pair, class_weights: tf.Tensor,
                    loss_weights: tf.Tensor) -> tf.Tensor:
  """What each row's original adds to each head's loss: its weighted supervised loss and the consistency term.

  Returns:
    [batch, 36] float32; 0 on rows without an original.
  """
  supervised = per_head_loss(label_matrix, pair.outputs, class_weights, loss_weights)
  term = pair.weights.original_weight * tf.cast(supervised, tf.float32)
  if pair.weights.consistency:
    term += pair.weights.consistency * consistency(outputs, pair.outputs) * loss_weights[tf.newaxis, :]
  return term * pair.present[:, tf.newaxis]


def combined_loss(label_matrix: tf.Tensor, outputs: networks.Outputs, class_weights: tf.Tensor,
                  loss_weights: tf.Tensor, global_batch_size: int,
                  pair: Optional[Pair] = None) -> Tuple[tf.Tensor, tf.Tensor]:
  """The one function that combines the 36 losses.

  The total is the sum over heads of each head's weighted loss, averaged over
  the global batch, so that summing it across replicas gives the batch mean
  (what `tf.distribute` expects of a per-replica loss).

  Args:
    label_matrix, outputs, class_weights, loss_weights: see `per_head_loss`.
    global_batch_size: examples in the step across all replicas (pairs count once).
    pair: with --pairs, the same rows' originals: their losses join each row's (`paired_per_head`).

  Returns:
    total: scalar float32 loss to differentiate.
    components: [36] float32, each head's share of `total` (they sum to it);
      logged per category.
  """
  per_head = per_head_loss(label_matrix, outputs, class_weights, loss_weights)
  if pair is not None:
    per_head = tf.cast(per_head, tf.float32) + paired_per_head(label_matrix, outputs, pair, class_weights,
                                                               loss_weights)
  total = tf.nn.compute_average_loss(tf.reduce_sum(per_head, axis=1), global_batch_size=global_batch_size)
  components = tf.reduce_sum(per_head, axis=0) / tf.cast(global_batch_size, per_head.dtype)
  return total, components
