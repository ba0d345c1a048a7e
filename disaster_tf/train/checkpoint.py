"""What a checkpoint holds, where it lives, and how to get a model back from one.

A model dir written by training holds:
  config.json       the run's Config (model shape and training settings)
  flags.txt         the flags train.py was called with (for humans)
  vocabulary.txt    the adapted word vocabulary, one token a line (models reading token ids)
  word_ngrams.tsv   TF-IDF models: each n-gram and its idf (char_ngrams.tsv likewise)
  checkpoints/      the last few saves, named by global step (tf.train.CheckpointManager):
                    one at the end of every epoch, and one at a clean stop (SIGINT/SIGTERM)
  best/             the epoch with the best tune (or validation) score
  thresholds.json   per-category decision thresholds, tuned after training
  metrics.json      per-epoch and final reports
  train/, tune/     TensorBoard events (`validation/` instead of `tune/` with
                    --tune_fraction=0: events go to the split that picks the epoch)
  scratch/          while a run is going: its text spool and vectorised caches
  .lock             while a run is going: its PID, under an flock (`dirlock`)

Every checkpoint also stores a fingerprint of the vocabularies and the category
list, so that a checkpoint is never silently paired with another vocabulary,
and the run's identity (data fingerprint, split, model shape), so that a
resume cannot change what the validation split means. A checkpoint counts as
readable only if every tensor in it can be read (`latest_readable`).
"""

import glob
import json
import os
import re
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

import keras
import numpy as np
import tensorflow as tf
from absl import logging
from google.protobuf import text_format

from disaster_tf import config as config_lib
from disaster_tf import labels
from disaster_tf.model import features
from disaster_tf.model import networks

CHECKPOINTS_DIR = "checkpoints"
BEST_DIR = "best"
THRESHOLDS_FILE = "thresholds.json"
METRICS_FILE = "metrics.json"  # the run's history and final report (rundir.RunDir.write_metrics)
REFIT_DIR = "refit"  # a --refit run's own model dir, inside the first run's
PRUNED_FILE = "PRUNED"  # in a pruned model dir (prune.py): what was removed, and that train.py must not write there
DECISIONS_DIR = "decisions"  # train.py --decisions: the snapshot of the decisions the run trains on (two-file CSV)
ENGLISH_DIR = "english"  # a routed run's English-only model (--route_english), inside its run's
ENCODER_DIR = "encoder"  # an ensemble's encoder member (--encoder_member), fine-tuned in a run of its own inside it
MEMBERS_FILE = "members.json"  # a three-member run's blend: the encoder's weight, thresholds, report (members.py)
LINEAR_DIR = "linear"  # the run fitting an ensemble's linear member on its own (--linear_epochs), inside its run's


class TrainState(tf.Module):
  """Loop counters that must survive a restart, as checkpointed variables."""

  def __init__(self, vocabulary_fingerprint: str, identity: Optional[Dict[str, Any]] = None):
    """Args: the vocabularies' `features.fingerprint_record`; the run's identity (`check_identity`), fixed at
    epoch 1."""
    super().__init__(name="train_state")
    self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
    self.best_metric = tf.Variable(float("-inf"), dtype=tf.float64, trainable=False, name="best_metric")
    self.best_epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="best_epoch")
    self.bad_epochs = tf.Variable(0, dtype=tf.int64, trainable=False, name="bad_epochs")
    # Batches of epoch `epoch + 1` already trained: non-zero only in a checkpoint
    # written by a clean stop mid-epoch; a resumed run skips that many batches.
    self.step_in_epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="step_in_epoch")
    self.fingerprint = tf.Variable(vocabulary_fingerprint, dtype=tf.string, trainable=False,
                                   name="fingerprint")
    self.identity = tf.Variable(json.dumps(identity or {}, sort_keys=True), dtype=tf.string, trainable=False,
                                name="identity")


def make_checkpoint(model: keras.Model, optimizer: Optional[keras.optimizers.Optimizer],
                    state: TrainState) -> tf.train.Checkpoint:
  """The checkpoint object; export builds the same one without the optimizer."""
  if optimizer is None:
    return tf.train.Checkpoint(model=model, state=state)
  return tf.train.Checkpoint(model=model, optimizer=optimizer, state=state)


_IDENTITY_KEY = "state/identity/.ATTRIBUTES/VARIABLE_VALUE"
_STATE_KEY = "state/{}/.ATTRIBUTES/VARIABLE_VALUE"


