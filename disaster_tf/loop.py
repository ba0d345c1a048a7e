"""The training loop: `train_and_evaluate(config, model_dir)`.

Read it top to bottom: load the data and split it by id into train / tune /
validation, adapt (or reload) the vocabulary, build model and optimizer under
the strategy, restore the latest checkpoint, then per epoch: train with a
GradientTape step, score the tune split, checkpoint, keep the best, stop
early. At the end the best checkpoint's per-category thresholds are tuned on
the tune split, and it is reported on the validation split, which chose
nothing.
"""

import json
import math
import os
import shutil
import signal
import threading
import time
from typing import Any, Dict, Optional, Tuple

import keras
import numpy as np
import tensorflow as tf
from absl import logging
from tensorflow.core.framework import summary_pb2

from disaster_tf import checkpoint as ckpt_lib
from disaster_tf import config as config_lib
from disaster_tf import data
from disaster_tf import labels
from disaster_tf import losses
from disaster_tf import metrics
from disaster_tf import model as model_lib
from disaster_tf import text

METRICS_FILE = "metrics.json"
FLAGS_FILE = "flags.txt"
SCRATCH_DIR = "scratch"  # per process: text spool and vectorised caches (see train_and_evaluate)
KEEP_CHECKPOINTS = 3  # enough to step back past a bad epoch, small on disk
# The data is one spool file, not shards: each worker keeps its share of every global batch.
_SHARD_BY_DATA = tf.data.Options()
_SHARD_BY_DATA.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA


class TrainingInterrupted(Exception):
  """Training stopped on SIGINT or SIGTERM after saving a checkpoint; rerun to resume."""


class _StopRequests:
  """Turns SIGINT and SIGTERM into a flag the loop checks between compiled calls.

  A signal then never lands in the middle of an optimizer update or a
  checkpoint write: the loop finishes the call, saves, and stops. A second
  signal while stopping falls through to the previous handler.
  """

  def __init__(self):
    self.requested = None
    self._previous = {}

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
      for sig in (signal.SIGINT, signal.SIGTERM):
        self._previous[sig] = signal.signal(sig, self._handle)
    return self

  def _handle(self, signum, frame):
    if self.requested is not None:  # asked twice: stop the hard way
      previous = self._previous[signum]
      if callable(previous):
        previous(signum, frame)
      raise KeyboardInterrupt
    self.requested = signal.Signals(signum).name
    logging.warning("%s received: stopping after the current step and saving a checkpoint", self.requested)

  def __exit__(self, *exc):
    for sig, previous in self._previous.items():
      signal.signal(sig, previous)


def make_strategy(name: str) -> tf.distribute.Strategy:
  """"default": one device; "mirrored": every local GPU, else every logical CPU."""
  if name == "default":
    return tf.distribute.get_strategy()
  if name == "one_device":
    return tf.distribute.OneDeviceStrategy("/cpu:0" if not tf.config.list_logical_devices("GPU") else "/gpu:0")
  if name == "mirrored":
    gpus = tf.config.list_logical_devices("GPU")
    devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
    return tf.distribute.MirroredStrategy(devices)
  if name == "multi_worker":
    if "TF_CONFIG" not in os.environ:
      raise ValueError("strategy=multi_worker needs TF_CONFIG (the cluster and this task); see BUILD.md")
    # Reads TF_CONFIG; must exist before any other TF op runs (collectives are set up at start).
    return tf.distribute.MultiWorkerMirroredStrategy()
  raise ValueError(f"strategy={name!r}: expected one of {', '.join(config_lib.STRATEGIES)}")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
  """True for the one task that writes checkpoints, summaries, metrics and the vocabulary."""
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or not resolver.task_type:
    return True
  has_chief = "chief" in resolver.cluster_spec().as_dict()
  return resolver.task_type == "chief" or (not has_chief and resolver.task_type == "worker"
                                           and resolver.task_id == 0)


def make_optimizer(train_config: config_lib.TrainConfig) -> keras.optimizers.Optimizer:
  cls = {"adam": keras.optimizers.Adam, "adadelta": keras.optimizers.Adadelta,
         "rmsprop": keras.optimizers.RMSprop, "sgd": keras.optimizers.SGD}[train_config.optimizer]
  return cls(learning_rate=train_config.learning_rate)


