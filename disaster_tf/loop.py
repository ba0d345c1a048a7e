"""The outer training loop: `train_and_evaluate(config, model_dir)`.

A run is a sequence of named phases, called in this order by `_run`:

  inputs.prepare   load the data, split it by id into train / tune / validation,
                   check the splits, adapt (or reload) the vocabularies, derive the
                   class weights, vectorise every split once into a file cache
  build_trainer    model, optimizer, counters, checkpoint managers and the
                   compiled steps, under the distribution strategy
  restore          the latest checkpoint, if any (refusing other vocabularies)
  write_run_files  config.json, flags.txt, the vocabularies: once nothing can refuse the run
  per epoch:
    train_epoch    the compiled steps over one shuffled pass, training summaries,
                   a checkpoint mid-epoch if SIGINT or SIGTERM asks to stop
    end_epoch      score the tune split, checkpoint, keep the best, summaries
    (stop early after `patience` epochs without improvement)
  finish           restore the best checkpoint, tune each category's threshold
                   on the tune split, report on the validation split, which
                   chose nothing

With --refit the same phases then run again in `<model_dir>/refit`, from
scratch on train + tune (`config.refit_config`): as many epochs as the first
run chose, its thresholds, the last epoch kept and reported on validation.
Export takes that model (`checkpoint.release_dir`).

The compiled steps themselves (model math only) are in `steps.py`.
"""

import dataclasses
import json
import math
import os
import shutil
import signal
import threading
import time
from typing import Any, Dict, NamedTuple, Optional

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from disaster_tf import checkpoint as ckpt_lib
from disaster_tf import config as config_lib
from disaster_tf import data
from disaster_tf import dirlock
from disaster_tf import distribute
from disaster_tf import features
from disaster_tf import inputs
from disaster_tf import labels
from disaster_tf import metrics
from disaster_tf import model as model_lib
from disaster_tf import optimizers
from disaster_tf import precision as precision_lib
from disaster_tf import steps
from disaster_tf import summaries

METRICS_FILE = ckpt_lib.METRICS_FILE
FLAGS_FILE = "flags.txt"
KEEP_CHECKPOINTS = 3  # enough to step back past a bad epoch, small on disk


class Chosen(NamedTuple):
  """What a first run chose on its tune split, which its refit reuses."""

  epochs: int  # the best epoch: the refit trains this many
  thresholds: np.ndarray  # [36] float32
  source: str  # where the thresholds came from, for the report


