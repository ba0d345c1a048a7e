"""The language gate: hashed character n-grams and a logistic regression, fitted and saved."""

import numpy as np
import pytest
import tensorflow as tf

from disaster_tf import labels
from disaster_tf.model import language
from tests import fixtures


def two_languages(n=200, seed=0):
  rows = fixtures.synthetic_rows(n, seed=seed)
  return [r["message"] for r in rows], [r["original"] for r in rows]


def test_the_gate_tells_the_two_sides_apart_on_messages_it_never_saw():
  english, creole = two_languages()
  weights = language.train(tf.data.Dataset.from_tensor_slices(english), tf.data.Dataset.from_tensor_slices(creole),
                           seed=0)
  assert weights.shape == (language.BUCKETS + 1,) and np.isfinite(weights).all()
  held_english, held_creole = two_languages(100, seed=1)
  scores = language.scores(weights, tf.data.Dataset.from_tensor_slices(held_english),
                           tf.data.Dataset.from_tensor_slices(held_creole), threshold=0.5)
  assert scores["other_recall"] >= 0.95 and scores["english_false_flags"] <= 0.05
  assert scores["other_texts"] == scores["english_texts"] == 100
  gate = language.LanguageGate(weights, language.GateRecord(language.BUCKETS, language.WIDTHS, 0.5, scores))
  said, score = gate(tf.constant(["Nou bezwen dlo tanpri", "We need water please", ""]))
  assert [s.decode() for s in said.numpy()] == [labels.OTHER_LANGUAGE, labels.ENGLISH, labels.ENGLISH]
  assert 0.5 <= score.numpy()[0] <= 1 and 0 <= score.numpy()[1] < 0.5


def test_text_is_read_as_written_with_its_stop_words_and_any_script():
  assert language.normalized(tf.constant(["We NEED water!! 123", "Dlo\x00manje"])).numpy().tolist() == [
      b" we need water ", b" dlo manje "]
  grams = language.buckets_of(tf.constant(["ab", "", "日本語 🙂"]))
  assert grams.row_lengths().numpy().tolist()[1] == 1  # "  ": one 2-gram of spaces, no error on empty text
  assert int(tf.reduce_max(grams.flat_values)) < language.BUCKETS


def test_a_gate_is_saved_whole_and_a_broken_one_is_named(tmp_path):
  weights = np.arange(language.BUCKETS + 1, dtype=np.float32) / language.BUCKETS
  record = language.GateRecord(language.BUCKETS, language.WIDTHS, 0.5, {"other_recall": 0.98})
  assert language.load(str(tmp_path)) is None  # no gate: an export without `language`
  language.save(weights, record, str(tmp_path))
  loaded, again = language.load(str(tmp_path))
  np.testing.assert_array_equal(loaded, weights)
  assert again == record and sorted(p.name for p in tmp_path.iterdir()) == [language.RECORD_FILE,
                                                                           language.WEIGHTS_FILE]
  (tmp_path / language.RECORD_FILE).write_text('{"buckets": 8}')
  with pytest.raises(ValueError, match=r"language_gate.json: not the language gate train.py writes \(KeyError"):
    language.load(str(tmp_path))
  language.save(weights[:10], record, str(tmp_path))
  with pytest.raises(ValueError, match=rf"language_gate.npy: shape \(10,\), expected \({language.BUCKETS + 1},\)"):
    language.load(str(tmp_path))
  with pytest.raises(ValueError, match="the language gate needs texts of both sides: 3 English, 0 originals"):
    language.train(tf.data.Dataset.from_tensor_slices(["a", "b", "c"]),
                   tf.data.Dataset.from_tensor_slices(tf.constant([], tf.string)), seed=0)
