"""The loop that closes by itself: after every N new decisions, train and export a new version in the background.

`triage.py --db=... --export_dir=BASE --retrain_every=N --retrain_flagfile=F` starts a `Retrainer` beside the
page. It wakes on each saved decision (`poke`) and every POLL_SECONDS; once the standing decisions number N more
than the serving model was trained on, it runs, one after the other, as child processes of the page:

  train.py --flagfile=F [--data=D] --decisions=DB --model_dir=<retrain_dir>/<run> [--retrain_flags]
  export.py --model_dir=<retrain_dir>/<run> --export_base=BASE

Child processes, not threads: the page never imports training (setup.cfg's page-never-trains contract), a
crash or an out-of-memory kill of a run cannot take the page down, and training gets every core while the page
answers on its own. The page picks the new version up as it picks up any (app.TriageApp.refresh), re-ranks the
queue with it, and its Model tab shows `Status`. One run at a time: the loop thread is the only one that starts
them, and each holds an exclusive `flock` on `<retrain_dir>/.retrain.lock`, passed on to the children, so that a
second page on the same directory, or the children of a page killed meanwhile, never train beside it.

A run that fails (bad data, a full disk, killed) leaves the serving version as it was (export.py writes a version
whole or not at all) and the decisions untouched (training only reads a snapshot of them); the Model tab says
why, with the run's log, and the next run starts after N more decisions.

Why not a cron job: the page already holds the database and knows when a decision is saved, and a timer would
have to repeat the count, the lock and the status the Model tab reads; `disaster-train` on a timer still works
beside it (it takes its own model dir's lock).
"""

import dataclasses
import datetime
import fcntl
import os
import subprocess
import sys
import threading
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from absl import logging

from disaster_tf.data import decisions

POLL_SECONDS = 5.0  # besides each decision's poke: decisions saved by another page on the same database count too
LOCK_FILE = ".retrain.lock"
LOG_LINES = 5  # of a failed run's log, on the Model tab


@dataclasses.dataclass(frozen=True)
class RetrainConfig:
  """What a retrain runs: triage.py's --retrain_* flags, its --db and --export_dir."""

  every: int  # new standing decisions that start a run
  flagfile: str  # the training configuration (the serving model's, as a rule)
  db: str  # the decisions (train.py --decisions)
  export_base: str  # where export.py writes the new version, and the page follows
  retrain_dir: str  # the runs' model dirs and logs
  data: Optional[str] = None  # --data, if not the flagfile's
  train_flags: Tuple[str, ...] = ()  # more train.py flags (e.g. --epochs=3 for a faster, rougher model)

  def __post_init__(self):
    if self.every < 1:
      raise ValueError(f"--retrain_every={self.every}: expected a number of decisions >= 1")
    if not os.path.isfile(self.flagfile):
      raise ValueError(f"--retrain_flagfile={self.flagfile}: no such file")


@dataclasses.dataclass(frozen=True)
class Status:
  """What the Model tab says of the retrains (/api/model's `retrain`)."""

  state: str  # "waiting" (for `every` new decisions), "training", "exporting", "failed", "refused"
  every: int
  decisions: int  # standing decisions now (at the last count)
  trained_on: int  # standing decisions the serving model (or the last run) started from
  started: Optional[str] = None  # the last run's start, UTC
  finished: Optional[str] = None
  error: Optional[str] = None  # why the last run failed, with the end of its log
  log: Optional[str] = None  # the last run's log file
  model_dir: Optional[str] = None  # the last run's model dir

  def to_json(self) -> Dict:
    return dataclasses.asdict(self)


Command = Callable[[str], List[List[str]]]  # a run's model dir -> the argv of each step, in order