class TrainingInterrupted(Exception):
  """Training stopped on SIGINT or SIGTERM after saving a checkpoint; rerun to resume."""


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
    ValueError, data.DataError: a run refused before anything was written.
    dirlock.DirectoryInUse: another run holds the model dir.
    OSError: the model dir cannot be written (the message names the file);
      the last complete checkpoint stays readable and the same command resumes.

  Returns:
    The final report of the best checkpoint on the validation split (as in
    `metrics.report`) at the thresholds the export uses (tuned on the tune
    split, or 0.5 without one), with `at_0.5` (the same at 0.5) and
    `thresholds`; also written to `<model_dir>/metrics.json`. With --refit,
    `refit` holds the refit's report, the same on its last epoch (what
    export.py exports), also in `<model_dir>/refit/metrics.json`.
  """
  # The strategy comes first: a multi-worker one must exist before any other TF op runs.
  strategy = distribute.make_strategy(config.train.strategy)
  dirs = distribute.RunDirs.for_task(model_dir, strategy)
  # One run per directory, first of all: a second one would delete this one's scratch.
  with dirlock.exclusive(dirs.save_dir):
    # The scratch dir is this process's alone: removed when the run ends (and, if it
    # was killed, when the next run starts).
    shutil.rmtree(dirs.scratch, ignore_errors=True)
    os.makedirs(dirs.scratch)
    try:
      final = _run(config, strategy, dirs, flags_text, verbose)
      if config.train.refit:
        final["refit"] = _run(config_lib.refit_config(config), strategy, dirs.inside(ckpt_lib.REFIT_DIR),
                              flags_text, verbose, chosen=chosen_by(final))
    finally:
      shutil.rmtree(dirs.scratch, ignore_errors=True)
    if not dirs.chief:
      shutil.rmtree(dirs.save_dir, ignore_errors=True)
    return final


def chosen_by(final: Dict[str, Any]) -> Chosen:
  """What a run's final report says it chose on tune: the refit's epoch count and thresholds."""
  thresholds = np.array([final["thresholds"][name] for name in labels.CATEGORIES], np.float32)
  return Chosen(final["best_epoch"], thresholds, f"{final['threshold_source']}, by the run that chose "
                f"epoch {final['best_epoch']}")


def _run(config: config_lib.Config, strategy: tf.distribute.Strategy, dirs: distribute.RunDirs,
         flags_text: Optional[str], verbose: int, chosen: Optional[Chosen] = None) -> Dict[str, Any]:
  """The phases of a run, in order (see the module docstring); a refit's with `chosen`."""
  tc = config.train
  last_epoch = tc.epochs if chosen is None else chosen.epochs
  _check_same_model(config, dirs.model_dir)
  keras.utils.set_random_seed(tc.seed)
  run = inputs.prepare(config, dirs.scratch, vocabularies=_saved_vocabularies(config, dirs.model_dir))
  trainer = build_trainer(config, run, strategy, dirs.save_dir)
  restore(trainer, dirs.model_dir, run.vocabularies, tc.learning_rate)
  if dirs.chief:  # other workers only read the model dir
    write_run_files(config, run.vocabularies, dirs.model_dir, flags_text)
  history = _load_history(dirs.model_dir, int(trainer.state.epoch.numpy()))
  writers = SummaryWriters.for_run(dirs, run.selection_name)

  with _StopRequests() as stop:
    for epoch in range(int(trainer.state.epoch.numpy()) + 1, last_epoch + 1):
      if tc.patience and int(trainer.state.bad_epochs.numpy()) >= tc.patience:
        break  # a resumed run that had already stopped early
      trained = train_epoch(trainer, run, tc, epoch, stop, writers.train, verbose)
      history.append(end_epoch(trainer, run, tc, epoch, trained, writers))
      if dirs.chief:
        _write_metrics(dirs.model_dir, config, run.load_report, history, final=None)
      best = tc.select_metric != "last" and int(trainer.state.best_epoch.numpy()) == epoch  # a refit keeps all
      _log_epoch(history[-1], last_epoch, best=best)  # all saved
      if stop.requested:  # arrived during evaluation: the epoch is saved, stop here
        raise TrainingInterrupted(f"{stop.requested}: stopped after epoch {epoch}; saved "
                                  f"{trainer.manager.latest_checkpoint}. Run the same command to resume.")

  final = finish(trainer, run, tc, dirs, writers.selection, chosen=chosen)
  if dirs.chief:
    _write_metrics(dirs.model_dir, config, run.load_report, history, final=final)
  writers.flush()
  _print_report(final)
  return final


# --- phase: the model, its optimizer and checkpoints ---------------------------------------


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
    model = model_lib.build_model(config.model, run.featurizer.sizes, precision_lib.resolve(tc.precision))
    optimizer = make_optimizer(tc, run.steps_per_epoch)
    # Keras 3 optimizers must create their slots inside the scope (keras-team/keras#23085).
    optimizer.build(model.trainable_variables)
  # Plain variables, outside the scope: the loop sets them from Python, the same on every
  # worker, and a multi-worker scope would try to broadcast the string fingerprint.
  state = ckpt_lib.TrainState(ckpt_lib.fingerprint(features.fingerprint_items(run.vocabularies)),
                              run_identity(config, run.load_report))
  checkpoint = ckpt_lib.make_checkpoint(model, optimizer, state)
  manager = tf.train.CheckpointManager(checkpoint, os.path.join(save_dir, ckpt_lib.CHECKPOINTS_DIR),
                                       max_to_keep=KEEP_CHECKPOINTS)
  best_manager = tf.train.CheckpointManager(checkpoint, os.path.join(save_dir, ckpt_lib.BEST_DIR), max_to_keep=1)
  class_weights, loss_weights = tf.constant(run.class_weights), tf.constant(run.loss_weights)
  train_steps = steps.make_train_steps(model, optimizer, strategy, class_weights, loss_weights, tc.batch_size,
                                       jit_compile=tc.jit_compile)
  eval_step = steps.make_eval_step(model, run.selection_ds.element_spec[0], class_weights, loss_weights)
  return Trainer(strategy, model, optimizer, state, checkpoint, manager, best_manager, train_steps, eval_step)