def check_identity(path: str, identity: Dict[str, Any]) -> None:
  """Raises ValueError, naming the flags, if the checkpoint at `path` belongs to a run with another identity.

  A run's identity (its data's fingerprint, split seed and fractions, model
  shape) is fixed at its first epoch: resuming with another split would report
  on messages the model trained on. Checkpoints from before identities were
  recorded pass.
  """
  reader = tf.train.load_checkpoint(path)
  if not reader.has_tensor(_IDENTITY_KEY):
    return
  recorded = json.loads(_as_str(reader.get_tensor(_IDENTITY_KEY)) or "{}")
  if not recorded:  # saved by a TrainState given no identity (export tooling, benchmarks): nothing to hold to
    return
  changed = []
  for key in sorted(set(recorded) & set(identity)):  # a key recorded before it existed: nothing to compare
    old, new = recorded[key], identity[key]
    if key == "model":
      changed += [f"--{'model' if k == 'architecture' else k}={new[k]!r} (was {old[k]!r})"
                  for k in sorted(new) if k in old and old[k] != new[k]]
    elif key == "data" and old != new:
      changed.append(f"--data: other contents (fingerprint {new}, was {old})")
    elif old != new:
      changed.append(f"--{key}={new!r} (was {old!r})")
  if changed:
    raise ValueError(f"{path}: this run was started with other settings: {'; '.join(changed)}. A run's data, split, "
                     "model and selection metric are fixed at its first epoch (another split would report on "
                     "messages the model trained on; another metric would compare scores on two scales); use the "
                     "first epoch's values, or a new --model_dir")


def read_state(path: str) -> Dict[str, float]:
  """A checkpoint's counters: epoch, best_metric, best_epoch, bad_epochs, step_in_epoch."""
  reader = tf.train.load_checkpoint(path)
  return {name: reader.get_tensor(_STATE_KEY.format(name)).item()
          for name in ("epoch", "best_metric", "best_epoch", "bad_epochs", "step_in_epoch")}


def error_reason(error: BaseException) -> str:
  """The first line of an error's message (a TF error's own message, without its traceback), for a sentence."""
  lines = (getattr(error, "message", None) or str(error)).strip().splitlines()
  return lines[0][:200] if lines else type(error).__name__


def _as_str(value) -> str:
  return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def unreadable(path: str) -> Optional[str]:
  """Why the checkpoint at `path` cannot be restored (every tensor is read), or None if it can."""
  try:
    reader = tf.train.load_checkpoint(path)
    for key in reader.get_variable_to_shape_map():
      reader.get_tensor(key)
  except Exception as e:  # pylint: disable=broad-except  # any failure to read means "not restorable"
    # (a truncated file gives OpError, ValueError or even IndexError: "Read less bytes than requested")
    return f"{type(e).__name__}: {error_reason(e)}"
  return None


def _step(path: str) -> int:
  match = re.search(r"-(\d+)$", path)
  return int(match.group(1)) if match else -1


def latest_readable(directory: str) -> Tuple[Optional[str], List[str]]:
  """The newest checkpoint in `directory` that can be restored, and what was skipped on the way.

  Looks past the CheckpointManager's state file (which may be missing, stale
  or hand-edited) at every `ckpt-N.index` in the directory, newest first.

  Returns:
    (the checkpoint's prefix or None, ["PREFIX: reason", ...] for each newer
    checkpoint that could not be read).
  """
  candidates = {os.path.abspath(p[:-len(".index")]) for p in glob.glob(os.path.join(directory, "ckpt-*.index"))}
  try:
    state = tf.train.get_checkpoint_state(directory)
  except (tf.errors.OpError, ValueError, text_format.ParseError):
    state = None  # an unreadable state file: the files themselves say what there is
  if state is not None:  # its paths come back already joined to `directory` (relative paths included)
    candidates |= {os.path.abspath(p) for p in state.all_model_checkpoint_paths}
  skipped = []
  for path in sorted(candidates, key=_step, reverse=True):
    reason = unreadable(path)
    if reason is None:
      return path, skipped
    skipped.append(f"{path}: {reason}")
  return None, skipped


def save(manager: tf.train.CheckpointManager, step) -> str:
  """`manager.save(checkpoint_number=step)`; a failed write becomes a sentence, and the state file stays.

  The CheckpointManager replaces its state file only after the data and index
  are written, so a save cut short (a full disk, an I/O error) leaves the
  previous checkpoint the one a restart picks.

  Raises:
    OSError: the write failed; the message names the directory and the last complete checkpoint.
  """
  try:
    return manager.save(checkpoint_number=step)
  except (tf.errors.OpError, OSError) as e:
    raise OSError(f"{manager.directory}: could not save a checkpoint ({error_reason(e)}); the last complete one, "
                  f"{manager.latest_checkpoint}, is intact. Free space or fix the directory, then run the same "
                  "command to resume") from e


