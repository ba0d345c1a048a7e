"""Per-category scores and the article's Total on small hand-checked cases."""

import numpy as np
import pytest

from disaster_tf import labels
from disaster_tf.model import metrics


def test_report_on_a_hand_checked_case():
  y_true = np.zeros((4, 36), np.int32)
  y_pred = np.zeros((4, 36), np.int32)
  water = labels.CATEGORIES.index("water")
  y_true[:, water] = [1, 1, 0, 0]
  y_pred[:, water] = [1, 0, 1, 0]  # tp 1, fp 1, fn 1 -> p = r = f1 = 0.5; class 0 f1 = 0.5
  y_true[:, 0] = [0, 1, 2, 1]
  y_pred[:, 0] = [0, 1, 1, 1]  # related: class 1 p = 2/3, r = 1, f1 = 0.8; class 0 f1 = 1; class 2 f1 = 0
  r = metrics.report(y_true, y_pred)
  w = r.categories["water"]
  assert (w.precision, w.recall, w.f1, w.support) == (0.5, 0.5, 0.5, 2)
  assert w.macro_f1 == pytest.approx(0.5) and w.per_class is None
  rel = r.categories["related"]
  assert rel.f1 == pytest.approx(0.8) and rel.macro_f1 == pytest.approx((1 + 0.8 + 0) / 3)
  assert rel.per_class["2"].support == 1
  # The 34 untouched categories are all-0 in truth and prediction: macro F1 over {0} = 1.
  assert r.total == pytest.approx(34 + 0.5 + (1.8 / 3))
  # Only water has positives among the binary categories.
  assert r.mean_positive_f1 == pytest.approx(0.5)
  # Pooled positives: water (tp 1, fp 1, fn 1) + related==1 (tp 2, fp 1, fn 0).
  assert r.micro_f1 == pytest.approx(2 * 3 / (2 * 3 + 2 + 1))
  table = metrics.format_table(r, "t")
  assert "water" in table and "Total" in table and len(table.splitlines()) == 2 + 36 + 1


def test_report_rejects_bad_shapes():
  with pytest.raises(ValueError, match=r"expected two \[N, 36\] label matrices"):
    metrics.report(np.zeros((3, 36)), np.zeros((3, 35)))


def test_tune_thresholds_finds_the_known_best_cut():
  y = np.zeros((10, 36), np.int32)
  scores = np.full((10, 36), 0.1, np.float32)
  water, offer = labels.CATEGORIES.index("water"), labels.CATEGORIES.index("offer")
  # water: positives score 0.30..0.34, negatives at most 0.25: the best cut lies between 0.25 and 0.30.
  y[:5, water] = 1
  scores[:, water] = [0.30, 0.31, 0.32, 0.33, 0.34, 0.25, 0.2, 0.1, 0.05, 0.01]
  # offer: two positives only: below min_positives, so it keeps 0.5.
  y[:2, offer] = 1
  scores[:, offer] = np.linspace(0.9, 0.0, 10)
  thresholds = metrics.tune_thresholds(y, scores, min_positives=3)
  assert thresholds.dtype == np.float32 and thresholds.shape == (36,)
  assert thresholds[water] == pytest.approx((0.30 + 0.25) / 2)
  assert thresholds[offer] == 0.5 and thresholds[0] == 0.5  # too few positives; related is argmax
  decided = (scores[:, water] >= thresholds[water]).astype(int)
  np.testing.assert_array_equal(decided, y[:, water])  # F1 = 1 at the tuned threshold


def test_tune_thresholds_never_splits_tied_scores():
  y = np.zeros((6, 36), np.int32)
  scores = np.zeros((6, 36), np.float32)
  y[:3, 1] = 1
  scores[:, 1] = [0.9, 0.6, 0.6, 0.6, 0.2, 0.1]  # a cut between the tied 0.6s is not expressible
  threshold = metrics.tune_thresholds(y, scores, min_positives=1)[1]
  assert threshold == pytest.approx(0.4)  # all 0.6s in (F1 0.86) beats 0.9 alone (F1 0.5)


