"""A model dir as a small database: what a run reads from it and writes to it, in one place.

`RunDir` is the only writer of a model dir's run files (config.json,
flags.txt, the vocabularies), its history and final report (metrics.json),
its thresholds and its checkpoints; `loop.py` asks it, and never touches a
file itself. Its invariants:

  1. One writer: `loop.train_and_evaluate` holds the directory's lock
     (`dirlock`) before a RunDir is made, and every other task of a
     multi-worker run writes only its own `.worker-N` save dir (`chief` False:
     the model dir's files are left alone).
  2. Every file is replaced atomically (`config.write_text_atomic`: a
     temporary file, fsync, rename) and every checkpoint by a
     CheckpointManager, which names a save in its state file only after its
     data and index are whole: a crash or a full disk at any write leaves the
     previous complete state readable, and the same command resumes from it.
  3. A refused run writes nothing: the checks (`check_same_model`, the
     vocabulary fingerprint and run identity in `restore`) run before
     `write_run_files`, the first write.
  4. With --decisions, a run trains on one snapshot of the operators' decisions (`DecisionsSnapshot`):
     taken once when it starts, kept in <model_dir>/decisions with its first run files, and read by every
     phase, the refit and a resume, so a decision saved meanwhile can neither fail the run nor train its
     members on different labels.
  5. Each epoch saves `best/` before `checkpoints/`, then metrics.json: if a
     later write fails, checkpoints/ still names the previous epoch, and the
     rerun repeats this one against a best/ that is never worse than the
     counters record. A restore takes the newest readable checkpoint
     (`checkpoint.latest_readable`), and the best record of `best/` wins over
     older counters, so lost state never lets a worse epoch replace the best.
"""

import glob
import json
import os
from typing import Any, Dict, List, Optional

import keras
import numpy as np
from absl import logging

from disaster_tf import config as config_lib
from disaster_tf import records
from disaster_tf.data import decided
from disaster_tf.data import decisions as decisions_lib
from disaster_tf.data import opinions
from disaster_tf.model import features
from disaster_tf.train import checkpoint as ckpt_lib
from disaster_tf.train import distribute
from disaster_tf.train import trainer as trainer_lib

METRICS_FILE = ckpt_lib.METRICS_FILE
FLAGS_FILE = "flags.txt"


