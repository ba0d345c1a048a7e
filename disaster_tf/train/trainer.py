"""The second phase of a run: the model, its optimizer, the counters and checkpoints, the compiled steps.

`build_trainer` makes them once per run, under the distribution strategy; the
loop (loop.py) drives them, the run dir (rundir.py) saves and restores them.
"""

import dataclasses
import json
import os
from typing import Any, Dict, Optional

import keras
import tensorflow as tf
from absl import logging

from disaster_tf import config as config_lib
from disaster_tf import records
from disaster_tf.model import encoder as encoder_lib
from disaster_tf.model import features
from disaster_tf.model import losses
from disaster_tf.model import networks
from disaster_tf.model import precision as precision_lib
from disaster_tf.model import vectors as vectors_lib
from disaster_tf.train import checkpoint as ckpt_lib
from disaster_tf.train import inputs
from disaster_tf.train import optimizers
from disaster_tf.train import steps

KEEP_CHECKPOINTS = 3  # enough to step back past a bad epoch, small on disk


@dataclasses.dataclass(frozen=True)
class Trainer:
  """The objects a run trains with, built once by `build_trainer`.

  Attributes:
    strategy: the run's tf.distribute strategy.
    model, optimizer: built under the strategy's scope.
    state: the loop's counters (epoch, best score, ...), checkpointed with the model.
    checkpoint: model, optimizer and state.
    manager: the last few saves, in `<save_dir>/checkpoints`.
    best_manager: the best epoch's save, in `<save_dir>/best`.
    train_steps, eval_step: the compiled functions of `steps.py`.
  """

  strategy: tf.distribute.Strategy
  model: keras.Model
  optimizer: keras.optimizers.Optimizer
  state: ckpt_lib.TrainState
  checkpoint: tf.train.Checkpoint
  manager: tf.train.CheckpointManager
  best_manager: tf.train.CheckpointManager
  train_steps: Any
  eval_step: Any


