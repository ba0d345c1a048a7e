"""The language gate's phase: fitted on the run's training split, kept, or skipped for data without originals."""

import logging

from disaster_tf.model import language
from disaster_tf.train import distribute
from disaster_tf.train import gate
from tests import fixtures


def dirs_of(tmp_path):
  (tmp_path / "model" / "scratch").mkdir(parents=True, exist_ok=True)
  return distribute.RunDirs(str(tmp_path / "model"), str(tmp_path / "model"), str(tmp_path / "model" / "scratch"),
                            True)


def test_the_gate_is_fitted_on_the_training_split_scored_on_validation_and_kept(tmp_path, caplog):
  fixtures.write_two_file(tmp_path / "data", fixtures.synthetic_rows(200), originals=True)
  config = fixtures.tiny_config(str(tmp_path / "data"))
  caplog.set_level(logging.INFO, logger="absl")
  record = gate.fit(config, dirs_of(tmp_path))
  assert record.scores["other_recall"] >= 0.95 and record.scores["english_false_flags"] <= 0.05
  assert 0 < record.scores["other_texts"] < 200  # the validation split's originals only
  assert language.load(str(tmp_path / "model"))[1] == record
  again = gate.fit(config, dirs_of(tmp_path))  # a resumed run keeps the gate it fitted
  assert again == record and any("language gate: kept" in m for m in caplog.messages)


def test_data_without_originals_gets_no_gate_and_says_so(tmp_path, caplog):
  fixtures.write_two_file(tmp_path / "data", fixtures.synthetic_rows(120))  # no `original` filled
  caplog.set_level(logging.INFO, logger="absl")
  assert gate.fit(fixtures.tiny_config(str(tmp_path / "data")), dirs_of(tmp_path)) is None
  assert language.load(str(tmp_path / "model")) is None
  assert any("has no originals" in m and "answers without `language`" in m for m in caplog.messages)