# tf.summary.scalar lives in the tensorboard package, which TF 2.21 no longer
# installs; this is what it writes, with core TF only (TensorBoard reads it the same).
_SCALAR_METADATA = summary_pb2.SummaryMetadata(
    plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")).SerializeToString()


def scalar_summary(name: str, value: float) -> None:
  """Writes one TensorBoard scalar to the default summary writer."""
  tf.summary.write(name, tf.constant(value, tf.float32), metadata=_SCALAR_METADATA)


def selection_score(scores: Dict[str, Any], loss: float, metric: str) -> float:
  """The number early stopping maximises (the negated loss for "loss")."""
  return -loss if metric == "loss" else float(scores[metric])


def _replica_step(model: keras.Model, optimizer: keras.optimizers.Optimizer, class_weights: tf.Tensor,
                  loss_weights: tf.Tensor, global_batch_size: int, jit_compile: bool):
  """The per-replica step: forward, combined loss, backward, one optimizer update."""
  def forward_backward(token_ids, label_matrix):
    with tf.GradientTape() as tape:
      outputs = model(token_ids, training=True)
      loss, components = losses.combined_loss(label_matrix, outputs, class_weights, loss_weights,
                                               global_batch_size)
    return loss, components, tape.gradient(loss, model.trainable_variables)
  if jit_compile:  # XLA for the numeric part only; the optimizer update stays outside
    forward_backward = tf.function(forward_backward, jit_compile=True)

  def step_fn(token_ids, label_matrix):
    loss, components, grads = forward_backward(token_ids, label_matrix)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return loss, components
  return step_fn


def _reduce(strategy: tf.distribute.Strategy, per_replica):
  # Each replica's loss is already divided by the global batch: summing gives the mean.
  loss, components = per_replica
  return (strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None),
          strategy.reduce(tf.distribute.ReduceOp.SUM, components, axis=None))


def make_train_step(model: keras.Model, optimizer: keras.optimizers.Optimizer,
                    strategy: tf.distribute.Strategy, class_weights: tf.Tensor, loss_weights: tf.Tensor,
                    global_batch_size: int, jit_compile: bool = False):
  """Builds a compiled step that trains on one batch per call.

  Returns:
    A tf.function taking one (distributed) batch (inputs, labels [B, 36]
    int32), applying one optimizer update, and returning the global-batch
    loss (scalar) and its per-head components ([36]).
  """
  step_fn = _replica_step(model, optimizer, class_weights, loss_weights, global_batch_size, jit_compile)

  @tf.function
  def train_step(batch):
    return _reduce(strategy, strategy.run(step_fn, args=batch))
  return train_step


def make_train_steps(model: keras.Model, optimizer: keras.optimizers.Optimizer,
                     strategy: tf.distribute.Strategy, class_weights: tf.Tensor, loss_weights: tf.Tensor,
                     global_batch_size: int, jit_compile: bool = False):
  """Builds a compiled function that runs several steps per call (what the loop uses).

  Returns:
    A tf.function (iterator, steps: int32 scalar tensor) -> (sum of the steps'
    losses, sum of their per-head components [36]). One trace serves every
    `steps`; the steps run in a graph loop, with no Python between them.
  """
  step_fn = _replica_step(model, optimizer, class_weights, loss_weights, global_batch_size, jit_compile)

  @tf.function
  def train_steps(iterator, steps):
    loss_sum = tf.constant(0.0)
    component_sum = tf.zeros([labels.NUM_CATEGORIES])
    for _ in tf.range(steps):
      loss, components = _reduce(strategy, strategy.run(step_fn, args=next(iterator)))
      loss_sum += loss
      component_sum += components
    return loss_sum, component_sum
  return train_steps


def make_eval_step(model: keras.Model, input_spec, class_weights: tf.Tensor, loss_weights: tf.Tensor):
  """Builds the compiled evaluation step (one trace for every batch size).

  Args:
    input_spec: the TensorSpec (or SparseTensorSpec) of one batch of
      vectorizer output, batch dimension None.

  Returns:
    A tf.function (inputs, labels [B, 36] int32) -> (summed weighted loss,
    scalar; scores [B, 36]; related probabilities [B, 3]).
  """
  @tf.function(input_signature=[input_spec, tf.TensorSpec([None, labels.NUM_CATEGORIES], tf.int32)])
  def eval_step(inputs, label_matrix):
    outputs = model(inputs, training=False)
    loss_sum = tf.reduce_sum(losses.per_head_loss(label_matrix, outputs, class_weights, loss_weights))
    scores, related_probs = model_lib.probabilities(outputs)
    return loss_sum, scores, related_probs
  return eval_step


