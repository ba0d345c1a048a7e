"""Who is reading which message now: claims, in the decisions file (its `claims` table, schema version 4).

A shift of operators shares one review queue. Opening a message claims it for its reader; the others see who
holds it, and the queue hands them the next one (`claim_first`, one transaction: two operators asking at once
never get the same message). A claim ends when its time runs out (`seconds`, triage.py --claim_minutes: an
operator who walks away frees it), when the message is decided (decisions.Store.record deletes it in the
save's own transaction), or when its holder releases it.
"""

import dataclasses
import sqlite3
import time
from typing import Callable, Dict, Optional, Sequence

from disaster_tf.data import decisions
from disaster_tf.data import sqlite

CLAIM_SECONDS = 300.0  # long enough to read and decide one message, short enough that a stale claim soon frees it


class Claimed(decisions.StoreError):
  """A claim of a message another operator holds; `status` 409 for the page."""

  status = 409

  def __init__(self, claim: "Claim"):
    super().__init__(f"message_id: being read by {claim.operator} (claimed at {claim.claimed_at}); the queue "
                     "gives you the next one")
    self.claim = claim


@dataclasses.dataclass(frozen=True)
class Claim:
  """One operator's hold on one message, until `expires` (seconds since the epoch)."""

  message_id: str
  operator: str
  claimed_at: str
  expires: float

  def to_json(self) -> Dict:
    return dataclasses.asdict(self)


class Claims:
  """The claims of the decisions file `store`, each `seconds` long; `clock` gives seconds since the epoch."""

  def __init__(self, store: decisions.Store, seconds: float = CLAIM_SECONDS, clock: Callable[[], float] = time.time):
    if not seconds > 0:
      raise ValueError(f"--claim_minutes: expected a positive number of minutes, found {seconds / 60:g}")
    self.store, self.seconds, self.clock = store, seconds, clock

  def claim(self, key: str, operator: str) -> Claim:
    """Claims message `key` for `operator` (again: its time starts over).

    Raises:
      Claimed: another operator holds it.
    """
    claim = self.claim_first([key], operator, skip_decided=False)
    if claim is None:
      raise Claimed(self.held()[key])
    return claim

  def claim_first(self, keys: Sequence[str], operator: str, skip_decided: bool = True) -> Optional[Claim]:
    """Claims the first of `keys` that no other operator holds (nor, with `skip_decided`, has a standing
    decision), in one transaction; None if every one is taken.

    `keys` come from a ranking read before this transaction: one taken or decided since is passed over here.
    """
    now = self.clock()
    with self.store.connect() as connection, sqlite.transaction(connection):
      for key in keys:
        holder = _holder(connection, key, now)
        if (holder is not None and holder != operator) or (skip_decided and decisions.stands(connection, key)):
          continue
        claim = Claim(key, operator, decisions.now(), now + self.seconds)
        connection.execute("INSERT INTO claims (message_id, operator, claimed_at, expires) VALUES (?, ?, ?, ?) "
                           "ON CONFLICT (message_id) DO UPDATE SET operator = excluded.operator, "
                           "claimed_at = excluded.claimed_at, expires = excluded.expires",
                           (claim.message_id, claim.operator, claim.claimed_at, claim.expires))
        return claim
    return None

  def release(self, key: str, operator: str) -> bool:
    """Ends `operator`'s claim of `key`; False if it held none (expired, or never claimed).

    Raises:
      decisions.NotYours: another operator holds it.
    """
    with self.store.connect() as connection, sqlite.transaction(connection):
      holder = _holder(connection, key, self.clock())
      if holder is not None and holder != operator:
        raise decisions.NotYours(f"message_id: {holder} is reading it; only {holder} releases it")
      return connection.execute("DELETE FROM claims WHERE message_id = ?", (key,)).rowcount > 0 and holder is not None

  def held(self) -> Dict[str, Claim]:
    """{message key: its claim} of the claims that have not expired."""
    with self.store.connect() as connection:
      rows = connection.execute("SELECT message_id, operator, claimed_at, expires FROM claims WHERE expires > ?",
                                (self.clock(),)).fetchall()
    return {row[0]: Claim(*row) for row in rows}


def _holder(connection: sqlite3.Connection, key: str, now: float) -> Optional[str]:
  """Who holds an unexpired claim of `key` at `now`, or None."""
  row = connection.execute("SELECT operator FROM claims WHERE message_id = ? AND expires > ?", (key, now)).fetchone()
  return row[0] if row else None
