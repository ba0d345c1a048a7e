"""The run's course as its log tells it: the plan first, a line as each phase starts, the time left after each
epoch, and why the epochs stopped.

A run has up to four training phases, in this order (`phases`): an ensemble's linear member fitted on its own
(--linear_epochs, in <model_dir>/linear), the network (--epochs, early stopping after --patience epochs without
a better selection score), with --encoder_member its encoder member (--encoder_epochs, in <model_dir>/encoder,
then the members' blend: members.py), and with --refit the same network again on train + tune (<model_dir>/refit). Each
ends in thresholds and a report on validation. `Course` says which phase is running and, from the epochs this
process has timed, how long the rest should take: a phase not yet started has no time of its own to go by, so
the estimate names it instead of guessing.
"""

import dataclasses
import os
import time
from typing import Any, Dict, List, Optional, Tuple

from absl import logging

from disaster_tf import config as config_lib
from disaster_tf.model import language
from disaster_tf.train import checkpoint as ckpt_lib

# The phases' keys, in their order: a routed run's English-only model first (its linear member, then its
# network); a refit fits its own linear member first, as the first run did; the language gate comes last.
ENGLISH_LINEAR, ENGLISH = "english_linear", "english"
LINEAR, NETWORK, REFIT_LINEAR, REFIT, GATE = "linear", "network", "refit_linear", "refit", "gate"
ENCODER = "encoder"  # an ensemble's encoder member (--encoder_member), after the network
NETWORK_NAMES = {"cnn_rnn": "the CNN-RNN", "bigru": "the BiGRU", "multi_cnn": "the CNN", "linear": "the linear model",
                 "ensemble": "the ensemble", "wide_deep": "the wide-and-deep model", "encoder": "the encoder"}


@dataclasses.dataclass(frozen=True)
class Phase:
  """One training phase of a run: what trains, for how many epochs at most, and where."""

  key: str  # LINEAR, NETWORK or REFIT
  what: str  # in words: "the linear member", "the CNN", ...
  epochs: int  # at most (a refit trains as many as the first run chose: known when it starts)
  patience: int  # epochs without a better selection score before stopping; 0: every epoch runs
  directory: str


def network_name(config: config_lib.Config) -> str:
  """The network in words; an ensemble whose linear member is fitted apart trains its CNN alone."""
  if config.model.architecture == "ensemble" and config.train.linear_epochs:
    return "the CNN"
  return NETWORK_NAMES[config.model.architecture]


def phases(config: config_lib.Config, model_dir: str) -> Tuple[Phase, ...]:
  """The training phases `config` runs in `model_dir`, in order."""
  tc, name = config.train, network_name(config)
  refit_dir = os.path.join(model_dir, ckpt_lib.REFIT_DIR)
  out = []
  if tc.route_english:
    english = os.path.join(model_dir, ckpt_lib.ENGLISH_DIR)
    if tc.linear_epochs:
      out.append(Phase(ENGLISH_LINEAR, "the English model's linear member", tc.linear_epochs, 0,
                       os.path.join(english, ckpt_lib.LINEAR_DIR)))
    out.append(Phase(ENGLISH, "the English model's " + name[len("the "):], tc.epochs, tc.patience, english))
  if tc.linear_epochs:
    out.append(Phase(LINEAR, "the linear member", tc.linear_epochs, 0, os.path.join(model_dir, ckpt_lib.LINEAR_DIR)))
  out.append(Phase(NETWORK, name, tc.epochs, tc.patience, model_dir))
  if tc.encoder_member:
    out.append(Phase(ENCODER, "the encoder member", tc.encoder_epochs, 0, os.path.join(model_dir,
                                                                                      ckpt_lib.ENCODER_DIR)))
  if tc.refit and tc.linear_epochs:
    out.append(Phase(REFIT_LINEAR, "the refit's linear member", tc.linear_epochs, 0,
                     os.path.join(refit_dir, ckpt_lib.LINEAR_DIR)))
  if tc.refit:
    out.append(Phase(REFIT, "the refit's " + name[len("the "):], tc.epochs, 0, refit_dir))
  if tc.language_gate:
    out.append(Phase(GATE, "the language gate", language.EPOCHS, 0, model_dir))
  return tuple(out)


