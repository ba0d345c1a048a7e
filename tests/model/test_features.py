"""The model's inputs: TF-IDF n-grams as scikit-learn weighs them, character n-grams, vocabularies on disk."""

import math

import numpy as np
import pytest
import tensorflow as tf

from disaster_tf import config as config_lib
from disaster_tf.data import text
from disaster_tf.model import features

DOCS = ["Water, water and food!", "food shelter", "WATER"]  # "and" is a stop word


def word_config(**overrides):
  return config_lib.ModelConfig(**{"architecture": "linear", "ngrams": 1, "min_df": 1, "char_ngrams": (), **overrides})


def dense(sparse):
  return tf.sparse.to_dense(sparse).numpy()


def test_tf_idf_matches_a_hand_computed_value_on_three_documents():
  cfg = word_config()
  featurizer = features.Featurizer(cfg, features.adapt(cfg, tf.data.Dataset.from_tensor_slices(DOCS)))
  vocabulary = featurizer.vocabularies[features.WORD_NGRAMS]
  assert vocabulary.tokens[0] == "[UNK]" and sorted(vocabulary.tokens[1:]) == ["food", "shelter", "water"]
  # smooth idf = ln((1 + n) / (1 + df)) + 1 with n = 3: water and food are in 2 messages, shelter in 1.
  idf = {"water": math.log(4 / 3) + 1, "food": math.log(4 / 3) + 1, "shelter": math.log(4 / 2) + 1}
  assert dict(zip(vocabulary.tokens[1:], vocabulary.idf[1:].tolist())) == pytest.approx(idf)
  assert vocabulary.idf[0] == 0  # unknown n-grams weigh nothing, as scikit-learn ignores them
  out = dense(featurizer(tf.constant(DOCS + ["zzz", ""]))[features.WORD_NGRAMS])
  col = {t: i for i, t in enumerate(vocabulary.tokens)}
  # Message 1: water twice -> sublinear tf 1 + ln 2; food once -> 1; then the row is L2-normalised.
  water, food = (1 + math.log(2)) * idf["water"], idf["food"]
  norm = math.hypot(water, food)
  assert out[0, col["water"]] == pytest.approx(water / norm, rel=1e-5)
  assert out[0, col["food"]] == pytest.approx(food / norm, rel=1e-5)
  assert out[1, col["food"]] == pytest.approx(idf["food"] / math.hypot(idf["food"], idf["shelter"]), rel=1e-5)
  assert out[2, col["water"]] == pytest.approx(1.0)
  assert not out[3].any() and not out[4].any()  # unknown words only, or nothing: an all-zero row, no NaN
  has = features.has_tokens(featurizer(tf.constant(["zzz", "", "and the"])))
  assert has.numpy().tolist() == [True, False, False]  # an unknown word counts as a token; stop words do not


def test_tf_idf_agrees_with_scikit_learn_on_uni_and_bigrams():
  sklearn_text = pytest.importorskip("sklearn.feature_extraction.text")
  docs = ["we need water food", "water water in the camp", "food camp need", "need help need water now",
          "camp flooded water", "help"]
  cfg = word_config(ngrams=2, min_df=2)
  featurizer = features.Featurizer(cfg, features.adapt(cfg, tf.data.Dataset.from_tensor_slices(docs)))
  ours = dense(featurizer(tf.constant(docs))[features.WORD_NGRAMS])
  tokens = featurizer.vocabularies[features.WORD_NGRAMS].tokens
  # The same tokens as `text.standardize` leaves them (stop words gone), then scikit-learn's weighting.
  standardized = [s.decode() for s in text.standardize(tf.constant(docs)).numpy()]
  reference = sklearn_text.TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2, token_pattern=r"\S+")
  theirs = reference.fit_transform(standardized).toarray()
  assert sorted(tokens[1:]) == sorted(reference.get_feature_names_out())
  order = [list(reference.get_feature_names_out()).index(t) for t in tokens[1:]]
  np.testing.assert_allclose(ours[:, 1:], theirs[:, order], rtol=1e-5, atol=1e-6)


def test_min_df_and_max_ngrams_keep_the_most_frequent_ngrams():
  docs = ["flood water", "flood water", "flood fire", "storm"]
  cfg = word_config(min_df=2)
  assert features.adapt(cfg, tf.data.Dataset.from_tensor_slices(docs))[features.WORD_NGRAMS].tokens == (
      "[UNK]", "flood", "water")  # fire and storm are in one message each
  cfg = word_config(min_df=1, max_ngrams=2)
  assert features.adapt(cfg, tf.data.Dataset.from_tensor_slices(docs))[features.WORD_NGRAMS].tokens == (
      "[UNK]", "flood")  # "[UNK]" counts towards the bound