def run_identity(config: config_lib.Config, load_report: data.LoadReport) -> Dict[str, Any]:
  """What a run may not change once its first epoch is saved: data, split and model shape."""
  tc = config.train
  return {"data": load_report.fingerprint, "text_fields": list(tc.text_fields), "split_seed": tc.split_seed,
          "original_copies": tc.original_copies,
          "precision": precision_lib.resolve(tc.precision),
          "validation_fraction": tc.validation_fraction, "tune_fraction": tc.tune_fraction,
          "model": dataclasses.asdict(config.model)}


def restore(trainer: Trainer, model_dir: str, vocabularies: features.Vocabularies, learning_rate: float) -> None:
  """Restores the model dir's newest readable checkpoint into `trainer`, if there is one.

  Unreadable checkpoints (a truncated or deleted file, a lost state file) are
  skipped with a warning naming each; with none left in `checkpoints/`, the
  best checkpoint (a whole one too) is the start. The best record of `best/`
  wins over an older restored one, so that lost state never lets a worse
  epoch replace the best model.

  Args:
    model_dir: the chief's model dir (every worker resumes from the chief's checkpoint).
    vocabularies: the run's; a checkpoint trained with others is refused.
    learning_rate: the flags' rate, which replaces the one the checkpoint restores.

  Raises:
    ValueError: the checkpoint was trained with another vocabulary, data,
      split or model shape (the run's identity: `run_identity`).
  """
  latest, skipped = ckpt_lib.latest_readable(os.path.join(model_dir, ckpt_lib.CHECKPOINTS_DIR))
  best, best_skipped = ckpt_lib.latest_readable(os.path.join(model_dir, ckpt_lib.BEST_DIR))
  for what in skipped + best_skipped:
    logging.warning("skipped an unreadable checkpoint: %s", what)
  start = latest or best
  if start is None:
    return
  ckpt_lib.check_fingerprint(start, ckpt_lib.fingerprint(features.fingerprint_items(vocabularies)))
  ckpt_lib.check_identity(start, json.loads(trainer.state.identity.numpy().decode("utf-8")))
  trainer.checkpoint.restore(start).assert_existing_objects_matched()
  logging.info("resumed from %s (epoch %d)", start, int(trainer.state.epoch.numpy()))
  _keep_best_record(trainer.state, best)
  optimizer = getattr(trainer.optimizer, "inner_optimizer", trainer.optimizer)  # under a LossScaleOptimizer
  if isinstance(optimizer._learning_rate, keras.optimizers.schedules.LearningRateSchedule):  # pylint: disable=protected-access
    return  # a schedule is built from the flags' rate and continues from the restored step counter
  restored_rate = float(optimizer.learning_rate.numpy())
  if restored_rate != learning_rate:
    logging.info("learning rate %g (flags) replaces %g (checkpoint)", learning_rate, restored_rate)
    optimizer.learning_rate = learning_rate


