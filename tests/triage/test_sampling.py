"""Active learning: the most useful messages first, measured against each head's threshold, without near-copies."""

import numpy as np
import pytest

from disaster_tf.triage import sampling

THRESHOLDS = np.array([0.5, 0.2, 0.8])


def test_the_message_nearest_a_threshold_comes_first_by_every_method():
  scores = np.array([[0.99, 0.01, 0.99],   # certain everywhere
                     [0.99, 0.21, 0.99],   # one head just over its threshold (0.2): most useful
                     [0.95, 0.05, 0.97],   # somewhat unsure
                     [0.00, 0.00, 0.00]])  # the model read nothing: least useful
  for method in ("margin", "entropy", "rare_margin"):  # the uncertainty methods (rare_positive seeks positives)
    useful = sampling.usefulness(scores, THRESHOLDS, method, positives=np.array([100, 100, 100]))
    assert np.argmax(useful) == 1 and np.argmin(useful) == 3, method
  margins = sampling.signed_margins(scores, THRESHOLDS)
  assert margins[1, 1] == pytest.approx(0.0125) and margins[0, 1] == pytest.approx(-0.95)


def test_rare_margin_prefers_doubt_on_a_rare_category():
  scores = np.array([[0.45, 0.9, 0.9],   # unsure on head 0 (common)
                     [0.9, 0.9, 0.7]])  # a little less unsure, on head 2 (rare)
  thresholds = np.array([0.5, 0.5, 0.8])
  assert sampling.usefulness(scores, thresholds, "margin")[0] > sampling.usefulness(scores, thresholds, "margin")[1]
  rare = sampling.usefulness(scores, thresholds, "rare_margin", positives=np.array([1000, 1000, 10]))
  assert rare[1] > rare[0]


def test_a_near_copy_does_not_take_a_second_top_slot():
  texts = ["We need water in Carrefour please", "we need WATER in carrefour, please!", "Fire at the market",
           "Trapped under the school"]
  useful = np.array([0.9, 0.89, 0.5, 0.4])
  assert sampling.diverse_top(useful, texts, 3) == [0, 2, 3]
  assert sampling.diverse_top(useful, texts, 10) == [0, 2, 3]  # fewer than asked: the rest are copies


def test_an_unknown_method_or_missing_counts_are_refused():
  with pytest.raises(ValueError, match="method='best': expected one of margin, confidence, entropy"):
    sampling.usefulness(np.zeros((1, 3)), THRESHOLDS, "best")
  with pytest.raises(ValueError, match="needs the training positives"):
    sampling.usefulness(np.zeros((1, 3)), THRESHOLDS, "rare_margin")


def test_rare_positive_seeks_the_likely_positives_of_a_rare_category():
  scores = np.array([[0.9, 0.9, 0.1],    # sure positive of the common heads
                     [0.1, 0.1, 0.75]])  # near-positive of the rare head
  rare = sampling.usefulness(scores, np.array([0.5, 0.5, 0.8]), "rare_positive", positives=np.array([900, 900, 9]))
  assert rare[1] > rare[0]


def test_confidence_ignores_thresholds_and_mixed_top_alternates_useful_and_random():
  scores = np.array([[0.5, 0.99], [0.9, 0.99], [0.8, 0.99], [0.7, 0.99]])
  assert np.argmax(sampling.usefulness(scores, np.array([0.9, 0.5]), "confidence")) == 0
  texts = ["a", "b", "c", "d"]
  mixed = sampling.mixed_top(np.array([0.9, 0.1, 0.8, 0.2]), texts, 4, texts)
  assert sorted(mixed) == [0, 1, 2, 3] and mixed[0] == 0 and mixed[2] == 2  # useful ones at the even places
  assert sampling.mixed_top(np.array([0.9, 0.1, 0.8, 0.2]), texts, 4, texts) == mixed  # a fixed order


def test_rank_takes_a_method_or_a_mix_with_random():
  scores = np.array([[0.5, 0.99, 0.99], [0.99, 0.99, 0.99], [0.99, 0.25, 0.99]])
  texts, keys = ["a", "b", "c"], ["1", "2", "3"]
  assert sampling.rank(scores, THRESHOLDS, texts, keys, 2, "margin") == [0, 2]
  assert sampling.rank(scores, THRESHOLDS, texts, keys, 3, "rare_margin")[0] in (0, 2)  # no counts: margin
  assert sampling.rank(scores, THRESHOLDS, texts, keys, 2, "margin+random")[0] == 0
  with pytest.raises(ValueError, match=r"method='margin\+best': expected one of .*optionally \+random"):
    sampling.rank(scores, THRESHOLDS, texts, keys, 2, "margin+best")


def test_rare_summed_counts_every_heads_doubt_weighted_towards_the_rare_heads():
  """The page's order (issue 38's ablation): the sum over heads of each one's doubt, a rare head's weighing more."""
  half = np.full(36, 0.5)
  positives = np.full(36, 100)
  positives[1], positives[2] = 1000, 10  # head 1 common, head 2 rare: weights sqrt(10 / count) = 0.1, 1.0
  scores = np.full((4, 36), 0.001)  # sure of every head (but not unread: not all exactly 0)
  scores[0, 1] = 0.5  # A: the common head in doubt
  scores[1, 3:13] = 0.25  # B: ten ordinary heads half in doubt
  scores[2, 2] = 0.5  # C: the rare head in doubt
  texts, keys = ["a", "b", "c", "d"], ["a", "b", "c", "d"]
  assert sampling.rank(scores, half, texts, keys, 4, "rare_summed", positives) == [1, 2, 0, 3]
  assert sampling.rank(scores, half, texts, keys, 4, "summed") == [1, 0, 2, 3]  # unweighted: B's ten heads
  assert sampling.rank(scores, half, texts, keys, 4, "margin") == [0, 2, 1, 3]  # one head decides
  useful = sampling.usefulness(scores, half, "rare_summed", positives)
  assert useful[1] == pytest.approx(10 * 0.5 * np.sqrt(0.1) + 26 * 0.002 * np.sqrt(0.1) + 0.002 * 1.1, rel=1e-3)
  # Without training counts (TF Serving without the export) the page falls back to the unweighted sum.
  assert sampling.rank(scores, half, texts, keys, 4, "rare_summed") == [1, 0, 2, 3]
