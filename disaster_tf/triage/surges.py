"""Surges: a category that rises well above its own recent past, over the messages the page has seen.

The messages pasted, uploaded or scored into the decisions file (its review queue, each with the model's
answer and when it arrived) are counted per category in windows of WINDOW_MINUTES, the last one ending now.
A category surges when its count in the last window is at least MIN_COUNT and at least RATIO times its
baseline: the exponentially smoothed count of the BASELINE_WINDOWS windows before (a smoothed baseline with a
minimum count, the common practice of syndromic surveillance, e.g. EARS-like rules), so one quiet night does not
make three messages a surge, and a category that is always busy does not surge on its usual volume.
"""

import dataclasses
import datetime
from typing import Dict, List, Sequence, Tuple

WINDOW_MINUTES = 60  # "water requests tripling in an hour": the window an operator thinks in
BASELINE_WINDOWS = 24  # a day of windows before the last: the daily rhythm is inside the baseline
SMOOTHING = 0.3  # each older window's weight falls by 0.7: the last few hours count most
RATIO = 3.0  # "tripling"
MIN_COUNT = 5  # below this, a rise is noise (2 -> 6 on a quiet channel is not an emergency by itself)


@dataclasses.dataclass(frozen=True)
class Category:
  """One category's counts: `windows` oldest first, the last one the window ending now."""

  category: str
  windows: Tuple[int, ...]  # [BASELINE_WINDOWS + 1]
  baseline: float
  surge: bool

  @property
  def count(self) -> int:
    return self.windows[-1]

  def to_json(self) -> Dict:
    return {"category": self.category, "windows": list(self.windows), "count": self.count,
            "baseline": round(self.baseline, 2), "ratio": round(self.count / max(self.baseline, 1.0), 2),
            "surge": self.surge}


def window_start(now: datetime.datetime) -> datetime.datetime:
  """When the oldest window counted begins: what the store is asked for."""
  return now - datetime.timedelta(minutes=WINDOW_MINUTES * (BASELINE_WINDOWS + 1))


def count(seen: Sequence[Tuple[datetime.datetime, Sequence[str]]], now: datetime.datetime,
          categories: Sequence[str]) -> List[Category]:
  """Each category's windows, baseline and verdict, over (when a message arrived, its predicted categories).

  Args:
    seen: the messages since `window_start(now)` (others are ignored).
    now: the end of the last window (UTC, aware).
    categories: the categories to report, in this order.
  """
  windows = {c: [0] * (BASELINE_WINDOWS + 1) for c in categories}
  width = datetime.timedelta(minutes=WINDOW_MINUTES)
  for when, predicted in seen:
    back = int((now - when) / width)  # 0: the last window
    if 0 <= back <= BASELINE_WINDOWS and when <= now:
      for c in predicted:
        if c in windows:
          windows[c][BASELINE_WINDOWS - back] += 1
  out = []
  for c in categories:
    baseline = _smoothed(windows[c][:-1])
    last = windows[c][-1]
    out.append(Category(c, tuple(windows[c]), baseline, last >= MIN_COUNT and last >= RATIO * max(baseline, 1.0)))
  return out


def _smoothed(counts: Sequence[int]) -> float:
  """The exponentially weighted mean of `counts` (oldest first), the newest weighing most."""
  level = float(counts[0]) if counts else 0.0
  for value in counts[1:]:
    level = SMOOTHING * value + (1 - SMOOTHING) * level
  return level


def rule() -> str:
  """The rule, in words, for the page and /api/surges."""
  return (f"the last {WINDOW_MINUTES} minutes hold at least {MIN_COUNT} messages of the category and at least "
          f"{RATIO:g}x its baseline (the smoothed count of the {BASELINE_WINDOWS} windows of {WINDOW_MINUTES} "
          f"minutes before, at least 1)")
