"""Scoring an export on labelled data from its own `labels` output."""

import json
import os
import subprocess
import sys

import pytest
import tensorflow as tf

from disaster_tf import labels
from disaster_tf import records
from disaster_tf.data import csv_files
from disaster_tf.data import examples as examples_lib
from disaster_tf.model import metrics
from disaster_tf.serve import evaluate
from disaster_tf.serve import report
from disaster_tf.serve import savedmodel
from disaster_tf.train import checkpoint as ckpt_lib
from tests import fixtures

ROOT = fixtures.ROOT


def test_report_comes_from_the_exports_labels(exported, tmp_path):
  model_dir, path = exported
  rows = fixtures.synthetic_rows(60, seed=9)
  fixtures.write_two_file(tmp_path / "d", rows)
  evaluation, metadata = evaluate.evaluate_export(os.path.dirname(path), str(tmp_path / "d"), batch_size=7)
  assert evaluation.export == path and evaluation.split == "all" and evaluation.scores.examples == 60
  examples, _ = csv_files.load(str(tmp_path / "d"), str(tmp_path))
  decided = tf.saved_model.load(path).signatures["serving_default"](text=tf.constant(examples.read_texts()))["labels"]
  assert evaluation.scores.total == pytest.approx(metrics.report(examples.labels, decided.numpy()).total)
  assert metadata.thresholds == pytest.approx(ckpt_lib.read_thresholds(model_dir).tolist())
  assert metadata.refit is False and "--refit" not in report.model_card(metadata)  # trained without --refit
  assert list(evaluation.thresholds) == list(labels.CATEGORIES)
  assert tuple(evaluation.thresholds.values()) == metadata.thresholds
  # evaluate.py --output writes the same JSON shape as before the records: the scores' keys, then the rest.
  assert list(evaluation.to_json())[:5] == ["examples", "total", "mean_positive_f1", "micro_f1", "categories"]


def test_the_html_report_and_the_exports_model_card(exported, tmp_path):
  _, path = exported
  fixtures.write_two_file(tmp_path / "d", fixtures.synthetic_rows(50, seed=2))
  evaluate.evaluate_export(path, str(tmp_path / "d"), report_path=str(tmp_path / "report.html"))
  page = (tmp_path / "report.html").read_text(encoding="utf-8")
  assert page.count('<figure class="curve">') == labels.NUM_CATEGORIES and "<td>direct</td><td>50</td>" in page
  # The card quotes the export's own validation report (carried in assets.extra), also as Markdown there.
  validation = savedmodel.read_metadata(path).report.scores
  with open(os.path.join(path, "assets.extra", savedmodel.MODEL_CARD_FILE), encoding="utf-8") as f:
    card = f.read()
  assert f"On {validation.examples} validation messages it never trained on: Total {validation.total:.2f}" in card
  assert "<h2>Categories it cannot be trusted on</h2>" in page and "as they were sent" in page
  # The card gives the export's own validation messages by language; these scored messages have no original.
  assert "## By language" in card and "the same messages</th>" not in page


def test_messages_that_have_an_original_are_also_scored_as_sent_beside_their_translations(exported, tmp_path):
  _, path = exported
  rows = fixtures.synthetic_rows(60, seed=6)
  for r in rows[::2]:
    r["original"] = ""  # half of them were written in English
  fixtures.write_two_file(tmp_path / "d", rows, originals=True)
  evaluation, _ = evaluate.evaluate_export(path, str(tmp_path / "d"), report_path=str(tmp_path / "report.html"))
  sent, english = evaluation.languages["original"], evaluation.languages["translation"]
  assert evaluation.scores.examples == 60 and sent.examples == english.examples == 30
  predict = tf.saved_model.load(path).signatures["serving_default"]
  by_language = {name: predict(text=tf.constant([r[key] for r in rows[1::2]]))["labels"].numpy()
                 for name, key in (("original", "original"), ("translation", "message"))}
  truth = [[r["labels"][c] for c in labels.CATEGORIES] for r in rows[1::2]]
  for name, decided in by_language.items():
    assert evaluation.languages[name].micro_f1 == pytest.approx(metrics.report(truth, decided).micro_f1)
  page = (tmp_path / "report.html").read_text(encoding="utf-8")
  assert "<h2>By language</h2>" in page and "<td>as sent</td><td>30</td>" in page
  assert records.Evaluation.from_json(evaluation.to_json()) == evaluation


def test_split_uses_the_training_runs_id_split(exported, tmp_path):
  _, path = exported
  rows = fixtures.synthetic_rows(80, seed=4)
  fixtures.write_wide(tmp_path / "wide.csv", rows)
  counts = {split: evaluate.evaluate_export(path, str(tmp_path / "wide.csv"), split=split)[0].scores.examples
            for split in ("train", "tune", "validation")}
  tc = savedmodel.read_metadata(path).config["train"]
  side_of = examples_lib.split_ids([r["id"] for r in rows], tc["validation_fraction"], tc["tune_fraction"],
                                   tc["split_seed"])
  assert counts == {"train": int((side_of == examples_lib.TRAIN).sum()),
                    "tune": int((side_of == examples_lib.TUNE).sum()),
                    "validation": int((side_of == examples_lib.VALIDATION).sum())}
  assert sum(counts.values()) == 80 and min(counts.values()) > 0


def test_errors(exported, tmp_path):
  _, path = exported
  with pytest.raises(ValueError, match="split='test'"):
    evaluate.evaluate_export(path, str(tmp_path), split="test")
  fixtures.write_two_file(tmp_path / "d", fixtures.synthetic_rows(1))
  ids = [r["id"] for r in fixtures.synthetic_rows(1)]
  tc = savedmodel.read_metadata(path).config["train"]
  side = examples_lib.split_ids(ids, tc["validation_fraction"], tc["tune_fraction"], tc["split_seed"])[0]
  on_validation = side == examples_lib.VALIDATION
  side = "train" if on_validation else "validation"  # the split that the one row is not in
  with pytest.raises(ValueError, match=f"no examples in the {side} split"):
    evaluate.evaluate_export(path, str(tmp_path / "d"), split=side)


def test_cli_prints_and_writes_the_report(exported, tmp_path):
  _, path = exported
  fixtures.write_two_file(tmp_path / "d", fixtures.synthetic_rows(40))
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  out = tmp_path / "report.json"
  result = subprocess.run([sys.executable, "evaluate.py", f"--export_dir={path}",
                           f"--data={tmp_path / 'd'}", "--split=all", f"--output={out}"],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  assert "Total (sum of macro-F1, max 36)" in result.stdout and "water" in result.stdout
  assert f"scoring with version 1 ({path})" in result.stderr  # which export answered: the log says
  assert json.loads(out.read_text())["examples"] == 40
  assert "decision thresholds stored in the export: " in result.stdout
  assert set(json.loads(out.read_text())["thresholds"]) == set(labels.CATEGORIES)
  # Not an export: an OSError, which the command's tail (cli.run: tests/test_cli.py) turns into a sentence.
  with pytest.raises(FileNotFoundError, match="neither a SavedModel"):
    evaluate.evaluate_export(str(tmp_path), str(tmp_path / "d"))
  result = subprocess.run([sys.executable, "evaluate.py", f"--export_dir={path}", f"--data={tmp_path / 'd'}",
                           f"--output={tmp_path / 'nowhere' / 'report.json'}"], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300)
  assert result.returncode == 1
  assert f"evaluate.py: --output={tmp_path / 'nowhere' / 'report.json'}: {tmp_path / 'nowhere'} is not a " \
         "directory; create it first" in result.stderr
  assert "Total" not in result.stdout  # refused before evaluating
