"""opinions.py: which messages get a second opinion, the two opinions of a message, agreement and kappa."""

import dataclasses

import pytest

from disaster_tf import labels
from disaster_tf.data import decisions
from disaster_tf.data import opinions
from tests.data.test_decisions import decision


def test_kappa_is_agreement_beyond_chance():
  def pair(a, b):
    return (decision(operator="ana", water=a), decision(operator="ben", water=b))
  water = labels.CATEGORIES.index("water")
  rows = opinions.agreement([pair(1, 1), pair(1, 0), pair(0, 0), pair(0, 0)])
  assert (rows[water].messages, rows[water].agreement, rows[water].kappa) == (4, 0.75, 0.5)  # p_e = 0.5
  fire = rows[labels.CATEGORIES.index("fire")]
  assert fire.agreement == 1.0 and fire.kappa is None  # both always said 0: kappa is undefined, not 1
  assert opinions.agreement([])[water].agreement is None


def test_the_draw_is_fixed_by_key_and_near_its_share():
  keys = [f"m{i}" for i in range(4000)]
  drawn = [k for k in keys if opinions.wants_second(k, 0.1)]
  assert drawn == [k for k in keys if opinions.wants_second(k, 0.1)] and 300 < len(drawn) < 500
  assert not any(opinions.wants_second(k, 0.0) for k in keys) and all(opinions.wants_second(k, 1.0) for k in keys)


def test_two_operators_opinions_a_disagreement_and_the_reviewer_who_settles_it(tmp_path):
  store = decisions.Store(str(tmp_path / "d.db"))
  ana = store.record(decision("help", operator="ana", water=1))
  store.record(decision("help", operator="ana", water=1, food=1), replaces=ana.decision_id)  # her latest counts
  ben = store.record(decision("help", operator="ben", water=0))
  store.record(decision("other", operator="ana"))
  (first, second), = opinions.pairs(opinions.by_message(store.live())).values()
  assert (first.operator, second.operator) == ("ana", "ben") and first.labels[labels.CATEGORIES.index("food")] == 1
  assert list(opinions.disputed(store.live())) == [ben.message_id] and opinions.summary(store.live()) == (1, 0)
  settled = store.record(dataclasses.replace(decision("help", operator="rev", fire=1), reviewer=True))
  assert opinions.disputed(store.live()) == {} and opinions.summary(store.live()) == (1, 1)
  later = store.record(decision("help", operator="ana"))  # a later operator's decision does not overturn it
  assert store.standing()[ben.message_id].decision_id == settled.decision_id != later.decision_id
  assert store.standing()[ben.message_id].reviewer


@pytest.mark.parametrize("share", [-0.1, 1.5])
def test_a_share_outside_0_to_1_is_refused(tmp_path, share):
  from disaster_tf.triage import review  # pylint: disable=import-outside-toplevel
  with pytest.raises(ValueError, match="--second_opinion="):
    review.DecisionsApi(decisions.Store(str(tmp_path / "d.db")), second_share=share)