class Retrainer:
  """Counts decisions and runs the retrains, in a thread of its own (`start`)."""

  def __init__(self, config: RetrainConfig, store: decisions.Store, trained_on: int,
               commands: Optional[Command] = None):
    self.config, self.store = config, store
    self.commands = commands or self.default_commands
    count = store.count_standing()
    # A serving model trained on more decisions than this database holds learnt them elsewhere (another file, or
    # decisions since undone): the next run waits for `every` new ones here, not for this file to catch up.
    self.status = Status("waiting", config.every, count, min(trained_on, count))
    self._wake, self._stop = threading.Event(), threading.Event()
    self._thread: Optional[threading.Thread] = None
    self._child: Optional[subprocess.Popen] = None
    self._running = threading.Lock()  # this process's run under way (the flock keeps other processes out)

  def default_commands(self, model_dir: str) -> List[List[str]]:
    """train.py then export.py, with this process's Python."""
    c = self.config
    train = [sys.executable, "-m", "disaster_tf.cli.train", f"--flagfile={c.flagfile}", f"--decisions={c.db}",
             f"--model_dir={model_dir}", *([f"--data={c.data}"] if c.data else []), *c.train_flags]
    export = [sys.executable, "-m", "disaster_tf.cli.export", f"--model_dir={model_dir}",
              f"--export_base={c.export_base}"]
    return [train, export]

  def start(self) -> "Retrainer":
    self._thread = threading.Thread(target=self._loop, name="retrain", daemon=True)
    self._thread.start()
    return self

  def poke(self) -> None:
    """A decision was saved: count again now."""
    self._wake.set()

  def stop(self) -> None:
    """Stops the loop; a run under way is terminated (its model dir is left, the serving version unchanged)."""
    self._stop.set()
    self._wake.set()
    child = self._child
    if child is not None and child.poll() is None:
      child.terminate()
    if self._thread is not None:
      self._thread.join()

  def _loop(self) -> None:
    while not self._stop.is_set():
      self._wake.wait(POLL_SECONDS)
      self._wake.clear()
      if not self._stop.is_set():
        self.check()

  def check(self) -> Status:
    """Counts the standing decisions; runs a retrain when `every` more than `trained_on` stand (not while one
    of this process's runs is under way: then its status)."""
    if not self._running.acquire(blocking=False):
      return self.status
    try:
      return self._check()
    finally:
      self._running.release()

  def _check(self) -> Status:
    try:
      count = self.store.count_standing()
    except decisions.StoreError as e:
      logging.warning("retrain: cannot count the decisions: %s", e)
      return self.status
    self.status = dataclasses.replace(self.status, decisions=count)
    if count - self.status.trained_on >= self.config.every:
      self.run(count)
    return self.status

  def run(self, count: int) -> Status:
    """One retrain from `count` standing decisions, under the retrain dir's lock; returns how it ended."""
    c = self.config
    os.makedirs(c.retrain_dir, exist_ok=True)
    with open(os.path.join(c.retrain_dir, LOCK_FILE), "a+", encoding="utf-8") as lock:
      try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
      except BlockingIOError:
        self.status = dataclasses.replace(self.status, state="refused", error=(
            f"another process is retraining in {c.retrain_dir} (its lock is held): this page waits for it"))
        return self.status
      stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S-%f")
      model_dir = os.path.join(c.retrain_dir, f"run-{stamp}")
      log = model_dir + ".log"
      self.status = Status("training", c.every, count, self.status.trained_on, _now(), None, None, log, model_dir)
      logging.info("retrain: %d standing decisions (%d when the serving model was trained); training in %s",
                   count, self.status.trained_on, model_dir)
      error = self._steps(self.commands(model_dir), log, lock.fileno())
    # Counted as done either way: a run that failed on these decisions is tried again after `every` more, not in
    # a loop that fails each POLL_SECONDS.
    self.status = dataclasses.replace(self.status, state="failed" if error else "waiting", finished=_now(),
                                      error=error, trained_on=count)
    (logging.warning if error else logging.info)("retrain: %s", error or "exported a new version")
    return self.status

  def _steps(self, steps: Sequence[List[str]], log: str, lock_fd: int) -> Optional[str]:
    """Runs each step in turn, its output to `log`; returns why one failed, or None."""
    with open(log, "ab") as out:
      for k, argv in enumerate(steps):
        if self._stop.is_set():
          return "stopped with the page before it finished"
        self.status = dataclasses.replace(self.status, state="training" if k == 0 else "exporting")
        try:
          self._child = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         pass_fds=(lock_fd,), env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
        except OSError as e:
          return f"{os.path.basename(argv[0])} could not start: {e}"
        code = self._child.wait()
        self._child = None
        if code:
          how = f"was killed (signal {-code})" if code < 0 else f"exited with status {code}"
          return f"{_name(argv)} {how}; the serving version is unchanged. End of {log}:\n{_tail(log)}"
    return None


def _name(argv: Sequence[str]) -> str:
  """train.py or export.py, as a user knows the step."""
  module = next((a for a in argv if a.startswith("disaster_tf.cli.")), None)
  return f"{module.rsplit('.', 1)[1]}.py" if module else os.path.basename(argv[0])


def _tail(path: str) -> str:
  with open(path, encoding="utf-8", errors="replace") as f:
    lines = [line.rstrip() for line in f if line.strip()]
  return "\n".join(lines[-LOG_LINES:]) or "(nothing)"


def _now() -> str:
  return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