def test_character_ngrams_on_tricky_strings():
  split = features.char_ngram_splitter((2, 3))
  grams = split(tf.constant(["ab é", "", "x"])).to_list()
  assert [g.decode() for g in grams[0]] == [" a", "ab", "b ", " ab", "ab ", " é", "é ", " é "]  # code points
  assert grams[1] == []
  assert [g.decode() for g in grams[2]] == [" x", "x ", " x "]
  # Through the standardiser: case, apostrophes (one word), punctuation, digits and emoji.
  cfg = config_lib.ModelConfig(architecture="linear", min_df=1, char_ngrams=(2, 4))
  messages = ["M'AP  #Dlo!!", "map dlo", "Dlo 🙂 12"]
  featurizer = features.Featurizer(cfg, features.adapt(cfg, tf.data.Dataset.from_tensor_slices(messages)))
  chars = featurizer.vocabularies[features.CHAR_NGRAMS].tokens
  assert " map" in chars and "map " in chars and " dlo" in chars and "xxnu" in chars
  assert not any("'" in g or "!" in g or "#" in g or "🙂" in g for g in chars)
  out = featurizer(tf.constant(messages))
  np.testing.assert_allclose(dense(out[features.CHAR_NGRAMS])[0], dense(out[features.CHAR_NGRAMS])[1], rtol=1e-6)
  # A misspelling shares most of its n-grams with the word it misspells.
  misspelt = dense(featurizer(tf.constant(["dloo"]))[features.CHAR_NGRAMS])[0]
  assert float(misspelt @ dense(out[features.CHAR_NGRAMS])[1]) > 0.5


def test_vocabularies_round_trip_through_the_model_dir(tmp_path):
  cfg = config_lib.ModelConfig(architecture="ensemble", max_tokens=20, sequence_length=4, min_df=1,
                               char_ngrams=(2, 3))
  vocabularies = features.adapt(cfg, tf.data.Dataset.from_tensor_slices(DOCS))
  assert not features.saved(cfg, str(tmp_path))
  features.save(vocabularies, str(tmp_path))
  assert features.saved(cfg, str(tmp_path))
  assert sorted(p.name for p in tmp_path.iterdir()) == ["char_ngrams.tsv", "vocabulary.txt", "word_ngrams.tsv"]
  loaded = features.load(cfg, str(tmp_path))
  for name, vocab in vocabularies.items():
    assert loaded[name].tokens == vocab.tokens
    if vocab.idf is not None:
      np.testing.assert_array_equal(loaded[name].idf, vocab.idf)
  assert features.fingerprint_items(loaded) == features.fingerprint_items(vocabularies)
  inputs = features.Featurizer(cfg, loaded)(tf.constant(["water food"]))
  expected = features.Featurizer(cfg, vocabularies)(tf.constant(["water food"]))
  for name in inputs:
    np.testing.assert_array_equal(tf.sparse.to_dense(inputs[name]) if name != features.TOKEN_IDS else inputs[name],
                                  tf.sparse.to_dense(expected[name]) if name != features.TOKEN_IDS else expected[name])
  # Token ids alone: the fingerprint is the vocabulary itself, so older model dirs still match.
  ids_only = {features.TOKEN_IDS: vocabularies[features.TOKEN_IDS]}
  assert features.fingerprint_items(ids_only) == list(vocabularies[features.TOKEN_IDS].tokens)


def test_a_featurizer_without_a_vocabulary_it_needs_is_refused():
  cfg = config_lib.ModelConfig(architecture="ensemble", char_ngrams=())
  with pytest.raises(ValueError, match="no vocabulary for input.s. word_ngrams of --model=ensemble"):
    features.Featurizer(cfg, {features.TOKEN_IDS: features.Vocabulary(("", "[UNK]", "water"))})


@pytest.mark.parametrize("content, error", [
    ("[UNK]\t0.0\nwater\tlots\n", r"word_ngrams.tsv, line 2: expected an n-gram, a tab and its idf .* 'water\\tlots'"),
    ("[UNK]\t0.0\nwater\t-1\n", r"line 2: expected an n-gram"),
    ("[UNK]\t0.0\n\t1.5\n", r"line 2: expected an n-gram"),
    ("water\t1.5\n", r"not a vocabulary written by train.py \(expected '\[UNK\]' first\)"),
])
def test_a_damaged_ngram_vocabulary_is_refused_naming_file_and_line(tmp_path, content, error):
  (tmp_path / "word_ngrams.tsv").write_text(content, encoding="utf-8")
  with pytest.raises(ValueError, match=error):
    features.load(word_config(), str(tmp_path))


def test_a_missing_ngram_vocabulary_names_the_file(tmp_path):
  with pytest.raises(FileNotFoundError, match="word_ngrams.tsv: no such file; is .* a model dir written by train.py"):
    features.load(word_config(), str(tmp_path))