def check_fingerprint(path: str, vocabularies: features.Vocabularies) -> None:
  """Refuses the checkpoint at `path` if it was trained with other vocabularies than `vocabularies`.

  Raises:
    ValueError: naming the model dir's files that differ from the training's (a hand-edited token, idf value
      or lexicon pair), or the category list.
  """
  reader = tf.train.load_checkpoint(path)
  key = "state/fingerprint/.ATTRIBUTES/VARIABLE_VALUE"
  if not reader.has_tensor(key):
    raise ValueError(f"{path}: not a disaster_tf checkpoint (no vocabulary fingerprint)")
  found = _as_str(reader.get_tensor(key)).split(" ")
  if found[0] == features.fingerprint(vocabularies):
    return
  if len(found) == 1 and found[0] == features.legacy_fingerprint(vocabularies):
    logging.warning("%s: written before checkpoints recorded idf values; the vocabularies' idf is not checked", path)
    return
  recorded = dict(item.split("=", 1) for item in found[1:])
  now = features.file_fingerprints(vocabularies)
  changed = sorted(name for name in set(recorded) | set(now) if recorded.get(name) != now.get(name)) if recorded else []
  what = (f"the model dir's {', '.join(changed)} differ{'s' if len(changed) == 1 else ''} from the training's (edited "
          "by hand, or copied from another run?)" if changed else
          "it was trained with another vocabulary or category list")
  raise ValueError(f"{path}: {what} (fingerprint {found[0]}, the model dir's vocabularies give "
                   f"{features.fingerprint(vocabularies)}); restore the files, or export from the model dir it was "
                   "trained in")


def resolve(model_dir: str, which: str = "best") -> str:
  """Finds a readable checkpoint: "best", "latest", or an explicit checkpoint prefix.

  "latest" is the newest readable checkpoint (each newer, unreadable one is
  named in a warning); "best" is refused if the best one cannot be read, since
  another would be a different model than the one reported.

  Raises:
    FileNotFoundError: no checkpoint there.
    ValueError: the checkpoint cannot be read (truncated, deleted in part, ...).
  """
  if which not in ("best", "latest"):
    if not tf.io.gfile.exists(which + ".index"):
      raise FileNotFoundError(f"{which}: no such checkpoint (expected {which}.index)")
    reason = unreadable(which)
    if reason:
      raise ValueError(f"{which}: the checkpoint cannot be read ({reason})")
    return which
  directory = os.path.join(model_dir, BEST_DIR if which == "best" else CHECKPOINTS_DIR)
  path, skipped = latest_readable(directory)
  if which == "best" and skipped:
    raise ValueError(f"{directory}: the best checkpoint cannot be read ({skipped[0]}); use --checkpoint=latest or "
                     "a checkpoint prefix, or train again")
  for what in skipped:
    logging.warning("skipped an unreadable checkpoint: %s", what)
  if path is None:
    if which == "latest" and os.path.exists(os.path.join(model_dir, PRUNED_FILE)):
      raise FileNotFoundError(f"{model_dir}: pruned (export.py --prune removed {CHECKPOINTS_DIR}/); its best "
                              "checkpoint is what it keeps: --checkpoint=best")
    raise FileNotFoundError(f"{directory}: no checkpoint; has train.py finished an epoch in {model_dir!r}?")
  return path


def finished(run_dir: str) -> bool:
  """Whether a run finished: its metrics.json holds a final report (unreadable or absent: not finished)."""
  try:
    with open(os.path.join(run_dir, METRICS_FILE), encoding="utf-8") as f:
      return bool(json.load(f).get("final"))
  except (OSError, ValueError, AttributeError):
    return False


def release_dir(model_dir: str) -> str:
  """The model dir whose best checkpoint is the release: its finished refit if it has one, else itself.

  A refit that has not finished (stopped, crashed, or still training) is passed over with a warning:
  the model chosen on tune is complete, and rerunning train.py finishes the refit.
  """
  refit = os.path.join(model_dir, REFIT_DIR)
  if not os.path.isdir(refit):
    return model_dir
  if finished(refit):
    logging.info("%s: taking the refit on train + tune, %s", model_dir, refit)
    return refit
  logging.warning("%s has not finished (no final report in its %s): taking the model chosen on tune, in %s; "
                  "run train.py again to finish the refit", refit, METRICS_FILE, model_dir)
  return model_dir


