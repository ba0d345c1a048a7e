"""Scores unlabelled messages: a scorer (an export in this process, or TF Serving), urgency, answers.

A scorer maps raw messages to one result each, as `client.predict_rest` gives
them: {"scores": {category: probability}, "labels": {category: label},
"predicted": [...], "related": "no" | "yes" | "unsure"}. `ranked` turns a
result into what an operator reads, and `scored_values` into the cells of a
scored CSV file (`scorefile.score_csv`, and the page's download).

Urgency orders what an operator reads first: a message's priority is the rank
of its most urgent predicted category in `URGENCY` (1 is the most urgent); a
message with no category comes last, unless the model could not read it
(`unread`: emoji, symbols, an unknown script), which comes first.
"""

import dataclasses
import os
import unicodedata
import urllib.parse
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from disaster_tf import labels
from disaster_tf import records
from disaster_tf.serve import client

# Life first, then what keeps people alive, then the rest; the broad categories (`aid_related`, `request`,
# `direct_report`, `related`) last, since nearly every message has them. Override with --urgency.
URGENCY = ("search_and_rescue", "medical_help", "missing_people", "death", "child_alone", "water", "food",
           "shelter", "medical_products", "hospitals", "security", "fire", "refugees", "clothing", "cold",
           "military", "electricity", "transport", "buildings", "infrastructure_related", "aid_centers", "money",
           "tools", "shops", "other_infrastructure", "floods", "storm", "earthquake", "other_weather",
           "weather_related", "other_aid", "offer", "aid_related", "request", "direct_report", "related")
assert sorted(URGENCY) == sorted(labels.CATEGORIES)
BATCH = 256  # messages per call: large enough to amortise a call, small enough to show progress
EXPLAIN_BATCH = 32  # messages per explain call: each is scored once per distinct word (median message: 21 tokens)
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
  return load_export(export_dir).scorer


@dataclasses.dataclass(frozen=True)
class LoadedExport:
  """An export loaded in this process: where it is, what it says of itself, and its scorers."""

  path: str  # the version directory
  metadata: records.ExportMetadata
  scorer: Scorer
  explainer: Scorer  # the scorer's results, each with its `explanation` (client.explanation; slower: explain.py)

  @property
  def version(self) -> Optional[int]:
    """The version number TF Serving would know it by (None for a directory not named by a number)."""
    return export_version(self.path)

  def describe(self) -> str:
    """Which export answers: `describe`."""
    return describe(self.path)


def export_version(path: str) -> Optional[int]:
  """The version number of an export's directory as TF Serving knows it (None when not named by a number)."""
  name = os.path.basename(os.path.normpath(path))
  return int(name) if name.isdigit() else None


def describe(path: str) -> str:
  """An export's version directory as every command that loads one logs it: `version 3 (models/disaster/3)`."""
  version = export_version(path)
  return path if version is None else f"version {version} ({path})"


def load_export(export_dir: str) -> LoadedExport:
  """Loads an export (a version directory, or the highest version under a base directory) with its metadata.

  Raises:
    FileNotFoundError: no export there. ValueError: its metadata is not export.py's, or it has no explain
    signature (exported before explanations: export it again).
  """
  import numpy as np  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from disaster_tf.serve import savedmodel  # pylint: disable=import-outside-toplevel
  path = savedmodel.version_dir(export_dir)
  metadata = savedmodel.read_metadata(path)
  signatures = savedmodel.load_signatures(path)

  def scorer(key: str) -> Scorer:
    def score(texts: Sequence[str]) -> List[Dict]:
      if not texts:
        return []
      if key not in signatures:
        raise ValueError(f"{path}: this export has no {key} signature (exported before disaster_tf had it); "
                         "export the model dir again with export.py")
      out = {k: np.asarray(v) for k, v in signatures[key](text=tf.constant(list(texts), tf.string)).items()}
      classes = [c.decode("utf-8") for c in out["classes"][0]]
      explained = (out["top_words"], out["top_contributions"]) if key == savedmodel.EXPLAIN_KEY else ()
      return [client.result_row(out["scores"][i], out["labels"][i], classes, *(e[i] for e in explained),
                                **client.language_of(out, i)) for i in range(len(texts))]
    return score
  return LoadedExport(path, metadata, scorer(savedmodel.PREDICT_KEY), scorer(savedmodel.EXPLAIN_KEY))


def serving_scorer(serving_url: str, timeout: float = 30.0, explain: bool = False) -> Scorer:
  """Scores over TF Serving's REST API; `serving_url` is http://HOST:PORT/v1/models/NAME (`explain`: its explain
  signature, each result with its `explanation`).

  Raises:
    ValueError: a URL of another shape.
  """
  parsed = urllib.parse.urlparse(serving_url)
  parts = parsed.path.rstrip("/").split("/")
  if parsed.scheme not in ("http", "https") or len(parts) != 4 or parts[1:3] != ["v1", "models"] or not parts[3]:
    raise ValueError(f"--serving_url={serving_url}: expected http://HOST:PORT/v1/models/NAME (TF Serving's REST "
                     "address of the model)")
  base = f"{parsed.scheme}://{parsed.netloc}"
  name = parts[3]
  return lambda texts: client.predict_rest(list(texts), base, name, timeout=timeout, explain=explain) if texts else []


