"""Which undecided messages an operator should decide first to teach the model most: active learning.

Uncertainty sampling over the 36 heads (Munro, *Human-in-the-Loop Machine
Learning*, ch. 3), measured against thresholds rather than 0.5, since each
head decides at its own tuned threshold. For head c, a message's signed margin
is d_c = (p_c - t_c) / (t_c if p_c < t_c else 1 - t_c), in [-1, 1]: 0 on the
threshold, +-1 at certainty. The methods:

  margin       1 - min_c |d_c|: the head closest to flipping decides (least margin);
  confidence   1 - min_c |2 p_c - 1|: the same at 0.5 for every head (least confidence, ignoring
               thresholds tuned on few labels);
  entropy      the mean binary entropy of q_c = (1 + d_c) / 2 over the heads;
  rare_margin  max_c w_c (1 - |d_c|), w_c = (min positives / positives_c) ** 0.5: least
               margin, weighted towards the categories with the fewest training examples;
  rare_positive  max_c w_c min(p_c / t_c, 1): the likeliest positives of the rare
               categories (not uncertainty: it seeks the examples the rare heads lack);
  summed       sum_c (1 - |d_c|): every head's uncertainty counts, not only the least sure head's;
  rare_summed  sum_c w_c (1 - |d_c|): the same, each head weighted towards the rare ones (against 0.5,
               the sum of min(p, 1 - p) / sqrt(prevalence) that lifted scikit-learn's learner, issue 38).

`bench/active.py` measures them against random choice (BENCHMARKS.md, "Learning
from operators"), and DEFAULT_METHOD is chosen there; `mixed_top` mixes a method
with random choice (`rank`'s METHOD+random). `diverse_top`
takes the most useful messages but never two near-copies (the data has many
repeated appeals), so the top of the queue is not one message fifty times.
A message with no token (all scores exactly 0: the model reads nothing in it)
gets the lowest usefulness: it teaches the model nothing it can read.

NumPy only: the page's server and the benchmark share it without TensorFlow.
"""

import hashlib
import itertools
import re
from typing import List, Optional, Sequence

import numpy as np

METHODS = ("margin", "confidence", "entropy", "rare_margin", "rare_positive", "summed", "rare_summed")
RARE = ("rare_margin", "rare_positive", "rare_summed")  # the methods that weigh heads by their training positives
# The page's "most useful to teach" order, chosen by bench/active.py (BENCHMARKS.md, "Learning from operators"
# and its ablation): with the learner fitted to convergence, rare_summed at 0.5 taught it more than random choice
# on every seed; the samplers that look at one head only (margin, rare_margin) and every sampler over an
# under-trained learner did not.
DEFAULT_METHOD = "rare_summed"
# Margins against 0.5 for every head, not the tuned thresholds: what the winning arm measured; thresholds tuned on a
# tune set's handful of rare positives move the boundary a sampler looks at.
SAMPLE_AT = 0.5
NEAR_COPY = 0.7  # token-set Jaccard similarity from which two messages count as copies of one
_WORD = re.compile(r"[^\W\d_]+")


