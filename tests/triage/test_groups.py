"""groups.py: near-copies grouped under their first message, as the queue's diverse_top would skip them."""

import itertools

from disaster_tf.triage import groups
from disaster_tf.triage import sampling


def brute_force(texts):
  """The same rule, checking every earlier leader: what MinHash's candidates must not miss here."""
  leaders, out = [], {}
  for i, text in enumerate(texts):
    mine = sampling.words(text)
    leader = next((j for j in leaders if mine and len(mine & sampling.words(texts[j])) >=
                   sampling.NEAR_COPY * len(mine | sampling.words(texts[j]))), None)
    if leader is None:
      leaders.append(i)
      out[i] = [i]
    else:
      out[leader].append(i)
  return [out[i] for i in sorted(out)]


APPEALS = ["We need water in Carrefour please", "we need WATER in carrefour, please!", "thanks for the news",
           "People trapped under the school in Leogane", "people trapped under the school at leogane",
           "🙏🙏", "", "Need food and water at the camp near Jacmel", "need food and water at the camp by jacmel",
           "News and information on the earthquake in Haiti", "I need information on the number 4636"]


def test_near_copies_group_under_the_first_and_nothing_else_does():
  got = groups.groups(APPEALS)
  assert got == brute_force(APPEALS)
  assert [0, 1] in got and [3, 4] in got and [7, 8] in got and [5] in got and [6] in got  # no words: alone
  assert [9] in got and [10] in got  # they share words, but are not copies
  assert sorted(itertools.chain(*got)) == list(range(len(APPEALS)))


def test_a_group_never_chains_away_from_its_first_message():
  drift = ["a b c d e f g h i j", "a b c d e f g h i k", "a b c d e f g h k l", "a b c d e f g k l m"]
  # each is a copy of the one before (Jaccard 9/11); the third is not a copy of the first (8/12): it leads the
  # next group (linking copies of copies would have made one group of four)
  assert groups.groups(drift) == [[0, 1], [2, 3]]


def test_a_messages_leader_never_changes_and_the_grouper_is_bounded():
  grouper = groups.Grouper(limit=3)
  assert grouper.leader("a", "we need water in the camp") == "a"
  assert grouper.leader("b", "We need WATER in the camp!") == "a"
  assert grouper.leader("b", "something else entirely") == "a"  # given once, kept
  grouper.leader("c", "roads blocked")
  assert grouper.leader("d", "we need water in the camp") == "d"  # the limit reached: it started over