def predict(eval_step, dataset: tf.data.Dataset) -> Tuple[float, np.ndarray, np.ndarray]:
  """Runs `eval_step` over a batched dataset: (summed loss, scores [N, 36], related [N, 3])."""
  loss_sum, scores, related = 0.0, [], []
  for inputs, label_matrix in dataset:
    batch_loss, batch_scores, batch_related = eval_step(inputs, label_matrix)
    loss_sum += float(batch_loss)
    scores.append(batch_scores.numpy())
    related.append(batch_related.numpy())
  return loss_sum, np.concatenate(scores), np.concatenate(related)


def decide(scores: np.ndarray, related: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
  """`model.decide` on NumPy arrays: the same rule as the exported `labels` output."""
  return model_lib.decide(tf.constant(scores), tf.constant(related), tf.constant(thresholds, tf.float32)).numpy()


def train_and_evaluate(config: config_lib.Config, model_dir: str, *, flags_text: Optional[str] = None,
                       verbose: int = 1) -> Dict[str, Any]:
  """Trains (or resumes training) and reports on the validation split.

  Args:
    config: the run's configuration; written to `<model_dir>/config.json`.
    model_dir: where checkpoints, vocabulary, summaries and metrics go. If it
      holds a checkpoint, training resumes from the latest one (mid-epoch if
      that is where a clean stop saved it).
    flags_text: the command line as a flagfile, saved for reference.
    verbose: 1 shows a progress bar per epoch, 0 only logs.

  Raises:
    TrainingInterrupted: on SIGINT or SIGTERM, after saving a checkpoint.
    FloatingPointError: on a non-finite training loss, without saving.

  Returns:
    The final report of the best checkpoint on the validation split (as in
    `metrics.report`) at the thresholds the export uses (tuned on the tune
    split, or 0.5 without one), with `at_0.5` (the same at 0.5) and
    `thresholds`; also written to `<model_dir>/metrics.json`.
  """
  # The strategy comes first: a multi-worker one must exist before any other TF op runs.
  strategy = make_strategy(config.train.strategy)
  chief = is_chief(strategy)
  # Every worker saves (a save is a collective op), but only the chief into the model dir.
  save_dir = model_dir if chief else os.path.join(model_dir, f".worker-{strategy.cluster_resolver.task_id}")
  # The text spool and vectorised caches: this process's alone, removed when it ends
  # (and, if it was killed, when the next run starts).
  scratch = os.path.join(save_dir, SCRATCH_DIR)
  shutil.rmtree(scratch, ignore_errors=True)
  os.makedirs(scratch)
  try:
    return _train_and_evaluate(config, model_dir, strategy, save_dir, scratch, flags_text, verbose)
  finally:
    shutil.rmtree(scratch, ignore_errors=True)


def _train_and_evaluate(config: config_lib.Config, model_dir: str, strategy: tf.distribute.Strategy,
                        save_dir: str, scratch: str, flags_text: Optional[str], verbose: int) -> Dict[str, Any]:
  tc = config.train
  chief = save_dir == model_dir
  _check_same_model(config, model_dir)
  if chief:  # other workers only read the model dir, and write to a temporary one they delete
    config_lib.save(config, model_dir)
    if flags_text is not None:
      config_lib.write_text_atomic(os.path.join(model_dir, FLAGS_FILE), flags_text)
  keras.utils.set_random_seed(tc.seed)

  # Data: one row per id, split by a hash of the id into train / tune / validation.
  examples, load_report = data.load(tc.data, scratch)
  logging.info("data: %s", load_report.summary())
  sides = data.split_ids(examples.ids, tc.validation_fraction, tc.tune_fraction, tc.split_seed)
  train, tune, validation = (examples.subset(sides == side) for side in (data.TRAIN, data.TUNE, data.VALIDATION))
  logging.info("split by id hash: %d train, %d tune, %d validation", len(train), len(tune), len(validation))
  if len(train) < tc.batch_size:
    raise ValueError(f"batch_size={tc.batch_size} is larger than the training split ({len(train)} "
                     "examples); lower --batch_size or add data")
  if not len(validation):
    raise ValueError(f"the validation split is empty ({len(examples)} examples, validation_fraction="
                     f"{tc.validation_fraction}); add data or raise --validation_fraction")
  if tc.tune_fraction and not len(tune):
    raise ValueError(f"the tune split is empty ({len(examples)} examples, tune_fraction={tc.tune_fraction}); "
                     "add data, raise --tune_fraction, or set it to 0")
  # The best epoch is chosen on the tune split when there is one, so that the
  # validation split, which is reported, chooses nothing.
  selection_name, selection = ("tune", tune) if len(tune) else ("validation", validation)

  # Vocabulary: adapted on the training split only, once; a resumed run reuses it.
  if os.path.exists(os.path.join(model_dir, text.VOCABULARY_FILE)):
    vocabulary = text.load_vocabulary(model_dir)
    vectorizer = text.make_vectorizer(config.model, vocabulary)
    logging.info("vocabulary: %d tokens, reloaded from %s", len(vocabulary), model_dir)
  else:
    vectorizer = text.make_vectorizer(config.model)
    vocabulary = [str(t) for t in text.adapt(vectorizer, train.texts())]  # the same on every worker
    if chief:
      text.save_vocabulary(vocabulary, model_dir)
    logging.info("vocabulary: %d tokens, adapted on the training split", len(vocabulary))

  # Class weights come from the training split's counts: derived, so not in the config.
  class_weights = losses.class_weight_table(tc.class_weight, losses.label_counts(train.labels),
                                            tc.class_weight_cap)
  loss_weights = losses.loss_weight_vector(tc.loss_weights)
  default_thresholds = labels.default_thresholds()

  if tc.batch_size % strategy.num_replicas_in_sync:
    raise ValueError(f"batch_size={tc.batch_size} does not split evenly over "
                     f"{strategy.num_replicas_in_sync} replicas")
  with strategy.scope():
    model = model_lib.build_model(config.model, vocab_size=len(vocabulary))
    optimizer = make_optimizer(tc)
    # Keras 3 optimizers must create their slots inside the scope (keras-team/keras#23085).
    optimizer.build(model.trainable_variables)
  # Plain variables, outside the scope: the loop sets them from Python, the same on every
  # worker, and a multi-worker scope would try to broadcast the string fingerprint.
  state = ckpt_lib.TrainState(ckpt_lib.fingerprint(vocabulary))
  checkpoint = ckpt_lib.make(model, optimizer, state)
  manager = tf.train.CheckpointManager(checkpoint, os.path.join(save_dir, ckpt_lib.CHECKPOINTS_DIR),
                                       max_to_keep=KEEP_CHECKPOINTS)
  best_manager = tf.train.CheckpointManager(checkpoint, os.path.join(save_dir, ckpt_lib.BEST_DIR),
                                            max_to_keep=1)
  latest = tf.train.latest_checkpoint(os.path.join(model_dir, ckpt_lib.CHECKPOINTS_DIR))  # the chief's
  if latest:
    ckpt_lib.check_fingerprint(latest, ckpt_lib.fingerprint(vocabulary))
    checkpoint.restore(latest).assert_existing_objects_matched()
    logging.info("resumed from %s (epoch %d)", latest, int(state.epoch.numpy()))
    # The checkpoint restores the optimizer's learning-rate variable too; the flags win.
    restored_rate = float(optimizer.learning_rate.numpy())
    if restored_rate != tc.learning_rate:
      logging.info("learning rate %g (flags) replaces %g (checkpoint)", tc.learning_rate, restored_rate)
      optimizer.learning_rate = tc.learning_rate

  # Vectorised once into file caches under the scratch dir: every epoch then reads
  # token ids from disk, and memory holds the shuffle buffer and the batch, not the data.
  def vectorized(split: data.Examples, name: str) -> tf.data.Dataset:
    return data.vectorized_dataset(split, vectorizer, cache=os.path.join(scratch, name))
  start = time.time()
  train_blocks = [vectorized(block, f"train-{i}") for i, block in enumerate(train.blocks(tc.shuffle_buffer))]
  for block in train_blocks:
    data.fill_cache(block)
  logging.info("vectorised the training split in %.1fs (%d block(s) of up to %d: the shuffle buffer)",
               time.time() - start, len(train_blocks), tc.shuffle_buffer)
  def eval_dataset(split: data.Examples, name: str) -> tf.data.Dataset:
    # An evaluation pass reads to the end, so its first pass fills the cache.
    return data.batched(vectorized(split, name), max(tc.batch_size, 256))
  validation_ds = eval_dataset(validation, "validation")
  tune_ds = eval_dataset(tune, "tune") if len(tune) else None
  selection_ds = tune_ds if len(tune) else validation_ds
  steps_per_epoch = len(train) // tc.batch_size
  class_weights_t = tf.constant(class_weights)
  loss_weights_t = tf.constant(loss_weights)

  train_steps = make_train_steps(model, optimizer, strategy, class_weights_t, loss_weights_t, tc.batch_size,
                                 jit_compile=tc.jit_compile)
  input_spec = selection_ds.element_spec[0]
  eval_step = make_eval_step(model, input_spec, class_weights_t, loss_weights_t)

  history = _load_history(model_dir, int(state.epoch.numpy()))
  if chief:
    train_writer = tf.summary.create_file_writer(os.path.join(model_dir, "train"))
    selection_writer = tf.summary.create_file_writer(os.path.join(model_dir, selection_name))
  else:
    train_writer = selection_writer = tf.summary.create_noop_writer()

  with _StopRequests() as stop:
    first_epoch = int(state.epoch.numpy()) + 1
    for epoch in range(first_epoch, tc.epochs + 1):
      if tc.patience and int(state.bad_epochs.numpy()) >= tc.patience:
        break  # a resumed run that had already stopped early
      start = time.time()
      progbar = keras.utils.Progbar(steps_per_epoch, verbose=verbose, unit_name="step")
      # Each epoch's order is fixed by its seed, so a run stopped mid-epoch
      # resumes by skipping the batches it had trained on.
      skip = int(state.step_in_epoch.numpy())
      epoch_ds = data.batched(train_blocks, tc.batch_size, shuffle_seed=tc.seed * 1000 + epoch,
                              shuffle_buffer=tc.shuffle_buffer).skip(skip).with_options(_SHARD_BY_DATA)
      if skip:
        logging.info("epoch %d: resuming after step %d of %d", epoch, skip, steps_per_epoch)
      iterator = iter(strategy.experimental_distribute_dataset(epoch_ds))
      loss_sum, component_sum, done = 0.0, np.zeros(labels.NUM_CATEGORIES), skip
      while done < steps_per_epoch and not stop.requested:
        steps = min(tc.steps_per_execution, steps_per_epoch - done)
        chunk_loss, chunk_components = train_steps(iterator, tf.constant(steps))
        chunk_loss, chunk_components = float(chunk_loss), chunk_components.numpy()
        loss_sum += chunk_loss
        component_sum += chunk_components
        done += steps
        progbar.update(done, [("loss", chunk_loss / steps)])
        global_step = int(optimizer.iterations.numpy())
        if global_step // tc.log_every > (global_step - steps) // tc.log_every:  # crossed a logging step
          with train_writer.as_default(step=global_step):
            scalar_summary("loss/total", chunk_loss / steps)
            for name, value in zip(labels.CATEGORIES, chunk_components / steps):
              scalar_summary(f"loss/{name}", value)
      if stop.requested and done < steps_per_epoch:
        state.step_in_epoch.assign(done)
        path = manager.save(checkpoint_number=optimizer.iterations)
        raise TrainingInterrupted(f"{stop.requested}: stopped at step {done} of {steps_per_epoch} in epoch "
                                  f"{epoch}; saved {path}. Run the same command to resume.")
      trained = steps_per_epoch - skip  # steps of this epoch run in this process
      train_loss = loss_sum / trained
      if not math.isfinite(train_loss):
        raise FloatingPointError(
            f"epoch {epoch}: the training loss is {train_loss}; stopping without saving this epoch. "
            f"The last good checkpoint is {manager.latest_checkpoint}; lower --learning_rate or "
            "--class_weight_cap")
      train_seconds = time.time() - start

      loss_sum, probs, related = predict(eval_step, selection_ds)
      selection_loss = loss_sum / len(selection)
      scores = metrics.report(selection.labels, decide(probs, related, default_thresholds))
      score = selection_score(scores, selection_loss, tc.select_metric)
      improved = score > float(state.best_metric.numpy())
      state.epoch.assign(epoch)
      state.step_in_epoch.assign(0)
      if improved:
        state.best_metric.assign(score)
        state.best_epoch.assign(epoch)
        state.bad_epochs.assign(0)
      else:
        state.bad_epochs.assign_add(1)
      # Named by global step (TF's convention), so a mid-epoch save never collides with an epoch's.
      manager.save(checkpoint_number=optimizer.iterations)
      if improved:
        best_manager.save(checkpoint_number=optimizer.iterations)

      history.append({"epoch": epoch, "train_loss": train_loss,
                      "train_loss_per_category": dict(zip(labels.CATEGORIES, (component_sum / trained).tolist())),
                      "selection_split": selection_name, "selection_loss": selection_loss,
                      "train_seconds": train_seconds, "selection": scores})
      if chief:
        _write_metrics(model_dir, config, load_report, history, final=None)
      with selection_writer.as_default(step=epoch):
        scalar_summary("loss/total", selection_loss)
        for key, value in metrics.summary(scores).items():
          scalar_summary(key, value)
      with train_writer.as_default(step=epoch):
        scalar_summary("epoch_loss", train_loss)
      logging.info("epoch %d/%d: train loss %.4f, %s loss %.4f, total %.2f, mean positive F1 %.3f, "
                   "micro-F1 %.3f, %.1fs%s", epoch, tc.epochs, train_loss, selection_name, selection_loss, scores["total"],
                   scores["mean_positive_f1"], scores["micro_f1"], train_seconds,
                   " (best so far)" if improved else "")
      if stop.requested:  # arrived during evaluation: the epoch is saved, stop here
        raise TrainingInterrupted(f"{stop.requested}: stopped after epoch {epoch}; saved "
                                  f"{manager.latest_checkpoint}. Run the same command to resume.")

  # Final: the best checkpoint; thresholds tuned on the tune split; reported on validation.
  best_path = best_manager.latest_checkpoint
  checkpoint.restore(best_path).assert_existing_objects_matched()
  thresholds = default_thresholds
  if len(tune):
    _, tune_probs, _ = predict(eval_step, tune_ds)
    thresholds = metrics.tune_thresholds(tune.labels, tune_probs, tc.min_tune_positives)
  if chief:
    ckpt_lib.write_thresholds(thresholds, model_dir)
  loss_sum, probs, related = predict(eval_step, validation_ds)
  final = metrics.report(validation.labels, decide(probs, related, thresholds))
  final.update({"at_0.5": metrics.report(validation.labels, decide(probs, related, default_thresholds)),
                "thresholds": dict(zip(labels.CATEGORIES, thresholds.tolist())),
                "threshold_source": f"tuned on the tune split ({len(tune)} messages)" if len(tune) else "0.5",
                "validation_loss": loss_sum / len(validation), "best_epoch": int(state.best_epoch.numpy()),
                "checkpoint": best_path, "select_metric": tc.select_metric, "selected_on": selection_name})
  if chief:
    _write_metrics(model_dir, config, load_report, history, final=final)
  else:
    shutil.rmtree(save_dir, ignore_errors=True)
  # A cheap fingerprint of the weights: every worker of a run logs the same one.
  logging.info("final weights: sum of |w| = %.6f",
               float(sum(tf.reduce_sum(tf.abs(v)) for v in model.trainable_variables)))
  train_writer.flush()
  selection_writer.flush()
  print(metrics.format_table(final, title=f"validation split, best epoch {final['best_epoch']} ({best_path}), "
                                          f"thresholds {final['threshold_source']}:"))
  at_half = final["at_0.5"]
  print(f"at threshold 0.5: Total {at_half['total']:.2f} | mean positive-class F1 "
        f"{at_half['mean_positive_f1']:.3f} | micro-F1 {at_half['micro_f1']:.3f}", flush=True)
  return final


def _check_same_model(config: config_lib.Config, model_dir: str) -> None:
  """Refuses to resume a model dir whose checkpoints have another model shape."""
  if not os.path.exists(os.path.join(model_dir, config_lib.CONFIG_FILE)):
    return
  old = config_lib.load(model_dir)
  if old.model != config.model:
    changed = [k for k, v in old.model.__dict__.items() if getattr(config.model, k) != v]
    raise ValueError(f"{model_dir} holds a run with another model ({', '.join(changed)} differ); "
                     "use a new --model_dir or the same model flags")


def _load_history(model_dir: str, last_epoch: int) -> list:
  """Per-epoch entries of an interrupted run, up to its last checkpointed epoch."""
  path = os.path.join(model_dir, METRICS_FILE)
  if not last_epoch or not os.path.exists(path):
    return []
  with open(path, encoding="utf-8") as f:
    return [e for e in json.load(f).get("epochs", []) if e["epoch"] <= last_epoch]


def _write_metrics(model_dir: str, config: config_lib.Config, load_report: data.LoadReport, history: list,
                   final: Optional[Dict[str, Any]]) -> None:
  body = {"config": json.loads(config.to_json()), "data": load_report.__dict__, "epochs": history,
          "final": final}
  config_lib.write_text_atomic(os.path.join(model_dir, METRICS_FILE), json.dumps(body, indent=1) + "\n")
