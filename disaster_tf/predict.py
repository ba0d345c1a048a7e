"""Scores unlabelled messages: a scorer (an export in this process, or TF Serving), urgency, CSV files.

A scorer maps raw messages to one result each, as `client.predict_rest` gives
them: {"scores": {category: probability}, "labels": {category: label},
"predicted": [...], "related": "no" | "yes" | "unsure"}. `score_csv` streams a
CSV file of any size through one, keeping the input's columns and adding the
answers; the triage page's upload uses the same code (`score_rows`).

Urgency orders what an operator reads first: a message's priority is the rank
of its most urgent predicted category in `URGENCY` (1 is the most urgent), and
a message with no category comes last.
"""

import csv
import dataclasses
import os
import tempfile
import urllib.parse
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from disaster_tf import client
from disaster_tf import labels
from disaster_tf import records

# Life first, then what keeps people alive, then the rest; the broad categories (`aid_related`, `request`,
# `direct_report`, `related`) last, since nearly every message has them. Override with --urgency.
URGENCY = ("search_and_rescue", "medical_help", "missing_people", "death", "child_alone", "water", "food",
           "shelter", "medical_products", "hospitals", "security", "fire", "refugees", "clothing", "cold",
           "military", "electricity", "transport", "buildings", "infrastructure_related", "aid_centers", "money",
           "tools", "shops", "other_infrastructure", "floods", "storm", "earthquake", "other_weather",
           "weather_related", "other_aid", "offer", "aid_related", "request", "direct_report", "related")
assert sorted(URGENCY) == sorted(labels.CATEGORIES)
BATCH = 256  # messages per call: large enough to amortise a call, small enough to show progress
TEXT_COLUMN = "message"

Scorer = Callable[[Sequence[str]], List[Dict]]


def urgency_order(first: Sequence[str] = ()) -> Tuple[str, ...]:
  """`first` (categories, most urgent first), then the rest of URGENCY in its order.

  Raises:
    ValueError: a name that is not a category, or a repeated one.
  """
  unknown = [c for c in first if c not in labels.CATEGORIES]
  if unknown:
    raise ValueError(f"urgency: unknown categor{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)}; "
                     f"expected names from {', '.join(URGENCY)}")
  if len(set(first)) != len(first):
    raise ValueError(f"urgency: a category is named twice in {', '.join(first)}")
  return tuple(first) + tuple(c for c in URGENCY if c not in first)


def priority(result: Dict, order: Sequence[str] = URGENCY) -> int:
  """1 + the rank of the result's most urgent predicted category; len(order) + 1 if none."""
  predicted = set(result["predicted"])
  return next((rank for rank, c in enumerate(order, 1) if c in predicted), len(order) + 1)


def local_scorer(export_dir: str) -> Scorer:
  """Scores with an export loaded in this process (a version directory or its base)."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from disaster_tf import serving  # pylint: disable=import-outside-toplevel
  predict = tf.saved_model.load(serving.version_dir(export_dir)).signatures[serving.PREDICT_KEY]

  def score(texts: Sequence[str]) -> List[Dict]:
    if not texts:
      return []
    out = predict(text=tf.constant(list(texts), tf.string))
    scores, decided = out["scores"].numpy(), out["labels"].numpy()
    classes = [c.decode("utf-8") for c in out["classes"].numpy()[0]]
    return [client.result_row(s, l, classes) for s, l in zip(np.asarray(scores), np.asarray(decided))]
  return score


def serving_scorer(serving_url: str, timeout: float = 30.0) -> Scorer:
  """Scores over TF Serving's REST API; `serving_url` is http://HOST:PORT/v1/models/NAME.

  Raises:
    ValueError: a URL of another shape.
  """
  parsed = urllib.parse.urlparse(serving_url)
  parts = parsed.path.rstrip("/").split("/")
  if parsed.scheme not in ("http", "https") or len(parts) != 4 or parts[1:3] != ["v1", "models"] or not parts[3]:
    raise ValueError(f"--serving_url={serving_url}: expected http://HOST:PORT/v1/models/NAME (TF Serving's REST "
                     "address of the model)")
  base = f"{parsed.scheme}://{parsed.netloc}"
  return lambda texts: client.predict_rest(list(texts), base, parts[3], timeout=timeout) if texts else []


@dataclasses.dataclass
class ScoreReport:
  """What `score_csv` read, scored and could not read (each skipped line named, the first 20 kept)."""

  rows: int = 0
  scored: int = 0
  unreadable: int = 0
  problems: List[str] = dataclasses.field(default_factory=list)

  def add_problem(self, text: str) -> None:
    self.unreadable += 1
    if len(self.problems) < 20:
      self.problems.append(text)

  def summary(self) -> str:
    text = f"{self.rows} rows read, {self.scored} scored, {self.unreadable} not readable"
    return text + ("".join(f"\n  {p}" for p in self.problems) if self.problems else "")


class InputError(ValueError):
  """An input file the scorer cannot use at all (no header, no message column, not UTF-8 at the start)."""


def read_rows(lines: Iterable[str], where: str, report: ScoreReport,
              text_column: str = TEXT_COLUMN) -> Tuple[List[str], Iterator[Dict[str, str]]]:
  """(header, rows) of a CSV stream; a row with another number of fields is reported and skipped.

  Unlike training's reader (`csv_data`, which refuses the whole file for one bad row, since a model must not
  learn from other data than named), this one skips and reports: an operator's file is scored as far as it can be.

  Raises:
    InputError: an empty file, or a header without `text_column`.
  """
  reader = csv.reader(lines, strict=True)
  try:
    header = next(reader, None)
  except csv.Error as e:
    raise InputError(f"{where}:1: malformed CSV header ({e})") from None
  if not header:
    raise InputError(f"{where}: the file is empty; expected a header line with a {text_column!r} column")
  header = [h.strip().lstrip("\ufeff") for h in header]
  if text_column not in header:
    raise InputError(f"{where}:1: no {text_column!r} column; found {', '.join(header)} (the messages file, "
                     "the wide format and id,message all have one)")

  def rows() -> Iterator[Dict[str, str]]:
    while True:
      try:
        row = next(reader)
      except StopIteration:
        return
      except csv.Error as e:
        report.add_problem(f"{where}:{reader.line_num}: malformed CSV ({e}); the rest of the file is not read")
        return
      if not row:
        continue
      report.rows += 1
      if len(row) != len(header):
        report.add_problem(f"{where}:{reader.line_num}: expected {len(header)} fields, found {len(row)}")
        continue
      yield dict(zip(header, row))
  return header, rows()


def score_rows(rows: Iterable[Dict[str, str]], scorer: Scorer, text_column: str = TEXT_COLUMN,
               batch_size: int = BATCH) -> Iterator[Tuple[Dict[str, str], Dict]]:
  """Yields (row, result) for each row, calling `scorer` a batch at a time."""
  batch: List[Dict[str, str]] = []
  for row in rows:
    batch.append(row)
    if len(batch) == batch_size:
      yield from zip(batch, scorer([r[text_column] for r in batch]))
      batch = []
  if batch:
    yield from zip(batch, scorer([r[text_column] for r in batch]))


# The columns a scored file adds to the input's (the page's download too: /api/model's `scored_columns`).
SCORED_COLUMNS = ("priority", "predicted", "related") + tuple(f"score_{c}" for c in labels.CATEGORIES)


def output_columns(header: Sequence[str]) -> List[str]:
  """The input's columns, then SCORED_COLUMNS: priority, predicted, related and one score column per category."""
  return list(header) + list(SCORED_COLUMNS)


