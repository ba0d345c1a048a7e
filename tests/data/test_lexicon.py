"""The lexicon: learnt from translation pairs, applied in the graph, saved and read back."""

import numpy as np
import pytest
import tensorflow as tf

from disaster_tf import config as config_lib
from disaster_tf.data import csv_files
from disaster_tf.data import examples as examples_lib
from disaster_tf.data import lexicon
from disaster_tf.model import features
from tests import fixtures

# Standardised (original, translation) pairs: `dlo` always beside `water`, `manje` beside `food`; `mwen` and
# `nou` (function words) beside whatever the message is about.
PAIRS = [("mwen bezwen dlo", "need water"), ("pa gen dlo", "no water"), ("dlo tanpri", "water please"),
         ("mwen grangou manje", "hungry food"), ("nou bezwen manje", "need food"), ("manje tanpri", "food please"),
         ("mwen nou", "rescue"), ("mwen malad", "sick"), ("water water", "water water")]


def learn(pairs=PAIRS, english=None):
  return lexicon.learn(pairs, english if english is not None else [t for _, t in pairs])


def test_learn_pairs_content_words_with_their_english_partners():
  lx = learn()
  assert dict(zip(lx.sources, lx.targets)) == {"dlo": "water", "manje": "food"}
  assert list(lx.sources) == sorted(lx.sources)
  # `mwen` is in 4 originals beside 6 different words (Dice 0.4 at best): below MIN_DICE, so left alone;
  # `bezwen`, `nou` and `tanpri` are in 2 originals only (below MIN_COUNT); the English original teaches nothing.


def test_learn_leaves_words_the_english_messages_use_alone():
  # "dlo" is also a place name in the English messages, as often as in the originals: not translated.
  english = [t for _, t in PAIRS] + ["dlo road"] * 3
  assert learn(english=english).sources == ("manje",)


def test_learn_breaks_ties_alphabetically_whatever_the_order():
  pairs = [("dlo", "water aqua")] * 3
  assert learn(pairs).targets == ("aqua",) and learn(pairs[::-1]).targets == ("aqua",)


def pairs_of(lx):
  return dict(zip(lx.sources, lx.targets))


def test_spelling_variants_take_the_partner_of_the_word_one_edit_away_and_only_that():
  paired = lexicon.Lexicon(("lopital", "manje", "tranbleman"), ("hospital", "food", "earthquake"))
  rare = ["tranblemam",  # a letter changed
          "tranblemann",  # one added
          "tranblman",  # one dropped
          "tranbelman",  # two neighbours swapped
          "tranblamenn",  # two edits: not a variant
          "manj",  # too short to tell from other words
          "lopitalmanje",  # far from both
          "manjel",  # one edit from `manje` only
          "tanblemann"]  # one letter dropped, one added elsewhere: the keys' wider reach (`_one_edit_keys`)
  got = pairs_of(lexicon.variants(paired, rare))
  assert got == {"lopital": "hospital", "manje": "food", "tranbleman": "earthquake", "tranblemam": "earthquake",
                 "tranblemann": "earthquake", "tranblman": "earthquake", "tranbelman": "earthquake",
                 "manjel": "food", "tanblemann": "earthquake"}
  # A word one edit from two sources with different partners is ambiguous: left alone.
  both = lexicon.Lexicon(("lopitan", "lopitax"), ("hospital", "clinic"))
  assert lexicon.variants(both, ["lopita"]).sources == ("lopitan", "lopitax")


def test_learn_with_variants_pairs_the_rare_spellings_of_its_words_but_not_english_ones():
  pairs = PAIRS + [("manjee tanpri", "food please")] * 2 + [("manjes", "food")]
  english = [t for _, t in pairs] + ["manjes restaurant"]  # `manjes` is a name in the English messages
  plain, with_variants = learn(pairs, english), lexicon.learn(pairs, english, with_variants=True)
  assert "manjee" not in plain.sources  # in 2 originals: below MIN_COUNT
  assert pairs_of(with_variants) == {**pairs_of(plain), "manjee": "food"}  # and not `manjes`


def test_a_lexicon_needs_one_target_per_source():
  with pytest.raises(ValueError, match="one target per source: 2 sources, 1 targets"):
    lexicon.Lexicon(("a", "b"), ("x",))


def test_expand_appends_partners_in_order_in_any_shape():
  lookup = lexicon.table(learn())
  out = lexicon.expand(tf.constant(["nou bezwen dlo ak manje", "", "water", "dlo dlo"]), lookup)
  assert out.numpy().tolist() == [b"nou bezwen dlo ak manje water food", b"", b"water", b"dlo dlo water water"]
  assert lexicon.expand(tf.constant([["dlo"], ["manje"]]), lookup).numpy().tolist() == [[b"dlo water"],
                                                                                       [b"manje food"]]
  assert lexicon.expand(tf.constant("dlo"), lookup).numpy() == b"dlo water"


