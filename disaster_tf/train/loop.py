"""The outer training loop: `train_and_evaluate(config, model_dir)`.

A run is a sequence of named phases, called in this order by `_run`:

  inputs.prepare        load the data, split it by id into train / tune / validation,
                        check the splits, adapt (or reload) the vocabularies, derive the
                        class weights, vectorise every split once into a saved dataset
  trainer.build_trainer model, optimizer, counters, checkpoint managers and the
                        compiled steps, under the distribution strategy
  RunDir.restore        the latest checkpoint, if any (refusing other vocabularies);
  trainer.initialise    else, for a new run, the pretrained word vectors and the linear
                        member fitted apart (--linear_epochs: its own run, first), if any
  RunDir.write_run_files config.json, flags.txt, the vocabularies: once nothing can refuse the run
  per epoch:
    train_epoch         the compiled steps over one shuffled pass, training summaries,
                        a checkpoint mid-epoch if SIGINT or SIGTERM asks to stop
    end_epoch           score the selection split, checkpoint, keep the best, summaries
    (stop early after `patience` epochs without improvement)
  choose_thresholds     restore the best checkpoint, tune each category's threshold on
                        the tune split (or take the refit plan's, or 0.5)
  validation_report     report on the validation split, which chose nothing

With --refit the same phases then run again in `<model_dir>/refit`, from
scratch on train + tune (`config.refit_config`), following a `RefitPlan`: as
many epochs as the first run chose, its thresholds, the last epoch kept and
reported on validation. Export takes that model (`checkpoint.release_dir`).
With --encoder_member the same phases run for the encoder in `<model_dir>/encoder`
(`members.encoder_config`), then `members.blend` mixes the two models' scores.

What this module does not do: the compiled steps (model math, `steps.py`),
the model dir's files and checkpoints (`rundir.py`), signals (`stops.py`),
TensorBoard writers (`summaries.py`) and printing the report (the CLI).
"""

import dataclasses
import math
import os
import shutil
import time
from typing import Any, Dict, NamedTuple, Optional

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from disaster_tf import config as config_lib
from disaster_tf import labels
from disaster_tf import records
from disaster_tf.data import examples as examples_lib
from disaster_tf.model import metrics
from disaster_tf.model import vectors as vectors_lib
from disaster_tf.train import checkpoint as ckpt_lib
from disaster_tf.train import course
from disaster_tf.train import dirlock
from disaster_tf.train import distribute
from disaster_tf.train import gate
from disaster_tf.train import inputs
from disaster_tf.train import members
from disaster_tf.train import prune
from disaster_tf.train import rundir as rundir_lib
from disaster_tf.train import steps
from disaster_tf.train import stops
from disaster_tf.train import summaries
from disaster_tf.train import trainer as trainer_lib

METRICS_FILE = rundir_lib.METRICS_FILE
FLAGS_FILE = rundir_lib.FLAGS_FILE
TrainingInterrupted = stops.TrainingInterrupted
Trainer = trainer_lib.Trainer