def score_rows(rows: Iterable[Dict[str, str]], scorer: Scorer, text_column: str = TEXT_COLUMN,
               batch_size: int = BATCH, on_batch: Optional[Callable[[List[Tuple[Dict[str, str], Dict]]], None]] = None
               ) -> Iterator[Tuple[Dict[str, str], Dict]]:
  """Yields (row, result) for each row, calling `scorer` a batch at a time.

  `on_batch` gets each batch's (row, result) pairs once the consumer has taken them all (the review queue:
  one transaction a batch).
  """
  def scored(batch: List[Dict[str, str]]) -> Iterator[Tuple[Dict[str, str], Dict]]:
    pairs = list(zip(batch, scorer([r[text_column] for r in batch])))
    yield from pairs
    if on_batch:
      on_batch(pairs)

  batch: List[Dict[str, str]] = []
  for row in rows:
    batch.append(row)
    if len(batch) == batch_size:
      yield from scored(batch)
      batch = []
  if batch:
    yield from scored(batch)


# The columns a scored file adds to the input's (the page's download too: /api/model's `scored_columns`).
SCORED_COLUMNS = ("priority", "predicted", "related", "language") + tuple(f"score_{c}" for c in labels.CATEGORIES)
# What an English-only model says of a message its language gate calls another language: an operator reads it.
NOT_ENGLISH = "not English: this model reads English only; read it yourself"


def scored_values(answer: Dict) -> List[str]:
  """A `ranked` answer as the cells of SCORED_COLUMNS, in their order (what predict.py and the page write)."""
  language = answer["language"] + (f" ({NOT_ENGLISH})" if answer["not_english"] else "")
  return ([str(answer["priority"]), ";".join(answer["predicted"]), answer["related"], language]
          + [f"{answer['scores'][c]:.4f}" for c in labels.CATEGORIES])


def unread(result: Dict, text: str) -> bool:
  """Whether the model read nothing in a message that holds something to read.

  The export answers a message with no token after standardisation with scores of exactly 0. That is right for a
  blank message or one of English stop words and punctuation ("is it?"), but not for one of emoji or symbols
  ("🆘🏠💧") or in a script the model never saw: there is something to read, the model could not.
  """
  if any(result["scores"].values()):
    return False
  return any(unicodedata.category(ch) == "So" or (ch.isalpha() and not ch.isascii()) for ch in text)


def ranked(result: Dict, order: Sequence[str], text: str = "", english_only: bool = False) -> Dict:
  """A result as an operator reads it: priority, the predicted categories most urgent first, related, scores.

  Three rules make the answer consistent and honest whatever model gave it: `related` is "yes" when a category
  is predicted (a model may answer related = "no" beside one: the data never does); a message the model could
  not read (`unread`) is `unread`, related "unsure" and priority 1, beside the most urgent: an operator must
  read it, which the bottom of the list would hide; and a message its language gate calls another language
  where the model reads English only (`english_only`, or the result's own `reads_language` is false) is
  `not_english`, related "unsure" and priority 1 too: an appeal in Creole is not small talk because the
  model cannot read it.
  """
  predicted = set(result["predicted"])
  related = "yes" if predicted and result["related"] == "no" else result["related"]
  language = result.get("language", "")  # "" from an export without a language gate
  # Flagged where either says the model cannot read it: the caller (from the export's metadata) or the export
  # itself (its `reads_language`: over TF Serving the page has no metadata).
  reads = not english_only and result.get("reads_language", True)
  answer = {"priority": priority(result, order), "predicted": [c for c in order if c in predicted],
            "related": related, "scores": result["scores"], "unread": unread(result, text), "language": language,
            "not_english": language == labels.OTHER_LANGUAGE and not reads}
  if answer["unread"] or answer["not_english"]:
    answer.update(priority=1, related="unsure")
  if "explanation" in result:  # from an explainer: in the answer's order
    answer["explanation"] = {c: result["explanation"].get(c, []) for c in answer["predicted"]}
  return answer


EXPLANATION_COLUMN = "explanation"  # predict.py --explain's extra column


def explanation_cell(answer: Dict) -> str:
  """An explained answer's words as one cell: `water: water (+0.41), dlo (+0.12); food: manje (+0.30)`, its
  predicted categories in urgency order, each with the words that raised its score most (client.explanation)."""
  return "; ".join(f"{c}: " + (", ".join(f"{w} ({v:+.2f})" for w, v in words) or "no single word")
                   for c, words in answer["explanation"].items())


def model_summary(export_dir: str) -> records.ExportMetadata:
  """The export's metadata (assets.extra/disaster_tf.json): categories, thresholds, config, training report."""
  from disaster_tf.serve import savedmodel  # pylint: disable=import-outside-toplevel
  return savedmodel.read_metadata(savedmodel.version_dir(export_dir))