def _keep_best_record(state: ckpt_lib.TrainState, best: Optional[str]) -> None:
  """Makes the counters' best score the one `best/` holds (or forgets it if best/ holds none)."""
  if best is None:
    if int(state.best_epoch.numpy()):
      logging.warning("best/ holds no readable checkpoint of epoch %d: the next epoch scored becomes the best",
                      int(state.best_epoch.numpy()))
      state.best_metric.assign(float("-inf"))
      state.best_epoch.assign(0)
    return
  record = ckpt_lib.read_state(best)
  if record["best_metric"] > float(state.best_metric.numpy()):
    logging.warning("%s (epoch %d) scored better than the restored counters know: it stays the best", best,
                    record["best_epoch"])
    state.best_metric.assign(record["best_metric"])
    state.best_epoch.assign(record["best_epoch"])
    state.bad_epochs.assign(max(0, int(state.epoch.numpy()) - record["best_epoch"]))


def write_run_files(config: config_lib.Config, vocabularies: features.Vocabularies, model_dir: str,
                    flags_text: Optional[str]) -> None:
  """Writes config.json, flags.txt (if given) and, for a new run, the vocabularies, each atomically."""
  config_lib.save(config, model_dir)
  if flags_text is not None:
    config_lib.write_text_atomic(os.path.join(model_dir, FLAGS_FILE), flags_text)
  if not features.saved(config.model, model_dir):  # a resumed run keeps its own
    features.save(vocabularies, model_dir)


# --- phase: one epoch ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class EpochTraining:
  """What one epoch's training pass measured (over the steps this process ran)."""

  loss: float  # mean training loss per step
  loss_per_category: np.ndarray  # [36], the mean of each head's weighted loss
  seconds: float


def train_epoch(trainer: Trainer, run: inputs.RunInputs, train_config: config_lib.TrainConfig, epoch: int,
                stop: "_StopRequests", writer: tf.summary.SummaryWriter, verbose: int) -> EpochTraining:
  """Trains one shuffled pass over the training split, `steps_per_execution` steps per compiled call.

  Resumes after `state.step_in_epoch` steps: each epoch's order is fixed by its
  seed, so a run stopped mid-epoch skips exactly the batches it had trained on.

  Raises:
    TrainingInterrupted: a stop was requested; the steps so far are saved first.
    FloatingPointError: the epoch's loss is not finite; nothing is saved.
  """
  tc, state = train_config, trainer.state
  start = time.time()
  total = run.steps_per_epoch
  skip = int(state.step_in_epoch.numpy())
  if skip:
    logging.info("epoch %d: resuming after step %d of %d", epoch, skip, total)
  epoch_ds = data.batched(run.train_blocks, tc.batch_size, shuffle_seed=tc.seed * 1000 + epoch,
                          shuffle_buffer=tc.shuffle_buffer).skip(skip).with_options(distribute.SHARD_BY_DATA)
  iterator = iter(trainer.strategy.experimental_distribute_dataset(epoch_ds))
  progbar = keras.utils.Progbar(total, verbose=verbose, unit_name="step")
  loss_sum, component_sum, done = 0.0, np.zeros(labels.NUM_CATEGORIES), skip
  while done < total and not stop.requested:
    count = min(tc.steps_per_execution, total - done)
    call_start = time.time()
    chunk_loss, chunk_components = trainer.train_steps(iterator, tf.constant(count))
    chunk_loss, chunk_components = float(chunk_loss), chunk_components.numpy()
    if done == skip:  # this call also filled the shuffle buffer, and on a process's first epoch traced the steps
      logging.info("epoch %d: first %d step(s) in %.2fs", epoch, count, time.time() - call_start)
    loss_sum += chunk_loss
    component_sum += chunk_components
    done += count
    progbar.update(done, [("loss", chunk_loss / count)])
    global_step = int(trainer.optimizer.iterations.numpy())
    if global_step // tc.log_every > (global_step - count) // tc.log_every:  # crossed a logging step
      with writer.as_default(step=global_step):
        _loss_scalars(chunk_loss / count, chunk_components / count)
  if done < total:  # the loop ended on a stop request
    state.step_in_epoch.assign(done)
    path = ckpt_lib.save(trainer.manager, trainer.optimizer.iterations)
    raise TrainingInterrupted(f"{stop.requested}: stopped at step {done} of {total} in epoch "
                              f"{epoch}; saved {path}. Run the same command to resume.")
  trained = total - skip  # steps of this epoch run in this process
  train_loss = loss_sum / trained
  if not math.isfinite(train_loss):
    raise FloatingPointError(
        f"epoch {epoch}: the training loss is {train_loss}; stopping without saving this epoch. "
        f"The last good checkpoint is {trainer.manager.latest_checkpoint}; lower --learning_rate or "
        "--class_weight_cap")
  return EpochTraining(train_loss, component_sum / trained, time.time() - start)