def scored_values(answer: Dict) -> List[str]:
  """A `ranked` answer as the cells of SCORED_COLUMNS, in their order (what predict.py and the page write)."""
  return ([str(answer["priority"]), ";".join(answer["predicted"]), answer["related"]]
          + [f"{answer['scores'][c]:.4f}" for c in labels.CATEGORIES])


def ranked(result: Dict, order: Sequence[str]) -> Dict:
  """A result as an operator reads it: priority, the predicted categories most urgent first, related, scores."""
  predicted = set(result["predicted"])
  return {"priority": priority(result, order), "predicted": [c for c in order if c in predicted],
          "related": result["related"], "scores": result["scores"]}


def output_row(row: Dict[str, str], result: Dict, order: Sequence[str]) -> Dict[str, str]:
  """The input row with `ranked`'s answer in CSV columns (see `output_columns`)."""
  return {**row, **dict(zip(SCORED_COLUMNS, scored_values(ranked(result, order))))}


def score_csv(input_path: str, output_path: str, scorer: Scorer, *, order: Sequence[str] = URGENCY,
              text_column: str = TEXT_COLUMN, batch_size: int = BATCH,
              progress: Optional[Callable[[int], None]] = None) -> ScoreReport:
  """Scores every readable row of `input_path` into `output_path` (written whole, then renamed into place).

  Raises:
    InputError: the input cannot be used at all (see `read_rows`).
    OSError: the input cannot be read or the output written.
  """
  report = ScoreReport()
  out_dir = os.path.dirname(os.path.abspath(output_path))
  with open(input_path, "rb") as f:
    header, rows = read_rows(checked_lines(f, input_path, report), input_path, report, text_column)
    fd, tmp = tempfile.mkstemp(prefix=".scored-", suffix=".csv", dir=out_dir)
    try:
      with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, output_columns(header))
        writer.writeheader()
        for row, result in score_rows(rows, scorer, text_column, batch_size):
          writer.writerow(output_row(row, result, order))
          report.scored += 1
          if progress and report.scored % batch_size == 0:
            progress(report.scored)
      os.replace(tmp, output_path)
    except BaseException:
      os.unlink(tmp)
      raise
  return report


def checked_lines(binary: Iterable[bytes], where: str, report: ScoreReport) -> Iterator[str]:
  """Decoded lines of a file opened in binary; a line that is not UTF-8 is reported and replaced by an empty one."""
  for number, raw in enumerate(binary, 1):
    try:
      yield raw.decode("utf-8")
    except UnicodeDecodeError as e:
      report.rows += 1  # a row, though not a readable one
      report.add_problem(f"{where}:{number}: byte {e.start + 1} is not valid UTF-8; that row is skipped")
      yield "\n"


def model_summary(export_dir: str) -> records.ExportMetadata:
  """The export's metadata (assets.extra/disaster_tf.json): categories, thresholds, config, training report."""
  from disaster_tf import serving  # pylint: disable=import-outside-toplevel
  return serving.read_metadata(serving.version_dir(export_dir))
