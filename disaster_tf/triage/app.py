"""What the triage page is answered with: `TriageApp`, the scorer and its explainer, the export it follows, and
each message's answer as the page reads it. server.py serves it over HTTP (endpoints.py).

Made `TriageApp.for_export`, the app follows the export base as TF Serving does: at most every RELOAD_SECONDS a
request looks for a higher version, loads it (the old one serves meanwhile) and says so in /api/model.
"""

import datetime
import os
import threading
import time
from typing import Dict, List, Optional, Sequence

from absl import logging

from disaster_tf import labels
from disaster_tf import records
from disaster_tf.data import decisions
from disaster_tf.data import keys
from disaster_tf.serve import predict
from disaster_tf.serve import scorefile
from disaster_tf.triage import groups
from disaster_tf.triage import retrain
from disaster_tf.triage import review

MAX_MESSAGES = 500  # per /api/classify request; the page sends pasted lines in batches of 100
SOCKET_TIMEOUT = 30.0  # seconds a connection may stay silent: a client that stops mid-request frees its thread
RELOAD_SECONDS = 1.0  # how often a request looks for a newer export under --export_dir (TF Serving polls each 1 s)


class TriageApp:
  """What the handler serves: a scorer, the urgency order, the export's description, the size limits.

  Made `for_export`, it also follows the export base as TF Serving does: at most every RELOAD_SECONDS a
  request looks for a higher version, loads it (the old one serves meanwhile) and says so in /api/model.
  """

  def __init__(self, scorer: predict.Scorer, model: Optional[records.ExportMetadata] = None,
               order: Sequence[str] = predict.URGENCY, max_request_bytes: int = 1 << 20,
               max_upload_bytes: int = 20 << 20, timeout: float = SOCKET_TIMEOUT,
               explainer: Optional[predict.Scorer] = None):
    self.scorer = scorer
    self.explainer = explainer  # the scorer's results with their `explanation` (/api/explain); None: not offered
    self.model = model  # None when scoring through TF Serving without the export
    self.order = tuple(order)
    self.max_request_bytes = max_request_bytes
    self.max_upload_bytes = max_upload_bytes
    self.timeout = timeout
    self.lock = threading.Lock()  # one model call at a time: TF runs each on every core anyway
    self.export_dir: Optional[str] = None  # the export base followed for newer versions (`for_export`)
    self.loaded: Optional[predict.LoadedExport] = None
    self.history: List[Dict] = []  # the versions replaced: {"version", "replaced"} (UTC), newest last
    self.reload_error: Optional[str] = None
    self.decisions: Optional[review.DecisionsApi] = None  # --db: operators' decisions are saved
    self.retrainer: Optional[retrain.Retrainer] = None  # --retrain_every: the loop that trains new versions
    self.grouper = groups.Grouper()  # near-copies: each answer names its group's first message (`group`)
    self._broken: Optional[tuple] = None  # (path, what it held) of a newer version that failed to load
    self._checked = time.monotonic()
    self._reloading = threading.Lock()

  @classmethod
  def for_export(cls, export_dir: str, **kwargs) -> "TriageApp":
    """An app scoring with the export under `export_dir` (a base: newer versions are picked up; or a version)."""
    loaded = predict.load_export(export_dir)
    app = cls(loaded.scorer, loaded.metadata, explainer=loaded.explainer, **kwargs)
    app.export_dir, app.loaded = export_dir, loaded
    return app

  def refresh(self) -> None:
    """Loads a newer version under the export base, if there is one (at most every RELOAD_SECONDS)."""
    if self.export_dir is None or time.monotonic() - self._checked < RELOAD_SECONDS:
      return
    if not self._reloading.acquire(blocking=False):
      return  # another request is loading it; this one is answered by the current version
    try:
      self._checked = time.monotonic()
      from disaster_tf.serve import savedmodel  # pylint: disable=import-outside-toplevel  # TensorFlow is loaded already
      newest = savedmodel.version_dir(self.export_dir)
      if os.path.abspath(newest) == os.path.abspath(self.loaded.path) or self._broken == _seen(newest):
        return  # the one serving, or a broken one not changed since: loading it again would only fail again
      self._broken = _seen(newest)
      loaded = predict.load_export(newest)
      self._broken = None
      with self.lock:
        self.history.append({"version": self.loaded.version, "replaced": _now()})
        self.scorer, self.explainer, self.model = loaded.scorer, loaded.explainer, loaded.metadata
        self.loaded, self.reload_error = loaded, None
      logging.info("now scoring with %s", loaded.describe())
    except Exception as e:  # pylint: disable=broad-except  # a broken new version: keep serving the old one
      self.reload_error = f"{type(e).__name__}: {e}"
      logging.warning("kept %s: %s", self.loaded.path, self.reload_error)
    finally:
      self._reloading.release()

  def training_data(self) -> Optional[records.TrainingData]:
    """What the serving model learnt from (its model card), or None where unknown (TF Serving, an old export)."""
    m = self.model
    return m.report.training_data if m and m.report else None

  def trained_on_decisions(self) -> int:
    """How many operators' decisions the serving model trained on (0 where unknown)."""
    training = self.training_data()
    return training.decisions if training else 0

  def score(self, texts):
    """The scorer's answers for `texts`, one model call at a time."""
    with self.lock:
      return self.scorer(texts)

  def explain(self, message: str) -> Optional[Dict]:
    """/api/explain: one message's answer for the page (`result`), with its explanation; None without an
    explainer."""
    if self.explainer is None:
      return None
    with self.lock:
      result = self.explainer([message])[0]
    return self.result({"message": message}, result)

  def model_info(self) -> Dict:
    """/api/model: what the page's Model tab, its filter, its score bars and its CSV download read (app.js)."""
    m = self.model
    about = {k: getattr(m, k) if m else None for k in ("exported", "version", "precision", "checkpoint", "unfinished")}
    about.update(path=self.loaded.path if self.loaded else None,
                 export_version=self.loaded.version if self.loaded else None,
                 history=self.history, reload_error=self.reload_error)
    return {"categories": list(labels.CATEGORIES), "urgency": list(self.order),
            "scored_columns": list(predict.SCORED_COLUMNS),  # what the download appends to the input's columns
            "formula_triggers": list(scorefile.FORMULA_TRIGGERS),  # the download's cells get scorefile's rule
            "thresholds": m.thresholds_by_category() if m else {}, "config": m.config if m else {},
            "report": m.report.to_json() if m and m.report else None, "about": about,
            "max_messages": MAX_MESSAGES, "max_upload_bytes": self.max_upload_bytes,
            "decisions": self.decisions is not None, "english_only": self.english_only(),
            "language_gate": m.language_gate if m else None,
            "retrain": self.retrainer.status.to_json() if self.retrainer else None,
            "second_opinion": self.decisions.second_share if self.decisions else 0.0,
            "reviewers": sorted(self.decisions.reviewers) if self.decisions else [],
            "operators_required": bool(self.decisions and self.decisions.operators)}

  def result(self, row: Dict[str, str], result: Dict) -> Dict:
    """One message's answer for the page: its input row, `predict.ranked` in this app's urgency order, and the
    cells of `predict.SCORED_COLUMNS` (`scored`) that the page's CSV download writes."""
    text = row.get(predict.TEXT_COLUMN, "")
    answer = predict.ranked(result, self.order, text, self.english_only())
    key = keys.row_message_id(row)
    return {"row": row, **answer, "scored": predict.scored_values(answer), "error": None,
            "message_id": key, "group": self.grouper.leader(key, text)}

  def english_only(self) -> bool:
    """Whether the export reads English only (unknown over TF Serving without the export: then no flag)."""
    return bool(self.model and self.model.reads_english_only())

  def enqueue(self, pairs) -> Optional[str]:
    """With --db, queues scored (row, result) pairs for the Review tab; returns why it could not, or None.

    The queue is a side effect: a decisions file that cannot be written (a full disk, read-only media) must not
    stop triage, so the answers go out with a warning instead.
    """
    if self.decisions is None or not pairs:
      return None
    try:
      self.decisions.enqueue(pairs, str(self.loaded.version) if self.loaded else None)
    except decisions.StoreError as e:
      logging.warning("review queue: %s", e)
      return f"scored, but not queued for review: {e}"
    return None

  def failed(self, row: Dict[str, str], error: str) -> Dict:
    """The answer for a line that could not be scored: the same fields, no category, and the reason."""
    return {"row": row, "error": error, "priority": len(self.order) + 1, "predicted": [], "related": "unsure",
            "scores": {}, "unread": False, "scored": [""] * len(predict.SCORED_COLUMNS), "group": None}


def _seen(path: str) -> tuple:
  """A version directory and what it holds, by name, size and time: a broken one is tried again when it changes."""
  try:
    return (path, tuple(sorted((os.path.relpath(os.path.join(d, f), path), os.stat(os.path.join(d, f)).st_size,
                                os.stat(os.path.join(d, f)).st_mtime_ns)
                               for d, _, files in os.walk(path) for f in files)))
  except OSError:
    return (path, None)


def _now() -> str:
  return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
