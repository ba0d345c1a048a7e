"""claims.py: a claim holds a message for its reader until its time, a decision or a release ends it."""

import threading

import pytest

from disaster_tf import labels
from disaster_tf.data import claims
from disaster_tf.data import decisions


class Clock:
  """A clock the test moves by hand (no sleeps)."""

  def __init__(self):
    self.now = 1_000_000.0

  def __call__(self):
    return self.now


@pytest.fixture
def held(tmp_path):
  clock = Clock()
  return claims.Claims(decisions.Store(str(tmp_path / "d.db")), seconds=60, clock=clock), clock


def decide(store, key):
  store.record(decisions.Decision(key, "text", tuple([1] + [0] * (labels.NUM_CATEGORIES - 1)), "ana"))


def test_another_operators_claim_is_refused_naming_them_until_it_expires(held):
  book, clock = held
  assert book.claim("m1", "ana").operator == "ana"
  with pytest.raises(claims.Claimed, match="being read by ana"):
    book.claim("m1", "ben")
  assert book.claim("m1", "ana").expires == clock.now + 60  # her own again: its time starts over
  clock.now += 61  # she walked away
  assert book.claim("m1", "ben").operator == "ben" and set(book.held()) == {"m1"}


def test_a_decision_or_a_release_ends_a_claim_and_only_its_holder_releases(held):
  book, _ = held
  book.claim("m1", "ana")
  book.claim("m2", "ana")
  decide(book.store, "m1")
  assert set(book.held()) == {"m2"}
  with pytest.raises(decisions.NotYours, match="ana is reading it; only ana releases it"):
    book.release("m2", "ben")
  assert book.release("m2", "ana") is True and book.held() == {}
  assert book.release("m2", "ana") is False  # nothing held any more


def test_claim_first_passes_over_what_another_holds_or_what_is_decided(held):
  book, _ = held
  book.claim("m1", "ana")
  decide(book.store, "m2")
  assert book.claim_first(["m1", "m2", "m3"], "ben").message_id == "m3"
  assert book.claim_first(["m1", "m2", "m3"], "cai") is None  # every one taken or decided
  assert book.claim_first(["m1"], "ana").message_id == "m1"  # her own


def test_operators_asking_at_once_never_get_the_same_message(held):
  book, _ = held
  keys = [f"m{i}" for i in range(40)]
  got, barrier = {}, threading.Barrier(16)

  def ask(name):
    barrier.wait()  # all sixteen at the same moment
    got[name] = [book.claim_first(keys, name) for _ in range(2)]

  threads = [threading.Thread(target=ask, args=(f"op{i}",)) for i in range(16)]
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  firsts = [claims_[0].message_id for claims_ in got.values()]
  assert len(set(firsts)) == 16  # sixteen operators, sixteen messages
  assert all(a.message_id == b.message_id for a, b in got.values())  # asking again gives one's own claim back


def test_a_claim_time_must_be_positive(tmp_path):
  with pytest.raises(ValueError, match="--claim_minutes: expected a positive number of minutes, found 0"):
    claims.Claims(decisions.Store(str(tmp_path / "d.db")), seconds=0)