class RunDir:
  """One process's view of a run's model dir (see the module docstring for what it guarantees)."""

  def __init__(self, dirs: distribute.RunDirs):
    self.dirs = dirs
    self.model_dir = dirs.model_dir
    self.chief = dirs.chief

  @classmethod
  def at(cls, model_dir: str) -> "RunDir":
    """A single process's model dir (it is the chief; scratch below it)."""
    return cls(distribute.RunDirs(model_dir, model_dir, os.path.join(model_dir, distribute.SCRATCH_DIR), True))

  # --- before anything is written -------------------------------------------------------------

  def check_same_model(self, config: config_lib.Config) -> None:
    """Refuses to resume a model dir whose checkpoints have another model shape.

    Raises:
      ValueError: config.json holds another ModelConfig; names the fields that differ.
    """
    if not os.path.exists(os.path.join(self.model_dir, config_lib.CONFIG_FILE)) or not self.has_checkpoint():
      return  # a run that never saved a checkpoint (its first epoch failed) binds nothing: it starts anew
    old = config_lib.load(self.model_dir)
    if old.model != config.model:
      changed = [k for k, v in old.model.__dict__.items() if getattr(config.model, k) != v]
      raise ValueError(f"{self.model_dir} holds a run with another model ({', '.join(changed)} differ); "
                       "use a new --model_dir or the same model flags")

  def has_checkpoint(self) -> bool:
    """Whether a run here ever saved a checkpoint (an epoch, or a stop mid-epoch): what a resume resumes."""
    return any(glob.glob(os.path.join(self.model_dir, d, "ckpt-*.index"))
               for d in (ckpt_lib.CHECKPOINTS_DIR, ckpt_lib.BEST_DIR))

  def saved_vocabularies(self, config: config_lib.Config) -> Optional[features.Vocabularies]:
    """The vocabularies a previous run of this model dir adapted, or None for a new run (and for one whose
    first epoch failed before any checkpoint: the corrected command adapts them again)."""
    if not features.saved(config.model, self.model_dir) or not self.has_checkpoint():
      return None
    return features.load(config.model, self.model_dir)

  def restore(self, trainer: trainer_lib.Trainer, vocabularies: features.Vocabularies, learning_rate: float) -> bool:
    """Restores the newest readable checkpoint into `trainer`, if there is one; returns whether there was.

    Unreadable checkpoints (a truncated or deleted file, a lost state file) are
    skipped with a warning naming each; with none left in `checkpoints/`, the
    best checkpoint (a whole one too) is the start. Every worker resumes from
    the chief's model dir.

    Args:
      vocabularies: the run's; a checkpoint trained with others is refused.
      learning_rate: the flags' rate, which replaces the one the checkpoint restores.

    Raises:
      ValueError: the checkpoint was trained with another vocabulary, data,
        split or model shape (the run's identity: `trainer.run_identity`).
    """
    latest, skipped = ckpt_lib.latest_readable(os.path.join(self.model_dir, ckpt_lib.CHECKPOINTS_DIR))
    best, best_skipped = ckpt_lib.latest_readable(os.path.join(self.model_dir, ckpt_lib.BEST_DIR))
    for what in skipped + best_skipped:
      logging.warning("skipped an unreadable checkpoint: %s", what)
    start = latest or best
    if start is None:
      return False
    ckpt_lib.check_fingerprint(start, vocabularies)
    ckpt_lib.check_identity(start, json.loads(trainer.state.identity.numpy().decode("utf-8")))
    trainer.checkpoint.restore(start).assert_existing_objects_matched()
    logging.info("resumed from %s (epoch %d)", start, int(trainer.state.epoch.numpy()))
    _keep_best_record(trainer.state, best)
    _set_learning_rate(trainer.optimizer, learning_rate)
    return True

  # --- the run's files ---------------------------------------------------------------------------

  def write_run_files(self, config: config_lib.Config, vocabularies: features.Vocabularies,
                      flags_text: Optional[str]) -> None:
    """Writes config.json, flags.txt (if given) and, for a new run, the vocabularies, each atomically."""
    if not self.chief:
      return
    config_lib.save(config, self.model_dir)
    if flags_text is not None:
      config_lib.write_text_atomic(os.path.join(self.model_dir, FLAGS_FILE), flags_text)
    if not features.saved(config.model, self.model_dir) or not self.has_checkpoint():  # a resumed run keeps its own
      features.save(vocabularies, self.model_dir)

  def load_history(self, last_epoch: int) -> List[Dict[str, Any]]:
    """Per-epoch entries of an interrupted run, up to its last checkpointed epoch.

    Raises:
      ValueError: metrics.json is not one train.py wrote; says how to go on.
    """
    path = os.path.join(self.model_dir, METRICS_FILE)
    if not last_epoch or not os.path.exists(path):
      return []
    try:
      with open(path, encoding="utf-8") as f:
        return [e for e in json.load(f).get("epochs", []) if e["epoch"] <= last_epoch]
    except (ValueError, KeyError, TypeError, AttributeError) as e:
      raise ValueError(f"{path}: not a metrics file written by train.py ({e}); restore it, or move it away to "
                       "resume with the per-epoch history starting afresh") from None

  def write_metrics(self, config: config_lib.Config, load_report: records.LoadReport,
                    history: List[Dict[str, Any]], final: Optional[records.FinalReport]) -> None:
    """metrics.json: the config, what loading read, every epoch so far, and the final report (None until then)."""
    if not self.chief:
      return
    body = {"config": json.loads(config.to_json()), "data": load_report.to_json(), "epochs": history,
            "final": final.to_json() if final is not None else None}
    config_lib.write_text_atomic(os.path.join(self.model_dir, METRICS_FILE), json.dumps(body, indent=1) + "\n")

  def write_thresholds(self, thresholds: np.ndarray) -> None:
    """thresholds.json, which the export reads."""
    if self.chief:
      ckpt_lib.write_thresholds(thresholds, self.model_dir)

  # --- checkpoints -------------------------------------------------------------------------------

  @staticmethod
  def save_epoch(trainer: trainer_lib.Trainer, improved: bool) -> None:
    """Saves a finished epoch: to best/ first if it `improved`, then to checkpoints/ (invariant 4).

    Named by global step (TF's convention), so a mid-epoch save never collides with an epoch's.

    Raises:
      OSError: a save failed; the message names the last complete checkpoint.
    """
    if improved:
      ckpt_lib.save(trainer.best_manager, trainer.optimizer.iterations)
    ckpt_lib.save(trainer.manager, trainer.optimizer.iterations)

  @staticmethod
  def save_stopped(trainer: trainer_lib.Trainer, step_in_epoch: int) -> str:
    """Saves a run stopped `step_in_epoch` steps into an epoch (a resumed run skips them); returns the prefix."""
    trainer.state.step_in_epoch.assign(step_in_epoch)
    return ckpt_lib.save(trainer.manager, trainer.optimizer.iterations)

  @staticmethod
  def best_checkpoint(trainer: trainer_lib.Trainer) -> str:
    """The best epoch's checkpoint, or the latest if best/ was lost and no epoch since has scored."""
    best_path, _ = ckpt_lib.latest_readable(trainer.best_manager.directory)
    if best_path is None:
      best_path = trainer.manager.latest_checkpoint
      logging.warning("no readable best checkpoint: reporting the latest, %s", best_path)
    return best_path


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


