"""Leave-one-word-out explanations: the graph function on a known scorer, then the export's explain signature."""

import numpy as np
import pytest
import tensorflow as tf

from disaster_tf import labels
from disaster_tf.serve import client
from disaster_tf.serve import explain
from disaster_tf.serve import predict

WATER = labels.CATEGORIES.index("water")
FOOD = labels.CATEGORIES.index("food")
TRICKY = ["We need WATER, water and food!", "", "   ", "(water)\tfood\nhelp", "«eau» potable 💧 water",
          "#water @food $100 -- !!!", "b\u200bd water", "x " * 300 + "water"]


def keyword_scores(texts, sources):
  """[n, 36]: water 0.9 if the text holds the word `water` (any case), food 0.6 for `food`; a known truth."""
  del sources  # every text is scored alike
  lower = tf.strings.lower(texts)
  def has(word):
    return tf.strings.regex_full_match(lower, f".*\\b{word}\\b.*")
  water = tf.where(has("water"), 0.9, 0.0)
  food = tf.where(has("food"), 0.6, 0.0)
  columns = [water if i == WATER else food if i == FOOD else tf.zeros_like(water)
             for i in range(labels.NUM_CATEGORIES)]
  return tf.stack(columns, axis=1)


def run(texts):
  return {k: v.numpy() for k, v in explain.explain(tf.constant(texts, tf.string), keyword_scores).items()}


def decoded(values):
  return [v.decode("utf-8") for v in np.ravel(values) if v]


def test_the_deciding_word_is_the_top_word_with_its_whole_score():
  out = run(["Please send water to the north road"])
  assert decoded(out["top_words"][0, WATER]) == ["water"]
  assert out["top_contributions"][0, WATER, 0] == pytest.approx(0.9)
  assert out["top_contributions"][0, FOOD].max() == 0  # no word makes food


def test_every_occurrence_of_a_word_goes_at_once_and_it_is_listed_once_as_written_first():
  out = run(["We need WATER, water and water food!"])
  words = decoded(out["words"][0])
  assert words == ["We", "need", "WATER", "and", "food"]  # edge punctuation left out, case-folded duplicates once
  # Removing only one `water` would leave the others: the contribution would be 0, not 0.9.
  assert out["contributions"][0, words.index("WATER"), WATER] == pytest.approx(0.9)
  assert out["contributions"][0, words.index("food"), FOOD] == pytest.approx(0.6)
  assert out["contributions"][0, words.index("need")].max() == 0


@pytest.mark.parametrize("message", TRICKY)
def test_an_explanation_never_holds_a_word_that_is_not_in_the_message(message):
  out = run([message])
  for word in decoded(out["words"]) + decoded(out["top_words"]):
    assert word in message, word


def test_shapes_padding_and_limits():
  many = " ".join(f"w{i}" for i in range(explain.MAX_WORDS + 10))
  out = run(["water", "", many, "x " * explain.MAX_TOKENS + "water"])
  assert out["words"].shape == (4, explain.MAX_WORDS)
  assert out["contributions"].shape == (4, explain.MAX_WORDS, labels.NUM_CATEGORIES)
  assert out["top_words"].shape == out["top_contributions"].shape == (4, labels.NUM_CATEGORIES, explain.TOP_WORDS)
  assert decoded(out["words"][1]) == [] and not out["contributions"][1].any()  # an empty message: nothing
  assert decoded(out["words"][2]) == [f"w{i}" for i in range(explain.MAX_WORDS)]  # the first MAX_WORDS words
  # A word after the first MAX_TOKENS tokens is not explained, but still counts in every score.
  assert decoded(out["words"][3]) == ["x"] and out["contributions"][3, 0, WATER] == 0
  empty = explain.explain(tf.constant([], tf.string), keyword_scores)
  assert empty["top_words"].shape == (0, labels.NUM_CATEGORIES, explain.TOP_WORDS)


def test_words_are_separated_where_the_model_separates_them_and_hold_no_control_character():
  out = run(["need\x00water\u2028food\x1b[31mfire\u200bhelp\tnow\u00a0please"])
  assert decoded(out["words"][0]) == ["need", "water", "food", "31mfire", "help", "now", "please"]
  assert out["contributions"][0, 1, WATER] == pytest.approx(0.9)  # water, read apart from its neighbours


