"""The in-graph standardisation and the vocabulary round trip."""

import numpy as np
import pytest
import tensorflow as tf

from disaster_tf import config as config_lib
from disaster_tf.data import text


def clean(*strings):
  return [s.decode("utf-8") for s in text.standardize(tf.constant(list(strings))).numpy()]


@pytest.mark.parametrize("raw, expected", [
    ("We NEED Water!!", "need water"),
    ("see http://bit.ly/x?a=1 and www.relief.org/page", "see xxurl xxurl"),
    ("@UN_OCHA thanks @bob", "thanks"),
    ("#HaitiQuake #flood", "haitiquake flood"),
    ("Delmas 32, 4636 SMS", "delmas xxnum xxnum sms"),
    ("don't worry, it's fine", "dont worry fine"),
    ("ÉCOLE Straße ДОМ", "école straße дом"),  # Unicode lower-casing
    ("日本語 テスト 🙂 नमस्ते", "日本語 テスト नमस्ते"),  # other scripts stay, emoji go
    ("of the and a", ""),  # adjacent stop words all go
    ("", ""),
    ("   \t\n ", ""),
    ("no food, not water", "no food not water"),  # negations are kept
    ("snake_case_word", "snake case word"),
    # Haitian Creole as SMS write it: apostrophes join (as SMS spell m'ap "map"), accents stay letters,
    # and the few English stop words that are Creole words too go ("a", "an", "me").
    ("M'ap mouri grangou, k'ap ede nou?", "map mouri grangou kap ede nou"),
    ("Mwen pa't konn sa pou'm fè", "mwen pat konn sa poum fè"),
    ("Nou bezwen dlo ak manje nan Leyogan jodi a", "nou bezwen dlo ak manje nan leyogan jodi"),
    ("LÒPITAL la plen", "lòpital la plen"),
])
def test_standardize(raw, expected):
  assert clean(raw) == [expected]


def test_standardize_survives_invalid_utf8_and_keeps_shape():
  out = text.standardize(tf.constant([[b"bad \xff\xfe bytes"], [b"ok"]]))
  assert out.shape == (2, 1)
  assert out.numpy()[0, 0] == b"bad bytes"


def test_vectorizer_pads_truncates_and_round_trips_the_vocabulary(tmp_path):
  cfg = config_lib.ModelConfig(max_tokens=10, sequence_length=4)
  layer = text.make_vectorizer(cfg)
  vocab = text.adapt(layer, ["water water food", "food shelter", "water"])
  assert vocab[:2] == ["", "[UNK]"] and vocab[2] == "water"
  ids = layer(tf.constant(["Water and FOOD!", "unseen", "water water water water water"])).numpy()
  assert ids.shape == (3, 4)
  np.testing.assert_array_equal(ids[0], [2, 3, 0, 0])
  np.testing.assert_array_equal(ids[1], [1, 0, 0, 0])
  text.save_vocabulary(vocab, str(tmp_path))
  reloaded = text.make_vectorizer(cfg, text.load_vocabulary(str(tmp_path)))
  np.testing.assert_array_equal(reloaded(tf.constant(["Water and FOOD!"])).numpy(), ids[:1])
  assert reloaded(tf.constant([], tf.string)).shape == (0, 4)


def test_load_vocabulary_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match="vocabulary.txt: no such file"):
    text.load_vocabulary(str(tmp_path))
  (tmp_path / "vocabulary.txt").write_text("water\nfood\n")
  with pytest.raises(ValueError, match="not a vocabulary written by train.py"):
    text.load_vocabulary(str(tmp_path))
