"""FusedAdam against Keras' Adam: the same update, step by step, on one device and on two replicas."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from disaster_tf import config as config_lib
from disaster_tf.train import distribute
from disaster_tf.train import optimizers
from disaster_tf.train import trainer as trainer_lib

SHAPES = ((7, 3), (5,), (11, 4))


def _train(optimizer_cls, strategy, steps=5, densify=False, **kwargs):
  """`steps` updates of three variables by fixed gradients.

  The third is read as an embedding is, rows [1, 1, 4]: its gradient is IndexedSlices with a repeated
  row (a token twice in a batch; with two replicas, each replica's rows again), or, with `densify`,
  the dense sum of those rows.
  """
  rng = np.random.default_rng(0)
  start = [rng.normal(size=s).astype(np.float32) for s in SHAPES]
  grads = [[rng.normal(size=s).astype(np.float32) for s in SHAPES] for _ in range(steps)]
  with strategy.scope():
    variables = [keras.Variable(x) for x in start]
    optimizer = optimizer_cls(**kwargs)
    optimizer.build(variables)

  @tf.function
  def step(g):
    def replica_fn():
      with tf.GradientTape() as tape:  # the third variable read as an embedding is: its gradient IndexedSlices
        rows = tf.constant([1, 1, 4])
        loss = (tf.reduce_sum(g[0] * variables[0]) + tf.reduce_sum(g[1] * variables[1]) +
                tf.reduce_sum(tf.gather(g[2], rows) * tf.gather(variables[2], rows)))
      grads = tape.gradient(loss, variables)
      assert isinstance(grads[2], tf.IndexedSlices)
      optimizer.apply([tf.convert_to_tensor(g) for g in grads] if densify else grads, variables)
    strategy.run(replica_fn)
  for g in grads:
    step([tf.constant(x) for x in g])
  return [v.numpy() for v in variables], optimizer


@pytest.mark.parametrize("strategy", ["default", "mirrored"])
def test_fused_adam_updates_as_keras_adam_does(strategy):
  kwargs = dict(learning_rate=keras.optimizers.schedules.CosineDecay(0.1, decay_steps=10), epsilon=1e-3)
  # Keras' Adam given the dense gradient: the textbook update. (Given the IndexedSlices, Keras 3.15 squares
  # each repeated row's part before summing them, so its second moment differs on those rows.)
  # Two CPU replicas, reduced without collectives (those of strategies made by earlier tests in this process
  # would collide with this one's); across replicas FusedAdam is given dense gradients too: what it is
  # tested for there is updating each replica's copy of each variable.
  mirrored = strategy == "mirrored"
  strategy = tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")],
                                            cross_device_ops=tf.distribute.ReductionToOneDevice()
                                            ) if mirrored else distribute.make_strategy(strategy)
  assert strategy.num_replicas_in_sync == (2 if mirrored else 1)
  expected, _ = _train(keras.optimizers.Adam, strategy, densify=True, **kwargs)
  fused, optimizer = _train(optimizers.FusedAdam, strategy, densify=mirrored, **kwargs)
  assert int(optimizer.iterations.numpy()) == 5
  for e, f in zip(expected, fused):
    np.testing.assert_allclose(f, e, rtol=1e-5, atol=1e-5)  # float32 rounding: the kernel orders its ops its own way
  if mirrored:  # every replica's copy was updated, and alike
    for variable in optimizer._trainable_variables:  # pylint: disable=protected-access
      first, second = (c.numpy() for c in variable.value.values)
      np.testing.assert_array_equal(first, second)


def test_fused_adam_refuses_amsgrad():
  with pytest.raises(ValueError, match="amsgrad=True is not what ResourceApplyAdam computes"):
    optimizers.FusedAdam(amsgrad=True)


def test_the_loop_builds_fused_adam_for_adam_and_keras_adam_on_request():
  fused = trainer_lib.make_optimizer(config_lib.TrainConfig(optimizer="adam"), steps_per_epoch=10)
  plain = trainer_lib.make_optimizer(config_lib.TrainConfig(optimizer="keras_adam"), steps_per_epoch=10)
  assert isinstance(fused, optimizers.FusedAdam)
  assert isinstance(plain, keras.optimizers.Adam) and not isinstance(plain, optimizers.FusedAdam)


def test_a_checkpoint_of_keras_adam_restores_into_fused_adam(tmp_path):
  # Runs trained before the fused kernel saved Keras' Adam: they must resume with their moments.
  _, keras_adam = _train(keras.optimizers.Adam, distribute.make_strategy("default"))
  path = tf.train.Checkpoint(optimizer=keras_adam).save(str(tmp_path / "ckpt"))
  variables = [keras.Variable(np.zeros(s, np.float32)) for s in SHAPES]
  fused = optimizers.FusedAdam()
  fused.build(variables)
  tf.train.Checkpoint(optimizer=fused).restore(path).assert_consumed()
  assert int(fused.iterations.numpy()) == 5
  for restored, saved in zip(fused.variables, keras_adam.variables):
    np.testing.assert_array_equal(restored.numpy(), saved.numpy())