def train_and_evaluate(config: config_lib.Config, model_dir: str, *, flags_text: Optional[str] = None,
                       verbose: int = 1) -> records.FinalReport:
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
    ValueError, csv_files.DataError: a run refused before anything was written
      (among them, a model dir pruned by export.py --prune).
    dirlock.DirectoryInUse: another run holds the model dir.
    OSError: the model dir cannot be written (the message names the file);
      the last complete checkpoint stays readable and the same command resumes.

  Returns:
    The final report of the best checkpoint on the validation split at the
    thresholds the export uses (tuned on the tune split, or 0.5 without one),
    also written to `<model_dir>/metrics.json`. With --refit, its `refit` holds
    the refit's report on its last epoch (what export.py exports), also in
    `<model_dir>/refit/metrics.json`.
  """
  new_run = not os.path.exists(os.path.join(model_dir, config_lib.CONFIG_FILE))
  if new_run and config.model.pretrained_vectors:  # read after the linear member's phase: refuse a missing file now
    vectors_lib.check_exists(config.model.pretrained_vectors)
  # The strategy comes first: a multi-worker one must exist before any other TF op runs.
  strategy = distribute.make_strategy(config.train.strategy)
  dirs = distribute.RunDirs.for_task(model_dir, strategy)
  run_course = course.Course(config, model_dir)
  # One run per directory, first of all: a second one would delete this one's scratch.
  with dirlock.exclusive(dirs.save_dir):
    prune.check_not_pruned(model_dir)  # a pruned dir has no checkpoint to resume, and a model export reads
    # The scratch dir is this process's alone: removed when the run ends (and, if it
    # was killed, when the next run starts).
    shutil.rmtree(dirs.scratch, ignore_errors=True)
    os.makedirs(dirs.scratch)
    for line in course.plan_lines(config, model_dir):
      logging.info("%s", line)
    try:
      final = _phases(config, strategy, dirs, flags_text, verbose, run_course)
    except tf.errors.OpError as e:
      if not out_of_space(e):
        raise
      # TensorFlow's own writes (scratch caches, the data spool, TensorBoard events) fail with an OpError.
      raise OSError(f"{dirs.save_dir}: a write failed ({ckpt_lib.error_reason(e)}); every epoch saved before it is "
                    "intact. Free space (the run's scratch/ caches need about as much again as the data), then run "
                    "the same command to resume") from None
    finally:
      shutil.rmtree(dirs.scratch, ignore_errors=True)
    if not dirs.chief:
      shutil.rmtree(dirs.save_dir, ignore_errors=True)
    return final


def _phases(config: config_lib.Config, strategy: tf.distribute.Strategy, dirs: distribute.RunDirs,
            flags_text: Optional[str], verbose: int, run_course: course.Course) -> records.FinalReport:
  """The run's phases in course.phases' order: a routed run's English model, the network (after its linear
  member), the encoder member and the members' blend, the refit, the language gate; returns the final report of
  what export.py exports (the network's with its refit's, or the three members' blend)."""
  # One snapshot of the operators' decisions for every phase, the refit and a resume (rundir, invariant 4).
  snapshot = rundir_lib.DecisionsSnapshot(config.train.decisions, dirs) if config.train.decisions else None
  if config.train.route_english:  # the English-only model the export routes English messages to
    _run(config_lib.english_member_config(config), strategy, dirs.inside(ckpt_lib.ENGLISH_DIR), flags_text,
         verbose, run_course, course.ENGLISH, snapshot)
  final = _run(config, strategy, dirs, flags_text, verbose, run_course, course.NETWORK, snapshot)
  if config.train.encoder_member:  # the third member, then the blend the export serves (members.py)
    logging.info("the encoder member computes in %s", members.describe_precision(config))
    _run(members.encoder_config(config), strategy, dirs.inside(ckpt_lib.ENCODER_DIR), flags_text, verbose,
         run_course, course.ENCODER, snapshot)
    final = members.blend(config, dirs, final, snapshot.path if snapshot else None)
  if config.train.refit:
    refit = _run(config_lib.refit_config(config), strategy, dirs.inside(ckpt_lib.REFIT_DIR),
                 flags_text, verbose, run_course, course.REFIT, snapshot, plan=records.RefitPlan.chosen_by(final))
    final = dataclasses.replace(final, refit=refit)
  if config.train.language_gate:
    run_course.begin(course.GATE)
    gate.fit(config, dirs)
  return final


def _run(config: config_lib.Config, strategy: tf.distribute.Strategy, dirs: distribute.RunDirs,
         flags_text: Optional[str], verbose: int, run_course: course.Course, phase: str,
         snapshot: Optional[rundir_lib.DecisionsSnapshot], plan: Optional[records.RefitPlan] = None
         ) -> records.FinalReport:
  """The phases of a run, in order (see the module docstring); `phase` is its key in `run_course`, `snapshot`
  the decisions it trains on (--decisions), and a refit's phases follow its `plan`."""
  tc, run_dir = config.train, rundir_lib.RunDir(dirs)
  last_epoch = tc.epochs if plan is None else plan.epochs
  run_dir.check_same_model(config)
  linear_member = None
  if tc.linear_epochs:  # its own run first, in <model_dir>/linear; a finished one only reports again
    linear_dirs = dirs.inside(ckpt_lib.LINEAR_DIR)
    _run(config_lib.linear_member_config(config), strategy, linear_dirs, flags_text, verbose, run_course,
         course.linear_phase(phase), snapshot)
    linear_member = linear_dirs.save_dir
  run_course.begin(phase, epochs=last_epoch)
  keras.utils.set_random_seed(tc.seed)
  run = inputs.prepare(config, dirs.scratch, vocabularies=run_dir.saved_vocabularies(config),
                       decisions=snapshot.path if snapshot else None)
  trainer = trainer_lib.build_trainer(config, run, strategy, dirs.save_dir)
  if not run_dir.restore(trainer, run.vocabularies, tc.learning_rate):
    trainer_lib.initialise(trainer, config, run.vocabularies, linear_member)  # a new run's pretrained parts
  if snapshot:
    snapshot.keep()  # with the run's first files: every check that could refuse the run has passed
  run_dir.write_run_files(config, run.vocabularies, flags_text)
  history = run_dir.load_history(int(trainer.state.epoch.numpy()))
  writers = summaries.SummaryWriters.for_run(dirs.model_dir, dirs.chief, run.selection_name)

  run_course.epochs_start()
  with stops.StopRequests() as stop:
    for epoch in range(int(trainer.state.epoch.numpy()) + 1, last_epoch + 1):
      if _patience_ran_out(trainer, tc):
        break  # a resumed run that had already stopped early
      trained = train_epoch(trainer, run, tc, epoch, stop, writers.train, verbose, course.cure(phase))
      history.append(end_epoch(trainer, run, tc, epoch, trained, writers))
      run_dir.write_metrics(config, run.load_report, history, final=None)
      best = tc.select_metric != "last" and int(trainer.state.best_epoch.numpy()) == epoch  # a refit keeps all
      course.log_epoch(history[-1], last_epoch, best=best, left=run_course.epoch_done(epoch))  # all saved
      if stop.requested:  # arrived during evaluation: the epoch is saved, stop here
        raise TrainingInterrupted(f"{stop.requested}: stopped after epoch {epoch}; saved "
                                  f"{trainer.manager.latest_checkpoint}. Run the same command to resume.")
  if _patience_ran_out(trainer, tc) and int(trainer.state.epoch.numpy()) < last_epoch:
    course.stopped_early(int(trainer.state.epoch.numpy()), int(trainer.state.best_epoch.numpy()), tc.patience,
                         course.METRIC_NAMES[tc.select_metric], run.selection_name)

  thresholds = choose_thresholds(trainer, run, tc, run_dir, plan)
  final = validation_report(trainer, run, tc, thresholds, writers.selection)
  run_dir.write_metrics(config, run.load_report, history, final=final)
  writers.flush()
  return final


def _patience_ran_out(trainer: Trainer, train_config: config_lib.TrainConfig) -> bool:
  return bool(train_config.patience) and int(trainer.state.bad_epochs.numpy()) >= train_config.patience


def out_of_space(error: tf.errors.OpError) -> bool:
  """Whether a TensorFlow error is a write that found the disk full (or over quota, or the file size limit)."""
  text = str(getattr(error, "message", None) or error)
  return (isinstance(error, tf.errors.ResourceExhaustedError) and "OOM" not in text) or any(
      reason in text for reason in ("No space left on device", "Disk quota exceeded", "File too large"))


# --- phase: one epoch ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class EpochTraining:
  """What one epoch's training pass measured (over the steps this process ran)."""

  loss: float  # mean training loss per step
  loss_per_category: np.ndarray  # [36], the mean of each head's weighted loss
  seconds: float


def train_epoch(trainer: Trainer, run: inputs.RunInputs, train_config: config_lib.TrainConfig, epoch: int,
                stop: stops.StopRequests, writer: tf.summary.SummaryWriter, verbose: int,
                cure: str = "lower --learning_rate or --class_weight_cap") -> EpochTraining:
  """Trains one shuffled pass over the training split, `steps_per_execution` steps per compiled call.

  Resumes after `state.step_in_epoch` steps: each epoch's order is fixed by its
  seed, so a run stopped mid-epoch skips exactly the batches it had trained on.

  Raises:
    TrainingInterrupted: a stop was requested; the steps so far are saved first.
    FloatingPointError: the epoch's loss is not finite; nothing is saved; `cure` names the flags to change.
  """
  tc, state = train_config, trainer.state
  start = time.time()
  total = run.steps_per_epoch
  skip = int(state.step_in_epoch.numpy())
  if skip:
    logging.info("epoch %d: resuming after step %d of %d", epoch, skip, total)
  epoch_ds = examples_lib.batched(run.train_blocks, tc.batch_size, shuffle_seed=tc.seed * 1000 + epoch,
                          shuffle_buffer=tc.shuffle_buffer).skip(skip).with_options(distribute.SHARD_BY_DATA)
  iterator = iter(trainer.strategy.experimental_distribute_dataset(epoch_ds))
  progbar = keras.utils.Progbar(total, verbose=verbose, unit_name="step")
  progress = course.EpochProgress(epoch, total, skip, tc.batch_size) if not verbose else None  # no bar: log lines
  loss_sum, component_sum, done = 0.0, np.zeros(labels.NUM_CATEGORIES), skip
  while done < total and not stop.requested:
    count = min(tc.steps_per_execution, total - done)
    call_start = time.time()
    chunk_loss, chunk_components = trainer.train_steps(iterator, tf.constant(count))
    chunk_loss, chunk_components = float(chunk_loss), chunk_components.numpy()
    if done == skip:  # this call also filled the shuffle buffer, and on a process's first epoch traced the steps
      logging.debug("epoch %d: first %d step(s) in %.2fs", epoch, count, time.time() - call_start)
    loss_sum += chunk_loss
    component_sum += chunk_components
    done += count
    progbar.update(done, [("loss", chunk_loss / count)])
    if progress:
      progress.update(done)
    global_step = int(trainer.optimizer.iterations.numpy())
    if global_step // tc.log_every > (global_step - count) // tc.log_every:  # crossed a logging step
      with writer.as_default(step=global_step):
        summaries.loss_scalars(chunk_loss / count, chunk_components / count)
  if done < total:  # the loop ended on a stop request
    path = rundir_lib.RunDir.save_stopped(trainer, done)
    raise TrainingInterrupted(f"{stop.requested}: stopped at step {done} of {total} in epoch "
                              f"{epoch}; saved {path}. Run the same command to resume.")
  trained = total - skip  # steps of this epoch run in this process
  train_loss = loss_sum / trained
  if not math.isfinite(train_loss):
    saved = trainer.manager.latest_checkpoint
    raise FloatingPointError(
        f"epoch {epoch}: the training loss is {train_loss}; stopping without saving this epoch. " + (
            f"The last good checkpoint is {saved}; " if saved else
            "Nothing was saved yet, so the corrected command starts the run anew; ") + cure)
  return EpochTraining(train_loss, component_sum / trained, time.time() - start)


def end_epoch(trainer: Trainer, run: inputs.RunInputs, train_config: config_lib.TrainConfig, epoch: int,
              trained: EpochTraining, writers: summaries.SummaryWriters) -> Dict[str, Any]:
  """Scores the epoch on the selection split, advances the counters, checkpoints, keeps the best.

  Returns:
    The epoch's entry for metrics.json's history (the caller writes it, then logs the epoch).
  """
  outputs = steps.evaluate_dataset(trainer.eval_step, run.selection_ds)
  selection_loss = outputs.loss_sum / len(run.selection)
  scores = metrics.report(run.selection.labels, outputs.labels(labels.default_thresholds()))
  improved = rundir_lib.advance_counters(trainer.state, epoch, selection_score(
      scores, selection_loss, train_config.select_metric, epoch))
  rundir_lib.RunDir.save_epoch(trainer, improved)
  with writers.selection.as_default(step=epoch):
    summaries.scalar("loss/total", selection_loss)
    for key, value in scores.summary().items():
      summaries.scalar(key, value)
  with writers.train.as_default(step=epoch):
    summaries.scalar("epoch_loss", trained.loss)
  return {"epoch": epoch, "train_loss": trained.loss,
          "train_loss_per_category": dict(zip(labels.CATEGORIES, trained.loss_per_category.tolist())),
          "selection_split": run.selection_name, "selection_loss": selection_loss,
          "train_seconds": trained.seconds, "selection": scores.to_json()}


def selection_score(scores: records.Scores, loss: float, metric: str, epoch: int) -> float:
  """The number early stopping maximises: the negated loss for "loss", the epoch for "last"."""
  if metric == "last":
    return float(epoch)
  return -loss if metric == "loss" else float(getattr(scores, metric))


# --- phases: the thresholds, then the final report ------------------------------------------------


class ChosenThresholds(NamedTuple):
  """What `choose_thresholds` decided, for `validation_report`."""

  values: np.ndarray  # [36] float32, CATEGORIES order
  source: str  # where they came from, in words
  checkpoint: str  # the best checkpoint, restored into the trainer
  tune: Optional[steps.Predictions]  # the tune split's outputs when tuned there (its PR curves), else None


def choose_thresholds(trainer: Trainer, run: inputs.RunInputs, train_config: config_lib.TrainConfig,
                      run_dir: rundir_lib.RunDir, plan: Optional[records.RefitPlan] = None) -> ChosenThresholds:
  """Restores the best checkpoint and decides the thresholds: the plan's, tuned on tune, or 0.5 without a tune split.

  The chief writes them to `<model_dir>/thresholds.json` for the export.
  """
  tc = train_config
  best_path = run_dir.best_checkpoint(trainer)
  trainer.checkpoint.restore(best_path).assert_existing_objects_matched()
  if plan is not None:  # a refit has no tune split: the first run's thresholds
    chosen = ChosenThresholds(np.array(plan.thresholds, np.float32), plan.source, best_path, None)
  elif run.tune_ds is not None:
    tune = steps.evaluate_dataset(trainer.eval_step, run.tune_ds)
    values = metrics.tune_thresholds(run.splits.tune.labels, tune.scores, tc.min_tune_positives,
                                     tc.threshold_objective)
    chosen = ChosenThresholds(values, f"tuned on the tune split ({len(run.splits.tune)} messages) for "
                              f"{tc.threshold_objective}", best_path, tune)
  else:
    chosen = ChosenThresholds(labels.default_thresholds(), "0.5", best_path, None)
  run_dir.write_thresholds(chosen.values)
  return chosen


def validation_report(trainer: Trainer, run: inputs.RunInputs, train_config: config_lib.TrainConfig,
                      chosen: ChosenThresholds, writer: Optional[tf.summary.SummaryWriter] = None
                      ) -> records.FinalReport:
  """The restored model's report on the validation split at the chosen thresholds, and at 0.5.

  With a `writer`, the best epoch's per-category precision-recall curves on
  tune and validation go to TensorBoard (`pr_tune/<category>`, `pr_validation/<category>`).
  """
  tc, best_epoch = train_config, int(trainer.state.best_epoch.numpy())
  validation, truth = steps.evaluate_dataset(trainer.eval_step, run.validation_ds), run.splits.validation.labels
  if writer is not None:
    curves = {"validation": (truth, validation.scores)}
    if chosen.tune is not None:
      curves["tune"] = (run.splits.tune.labels, chosen.tune.scores)
    summaries.pr_curves(writer, best_epoch, curves)
  # With --text_fields=message,original: the same messages, as sent and as translated, at the same thresholds.
  languages = {split.name: metrics.report(split.examples.labels, steps.evaluate_dataset(
      trainer.eval_step, split.dataset).labels(chosen.values)) for split in run.languages}
  # A cheap fingerprint of the weights: every worker of a run logs the same one (--verbosity=1 shows it).
  logging.debug("final weights: sum of |w| = %.6f",
               float(sum(tf.reduce_sum(tf.abs(v)) for v in trainer.model.trainable_variables)))
  return records.FinalReport(
      scores=metrics.report(truth, validation.labels(chosen.values)),
      at_half=metrics.report(truth, validation.labels(labels.default_thresholds())),
      thresholds=dict(zip(labels.CATEGORIES, chosen.values.tolist())), threshold_source=chosen.source,
      validation_loss=validation.loss_sum / len(truth), best_epoch=best_epoch, checkpoint=chosen.checkpoint,
      select_metric=tc.select_metric, selected_on="nothing" if tc.select_metric == "last" else run.selection_name,
      training_data=training_summary(run.splits.train, run.decided), languages=languages)


def training_summary(train: examples_lib.Examples, decided: frozenset = frozenset()) -> records.TrainingData:
  """What the model learnt from: examples, positives per category (`related`: label 1), messages per genre, and
  how many of the examples are operators' decisions (`decided`: their ids)."""
  genres, counts = np.unique(train.genres.astype(str), return_counts=True)
  return records.TrainingData(len(train), dict(zip(labels.CATEGORIES, (train.labels == 1).sum(0).tolist())),
                              {g or "unknown": int(n) for g, n in zip(genres, counts)},
                              decisions=sum(1 for i in train.ids if str(i) in decided))
