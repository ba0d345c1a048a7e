"""Scores an exported SavedModel on labelled data, from its own `labels` output.

The library half of `evaluate.py` (the entry point is `disaster_tf/cli/evaluate.py`).
`split` applies the training run's own id split (fractions and salt are read
from the export's config), so "validation" scores only messages the model
never trained on.
"""

import json
import tempfile
from typing import Optional, Tuple

import numpy as np
from absl import logging

from disaster_tf import config as config_lib
from disaster_tf import records
from disaster_tf.data import csv_files
from disaster_tf.data import examples as examples_lib
from disaster_tf.model import metrics
from disaster_tf.serve import predict as predict_lib
from disaster_tf.serve import report
from disaster_tf.serve import savedmodel

SPLITS = ("all",) + examples_lib.SPLIT_NAMES


def evaluate_export(export_dir: str, data_path: str, split: str = "all", batch_size: int = 256,
                    text_field: str = "message",
                    report_path: Optional[str] = None) -> Tuple[records.Evaluation, records.ExportMetadata]:
  """Runs the export's serving_default on labelled messages and scores its `labels`.

  Args:
    export_dir: a version directory, or a base directory holding versions.
    data_path: labelled data in either format (see `csv_files.load`).
    split: "all", or "train" / "tune" / "validation" by the training run's id split.
    batch_size: messages per call.
    text_field: "message", or "original" to score the messages that have
      one as they were sent (e.g. Haitian Creole), with their labels.
    report_path: where to write the evaluation as one self-contained HTML
      page (`report.html_report`), or None.

  Returns:
    (the scores of the export's `labels` and what was scored; the export's metadata).
  """
  if split not in SPLITS:
    raise ValueError(f"split={split!r}: expected one of {', '.join(SPLITS)}")
  if text_field not in examples_lib.TEXT_FIELDS:
    raise ValueError(f"text_field={text_field!r}: expected one of {', '.join(examples_lib.TEXT_FIELDS)}")
  path = savedmodel.version_dir(export_dir)
  metadata = savedmodel.read_metadata(path)
  logging.info("scoring with %s", predict_lib.describe(path))
  with tempfile.TemporaryDirectory(prefix="disaster_tf-evaluate-") as spool_dir:
    # Originals are read in every case: scoring the translations, those that have one get a language report.
    examples, load_report = csv_files.load(data_path, spool_dir, text_fields=examples_lib.TEXT_FIELDS)
    logging.info("data: %s", load_report.summary())
    if split != "all":
      train = dict(metadata.config["train"])
      train.setdefault("tune_fraction", 0.0)  # exports from before the tune split have none
      train_config = config_lib.Config.from_json(json.dumps({"train": train})).train
      examples = getattr(examples_lib.split(examples, train_config), split)
      if not len(examples):
        raise ValueError(f"{data_path}: no examples in the {split} split")
    originals = examples.field(examples_lib.ORIGINAL)
    examples = examples.field(examples_lib.TEXT_FIELDS.index(text_field))
    if not len(examples):
      raise ValueError(f"{data_path}: no message of the {split} split has an original (an `original` column "
                       "that is set and differs from the translation)")
    predict = savedmodel.load_predict(path)
    decided, probabilities = _predict(predict, examples, batch_size, keep_scores=report_path is not None)
    languages = {}
    if text_field == "message" and len(originals):  # the same messages as sent, beside their translations
      translated = np.isin(examples.ids, originals.ids)
      languages = {"original": metrics.report(originals.labels, _predict(predict, originals, batch_size)[0]),
                   "translation": metrics.report(examples.labels[translated], decided[translated])}
  evaluation = records.Evaluation(metrics.report(examples.labels, decided), export=path, data=load_report,
                                  split=split, text_field=text_field, thresholds=metadata.thresholds_by_category(),
                                  languages=languages)
  if report_path is not None:
    title = f"{path} on {data_path} ({split} split, {text_field} texts)"
    card = (report.model_card(metadata) if metadata.report else
            report.model_card(metadata, evaluation.scores, languages))
    page = report.html_report(title, evaluation.scores, examples.labels.astype(int), probabilities,
                              decided, metadata.thresholds, examples.genres, card, languages)
    config_lib.write_text_atomic(report_path, page)
  return evaluation, metadata


def _predict(predict, examples: examples_lib.Examples, batch_size: int,
             keep_scores: bool = False) -> Tuple[np.ndarray, Optional[np.ndarray]]:
  """The export's `labels` [N, 36] for the examples' texts, streamed a batch at a time, and its `scores` if kept."""
  decided, probabilities = [], []
  for batch in examples.texts().batch(batch_size):
    out = predict(text=batch)
    decided.append(out["labels"].numpy())
    if keep_scores:
      probabilities.append(out["scores"].numpy())
  return np.concatenate(decided), np.concatenate(probabilities) if keep_scores else None
