"""Stopping a run cleanly: SIGINT and SIGTERM become a flag the training loop checks between compiled calls."""

import signal
import threading
from typing import Optional

from absl import logging


class TrainingInterrupted(Exception):
  """Training stopped on SIGINT or SIGTERM after saving a checkpoint; rerun to resume."""


class StopRequests:
  """Turns SIGINT and SIGTERM into `requested` (the signal's name), which the loop checks between compiled calls.

  A signal then never lands in the middle of an optimizer update or a
  checkpoint write: the loop finishes the call, saves, and stops. A second
  signal while stopping falls through to the previous handler. Off the main
  thread (where Python delivers no signal) it installs nothing.
  """

  def __init__(self):
    self.requested: Optional[str] = None
    self._previous = {}

  def __enter__(self) -> "StopRequests":
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
