"""Per-category precision, recall, F1 and support, and the summary scores.

Computed in NumPy from label matrices, so training (on the model's decisions)
and evaluation of an export (on its `labels` output) share one definition.

Summary scores:
  total: the reference article's "Total": the sum over the 36 outputs of each
    output's macro-averaged F1 (scikit-learn's `average="macro"`: the mean F1
    over the classes present in the truth or the predictions). At most 36.
  mean_positive_f1: the mean F1 of the positive class over the binary
    categories that have positives in the truth. The honest score for rare
    labels: a model that never predicts them gets 0 here, not 0.5.
  micro_f1: F1 of all positive decisions pooled over the 36 categories, where
    `related` counts as positive when it is 1.
"""

from typing import Dict, List

import numpy as np

from disaster_tf import config as config_lib
from disaster_tf import labels
from disaster_tf import records


def _precision_recall_f1(tp: float, fp: float, fn: float) -> Dict[str, float]:
  """Precision, recall and F1 from true-positive, false-positive and false-negative counts (0 when undefined)."""
  precision = tp / (tp + fp) if tp + fp else 0.0
  recall = tp / (tp + fn) if tp + fn else 0.0
  f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
  return {"precision": precision, "recall": recall, "f1": f1}


def _class_scores(y_true: np.ndarray, y_pred: np.ndarray, cls: int) -> records.ClassScores:
  t, p = y_true == cls, y_pred == cls
  scores = _precision_recall_f1(float(np.sum(t & p)), float(np.sum(~t & p)), float(np.sum(t & ~p)))
  return records.ClassScores(scores["precision"], scores["recall"], scores["f1"], int(t.sum()))


def report(y_true: np.ndarray, y_pred: np.ndarray) -> records.Scores:
  """Scores predicted labels against true labels.

  Args:
    y_true: [N, 36] int labels, CATEGORIES order.
    y_pred: [N, 36] int labels, CATEGORIES order.

  Returns:
    `categories` holds each category's precision, recall, F1 and support of
    its positive class (class 1; for `related` too) plus its `macro_f1`, and
    `related` also its `per_class` scores; then `total`, `mean_positive_f1`,
    `micro_f1` and `examples`.
  """
  y_true = np.asarray(y_true)
  y_pred = np.asarray(y_pred)
  if y_true.shape != y_pred.shape or y_true.ndim != 2 or y_true.shape[1] != labels.NUM_CATEGORIES:
    raise ValueError(f"expected two [N, {labels.NUM_CATEGORIES}] label matrices, got shapes "
                     f"{y_true.shape} and {y_pred.shape}")
  categories: Dict[str, records.CategoryScores] = {}
  for k, name in enumerate(labels.CATEGORIES):
    t, p = y_true[:, k], y_pred[:, k]
    present = sorted(set(np.unique(t).tolist()) | set(np.unique(p).tolist()))
    per_class = {int(c): _class_scores(t, p, c) for c in present}
    positive = _class_scores(t, p, 1)
    categories[name] = records.CategoryScores(
        positive.precision, positive.recall, positive.f1, positive.support,
        macro_f1=float(np.mean([s.f1 for s in per_class.values()])) if per_class else 0.0,
        per_class={str(c): s for c, s in per_class.items()} if name == labels.RELATED else None)
  binary_f1 = [categories[n].f1 for n in labels.BINARY_CATEGORIES if categories[n].support > 0]
  pos_t, pos_p = y_true == 1, y_pred == 1
  micro = _precision_recall_f1(float(np.sum(pos_t & pos_p)), float(np.sum(~pos_t & pos_p)),
                               float(np.sum(pos_t & ~pos_p)))
  return records.Scores(examples=int(y_true.shape[0]), total=float(sum(c.macro_f1 for c in categories.values())),
                        mean_positive_f1=float(np.mean(binary_f1)) if binary_f1 else 0.0, micro_f1=micro["f1"],
                        categories=categories)


THRESHOLD_OBJECTIVES = config_lib.THRESHOLD_OBJECTIVES  # "positive_f1", "macro_f1"


def tune_thresholds(y_true: np.ndarray, scores: np.ndarray, min_positives: int,
                    objective: str = "positive_f1") -> np.ndarray:
  """Per category, the decision threshold that maximises an F1 on held-out data.

  Args:
    y_true: [N, 36] int labels of the tune split.
    scores: [N, 36] probabilities (`networks.probabilities`).
    min_positives: a category with fewer positives keeps 0.5: a threshold fit
      to a handful of examples does not carry over.
    objective: "positive_f1", the F1 of the positive class; or "macro_f1",
      the mean F1 of both classes, which is what the Total sums: it also
      weighs the negatives' F1, and may choose to predict no positive at all.

  Returns:
    [36] float32; `related` (decided by argmax) keeps 0.5. A tuned threshold
    sits halfway between the score that maximises the objective and the next
    lower score (or above the highest, to predict none), so it does not hug
    one example's score.

  Raises:
    ValueError: an unknown objective.
  """
  if objective not in THRESHOLD_OBJECTIVES:
    raise ValueError(f"objective={objective!r}: expected one of {', '.join(THRESHOLD_OBJECTIVES)}")
  thresholds = labels.default_thresholds()
  for k in labels.BINARY_INDICES:
    positive = y_true[:, k] == 1
    if positive.sum() < min_positives:
      continue
    order = np.argsort(-scores[:, k], kind="stable")
    s, hits = scores[order, k], positive[order]
    # Cut c predicts the top c scores positive, c = 0 (none) .. N.
    tp = np.concatenate([[0], np.cumsum(hits)])
    predicted = np.arange(len(s) + 1)
    p, n = int(positive.sum()), len(s) - int(positive.sum())
    f1 = _f1(tp, predicted - tp, p - tp)
    if objective == "macro_f1":
      tn = n - (predicted - tp)
      f1 = (f1 + _f1(tn, p - tp, predicted - tp)) / 2
    # Cut only between different scores; "none" only where the objective can prefer it.
    allowed = np.concatenate([[objective == "macro_f1"], s[1:] != s[:-1], [True]])
    best = int(np.argmax(np.where(allowed, f1, -1.0)))
    above = s[best - 1] if best else 1.0
    below = s[best] if best < len(s) else 0.0
    thresholds[k] = (above + below) / 2
  return thresholds


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
  """Elementwise F1 from counts; 0 where it is undefined."""
  denominator = 2 * tp + fp + fn
  return np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)


def format_table(scores: records.Scores, title: str = "") -> str:
  """Renders a `report` as a fixed-width table, one category a row."""
  lines: List[str] = []
  if title:
    lines.append(title)
  lines.append(f"{'category':<24}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}{'macro_f1':>10}")
  for name in labels.CATEGORIES:
    c = scores.categories[name]
    lines.append(f"{name:<24}{c.precision:>10.3f}{c.recall:>10.3f}{c.f1:>10.3f}{c.support:>10d}{c.macro_f1:>10.3f}")
  lines.append(f"{scores.examples} examples | Total (sum of macro-F1, max 36) {scores.total:.2f} | "
               f"mean positive-class F1 {scores.mean_positive_f1:.3f} | micro-F1 {scores.micro_f1:.3f}")
  return "\n".join(lines)
