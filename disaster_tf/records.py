"""The typed records that cross a module, a file or the page: scores, a run's final report, an export's metadata.

Each is a frozen dataclass with `to_json()` (a JSON-ready dict) and
`from_json(dict)`; the dicts keep the shape `metrics.json`, an export's
`assets.extra/disaster_tf.json`, `evaluate.py --output` and the triage page's
`/api/model` have always had, so files written before these records existed
still read. This module imports no TensorFlow: the benchmarks' parent process
and the page's server read these files too.

  LoadReport     what reading a labelled CSV read, merged and dropped (metrics.json's `data`)
  Scores         `metrics.report`: per-category precision / recall / F1 / support, Total, micro-F1
  TrainingData   what a model learnt from: examples, positives per category, genres
  FinalReport    a run's report on validation (metrics.json's `final`; a refit's nested in `refit`)
  RefitPlan      what a first run chose on tune, which its refit reuses
  ExportMetadata an export's disaster_tf.json: config, provenance, thresholds and the training report
  Evaluation     evaluate.py's report: Scores on labelled data, and what was scored
"""

import dataclasses
from typing import Any, Dict, List, Optional, Tuple

from disaster_tf import labels

SUMMARY_KEYS = ("total", "mean_positive_f1", "micro_f1")  # the headline numbers, TensorBoard's scalars


@dataclasses.dataclass
class LoadReport:
  """What loading did, so that nothing is dropped silently.

  Mutable while the CSV reader counts (`csv_read`); read-only once `load` returns it.
  """

  source: str
  format: str
  rows: int = 0  # labelled rows read (the categories file's, for two-file)
  duplicate_rows: int = 0  # rows whose id was seen before; merged by per-label max
  conflicting_duplicates: int = 0  # ids whose repeats disagree on some label
  dropped_empty_text: int = 0  # ids whose message is empty or whitespace only
  examples: int = 0  # examples kept (an id whose original is used counts twice)
  fingerprint: str = ""  # a hash of the bytes read: another file's content gives another one
  # The `original` column, counted over the ids kept (all 0 without that column):
  originals_used: int = 0  # became a second example of their id (only when asked for)
  originals_empty: int = 0  # empty or whitespace only
  originals_identical: int = 0  # the same as the translation but for case and spacing: not a second example

  def summary(self) -> str:
    text = (f"{self.source} ({self.format}): {self.rows} rows -> {self.examples} examples; "
            f"{self.duplicate_rows} repeated-id rows merged ({self.conflicting_duplicates} ids with "
            f"conflicting labels, per-label max kept); {self.dropped_empty_text} dropped for empty text")
    if self.originals_used:
      text += (f"; originals: {self.originals_used} used as examples, {self.originals_empty} empty, "
               f"{self.originals_identical} identical to the translation")
    return text

  def to_json(self) -> Dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_json(cls, raw: Dict[str, Any]) -> "LoadReport":
    known = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in raw.items() if k in known})  # a field added later: its default


@dataclasses.dataclass(frozen=True)
class ClassScores:
  """One class of one category: precision, recall and F1 of deciding it, and its support in the truth."""

  precision: float
  recall: float
  f1: float
  support: int

  def to_json(self) -> Dict[str, Any]:
    return {"precision": self.precision, "recall": self.recall, "f1": self.f1, "support": self.support}

  @classmethod
  def from_json(cls, raw: Dict[str, Any]) -> "ClassScores":
    return cls(raw["precision"], raw["recall"], raw["f1"], raw["support"])


@dataclasses.dataclass(frozen=True)
class CategoryScores(ClassScores):
  """A category's positive class (class 1, for `related` too), its macro-F1, and `related`'s per-class scores."""

  macro_f1: float = 0.0
  per_class: Optional[Dict[str, ClassScores]] = None  # `related` only: {"0": ..., "1": ..., "2": ...}

  def to_json(self) -> Dict[str, Any]:
    out = dict(super().to_json(), macro_f1=self.macro_f1)
    if self.per_class is not None:
      out["per_class"] = {c: s.to_json() for c, s in self.per_class.items()}
    return out

  @classmethod
  def from_json(cls, raw: Dict[str, Any]) -> "CategoryScores":
    per_class = raw.get("per_class")
    return cls(raw["precision"], raw["recall"], raw["f1"], raw["support"], raw["macro_f1"],
               {c: ClassScores.from_json(s) for c, s in per_class.items()} if per_class is not None else None)


@dataclasses.dataclass(frozen=True)
class Scores:
  """Predicted labels scored against the truth (`metrics.report`; the definitions are in metrics.py)."""

  examples: int
  total: float  # the sum over the 36 categories of each one's macro-F1 (max 36)
  mean_positive_f1: float  # over the binary categories with positives in the truth
  micro_f1: float  # all positive decisions pooled
  categories: Dict[str, CategoryScores]  # in CATEGORIES order

  def summary(self) -> Dict[str, float]:
    """The headline numbers: {"total", "mean_positive_f1", "micro_f1"}."""
    return {k: getattr(self, k) for k in SUMMARY_KEYS}

  def to_json(self) -> Dict[str, Any]:
    return {"examples": self.examples, "total": self.total, "mean_positive_f1": self.mean_positive_f1,
            "micro_f1": self.micro_f1, "categories": {n: c.to_json() for n, c in self.categories.items()}}

  @classmethod
  def from_json(cls, raw: Dict[str, Any]) -> "Scores":
    return cls(raw["examples"], raw["total"], raw["mean_positive_f1"], raw["micro_f1"],
               {n: CategoryScores.from_json(c) for n, c in raw["categories"].items()})