def end_epoch(trainer: Trainer, run: inputs.RunInputs, train_config: config_lib.TrainConfig, epoch: int,
              trained: EpochTraining, writers: "SummaryWriters") -> Dict[str, Any]:
  """Scores the epoch on the selection split, advances the counters, checkpoints, keeps the best.

  Returns:
    The epoch's entry for metrics.json's history (the caller writes it, then logs the epoch).
  """
  predictions = steps.predict(trainer.eval_step, run.selection_ds)
  selection_loss = predictions.loss_sum / len(run.selection)
  scores = metrics.report(run.selection.labels, predictions.labels(labels.default_thresholds()))
  improved = advance_counters(trainer.state, epoch, selection_score(scores, selection_loss,
                                                                    train_config.select_metric, epoch))
  # The best first: if the second save fails, checkpoints/ still names the previous epoch, and
  # the rerun repeats this one against a best/ that is never worse than what it records.
  # Named by global step (TF's convention), so a mid-epoch save never collides with an epoch's.
  if improved:
    ckpt_lib.save(trainer.best_manager, trainer.optimizer.iterations)
  ckpt_lib.save(trainer.manager, trainer.optimizer.iterations)
  with writers.selection.as_default(step=epoch):
    summaries.scalar("loss/total", selection_loss)
    for key, value in metrics.summary(scores).items():
      summaries.scalar(key, value)
  with writers.train.as_default(step=epoch):
    summaries.scalar("epoch_loss", trained.loss)
  return {"epoch": epoch, "train_loss": trained.loss,
          "train_loss_per_category": dict(zip(labels.CATEGORIES, trained.loss_per_category.tolist())),
          "selection_split": run.selection_name, "selection_loss": selection_loss,
          "train_seconds": trained.seconds, "selection": scores}


def _log_epoch(entry: Dict[str, Any], epochs: int, best: bool) -> None:
  scores = entry["selection"]
  logging.info("epoch %d/%d: train loss %.4f, %s loss %.4f, total %.2f, mean positive F1 %.3f, micro-F1 %.3f, "
               "%.1fs%s", entry["epoch"], epochs, entry["train_loss"], entry["selection_split"],
               entry["selection_loss"], scores["total"], scores["mean_positive_f1"], scores["micro_f1"],
               entry["train_seconds"], " (best so far)" if best else "")


def selection_score(scores: Dict[str, Any], loss: float, metric: str, epoch: int) -> float:
  """The number early stopping maximises: the negated loss for "loss", the epoch for "last"."""
  if metric == "last":
    return float(epoch)
  return -loss if metric == "loss" else float(scores[metric])


def advance_counters(state: ckpt_lib.TrainState, epoch: int, score: float) -> bool:
  """Records a finished epoch and its selection score in the counters; True if it is the best so far."""
  improved = score > float(state.best_metric.numpy())
  state.epoch.assign(epoch)
  state.step_in_epoch.assign(0)
  if improved:
    state.best_metric.assign(score)
    state.best_epoch.assign(epoch)
    state.bad_epochs.assign(0)
  else:
    state.bad_epochs.assign_add(1)
  return improved


# --- phase: the final report ----------------------------------------------------------------