def linear_phase(phase: str) -> str:
  """The key of the linear member's phase that comes before network phase `phase`."""
  return {REFIT: REFIT_LINEAR, ENGLISH: ENGLISH_LINEAR}.get(phase, LINEAR)


METRIC_NAMES = {"total": "Total", "mean_positive_f1": "mean positive F1", "micro_f1": "micro-F1", "loss": "loss",
                "last": "last epoch"}


def plan_lines(config: config_lib.Config, model_dir: str) -> List[str]:
  """What the log says first: a line per phase, with the flag that sets its length, and how to make a short run."""
  tc = config.train
  selection = "tune" if tc.tune_fraction else "validation"
  thresholds = "thresholds tuned on tune" if tc.tune_fraction else "thresholds 0.5 (no tune split)"
  planned = phases(config, model_dir)
  lines = [f"training {model_dir} in {len(planned)} phase{'s' if len(planned) > 1 else ''}, then {thresholds} and "
           "the report on validation:"]
  for number, phase in enumerate(planned, 1):
    if phase.key in (LINEAR, ENGLISH_LINEAR):
      what = f"{phase.epochs} epochs (--linear_epochs), in {phase.directory}"
    elif phase.key == ENGLISH:
      what = f"up to {phase.epochs} epochs on the `message` texts alone, in {phase.directory}"
    elif phase.key == NETWORK:
      what = f"up to {phase.epochs} epochs (--epochs)" + (
          f", stopping after {phase.patience} without a better {selection} {METRIC_NAMES[tc.select_metric]} "
          "(--patience)" if phase.patience else "")
    elif phase.key == ENCODER:
      what = (f"{phase.epochs} epochs (--encoder_epochs) fine-tuning {tc.encoder_member}, in {phase.directory}; "
              "then the three members' blend, its thresholds tuned on tune")
    elif phase.key == REFIT_LINEAR:
      what = f"{phase.epochs} epochs on train + tune, in {phase.directory}"
    elif phase.key == GATE:
      what = (f"{phase.epochs} epochs over the training split's messages against their originals "
              "(--language_gate), in seconds")
    else:
      what = f"as many epochs as the network's phase chose, on train + tune, in {phase.directory}"
    lines.append(f"  {number}. {phase.what}: {what}")
  if tc.linear_epochs > 1 or tc.epochs > 1:
    short = " --linear_epochs=1" if tc.linear_epochs else ""
    lines.append(f"a short trial run: add --epochs=1{short} (and another --model_dir)")
  return lines


