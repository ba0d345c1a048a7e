"""Near-copies grouped: one row of the page for a forwarded appeal and its copies, decided once.

The data holds many copies of one appeal (forwarded, re-sent with a word changed). Two messages are near-copies
when their word sets (`sampling.words`) have a Jaccard similarity of at least `sampling.NEAR_COPY`, the rule
the review queue's `diverse_top` already skips copies by; a group is a leader and its near-copies.
Comparing every pair is quadratic; MinHash with banding (the standard near-duplicate index) proposes the
leaders a message may copy, and each is checked exactly, so a group never holds a message the rule would not
link to its leader. Messages without words (emoji only, blank) are never grouped.
"""

import threading
from typing import Dict, List, Sequence

import numpy as np

from disaster_tf.triage import sampling

HASHES = 48  # MinHash values per message
BANDS = 16  # of HASHES / BANDS = 3 rows each: a pair at Jaccard 0.7 shares a band with probability
# 1 - (1 - 0.7^3)^16 = 0.999 (at 0.5: 0.88, at 0.3: 0.35): almost every pair the rule links is proposed, and
# the exact check sorts out the rest
_PRIME = (1 << 61) - 1
_SEED = 4636  # fixed: the same messages always group the same way


class Grouper:
  """Near-copy groups built as messages arrive: `leader(key, text)` is the key of the group's first message.

  A message joins the earliest leader it is a near-copy of, else leads a group of its own: every member is a
  near-copy of the row the page shows (no chain of copies of copies drifting away). Thread-safe; a message's
  leader never changes once given. Holds every message it was given (the page's: at most `limit`, then it
  starts over, so a long-running page does not grow without bound).
  """

  def __init__(self, limit: int = 200_000):
    rng = np.random.default_rng(_SEED)
    self._a = rng.integers(1, _PRIME, HASHES, dtype=np.uint64)
    self._b = rng.integers(0, _PRIME, HASHES, dtype=np.uint64)
    self.limit = limit
    self._lock = threading.Lock()
    self._clear()

  def _clear(self) -> None:
    self._leader: Dict[str, str] = {}  # message key -> its leader's key
    self._words: Dict[str, frozenset] = {}  # leader key -> its words
    self._buckets: Dict[tuple, List[str]] = {}  # a band's MinHash values -> the leaders that have them
    self._ids: Dict[str, int] = {}  # word -> its number
    self._rank: Dict[str, int] = {}  # leader key -> its place in arrival order

  def leader(self, key: str, text: str) -> str:
    """The key of the group `key` (message `text`) belongs to: its own key if it leads one."""
    with self._lock:
      if key in self._leader:
        return self._leader[key]
      if len(self._leader) >= self.limit:
        self._clear()
      words = sampling.words(text)
      if not words:  # nothing to compare: never grouped
        self._leader[key] = key
        return key
      bands = self._bands(words)
      candidates = {leader for band in bands for leader in self._buckets.get(band, ())}
      leader = next((j for j in sorted(candidates, key=self._rank.__getitem__) if _near(words, self._words[j])),
                    None)
      if leader is None:
        leader = key
        self._words[key], self._rank[key] = words, len(self._rank)
        for band in bands:
          self._buckets.setdefault(band, []).append(key)
      self._leader[key] = leader
      return leader

  def _bands(self, words: frozenset) -> List[tuple]:
    ids = np.array([self._word_id(w) for w in words], dtype=np.uint64)
    # (a * x + b) mod p, wrapping in uint64 before the mod: a fixed random hash per row; its minimum over the
    # words is the MinHash value
    signature = ((ids[None, :] * self._a[:, None] + self._b[:, None]) % np.uint64(_PRIME)).min(axis=1).tolist()
    rows = HASHES // BANDS
    return [(band, *signature[band * rows:(band + 1) * rows]) for band in range(BANDS)]

  def _word_id(self, word: str) -> int:
    if word not in self._ids:
      self._ids[word] = _word_id(word)
    return self._ids[word]


def groups(texts: Sequence[str]) -> List[List[int]]:
  """The indices of `texts` grouped by near-copies (`Grouper`, in input order), each group led by its first.

  Args:
    texts: [N] the messages.

  Returns:
    A list of groups (lists of indices, the leader first) that together hold every index once, ordered by
    their leaders; a message without copies is a group of one.
  """
  grouper = Grouper(limit=len(texts) + 1)
  members: Dict[str, List[int]] = {}
  for i, text in enumerate(texts):
    members.setdefault(grouper.leader(str(i), text), []).append(i)
  return sorted(members.values(), key=lambda g: g[0])


def _near(words: frozenset, theirs: frozenset) -> bool:
  return len(words & theirs) >= sampling.NEAR_COPY * len(words | theirs)


def _word_id(word: str) -> int:
  """A word's stable 60-bit number (Python's hash() differs between processes)."""
  value = 1469598103934665603  # FNV-1a
  for byte in word.encode("utf-8", "surrogatepass"):
    value = ((value ^ byte) * 1099511628211) & ((1 << 60) - 1)
  return value