def test_report_agrees_with_scikit_learn_on_random_labels():
  from sklearn import metrics as skm  # pylint: disable=import-outside-toplevel  # a test-only reference
  rng = np.random.default_rng(7)
  n = 300
  y_true = np.stack([rng.integers(0, labels.MAX_LABEL[k] + 1, n) for k in range(labels.NUM_CATEGORIES)], axis=1)
  y_pred = np.stack([rng.integers(0, labels.MAX_LABEL[k] + 1, n) for k in range(labels.NUM_CATEGORIES)], axis=1)
  y_true[:, labels.CATEGORIES.index("child_alone")] = 0  # no positives at all, as in the real data
  y_pred[:, labels.CATEGORIES.index("child_alone")] = 0
  y_true[:, labels.CATEGORIES.index("shops")] = (rng.random(n) < 0.01)  # rare
  ours = metrics.report(y_true, y_pred)
  macro = []
  for k, name in enumerate(labels.CATEGORIES):
    t, p = y_true[:, k], y_pred[:, k]
    c = ours.categories[name]
    assert c.f1 == pytest.approx(skm.f1_score(t, p, labels=[1], average="macro", zero_division=0))
    assert c.precision == pytest.approx(skm.precision_score(t, p, labels=[1], average="macro", zero_division=0))
    assert c.recall == pytest.approx(skm.recall_score(t, p, labels=[1], average="macro", zero_division=0))
    macro.append(skm.f1_score(t, p, average="macro", zero_division=0))  # classes present in truth or prediction
    assert c.macro_f1 == pytest.approx(macro[-1]), name
  assert ours.total == pytest.approx(sum(macro))
  binary = [k for k in labels.BINARY_INDICES if (y_true[:, k] == 1).any()]
  assert ours.mean_positive_f1 == pytest.approx(np.mean([skm.f1_score(y_true[:, k], y_pred[:, k], zero_division=0)
                                                            for k in binary]))
  assert ours.micro_f1 == pytest.approx(skm.f1_score((y_true == 1).ravel(), (y_pred == 1).ravel()))


def test_the_macro_f1_objective_weighs_the_negatives_and_may_predict_none():
  y = np.zeros((10, 36), np.int32)
  scores = np.zeros((10, 36), np.float32)
  water, fire = labels.CATEGORIES.index("water"), labels.CATEGORIES.index("fire")
  ranked = np.linspace(0.95, 0.05, 10)  # 0.95, 0.85, ..., 0.05
  # water: positives at ranks 0, 1, 2, 4, 6. Top 7: positive F1 10/12 = 0.83, negatives' F1 6/8 = 0.75;
  # top 5: 8/10 = 0.80 and 8/10 = 0.80, the better mean (0.80 > 0.79).
  y[[0, 1, 2, 4, 6], water] = 1
  scores[:, water] = ranked
  # fire: its one positive scores lowest. Reaching it takes all ten (positive F1 2/11 = 0.18, negatives' 0);
  # predicting none keeps the negatives' F1 at 18/19 = 0.95, the better mean.
  y[9, fire] = 1
  scores[:, fire] = ranked
  positive = metrics.tune_thresholds(y, scores, 1, "positive_f1")
  macro = metrics.tune_thresholds(y, scores, 1, "macro_f1")
  assert positive[water] == pytest.approx((0.35 + 0.25) / 2) and macro[water] == pytest.approx((0.55 + 0.45) / 2)
  assert positive[fire] == pytest.approx(0.05 / 2) and macro[fire] == pytest.approx((1.0 + 0.95) / 2)
  report = {name: metrics.report(y, (scores >= t).astype(int)).categories for name, t in
            (("positive", positive), ("macro", macro))}
  assert report["macro"]["water"].macro_f1 > report["positive"]["water"].macro_f1
  assert report["positive"]["water"].f1 > report["macro"]["water"].f1  # each wins its own objective
  assert report["macro"]["fire"].macro_f1 > report["positive"]["fire"].macro_f1
  assert metrics.tune_thresholds(y, scores, 1)[water] == positive[water]  # positive_f1 stays the default
  with pytest.raises(ValueError, match="objective='accuracy': expected one of positive_f1, macro_f1"):
    metrics.tune_thresholds(y, scores, 1, "accuracy")