def finish(trainer: Trainer, run: inputs.RunInputs, train_config: config_lib.TrainConfig,
           dirs: distribute.RunDirs, writer: Optional[tf.summary.SummaryWriter] = None,
           chosen: Optional[Chosen] = None) -> Dict[str, Any]:
  """Restores the best checkpoint, tunes thresholds on the tune split, reports on validation.

  With a `writer`, the best epoch's per-category precision-recall curves on
  tune and validation go to TensorBoard (`pr_tune/<category>`, `pr_validation/<category>`).
  A refit (`chosen`) has no tune split: it takes the first run's thresholds.

  Returns:
    The validation report at the tuned thresholds (0.5 without a tune split),
    with `at_0.5`, `thresholds` and where they came from; the chief also
    writes the thresholds to `<model_dir>/thresholds.json` for the export.
  """
  best_path, _ = ckpt_lib.latest_readable(trainer.best_manager.directory)
  if best_path is None:  # best/ was lost and no epoch since has scored (see restore)
    best_path = trainer.manager.latest_checkpoint
    logging.warning("no readable best checkpoint: reporting the latest, %s", best_path)
  trainer.checkpoint.restore(best_path).assert_existing_objects_matched()
  default_thresholds = labels.default_thresholds()
  thresholds, source = default_thresholds, "0.5"
  if chosen is not None:
    thresholds, source = chosen.thresholds, chosen.source
  elif run.tune_ds is not None:
    tune = steps.predict(trainer.eval_step, run.tune_ds)
    thresholds = metrics.tune_thresholds(run.splits.tune.labels, tune.scores, train_config.min_tune_positives,
                                         train_config.threshold_objective)
    source = f"tuned on the tune split ({len(run.splits.tune)} messages) for {train_config.threshold_objective}"
  if dirs.chief:
    ckpt_lib.write_thresholds(thresholds, dirs.model_dir)
  validation, truth = steps.predict(trainer.eval_step, run.validation_ds), run.splits.validation.labels
  if writer is not None:
    curves = {"validation": (truth, validation)}
    if run.tune_ds is not None:
      curves["tune"] = (run.splits.tune.labels, tune)
    _pr_curves(writer, int(trainer.state.best_epoch.numpy()), curves)
  final = metrics.report(truth, validation.labels(thresholds))
  final.update({"at_0.5": metrics.report(truth, validation.labels(default_thresholds)),
                "thresholds": dict(zip(labels.CATEGORIES, thresholds.tolist())),
                "threshold_source": source,
                "validation_loss": validation.loss_sum / len(truth),
                "best_epoch": int(trainer.state.best_epoch.numpy()), "checkpoint": best_path,
                "select_metric": train_config.select_metric,
                "selected_on": "nothing" if train_config.select_metric == "last" else run.selection_name,
                "training_data": training_summary(run.splits.train)})
  if run.languages:  # the same messages, as sent and as translated, at the same thresholds
    final["languages"] = {split.name: metrics.report(split.examples.labels, steps.predict(
        trainer.eval_step, split.dataset).labels(thresholds)) for split in run.languages}
  # A cheap fingerprint of the weights: every worker of a run logs the same one.
  logging.info("final weights: sum of |w| = %.6f",
               float(sum(tf.reduce_sum(tf.abs(v)) for v in trainer.model.trainable_variables)))
  return final


def training_summary(train: data.Examples) -> Dict[str, Any]:
  """What the model learnt from: examples, positives per category (`related`: label 1), messages per genre."""
  genres, counts = np.unique(train.genres.astype(str), return_counts=True)
  return {"examples": len(train), "positives": dict(zip(labels.CATEGORIES, (train.labels == 1).sum(0).tolist())),
          "genres": {g or "unknown": int(n) for g, n in zip(genres, counts)}}


def _pr_curves(writer: tf.summary.SummaryWriter, step: int, curves: Dict[str, Any]) -> None:
  """Each category's precision-recall curve on each split: {split: (labels [N, 36], Predictions)}."""
  with writer.as_default():
    for split, (truth, predictions) in curves.items():
      for k, name in enumerate(labels.CATEGORIES):
        summaries.pr_curve(f"pr_{split}/{name}", truth[:, k] == 1, predictions.scores[:, k], step=step)
  writer.flush()