class Course:
  """Where a run is in its phases, said in the log: a line as each starts, the time left after each epoch.

  Times are this process's: an epoch's wall time from the end of the one before, or for the first from
  `epochs_start` (training, scoring the selection split and saving: not the data's loading), so a resumed run
  estimates from the epochs it has run itself.
  """

  def __init__(self, config: config_lib.Config, model_dir: str):
    self.phases = phases(config, model_dir)
    self.current: Optional[Phase] = None
    self.later: Tuple[Phase, ...] = ()  # the phases after the current one
    self.epoch_seconds: Dict[str, List[float]] = {}
    self._mark = time.monotonic()

  def begin(self, key: str, epochs: Optional[int] = None) -> None:
    """Logs the start of phase `key`; `epochs` overrides its plan's number (a refit's is known only now)."""
    index, phase = next((i, p) for i, p in enumerate(self.phases) if p.key == key)
    if epochs is not None:
      phase = dataclasses.replace(phase, epochs=epochs)
    self.current, self.later = phase, self.phases[index + 1:]
    self._mark = time.monotonic()
    length = f"up to {phase.epochs}" if phase.patience else str(phase.epochs)
    logging.info("phase %d/%d: %s, %s epoch%s", index + 1, len(self.phases), phase.what, length,
                 "" if phase.epochs == 1 else "s")

  def epochs_start(self) -> None:
    """Starts the clock of the phase's first epoch: its data, vocabularies and model are ready."""
    self._mark = time.monotonic()

  def epoch_done(self, epoch: int) -> str:
    """Records the epoch's wall time; returns the time left, in words (", ~1m20s left ..."), for its log line."""
    now = time.monotonic()
    times = self.epoch_seconds.setdefault(self.current.key, [])
    times.append(now - self._mark)
    self._mark = now
    names = [p.what for p in self.later]
    then = f", then {', '.join(names[:-1])} and {names[-1]}" if len(names) > 1 else f", then {names[0]}" if names \
        else ""
    if epoch >= self.current.epochs:
      return then
    left = (self.current.epochs - epoch) * sum(times) / len(times)
    at_most = " at most" if self.current.patience else ""  # early stopping may end it sooner
    return f", ~{duration(left)} left{at_most} in {self.current.what}{then}" if then else \
        f", ~{duration(left)} left{at_most} in the run"


def cure(phase: str) -> str:
  """The flags that tame a diverging loss in `phase`: the linear member trains at --learning_rate times
  --linear_lr_multiplier, with its own class weights (no --class_weight_cap)."""
  if phase in (LINEAR, REFIT_LINEAR, ENGLISH_LINEAR):
    return "lower --linear_lr_multiplier (the linear member's rate is it times --learning_rate)"
  return "lower --learning_rate or --class_weight_cap"


def stopped_early(epoch: int, best_epoch: int, patience: int, metric: str, selection: str) -> None:
  """Logs why a phase ended before its last epoch."""
  logging.info("stopped early after epoch %d (best %d): %d epoch%s without a better %s %s", epoch, best_epoch,
               patience, "" if patience == 1 else "s", selection, metric)


def duration(seconds: float) -> str:
  """Seconds in words: 45s, 3m05s."""
  return f"{int(seconds) // 60}m{int(seconds) % 60:02d}s" if seconds >= 60 else f"{seconds:.0f}s"


PROGRESS_SECONDS = 30.0  # without a progress bar (not a terminal), a line this often: CI logs and nohup show life


class EpochProgress:
  """Log lines of an epoch's progress at most every PROGRESS_SECONDS: steps, examples/s, time left."""

  def __init__(self, epoch: int, total: int, skip: int, batch_size: int):
    self.epoch, self.total, self.skip, self.batch_size = epoch, total, skip, batch_size
    self.start = self.last = time.monotonic()

  def update(self, done: int) -> None:
    now = time.monotonic()
    if done >= self.total or now - self.last < PROGRESS_SECONDS:
      return
    self.last = now
    rate = (done - self.skip) / max(now - self.start, 1e-9)  # steps a second in this process
    logging.info("epoch %d: step %d/%d (%d%%), %.0f examples/s, ~%s left in the epoch", self.epoch, done, self.total,
                 100 * done // self.total, rate * self.batch_size,
                 duration((self.total - done) / max(rate, 1e-9)))


def log_epoch(entry: Dict[str, Any], epochs: int, best: bool, left: str) -> None:
  """The line of an epoch's end: its losses, its selection scores, its time, and the time `left`."""
  scores = entry["selection"]
  logging.info("epoch %d/%d: train loss %.4f, %s loss %.4f, total %.2f, mean positive F1 %.3f, micro-F1 %.3f, "
               "%.1fs%s%s", entry["epoch"], epochs, entry["train_loss"], entry["selection_split"],
               entry["selection_loss"], scores["total"], scores["mean_positive_f1"], scores["micro_f1"],
               entry["train_seconds"], " (best so far)" if best else "", left)