def _set_learning_rate(optimizer: keras.optimizers.Optimizer, learning_rate: float) -> None:
  """The flags' rate replaces a restored constant one; a schedule continues from the restored step counter."""
  optimizer = getattr(optimizer, "inner_optimizer", optimizer)  # under a LossScaleOptimizer
  if isinstance(optimizer._learning_rate, keras.optimizers.schedules.LearningRateSchedule):  # pylint: disable=protected-access
    return
  restored_rate = float(optimizer.learning_rate.numpy())
  if restored_rate != learning_rate:
    logging.info("learning rate %g (flags) replaces %g (checkpoint)", learning_rate, restored_rate)
    optimizer.learning_rate = learning_rate


class DecisionsSnapshot:
  """The operators' decisions a run trains on (--decisions): one snapshot, taken when the run starts.

  A new run takes it into its scratch dir, and `keep` moves it into <model_dir>/decisions when the run writes
  its first files (a refused run leaves nothing); a resumed run reads the one it kept, whatever the decisions
  file holds now (it says how many decisions are newer: a new --model_dir trains on them).
  """

  def __init__(self, decisions_path: str, dirs: distribute.RunDirs):
    self.kept = os.path.join(dirs.model_dir, ckpt_lib.DECISIONS_DIR)
    self.chief = dirs.chief
    if not os.path.isfile(decisions_path):
      raise decisions_lib.StoreError(f"--decisions={decisions_path}: no such file (the triage page's --db)")
    store = decisions_lib.Store(decisions_path)
    if os.path.isdir(self.kept):
      self.path, self.taken = self.kept, False
      kept = {(d.key, d.number) for d in decided.read_snapshot(self.kept)}
      newer = sum((k, str(d.decision_id)) not in kept for k, d in store.standing().items())
      logging.info("decisions: this run's snapshot in %s (%d), taken when it started%s", self.kept, len(kept),
                   f"; {newer} standing now are not in it: train into a new --model_dir to learn from them"
                   if newer else "")
    else:
      self.path, self.taken = os.path.join(dirs.scratch, "decisions-snapshot"), True
      count = decided.take_snapshot(store, self.path)
      differ, settled = opinions.summary(store.live())
      logging.info("decisions: a snapshot of the %d standing in %s, kept in %s for every phase of this run; "
                   "%d messages had disagreements between two operators (%d settled by a reviewer, whose decision "
                   "trains; the rest train on the latest)", count, decisions_path, self.kept, differ, settled)

  def keep(self) -> None:
    """Moves the snapshot this run took into the model dir (once; the chief only), before its first run files."""
    if self.taken and self.chief and not os.path.isdir(self.kept):
      os.makedirs(os.path.dirname(self.kept), exist_ok=True)
      os.replace(self.path, self.kept)
      self.path, self.taken = self.kept, False
