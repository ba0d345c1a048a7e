"""The inner loop: compiled training and evaluation steps, and an evaluation pass over a dataset.

What runs here is model math only, inside `tf.function`s built once per run;
the outer loop (`loop.py`: epochs, checkpoints, summaries, early stopping)
calls them and never sees a gradient.
"""

import dataclasses
from typing import Optional

import keras
import numpy as np
import tensorflow as tf

from disaster_tf import labels
from disaster_tf.model import features
from disaster_tf.model import losses
from disaster_tf.model import networks


def _replica_step(model: keras.Model, optimizer: keras.optimizers.Optimizer, class_weights: tf.Tensor,
                  loss_weights: tf.Tensor, global_batch_size: int, jit_compile: bool,
                  pairing: Optional[losses.Pairing]):
  """The per-replica step: forward, combined loss, backward, one optimizer update."""
  scaled = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)  # --precision=mixed_float16

  def forward_backward(inputs, label_matrix, *originals):
    with tf.GradientTape() as tape:
      outputs = model(inputs, training=True)
      pair = None
      if pairing is not None:  # a batch of (inputs, labels, the originals' inputs, which rows have one)
        original_inputs, present = originals
        pair = losses.Pair(model(original_inputs, training=True), present, pairing)
      loss, components = losses.combined_loss(label_matrix, outputs, class_weights, loss_weights,
                                               global_batch_size, pair)
      if model.losses:  # the linear weights' L2 penalty, once per step over all replicas
        loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
      # float16 gradients of a float32 loss underflow: differentiate the loss times the optimizer's scale,
      # which apply_gradients divides out again (skipping the step if any gradient is not finite).
      target = optimizer.scale_loss(loss) if scaled else loss
    return loss, components, tape.gradient(target, model.trainable_variables)
  if jit_compile:  # XLA for the numeric part only; the optimizer update stays outside
    forward_backward = tf.function(forward_backward, jit_compile=True)

  def step_fn(inputs, label_matrix, *originals):
    loss, components, grads = forward_backward(inputs, label_matrix, *originals)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return loss, components
  return step_fn


def make_train_steps(model: keras.Model, optimizer: keras.optimizers.Optimizer,
                     strategy: tf.distribute.Strategy, class_weights: tf.Tensor, loss_weights: tf.Tensor,
                     global_batch_size: int, jit_compile: bool = False,
                     pairing: Optional[losses.Pairing] = None):
  """Builds the compiled training function: several steps per call, no Python between them.

  Args:
    model, optimizer: built under `strategy`'s scope (the optimizer's slots too).
    strategy: the run's tf.distribute strategy; each step runs on every replica.
    class_weights: [36, 3] float32, the weight of each class of each head.
    loss_weights: [36] float32, the weight of each head's loss.
    global_batch_size: the batch over all replicas; each replica's loss is
      divided by it, so the replicas' sum is the batch mean.
    jit_compile: XLA-compile the forward and backward pass.
    pairing: with --pairs, the weights of each row's original (`losses.Pair`);
      the batches then carry the originals too (`examples.paired`).

  Returns:
    A tf.function (iterator over (distributed) batches of (inputs, labels
    [B, 36] int32) or, with `pairing`, (inputs, labels, the originals'
    inputs, present [B] float32), steps: int32 scalar tensor) -> (sum of the steps' losses,
    scalar; sum of their per-head components, [36]). Each step applies one
    optimizer update. One trace serves every `steps` and every new iterator.
  """
  step_fn = _replica_step(model, optimizer, class_weights, loss_weights, global_batch_size, jit_compile, pairing)

  @tf.function
  def train_steps(iterator, steps):
    loss_sum = tf.constant(0.0)
    component_sum = tf.zeros([labels.NUM_CATEGORIES])
    for _ in tf.range(steps):
      loss, components = strategy.run(step_fn, args=next(iterator))
      # Each replica's loss is already divided by the global batch: summing gives the mean.
      loss_sum += strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None)
      component_sum += strategy.reduce(tf.distribute.ReduceOp.SUM, components, axis=None)
    return loss_sum, component_sum
  return train_steps


def make_eval_step(model: keras.Model, input_spec, class_weights: tf.Tensor, loss_weights: tf.Tensor):
  """Builds the compiled evaluation step (one trace for every batch size).

  Args:
    input_spec: the specs of one batch of the featurizer's output (a dict of
      TensorSpec or SparseTensorSpec), batch dimension None.

  Returns:
    A tf.function (inputs, labels [B, 36] int32) -> (summed weighted loss,
    scalar; scores [B, 36]; related probabilities [B, 3]).
  """
  @tf.function(input_signature=[input_spec, tf.TensorSpec([None, labels.NUM_CATEGORIES], tf.int32)])
  def eval_step(inputs, label_matrix):
    outputs = model(inputs, training=False)
    loss_sum = tf.reduce_sum(losses.per_head_loss(label_matrix, outputs, class_weights, loss_weights))
    # The export's rule for messages with no token, so that what is reported is what is served.
    scores, related_probs = networks.probabilities(outputs, features.has_tokens(inputs))
    return loss_sum, scores, related_probs
  return eval_step


@dataclasses.dataclass(frozen=True)
class Predictions:
  """A model's outputs over a labelled split, in the split's order."""

  loss_sum: float  # the weighted loss summed over examples (divide by N for the mean)
  scores: np.ndarray  # [N, 36] float32, as `networks.probabilities` returns them
  related: np.ndarray  # [N, 3] float32, P(related = 0, 1, 2)

  def labels(self, thresholds: np.ndarray) -> np.ndarray:
    """[N, 36] int32 decisions at [36] `thresholds`: `networks.decide`, the exported `labels` rule."""
    return networks.decide(tf.constant(self.scores), tf.constant(self.related),
                            tf.constant(thresholds, tf.float32)).numpy()


def evaluate_dataset(eval_step, dataset: tf.data.Dataset) -> Predictions:
  """Runs `eval_step` over a batched dataset of (inputs, labels [B, 36])."""
  loss_sum, scores, related = 0.0, [], []
  for inputs, label_matrix in dataset:
    batch_loss, batch_scores, batch_related = eval_step(inputs, label_matrix)
    loss_sum += float(batch_loss)
    scores.append(batch_scores.numpy())
    related.append(batch_related.numpy())
  return Predictions(loss_sum, np.concatenate(scores), np.concatenate(related))
