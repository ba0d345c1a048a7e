"""Operators' decisions (the triage page's --db file): list them, export them as labelled data, undo one.

  disaster-decisions --db=runs/decisions.db                              # what stands, by message
  disaster-decisions --db=runs/decisions.db --export_dir=runs/decided/   # the two-file CSV format, a new dir
  disaster-decisions --db=runs/decisions.db --undo=17                    # decision 17 no longer stands (kept)
  disaster-decisions --operators=runs/operators.tsv --add_operator=ana   # a token for the page on the network

To train on them with a data set, `train.py --decisions=runs/decisions.db` applies
them over --data: a decision overrides the data's labels of its message.
"""

import getpass
import os

from absl import app
from absl import flags

from disaster_tf import cli

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the command's flags (called under __main__ only)."""
  flags.DEFINE_string("db", None, "The decisions file (SQLite).")
  flags.DEFINE_string("export_dir", None, "Write the standing decisions here in the two-file CSV format.")
  flags.DEFINE_bool("hxl", False, "With --export_dir: HXL's hashtag row under each file's header (#meta+id, "
                    "#description+message, ...), for HDX and the sector's tools; training reads it back.")
  flags.DEFINE_integer("undo", None, "Undo the decision with this id (it stays in the file, no longer standing, "
                       "with who undid it: --operator).")
  flags.DEFINE_string("operator", None, "Who undoes (--undo), as the file records it; default: cli:<your login "
                      "name>.")
  flags.DEFINE_string("operators", None, "With --add_operator: the operators file the triage page reads.")
  flags.DEFINE_string("add_operator", None, "Add this operator to --operators with a new token, printed once "
                      "(the file keeps only its hash).")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  from disaster_tf import labels  # pylint: disable=import-outside-toplevel
  from disaster_tf.data import decided  # pylint: disable=import-outside-toplevel
  from disaster_tf.data import decisions  # pylint: disable=import-outside-toplevel
  from disaster_tf.triage import review  # pylint: disable=import-outside-toplevel
  if FLAGS.add_operator is not None:
    if not FLAGS.operators:
      raise app.UsageError("--add_operator needs --operators=FILE")
    print(f"{FLAGS.add_operator}'s token (shown once; the file keeps its hash): "
          f"{review.Operators.add(FLAGS.operators, FLAGS.add_operator)}")
    return
  if not FLAGS.db:
    raise app.UsageError("--db: required (the decisions file, the triage page's --db)")
  if not os.path.isfile(FLAGS.db):
    raise FileNotFoundError(f"--db={FLAGS.db}: no such file")
  store = decisions.Store(FLAGS.db, read_only=FLAGS.undo is None)  # listing and exporting never write to it
  if FLAGS.undo is not None:
    operator = FLAGS.operator or f"cli:{getpass.getuser()}"
    try:
      store.undo(FLAGS.undo, operator)
    except decisions.StoreError as e:
      raise ValueError(f"--undo={FLAGS.undo}: {str(e).partition(': ')[2]}") from None
    print(f"decision {FLAGS.undo} undone by {operator}")
  if FLAGS.export_dir:
    print(f"{decided.export_csv(store, FLAGS.export_dir, FLAGS.hxl)} decision(s) written to {FLAGS.export_dir}")
    return
  for d in store.standing().values():
    decided = [c for c, v in zip(labels.CATEGORIES, d.labels) if v and c != "related"]
    print(f"{d.decision_id}\t{d.decided_at}\t{d.operator}\t{d.message_id}\t{';'.join(decided) or '-'}\t"
          f"{d.message[:60]}")


def run() -> None:
  """`disaster-decisions`."""
  cli.run(define_flags, main, __doc__)


if __name__ == "__main__":
  run()
