"""Near-copies decided once: how many rows an operator reads with grouping against without.

  python bench/groups.py            # the shared data's training messages (~10 s, 2 cores)

Groups the training split's messages (configs/disaster_response.flags' split), in id order and by genre,
with the page's rule (triage/groups.py: a message joins the earliest message its word set is a near-copy of,
Jaccard >= sampling.NEAR_COPY), checks the MinHash index against the exact rule on the first 3,000 (every
pair), and writes BENCHMARKS.md's "groups" section: messages, rows, rows saved, the largest groups.
"""

import collections
import os
import sys
import time

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench import active  # pylint: disable=wrong-import-position
from bench import common  # pylint: disable=wrong-import-position
from disaster_tf.data import examples as examples_lib  # pylint: disable=wrong-import-position
from disaster_tf.triage import groups  # pylint: disable=wrong-import-position
from disaster_tf.triage import sampling  # pylint: disable=wrong-import-position

CHECKED = 3000  # messages whose groups are checked against every pair


def define_flags() -> None:
  flags.DEFINE_string("data", os.path.join(common.ROOT, "..", "shared", "data"), "The two-file data directory.")
  flags.DEFINE_string("train_flagfile", "configs/disaster_response.flags", "Whose split's training side.")
  flags.DEFINE_bool("write", True, "Write BENCHMARKS.md's section.")


def exact(texts):
  """The page's rule with every earlier leader checked (no index): what groups.groups must equal."""
  leaders, out = {}, {}  # leader -> its words (in arrival order), leader -> its members
  for i, text in enumerate(texts):
    mine = sampling.words(text)
    leader = next((j for j, theirs in leaders.items() if len(mine & theirs) >= sampling.NEAR_COPY *
                   len(mine | theirs)), None) if mine else None
    if leader is None:
      if mine:
        leaders[i] = mine
      out[i] = [i]
    else:
      out[leader].append(i)
  return [out[i] for i in sorted(out)]


def main(argv):
  del argv
  f = flags.FLAGS
  raw = active.Raw(f.data)
  tc = common.config_from_flagfile(f.train_flagfile).train
  side = examples_lib.split_ids(raw.ids, tc.validation_fraction, tc.tune_fraction, tc.split_seed)
  ids = [i for i, s in zip(raw.ids, side) if s == examples_lib.TRAIN]
  genre = {i: rows[0][3] for i, rows in raw.rows["disaster_messages.csv"].items()}
  texts = [raw.texts[i] for i in ids]
  start = time.time()
  found = groups.groups(texts)
  seconds = time.time() - start
  agree = groups.groups(texts[:CHECKED]) == exact(texts[:CHECKED])
  lines = ["| messages | rows with grouping | rows saved | grouped in | groups of 2+ | largest groups |",
           "|---|---|---|---|---|---|"]
  sizes = sorted((len(g) for g in found), reverse=True)
  lines.append(f"| {len(texts)} | {len(found)} | {len(texts) - len(found)} ({1 - len(found) / len(texts):.1%}) | "
               f"{seconds:.1f} s | {sum(s > 1 for s in sizes)} | {', '.join(map(str, sizes[:5]))} |")
  by_genre = collections.Counter(genre[ids[g[0]]] for g in found)
  messages_by_genre = collections.Counter(genre[i] for i in ids)
  body = (f"The training split of `{f.train_flagfile}` ({len(texts)} messages, in id order), grouped by the "
          f"page's rule (triage/groups.py: near-copies, word-set Jaccard >= {sampling.NEAR_COPY}, each under the "
          f"earliest message it copies). The MinHash index against every pair on the first {CHECKED}: "
          f"{'the same groups' if agree else 'DIFFERENT groups'}.\n\n" + "\n".join(lines) + "\n\nBy genre: " +
          ", ".join(f"{g} {messages_by_genre[g]} messages in {by_genre[g]} rows" for g in sorted(by_genre)) + ".\n")
  print(body)
  if f.write:
    common.write_section("groups", "Near-copies decided once: rows an operator reads", body)


if __name__ == "__main__":
  define_flags()
  app.run(main)