class LoadedModel(NamedTuple):
  """A trained model rebuilt from its model dir, with the text pipeline it was trained with."""

  config: config_lib.Config
  vocabularies: features.Vocabularies
  featurizer: features.Featurizer  # raw strings [batch] -> the model's inputs
  model: keras.Model  # with the checkpoint's weights
  checkpoint_path: str


def load_model(model_dir: str, which: str = "best", precision: str = "float32") -> LoadedModel:
  """Rebuilds a trained model from its model dir alone.

  Args:
    model_dir: a directory written by training.
    which: "best", "latest", or a checkpoint prefix.
    precision: the dtype policy the rebuilt backbone computes in, whatever
      the training's (variables are float32 in every policy, so any
      checkpoint loads into any of them).

  Returns:
    The config, vocabularies, featurizer, model with restored weights, and
    the checkpoint's path.
  """
  # Every file is read and checked before any TensorFlow object is built: a hand-edited one is a sentence.
  config = config_lib.load(model_dir)
  vocabularies = features.load(config.model, model_dir)
  path = resolve(model_dir, which)
  check_fingerprint(path, vocabularies)
  featurizer = features.Featurizer(config.model, vocabularies)
  model = networks.build_model(config.model, featurizer.sizes, precision, vocabularies.get(features.ENCODER))
  state = TrainState(features.fingerprint_record(vocabularies))
  try:
    make_checkpoint(model, None, state).restore(path).expect_partial().assert_existing_objects_matched()
  except (ValueError, AssertionError, tf.errors.OpError) as e:
    raise ValueError(f"{path}: the checkpoint does not fit the model that "
                     f"{os.path.join(model_dir, config_lib.CONFIG_FILE)} describes ({str(e).strip()[:300]}); was "
                     "config.json edited, or copied from another run?") from None
  return LoadedModel(config, vocabularies, featurizer, model, path)


def write_model_dir(model_dir: str, config: config_lib.Config, vocabularies: features.Vocabularies,
                    model: keras.Model, step: int = 1) -> str:
  """Writes a model dir that export and `load_model` read, for a model trained elsewhere (or not at all).

  For tests, benchmarks and tooling: config.json, the vocabularies and the model's weights as its best
  checkpoint (with the vocabularies' fingerprint and no run identity). Returns the checkpoint's prefix.
  """
  os.makedirs(model_dir, exist_ok=True)
  config_lib.save(config, model_dir)
  features.save(vocabularies, model_dir)
  checkpoint = make_checkpoint(model, None, TrainState(features.fingerprint_record(vocabularies)))
  return tf.train.CheckpointManager(checkpoint, os.path.join(model_dir, BEST_DIR), 1).save(step)


def write_thresholds(thresholds: np.ndarray, model_dir: str) -> None:
  """Writes [36] thresholds as `<model_dir>/thresholds.json` ({category: threshold}), atomically."""
  by_name = dict(zip(labels.CATEGORIES, np.asarray(thresholds, np.float64).tolist()))
  config_lib.write_text_atomic(os.path.join(model_dir, THRESHOLDS_FILE), json.dumps(by_name, indent=1) + "\n")


def read_thresholds(model_dir: str) -> np.ndarray:
  """[36] float32 thresholds from `<model_dir>/thresholds.json` (0.5 everywhere if absent)."""
  path = os.path.join(model_dir, THRESHOLDS_FILE)
  if not os.path.exists(path):
    logging.warning("%s: not found; every category is decided at 0.5", path)
    return labels.default_thresholds()
  try:
    with open(path, encoding="utf-8") as f:
      by_name = json.load(f)
    values = [float(by_name[c]) for c in labels.CATEGORIES] if sorted(by_name) == sorted(labels.CATEGORIES) else None
  except (ValueError, TypeError, AttributeError) as e:
    raise ValueError(f"{path}: not a thresholds file written by train.py ({e})") from None
  if values is None:
    raise ValueError(f"{path}: expected one threshold for each of the 36 categories, found {len(by_name)} "
                     "names; was it written for another category list?")
  if not all(0.0 <= v <= 1.0 for v in values):
    raise ValueError(f"{path}: thresholds must be probabilities in [0, 1]")
  return np.array(values, np.float32)
