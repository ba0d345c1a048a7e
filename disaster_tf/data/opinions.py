"""A second opinion: a share of decided messages decided again by another operator, their agreement, and the
disagreements a reviewer settles.

Which messages go back (`wants_second`) is a fixed draw by each message key's hash, so the same messages are
asked again whoever asks and whenever. A message's two opinions are the latest decisions of the first two
operators who decided it (a reviewer's decisions are not opinions); they disagree when any label differs. A
reviewer's decision (`Decision.reviewer`) stands over both (decisions.Store.standing): `train.py --decisions`
trains on it, else on the latest decision, and says how many messages had disagreements (`summary`).
"""

import dataclasses
import hashlib
from typing import Dict, List, Optional, Sequence, Set, Tuple

from disaster_tf import labels
from disaster_tf.data import decisions

Pair = Tuple[decisions.Decision, decisions.Decision]


def wants_second(key: str, share: float) -> bool:
  """Whether message `key` is one of the `share` (0 to 1) asked for a second opinion: a fixed draw by its key."""
  return int.from_bytes(hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()[:8], "big") < share * 2 ** 64


def by_message(live: Sequence[decisions.Decision]) -> Dict[str, List[decisions.Decision]]:
  """{message key: its operators' opinions}, over `live` (Store.live: every decision not undone, oldest first):
  per operator the latest decision, in the order the operators first decided it; reviewers' left out."""
  first: Dict[str, Dict[str, decisions.Decision]] = {}
  for d in live:
    if not d.reviewer:
      first.setdefault(d.message_id, {})[d.operator] = d  # dicts keep the first insertion's place
  return {k: list(ops.values()) for k, ops in first.items()}


def pairs(opinions: Dict[str, List[decisions.Decision]]) -> Dict[str, Pair]:
  """{message key: its first two operators' opinions}, for the messages two operators decided."""
  return {k: (ops[0], ops[1]) for k, ops in opinions.items() if len(ops) >= 2}


def settled(live: Sequence[decisions.Decision]) -> Set[str]:
  """The messages a reviewer has decided (among `live`, Store.live)."""
  return {d.message_id for d in live if d.reviewer}


def disputed(live: Sequence[decisions.Decision]) -> Dict[str, Pair]:
  """The messages whose two opinions differ and that no reviewer has settled (among `live`, Store.live): the
  reviewers' queue."""
  done = settled(live)
  return {k: p for k, p in pairs(by_message(live)).items() if p[0].labels != p[1].labels and k not in done}


@dataclasses.dataclass(frozen=True)
class Agreement:
  """One category's agreement over the messages two operators decided."""

  category: str
  messages: int
  agreement: Optional[float]  # the share of messages both labelled the same
  kappa: Optional[float]  # Cohen's kappa: agreement beyond what each operator's label rates give by chance

  def to_json(self) -> Dict:
    return dataclasses.asdict(self)


def agreement(two: Sequence[Pair]) -> List[Agreement]:
  """Raw agreement and Cohen's kappa per category (labels.CATEGORIES order) over pairs of opinions.

  kappa = (p_o - p_e) / (1 - p_e), p_e = sum over labels of the product of the two raters' rates; None where
  undefined (no pairs, or both raters always gave the one same label: p_e = 1).
  """
  out = []
  for c, name in enumerate(labels.CATEGORIES):
    a = [p[0].labels[c] for p in two]
    b = [p[1].labels[c] for p in two]
    n = len(a)
    if not n:
      out.append(Agreement(name, 0, None, None))
      continue
    observed = sum(x == y for x, y in zip(a, b)) / n
    expected = sum((a.count(v) / n) * (b.count(v) / n) for v in set(a) | set(b))
    kappa = None if expected >= 1.0 else (observed - expected) / (1.0 - expected)
    out.append(Agreement(name, n, round(observed, 4), None if kappa is None else round(kappa, 4)))
  return out


def summary(live: Sequence[decisions.Decision]) -> Tuple[int, int]:
  """(messages whose two opinions disagree, how many of them a reviewer settled), among `live` (Store.live)."""
  done = settled(live)
  differ = [k for k, p in pairs(by_message(live)).items() if p[0].labels != p[1].labels]
  return len(differ), sum(k in done for k in differ)