def make_optimizer(train_config: config_lib.TrainConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
  """The run's optimizer; with --lr_schedule=cosine its rate falls from --learning_rate to 0 over --epochs.

  The schedule reads the optimizer's step counter, which checkpoints hold, so a resumed run continues it.
  Adam is Keras' Adam updated by TensorFlow's fused kernel (optimizers.FusedAdam): the default trains
  1.17x faster with it.
  With --precision=mixed_float16 the optimizer is wrapped in Keras' LossScaleOptimizer (steps.py scales
  the loss; a step whose gradients overflow is skipped and the scale lowered).
  """
  tc = train_config
  cls = {"adam": optimizers.FusedAdam, "keras_adam": keras.optimizers.Adam, "adadelta": keras.optimizers.Adadelta,
         "rmsprop": keras.optimizers.RMSprop, "sgd": keras.optimizers.SGD}[tc.optimizer]
  rate = tc.learning_rate
  if tc.lr_schedule == "cosine":
    rate = keras.optimizers.schedules.CosineDecay(tc.learning_rate, decay_steps=tc.epochs * steps_per_epoch)
  optimizer = cls(learning_rate=rate)
  if precision_lib.resolve(tc.precision) == "mixed_float16":  # float16 gradients underflow without loss scaling
    optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
  return optimizer


def build_trainer(config: config_lib.Config, run: inputs.RunInputs, strategy: tf.distribute.Strategy,
                  save_dir: str) -> Trainer:
  """Builds the model, optimizer, counters and checkpoint managers, and compiles the steps.

  Raises:
    ValueError: the batch does not split evenly over the strategy's replicas.
  """
  tc = config.train
  if tc.batch_size % strategy.num_replicas_in_sync:
    raise ValueError(f"batch_size={tc.batch_size} does not split evenly over "
                     f"{strategy.num_replicas_in_sync} replicas")
  with strategy.scope():
    model = networks.build_model(config.model, run.featurizer.sizes, precision_lib.resolve(tc.precision),
                                  run.vocabularies.get(features.ENCODER))
    for layer in networks.linear_layers(model) if tc.linear_epochs else ():
      layer.trainable = False  # fitted apart, before this run (`initialise`)
    optimizer = make_optimizer(tc, run.steps_per_epoch)
    # Keras 3 optimizers must create their slots inside the scope (keras-team/keras#23085).
    optimizer.build(model.trainable_variables)
  # Plain variables, outside the scope: the loop sets them from Python, the same on every
  # worker, and a multi-worker scope would try to broadcast the string fingerprint.
  state = ckpt_lib.TrainState(features.fingerprint_record(run.vocabularies),
                              run_identity(config, run.load_report))
  checkpoint = ckpt_lib.make_checkpoint(model, optimizer, state)
  manager = tf.train.CheckpointManager(checkpoint, os.path.join(save_dir, ckpt_lib.CHECKPOINTS_DIR),
                                       max_to_keep=KEEP_CHECKPOINTS)
  best_manager = tf.train.CheckpointManager(checkpoint, os.path.join(save_dir, ckpt_lib.BEST_DIR), max_to_keep=1)
  class_weights, loss_weights = tf.constant(run.class_weights), tf.constant(run.loss_weights)
  pairing = losses.Pairing(float(tc.original_copies), tc.consistency) if tc.pairs else None
  train_steps = steps.make_train_steps(model, optimizer, strategy, class_weights, loss_weights, tc.batch_size,
                                       jit_compile=tc.jit_compile, pairing=pairing)
  eval_step = steps.make_eval_step(model, run.selection_ds.element_spec[0], class_weights, loss_weights)
  return Trainer(strategy, model, optimizer, state, checkpoint, manager, best_manager, train_steps, eval_step)


def initialise(trainer: Trainer, config: config_lib.Config, vocabularies: features.Vocabularies,
               linear_member: Optional[str] = None) -> None:
  """A new run's starting weights beyond Keras' initialisers: the embedding from --pretrained_vectors, the
  encoder from --pretrained_encoder, and the weights of the linear member fitted apart (`linear_member`, that
  run's model dir).

  Raises:
    vectors.VectorsError, FileNotFoundError: the vectors file (named) cannot be read, or its vectors are wider
      than --embedding_dim.
    ValueError: the linear member's n-grams are not this run's; encoder.EncoderError: the encoder's weights.
  """
  if linear_member is not None:
    _copy_linear_member(trainer.model, linear_member, vocabularies)
  c = config.model
  if c.pretrained_encoder:
    count = encoder_lib.assign(trainer.model.get_layer(networks.ENCODER), encoder_lib.read_weights(
        c.pretrained_encoder), c.pretrained_encoder)
    logging.info("pretrained encoder: %d weights from %s", count, c.pretrained_encoder)
  if not c.pretrained_vectors:
    return
  vectors = vectors_lib.read(c.pretrained_vectors, vocabularies[features.TOKEN_IDS].tokens, seed=config.train.seed,
                             width=c.embedding_dim)
  trainer.model.get_layer(networks.EMBEDDING).embeddings.assign(vectors.matrix)
  logging.info("pretrained vectors: %s%s", vectors.summary(), " (frozen)" if c.freeze_vectors else "")


def _copy_linear_member(model: keras.Model, member_dir: str, vocabularies: features.Vocabularies) -> None:
  member = ckpt_lib.load_model(member_dir)
  for name in member.featurizer.sizes:
    if member.vocabularies[name].tokens != vocabularies[name].tokens:
      raise ValueError(f"{member_dir}: its {name} differ from this run's; remove that directory to fit the "
                       "linear member again")
  for layer in networks.linear_layers(member.model):
    model.get_layer(layer.name).set_weights(layer.get_weights())
  logging.info("linear member: the weights fitted in %s (%s), held fixed", member_dir, member.checkpoint_path)


def run_identity(config: config_lib.Config, load_report: records.LoadReport) -> Dict[str, Any]:
  """What a run may not change once its first epoch is saved: data, split, model shape and the selection metric
  (best/ holds the epoch best by it: another metric's scores are on another scale)."""
  tc = config.train
  return {"data": load_report.fingerprint, "text_fields": list(tc.text_fields), "split_seed": tc.split_seed,
          "select_metric": tc.select_metric,
          "original_copies": tc.original_copies, "pairs": tc.pairs, "consistency": tc.consistency,
          "linear_epochs": tc.linear_epochs,
          "precision": precision_lib.resolve(tc.precision),
          "validation_fraction": tc.validation_fraction, "tune_fraction": tc.tune_fraction,
          # As JSON reads it back (tuples as lists), so that a recorded identity compares equal to a new one.
          "model": json.loads(json.dumps(dataclasses.asdict(config.model)))}
