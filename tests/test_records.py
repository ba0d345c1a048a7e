"""The typed records: each reads back what it writes, in the JSON shape files had before the records existed."""

import json

import numpy as np

from disaster_tf import labels
from disaster_tf import records
from disaster_tf.model import metrics


def scores(seed=0):
  rng = np.random.default_rng(seed)
  maximum = np.array(labels.MAX_LABEL)[None, :] + 1
  truth, decided = (rng.integers(0, maximum, (50, labels.NUM_CATEGORIES)) for _ in range(2))
  return metrics.report(truth, decided)


def final_report(**overrides):
  fields = dict(scores=scores(0), at_half=scores(1), thresholds=dict.fromkeys(labels.CATEGORIES, 0.25),
                threshold_source="tuned on the tune split (9 messages) for positive_f1", validation_loss=0.5,
                best_epoch=2, checkpoint="/m/best/ckpt-8", select_metric="total", selected_on="tune",
                training_data=records.TrainingData(40, dict.fromkeys(labels.CATEGORIES, 3), {"direct": 40}))
  fields.update(overrides)
  return records.FinalReport(**fields)


def through_json(record):
  """`record` written as JSON text and read back, as a file would be."""
  return type(record).from_json(json.loads(json.dumps(record.to_json())))


def test_scores_keep_the_shape_metrics_report_had():
  s = scores()
  raw = s.to_json()
  assert list(raw) == ["examples", "total", "mean_positive_f1", "micro_f1", "categories"]
  assert list(raw["categories"]) == list(labels.CATEGORIES)
  assert list(raw["categories"]["water"]) == ["precision", "recall", "f1", "support", "macro_f1"]
  assert list(raw["categories"]["related"]["per_class"]) == ["0", "1", "2"]
  assert through_json(s) == s and s.summary() == {"total": s.total, "mean_positive_f1": s.mean_positive_f1,
                                                  "micro_f1": s.micro_f1}


def test_a_final_report_reads_back_with_its_languages_and_refit():
  plain = final_report()
  raw = plain.to_json()
  assert raw["at_0.5"]["total"] == plain.at_half.total and raw["total"] == plain.scores.total
  assert "languages" not in raw and "refit" not in raw  # as metrics.json had them: absent when unused
  full = final_report(languages={"original": scores(2), "translation": scores(3)}, refit=final_report(best_epoch=2))
  assert through_json(plain) == plain and through_json(full) == full
  assert records.RefitPlan.chosen_by(full) == records.RefitPlan(
      2, (0.25,) * labels.NUM_CATEGORIES, "tuned on the tune split (9 messages) for positive_f1, by the run that "
      "chose epoch 2")


def test_reports_written_before_a_field_existed_still_read():
  raw = final_report().to_json()
  for key in ("training_data", "threshold_source", "validation_loss", "select_metric", "selected_on"):
    del raw[key]
  old = records.FinalReport.from_json(raw)
  assert old.training_data is None and old.threshold_source == "0.5" and old.selected_on == "validation"
  metadata = records.ExportMetadata.from_json({"categories": list(labels.CATEGORIES), "config": {},
                                               "checkpoint": "c", "model_dir": "m",
                                               "thresholds": [0.5] * labels.NUM_CATEGORIES})
  assert metadata.precision == "float32" and not metadata.refit and metadata.report is None
  assert records.LoadReport.from_json({"source": "d", "format": "wide", "rows": 3, "a_later_field": 1}).rows == 3


def test_export_metadata_carries_the_training_report_and_data():
  metadata = records.ExportMetadata(
      labels.CATEGORIES, {"model": {"architecture": "ensemble"}}, "/m/best/ckpt-8", "/m", "abc",
      (0.5,) * labels.NUM_CATEGORIES, "bfloat16", "0.1.0", True, "2026-11-30 12:00 UTC", final_report(),
      records.LoadReport(source="d", format="two-file", rows=60, examples=60))
  assert through_json(metadata) == metadata and metadata.thresholds_by_category()["water"] == 0.5
  assert set(metadata.to_json()) == {"categories", "config", "checkpoint", "model_dir", "vocabulary_fingerprint",
                                     "thresholds", "precision", "version", "refit", "exported", "report", "data",
                                     "unfinished"}