@dataclasses.dataclass(frozen=True)
class TrainingData:
  """What a model learnt from: examples, positives per category (`related`: label 1), messages per genre, and
  how many of the examples are operators' decisions (train.py --decisions; 0 in a model card made before)."""

  examples: int
  positives: Dict[str, int]
  genres: Dict[str, int]
  decisions: int = 0

  def to_json(self) -> Dict[str, Any]:
    return {"examples": self.examples, "positives": dict(self.positives), "genres": dict(self.genres),
            "decisions": self.decisions}

  @classmethod
  def from_json(cls, raw: Dict[str, Any]) -> "TrainingData":
    return cls(raw["examples"], raw["positives"], raw["genres"], raw.get("decisions", 0))


def _languages_json(languages: Dict[str, Scores]) -> Dict[str, Any]:
  """`languages` ({"original" | "translation": Scores}) as FinalReport and Evaluation write it."""
  return {name: s.to_json() for name, s in languages.items()}


def _languages_from_json(raw: Dict[str, Any]) -> Dict[str, Scores]:
  """The `languages` of a FinalReport's or an Evaluation's JSON; {} where it has none."""
  return {name: Scores.from_json(s) for name, s in raw.get("languages", {}).items()}


@dataclasses.dataclass(frozen=True)
class FinalReport:
  """A run's report on the validation split, at the thresholds the export uses (metrics.json's `final`).

  In JSON the scores' keys sit at the top level beside the rest, as `metrics.report`'s dict did.

  Attributes:
    scores: at `thresholds`.
    at_half: the same model at 0.5 everywhere (JSON key `at_0.5`).
    thresholds: {category: threshold}, in CATEGORIES order.
    threshold_source: where the thresholds came from, in words.
    validation_loss: the weighted loss per validation example.
    best_epoch, checkpoint: the epoch reported and its checkpoint's prefix.
    select_metric: what picked the epoch; selected_on: the split it was scored on ("nothing" for "last").
    training_data: what the model learnt from (None in reports written before it was recorded).
    languages: {"original" | "translation": Scores} of the validation messages that have an original,
      with --text_fields=message,original; {} otherwise (and then absent from the JSON).
    refit: with --refit, the refit's own report (absent otherwise; never in the first run's metrics.json).
  """

  scores: Scores
  at_half: Scores
  thresholds: Dict[str, float]
  threshold_source: str
  validation_loss: float
  best_epoch: int
  checkpoint: str
  select_metric: str
  selected_on: str
  training_data: Optional[TrainingData] = None
  languages: Dict[str, Scores] = dataclasses.field(default_factory=dict)
  refit: Optional["FinalReport"] = None

  def thresholds_array(self) -> List[float]:
    """[36] thresholds in CATEGORIES order."""
    return [self.thresholds[name] for name in labels.CATEGORIES]

  def to_json(self) -> Dict[str, Any]:
    out = self.scores.to_json()
    out.update({"at_0.5": self.at_half.to_json(), "thresholds": dict(self.thresholds),
                "threshold_source": self.threshold_source, "validation_loss": self.validation_loss,
                "best_epoch": self.best_epoch, "checkpoint": self.checkpoint, "select_metric": self.select_metric,
                "selected_on": self.selected_on,
                "training_data": self.training_data.to_json() if self.training_data else None})
    if self.languages:
      out["languages"] = _languages_json(self.languages)
    if self.refit is not None:
      out["refit"] = self.refit.to_json()
    return out

  @classmethod
  def from_json(cls, raw: Dict[str, Any]) -> "FinalReport":
    training = raw.get("training_data")
    return cls(scores=Scores.from_json(raw), at_half=Scores.from_json(raw["at_0.5"]),
               thresholds=dict(raw["thresholds"]), threshold_source=raw.get("threshold_source", "0.5"),
               validation_loss=raw.get("validation_loss", float("nan")), best_epoch=raw["best_epoch"],
               checkpoint=raw["checkpoint"], select_metric=raw.get("select_metric", "total"),
               selected_on=raw.get("selected_on", "validation"),
               training_data=TrainingData.from_json(training) if training else None,
               languages=_languages_from_json(raw),
               refit=cls.from_json(raw["refit"]) if raw.get("refit") else None)