def test_invalid_bytes_are_read_as_the_replacement_character_a_symbol_that_is_no_word():
  out = run([b"dlo \xff water", b"wa\xffter"])
  assert decoded(out["words"][0]) == ["dlo", "water"]
  assert decoded(out["words"][1]) == ["wa\ufffdter"]  # valid UTF-8 out, whatever came in


def test_client_keeps_predicted_categories_and_words_that_raise_the_score_enough():
  classes = list(labels.CATEGORIES)
  top_words = [[b"", b"", b""]] * labels.NUM_CATEGORIES
  top_contributions = [[0.0, 0.0, 0.0]] * labels.NUM_CATEGORIES
  top_words[WATER], top_contributions[WATER] = [b"water", b"dlo", b"need"], [0.41, 0.012, 0.004]
  scores = [0.0] * labels.NUM_CATEGORIES
  decided = [0] * labels.NUM_CATEGORIES
  decided[WATER] = decided[FOOD] = decided[0] = 1
  row = client.result_row(scores, decided, classes, top_words, top_contributions)
  # `need` moved water by less than MIN_CONTRIBUTION; food is predicted but no single word made it.
  assert row["explanation"] == {"related": [], "water": [["water", 0.41], ["dlo", 0.012]], "food": []}
  answer = predict.ranked(row, predict.URGENCY)
  assert list(answer["explanation"]) == ["water", "food", "related"]  # in urgency order, as `predicted`
  assert predict.explanation_cell(answer) == ("water: water (+0.41), dlo (+0.01); food: no single word; "
                                              "related: no single word")


# The export's explain signature (the `exported` fixture: a tiny ensemble trained on tests/fixtures.py's keywords).

def test_the_export_explains_water_by_the_word_water_and_the_creole_word_dlo(exported):
  _, path = exported
  loaded = predict.load_export(path)
  water, creole = loaded.explainer(["We need water today", "Nou bezwen dlo tanpri"])
  assert "water" in water["predicted"] and water["explanation"]["water"][0][0] == "water"
  assert "water" in creole["predicted"] and creole["explanation"]["water"][0][0] == "dlo"  # through the lexicon
  # The explainer's answer is the scorer's, plus the explanation.
  plain = loaded.scorer(["We need water today"])[0]
  assert plain["predicted"] == water["predicted"]
  assert plain["scores"] == pytest.approx(water["scores"])


def test_a_contribution_is_the_score_without_the_word_exactly(exported):
  _, path = exported
  loaded = predict.load_export(path)
  message = "We need water and food today"
  (answer,) = loaded.explainer([message])
  without = loaded.scorer(["We need and food today"])[0]
  (water_word,) = [w for w in answer["explanation"]["water"] if w[0] == "water"]
  assert water_word[1] == pytest.approx(answer["scores"]["water"] - without["scores"]["water"], abs=1e-4)


def test_an_export_without_the_explain_signature_is_named(exported, monkeypatch):
  from disaster_tf.serve import savedmodel  # pylint: disable=import-outside-toplevel
  _, path = exported
  load = savedmodel.load_signatures
  # As an export made before explanations loads: serving_default and classify only.
  monkeypatch.setattr(savedmodel, "load_signatures", lambda p: {k: f for k, f in load(p).items() if k != "explain"})
  loaded = predict.load_export(path)
  assert loaded.scorer(["water"])[0]["scores"]  # it still scores
  with pytest.raises(ValueError, match=r"/1: this export has no explain signature .* export the model dir again"):
    loaded.explainer(["water"])


def test_each_scored_text_names_the_message_it_is_made_from():
  # A scorer whose `related` score is its text's source / 100: a word's contribution there is 0 exactly when
  # the text without it is said to come from the word's own message (what a routed export routes by).
  def by_source(texts, sources):
    del texts
    return tf.concat([tf.cast(sources, tf.float32)[:, tf.newaxis] / 100,
                      tf.zeros([tf.shape(sources)[0], labels.NUM_CATEGORIES - 1])], axis=1)
  out = explain.explain(tf.constant(["water food help", "a b", "c d e f"]), by_source)
  assert np.asarray(out["words"] != b"").sum() == 9
  np.testing.assert_array_equal(out["contributions"].numpy()[:, :, 0], 0.0)