def test_save_and_load_round_trip_and_refuse_a_bad_file(tmp_path):
  lx = learn()
  lexicon.save(lx, str(tmp_path))
  assert lexicon.load(str(tmp_path)) == lx
  lexicon.save(lexicon.Lexicon(), str(tmp_path))
  assert lexicon.load(str(tmp_path)) == lexicon.Lexicon()  # a run whose originals taught nothing
  (tmp_path / lexicon.LEXICON_FILE).write_text("dlo\twater\nmanje food\n", encoding="utf-8")
  with pytest.raises(ValueError, match=r"lexicon.tsv, line 2: expected a word, a tab and its English partner "
                                       r"\(no spaces\), found 'manje food'"):
    lexicon.load(str(tmp_path))
  with pytest.raises(FileNotFoundError, match="lexicon.tsv: no such file"):
    lexicon.load(str(tmp_path / "elsewhere"))


def test_from_training_pairs_the_originals_of_a_split_with_their_translations(tmp_path):
  fixtures.write_two_file(tmp_path / "data", fixtures.synthetic_rows(200), originals=True)
  examples, _ = csv_files.load(str(tmp_path / "data"), str(tmp_path), ("message", "original"))
  lx = lexicon.from_training(examples)
  pairs = dict(zip(lx.sources, lx.targets))
  # The fixture's Creole words, each paired with its English word (stop words and "nou"/"we" aside).
  assert {"dlo": "water", "manje": "food", "dife": "fire", "bouk": "village"}.items() <= pairs.items()
  no_originals = examples.subset(examples.fields == examples_lib.MESSAGE)
  assert lexicon.from_training(no_originals) == lexicon.Lexicon()


def test_the_featurizer_reads_a_creole_message_with_its_english_partners():
  cfg = config_lib.ModelConfig(architecture="ensemble", min_df=1, lexicon=True)
  texts = tf.data.Dataset.from_tensor_slices(["we need water", "nou bezwen dlo", "food please"])
  vocabularies = features.adapt(cfg, texts, learn())
  assert vocabularies[features.LEXICON] == learn()
  with_lexicon = features.Featurizer(cfg, vocabularies)(tf.constant(["Nou bezwen DLO!"]))
  plain_cfg = config_lib.ModelConfig(architecture="ensemble", min_df=1)
  plain = features.Featurizer(plain_cfg, {k: v for k, v in vocabularies.items() if k != features.LEXICON})
  spelled_out = plain(tf.constant(["nou bezwen dlo water"]))  # what the lexicon makes of it
  for name, value in with_lexicon.items():
    value, expected = (tf.sparse.to_dense(v) if isinstance(v, tf.SparseTensor) else v
                       for v in (value, spelled_out[name]))
    np.testing.assert_allclose(value.numpy(), expected.numpy(), err_msg=name)
  # The fingerprint of a run's inputs covers its lexicon.
  assert (features.fingerprint_items(vocabularies) !=
          features.fingerprint_items({**vocabularies, features.LEXICON: lexicon.Lexicon()}))


def test_adapt_and_the_featurizer_refuse_a_missing_or_unexpected_lexicon():
  cfg = config_lib.ModelConfig(architecture="linear", min_df=1, char_ngrams=(), lexicon=True)
  texts = tf.data.Dataset.from_tensor_slices(["nou bezwen dlo"])
  with pytest.raises(ValueError, match="lexicon=True in the model config, but a lexicon was not given"):
    features.adapt(cfg, texts)
  plain = config_lib.ModelConfig(architecture="linear", min_df=1, char_ngrams=())
  with pytest.raises(ValueError, match="lexicon=False in the model config, but a lexicon was given"):
    features.adapt(plain, texts, learn())
  with pytest.raises(ValueError, match="no vocabulary for input"):
    features.Featurizer(cfg, features.adapt(plain, texts))


def test_features_save_and_load_carry_the_lexicon(tmp_path):
  cfg = config_lib.ModelConfig(architecture="linear", min_df=1, char_ngrams=(), lexicon=True)
  vocabularies = features.adapt(cfg, tf.data.Dataset.from_tensor_slices(["nou bezwen dlo"]), learn())
  features.save(vocabularies, str(tmp_path))
  assert features.saved(cfg, str(tmp_path))
  assert features.load(cfg, str(tmp_path))[features.LEXICON] == learn()
