"""Adam, updated by TensorFlow's fused kernel: the same arithmetic as Keras' Adam in one pass per variable.

Keras 3's Adam updates each variable with ~10 element-wise ops, each a pass over
memory; the default model has ~6.6M weights (the linear TF-IDF kernels and the
embedding), updated densely at every step. `ResourceApplyAdam` reads and writes
the variable and its two moments once: the same update (tests/train/test_optimizers.py
compares them step by step), and the default trains 1.17x faster with it
(bench/speed.py, BENCHMARKS.md).
"""

import keras
import tensorflow as tf


class FusedAdam(keras.optimizers.Adam):
  """keras.optimizers.Adam with `update_step` done by `tf.raw_ops.ResourceApplyAdam`.

  Its slots, checkpoints and schedule handling are Keras Adam's (a checkpoint of
  one restores into the other); AMSGrad, which the kernel lacks, is refused.
  Under a distribution strategy the update runs per replica, inside
  `strategy.extended.update`, like Keras' own.
  """

  def __init__(self, *args, **kwargs):
    super().__init__(*args, **kwargs)
    if self.amsgrad:
      raise ValueError("FusedAdam: amsgrad=True is not what ResourceApplyAdam computes; use keras.optimizers.Adam")

  def update_step(self, gradient, variable, learning_rate):
    """Updates `variable` [any shape] by `gradient`, dense or IndexedSlices.

    IndexedSlices are summed into their dense gradient first, so a row that repeats (a token twice in a
    batch) enters the second moment as the square of its sum: textbook Adam. Keras 3.15's own Adam squares
    each repeat apart (BUILD.md, "Adam in one kernel").
    """
    dtype = variable.dtype
    index = self._get_variable_index(variable)
    local_step = tf.cast(self.iterations + 1, dtype)
    beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
    tf.raw_ops.ResourceApplyAdam(
        var=variable.handle, m=self._momentums[index].handle, v=self._velocities[index].handle,
        beta1_power=tf.pow(beta_1, local_step), beta2_power=tf.pow(beta_2, local_step),
        lr=tf.cast(learning_rate, dtype), beta1=beta_1, beta2=beta_2, epsilon=tf.cast(self.epsilon, dtype),
        grad=tf.cast(tf.convert_to_tensor(gradient), dtype), use_locking=False)