def _print_report(final: Dict[str, Any]) -> None:
  which = "last" if final["select_metric"] == "last" else "best"
  print(metrics.format_table(final, title=f"validation split, {which} epoch {final['best_epoch']} "
                                          f"({final['checkpoint']}), thresholds {final['threshold_source']}:"))
  at_half = final["at_0.5"]
  print(f"at threshold 0.5: Total {at_half['total']:.2f} | mean positive-class F1 "
        f"{at_half['mean_positive_f1']:.3f} | micro-F1 {at_half['micro_f1']:.3f}", flush=True)
  for name, report in final.get("languages", {}).items():
    print(f"validation messages that have an original, {name + 's':12}: {report['examples']} | Total "
          f"{report['total']:.2f} | mean positive-class F1 {report['mean_positive_f1']:.3f} | micro-F1 "
          f"{report['micro_f1']:.3f}", flush=True)


# --- summaries, signals, files ----------------------------------------------------------------


def _loss_scalars(loss: float, per_category: np.ndarray) -> None:
  summaries.scalar("loss/total", loss)
  for name, value in zip(labels.CATEGORIES, per_category):
    summaries.scalar(f"loss/{name}", value)


@dataclasses.dataclass(frozen=True)
class SummaryWriters:
  """TensorBoard writers: `train/` and the selection split's (`tune/` or `validation/`); no-ops off the chief."""

  train: tf.summary.SummaryWriter
  selection: tf.summary.SummaryWriter

  @classmethod
  def for_run(cls, dirs: distribute.RunDirs, selection_name: str) -> "SummaryWriters":
    if not dirs.chief:
      return cls(tf.summary.create_noop_writer(), tf.summary.create_noop_writer())
    return cls(tf.summary.create_file_writer(os.path.join(dirs.model_dir, "train")),
               tf.summary.create_file_writer(os.path.join(dirs.model_dir, selection_name)))

  def flush(self) -> None:
    self.train.flush()
    self.selection.flush()


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


def _check_same_model(config: config_lib.Config, model_dir: str) -> None:
  """Refuses to resume a model dir whose checkpoints have another model shape."""
  if not os.path.exists(os.path.join(model_dir, config_lib.CONFIG_FILE)):
    return
  old = config_lib.load(model_dir)
  if old.model != config.model:
    changed = [k for k, v in old.model.__dict__.items() if getattr(config.model, k) != v]
    raise ValueError(f"{model_dir} holds a run with another model ({', '.join(changed)} differ); "
                     "use a new --model_dir or the same model flags")


def _saved_vocabularies(config: config_lib.Config, model_dir: str) -> Optional[features.Vocabularies]:
  """The vocabularies a previous run of this model dir adapted, or None for a new run."""
  if not features.saved(config.model, model_dir):
    return None
  return features.load(config.model, model_dir)


def _load_history(model_dir: str, last_epoch: int) -> list:
  """Per-epoch entries of an interrupted run, up to its last checkpointed epoch."""
  path = os.path.join(model_dir, METRICS_FILE)
  if not last_epoch or not os.path.exists(path):
    return []
  try:
    with open(path, encoding="utf-8") as f:
      return [e for e in json.load(f).get("epochs", []) if e["epoch"] <= last_epoch]
  except (ValueError, KeyError, TypeError, AttributeError) as e:
    raise ValueError(f"{path}: not a metrics file written by train.py ({e}); restore it, or move it away to "
                     "resume with the per-epoch history starting afresh") from None


def _write_metrics(model_dir: str, config: config_lib.Config, load_report: data.LoadReport, history: list,
                   final: Optional[Dict[str, Any]]) -> None:
  body = {"config": json.loads(config.to_json()), "data": load_report.__dict__, "epochs": history,
          "final": final}
  config_lib.write_text_atomic(os.path.join(model_dir, METRICS_FILE), json.dumps(body, indent=1) + "\n")