@dataclasses.dataclass(frozen=True)
class RefitPlan:
  """What a first run chose on its tune split, which its refit (`--refit`) reuses."""

  epochs: int  # the best epoch: the refit trains this many
  thresholds: Tuple[float, ...]  # [36], CATEGORIES order
  source: str  # where the thresholds came from, for the refit's report

  @classmethod
  def chosen_by(cls, final: FinalReport) -> "RefitPlan":
    return cls(final.best_epoch, tuple(final.thresholds_array()),
               f"{final.threshold_source}, by the run that chose epoch {final.best_epoch}")


@dataclasses.dataclass(frozen=True)
class ExportMetadata:
  """An export's assets.extra/disaster_tf.json: what was exported, from where, and how good it was.

  `config` stays the JSON of `config.Config` (an export outlives the code's flags); `report` and `data` are the
  training run's metrics.json `final` and `data`, carried for the page and evaluate.py (None when the export
  is of another checkpoint than the one reported, or the run had no report).
  """

  categories: Tuple[str, ...]
  config: Dict[str, Any]
  checkpoint: str
  model_dir: str
  vocabulary_fingerprint: str
  thresholds: Tuple[float, ...]  # [36], in `categories` order
  precision: str = "float32"
  version: Optional[str] = None  # disaster_tf's, of the code that exported
  refit: bool = False
  exported: Optional[str] = None  # "YYYY-MM-DD HH:MM UTC"
  report: Optional[FinalReport] = None
  data: Optional[LoadReport] = None
  # True when training had not finished: no final report (stopped, crashed, or exported with --checkpoint=latest
  # while it ran), so no tuned thresholds either. The model card, the page and evaluate.py say so.
  unfinished: bool = False
  # The export's language gate (model/language.py): its threshold and validation scores; None without a gate.
  language_gate: Optional[Dict[str, float]] = None
  # A routed export's English-only model (--route_english): its model dir, checkpoint and validation scores.
  english_model: Optional[Dict[str, Any]] = None
  # A three-member export (--encoder_member): per model, its name, model dir, checkpoint, share of the scores and
  # validation scores (`Scores` JSON); () for every other export.
  members: Tuple[Dict[str, Any], ...] = ()

  def reads_english_only(self) -> bool:
    """Whether the model was trained on the `message` column alone (English): it cannot read messages as sent."""
    return "original" not in self.config.get("train", {}).get("text_fields", ["message"])

  def thresholds_by_category(self) -> Dict[str, float]:
    return dict(zip(self.categories, self.thresholds))

  def to_json(self) -> Dict[str, Any]:
    out = {"categories": list(self.categories), "config": self.config, "checkpoint": self.checkpoint,
           "model_dir": self.model_dir, "vocabulary_fingerprint": self.vocabulary_fingerprint,
           "thresholds": list(self.thresholds), "precision": self.precision, "version": self.version,
           "refit": self.refit, "exported": self.exported, "unfinished": self.unfinished}
    if self.language_gate is not None:
      out["language_gate"] = self.language_gate
    if self.english_model is not None:
      out["english_model"] = self.english_model
    if self.members:
      out["members"] = [dict(m) for m in self.members]
    if self.report is not None:
      out.update(report=self.report.to_json(), data=self.data.to_json() if self.data else None)
    return out

  @classmethod
  def from_json(cls, raw: Dict[str, Any]) -> "ExportMetadata":
    report, data = raw.get("report"), raw.get("data")
    return cls(tuple(raw["categories"]), raw["config"], raw["checkpoint"], raw["model_dir"],
               raw.get("vocabulary_fingerprint", ""), tuple(raw["thresholds"]), raw.get("precision", "float32"),
               raw.get("version"), bool(raw.get("refit", False)), raw.get("exported"),
               FinalReport.from_json(report) if report else None, LoadReport.from_json(data) if data else None,
               bool(raw.get("unfinished", False)), raw.get("language_gate"), raw.get("english_model"),
               tuple(raw.get("members", ())))


@dataclasses.dataclass(frozen=True)
class Evaluation:
  """evaluate.py's report: an export's `labels` scored on labelled data (JSON: the scores' keys, then the rest)."""

  scores: Scores
  export: str  # the version directory
  data: LoadReport
  split: str  # "all", "train", "tune" or "validation"
  text_field: str  # "message" or "original"
  thresholds: Dict[str, float]  # the export's
  # Scoring `message` texts of data with originals: {"original" | "translation": Scores} of the messages that
  # have one, as sent and as translated (the same messages); {} otherwise (and then absent from the JSON).
  languages: Dict[str, Scores] = dataclasses.field(default_factory=dict)

  def to_json(self) -> Dict[str, Any]:
    out = dict(self.scores.to_json(), export=self.export, data=self.data.to_json(), split=self.split,
               text_field=self.text_field, thresholds=dict(self.thresholds))
    if self.languages:
      out["languages"] = _languages_json(self.languages)
    return out

  @classmethod
  def from_json(cls, raw: Dict[str, Any]) -> "Evaluation":
    return cls(Scores.from_json(raw), raw["export"], LoadReport.from_json(raw["data"]), raw["split"],
               raw["text_field"], dict(raw["thresholds"]),
               _languages_from_json(raw))