def signed_margins(scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
  """[N, C] in [-1, 1]: each score's distance to its head's threshold, 0 on it, +-1 at certainty."""
  scores, thresholds = np.asarray(scores, np.float64), np.asarray(thresholds, np.float64)[np.newaxis, :]
  below = scores < thresholds
  scale = np.where(below, thresholds, 1.0 - thresholds)
  return np.clip((scores - thresholds) / np.maximum(scale, 1e-9), -1.0, 1.0)


def usefulness(scores: np.ndarray, thresholds: np.ndarray, method: str = "margin",
               positives: Optional[np.ndarray] = None) -> np.ndarray:
  """[N] how much deciding each message would teach the model (higher first), by `method`.

  Args:
    scores: [N, C] probabilities (the export's `scores`).
    thresholds: [C] the heads' decision thresholds.
    method: one of METHODS.
    positives: [C] training positives per head (the rare_ methods only; 0 counts as 1).

  Raises:
    ValueError: an unknown method, or a rare_ method without positives.
  """
  if method not in METHODS:
    raise ValueError(f"method={method!r}: expected one of {', '.join(METHODS)}")
  signed = signed_margins(scores, thresholds)
  margins = np.abs(signed)
  if method == "margin":
    useful = 1.0 - margins.min(axis=1)
  elif method == "summed":
    useful = (1.0 - margins).sum(axis=1)
  elif method == "confidence":
    useful = 1.0 - np.abs(2.0 * np.asarray(scores, np.float64) - 1.0).min(axis=1)
  elif method == "entropy":
    q = np.clip((1.0 + signed) / 2.0, 1e-9, 1 - 1e-9)
    useful = (-(q * np.log2(q) + (1 - q) * np.log2(1 - q))).mean(axis=1)
  else:
    if positives is None:
      raise ValueError(f"method={method!r} needs the training positives per category")
    counts = np.maximum(np.asarray(positives, np.float64), 1.0)
    weights = np.sqrt(counts.min() / counts)[np.newaxis, :]
    if method == "rare_margin":
      useful = (weights * (1.0 - margins)).max(axis=1)
    elif method == "rare_summed":
      useful = (weights * (1.0 - margins)).sum(axis=1)
    else:
      ratio = np.asarray(scores, np.float64) / np.maximum(np.asarray(thresholds, np.float64), 1e-9)[np.newaxis, :]
      useful = (weights * np.minimum(ratio, 1.0)).max(axis=1)
  unread = ~np.asarray(scores).any(axis=1)
  return np.where(unread, -1.0, useful)


def rank(scores: np.ndarray, thresholds: np.ndarray, texts: Sequence[str], keys: Sequence[str], k: int,
         method: str = DEFAULT_METHOD, positives: Optional[np.ndarray] = None) -> List[int]:
  """The `k` messages to decide first, most useful first: `method` is one of METHODS (`diverse_top` of its
  usefulness), or METHOD+random (`mixed_top`: half by it, half in a fixed pseudo-random order of `keys`).

  Raises:
    ValueError: an unknown method (see `usefulness`).
  """
  base, _, mix = method.partition("+")
  if mix not in ("", "random"):
    raise ValueError(f"method={method!r}: expected one of {', '.join(METHODS)}, optionally +random")
  if base in RARE and positives is None:  # no training counts (TF Serving without the export): unweighted
    base = {"rare_summed": "summed"}.get(base, "margin")
  useful = usefulness(scores, thresholds, base, positives)
  return mixed_top(useful, texts, k, keys) if mix else diverse_top(useful, texts, k)


def mixed_top(useful: np.ndarray, texts: Sequence[str], k: int, keys: Sequence[str]) -> List[int]:
  """Half by `diverse_top`, half in a fixed pseudo-random order (a hash of each key), alternating.

  Uncertainty sampling alone draws a biased sample (the messages near the boundary of a model trained on
  few labels); the random half keeps the labelled set representative, the usual remedy.
  """
  first = diverse_top(useful, texts, (k + 1) // 2)
  taken = set(first)
  shuffled = [i for i in sorted(range(len(texts)), key=lambda i: hashlib.sha256(keys[i].encode()).digest())
              if i not in taken][:k - len(first)]
  return [i for pair in itertools.zip_longest(first, shuffled) for i in pair if i is not None]


def words(text: str) -> frozenset:
  """The lower-cased words of a message, for telling near-copies apart."""
  return frozenset(_WORD.findall(text.lower()))


def diverse_top(useful: np.ndarray, texts: Sequence[str], k: int, near_copy: float = NEAR_COPY) -> List[int]:
  """The indices of the `k` most useful messages, most useful first, skipping near-copies of one already taken.

  Args:
    useful: [N] usefulness (`usefulness`).
    texts: [N] the messages.
    k: how many to take (fewer if the rest are all near-copies).
    near_copy: the Jaccard similarity of word sets from which a message counts as a copy.
  """
  taken: List[int] = []
  kept: List[frozenset] = []
  for i in np.argsort(-np.asarray(useful), kind="stable"):
    if len(taken) == k:
      break
    mine = words(texts[i])
    if any(len(mine & other) >= near_copy * len(mine | other) for other in kept if mine or other):
      continue
    taken.append(int(i))
    kept.append(mine)
  return taken
