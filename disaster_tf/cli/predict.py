"""Scores a CSV file of unlabelled messages with an export, or with TF Serving.

  disaster-predict --export_dir=models/disaster --input=incoming.csv --output=runs/scored.csv
  python predict.py --serving_url=http://localhost:8501/v1/models/disaster --input=incoming.csv --output=runs/scored.csv

The input needs a `message` column (the messages file, the wide format and
plain `id,message` all have one); any size streams through. The output keeps
every input column and adds `priority` (1 is the most urgent: the rank of the
message's most urgent category in the urgency order), `predicted` (its
categories, most urgent first), `related` (no / yes / unsure) and one
`score_<category>` per category; with --explain, an `explanation` column:
for each predicted category the words that raised its score most, e.g.
`water: water (+0.41), dlo (+0.12); food: manje (+0.30)` (the score falls by
that much without the word: disaster_tf/serve/explain.py). Every cell a spreadsheet would run as a
formula (starting with = + - @, a tab or a carriage return) gets a leading
single quote.

Exit codes: 0, every row scored; 1, nothing written (a bad argument or file,
named); 3 (EXIT_SKIPPED_ROWS), the output is written but some rows could not
be read: each is skipped, named by file and line in the report, and counted.
The input is checked before the model loads, never replaced, and a stopped
run (Ctrl-C, SIGTERM) leaves no file behind.
"""

import sys

from absl import app
from absl import flags
from absl import logging

from disaster_tf import cli
from disaster_tf.serve import client

FLAGS = flags.FLAGS
EXIT_SKIPPED_ROWS = 3  # the output holds every readable row; the others are named in the report


def define_flags() -> None:
  """Defines predict.py's flags (called under __main__ only)."""
  define_model_flags()
  flags.DEFINE_string("input", None, "CSV file of messages to score (a 'message' column).", required=True)
  flags.DEFINE_string("output", None, "Where to write the scored CSV (written whole, then renamed into place).",
                      required=True)
  flags.DEFINE_integer("batch_size", None, "Messages per model call (default 256; 32 with --explain, which scores "
                       "each message once per distinct word).", lower_bound=1)
  flags.DEFINE_bool("explain", False, "Add an `explanation` column: for each predicted category, the words that "
                    "raised its score most and by how much (leave-one-word-out, disaster_tf/serve/explain.py: each "
                    "message is scored once more per distinct word: over 10x slower, BENCHMARKS.md speed_explain).")
  flags.DEFINE_bool("hxl", False, "Write HXL's hashtag row under the output's header (#meta+id, "
                    "#description+message, #indicator+score+water, ...), for HDX and the sector's tools; an input "
                    "with such a row is read without it either way.")
  flags.DEFINE_string("db", None, "Also queue every scored message for the triage page's Review tab in this "
                      "decisions file (the page's --db).")


def define_model_flags() -> None:
  """The flags predict.py and triage.py share: which model scores, and in which urgency order."""
  flags.DEFINE_string("export_dir", None, "An export (version directory or its base) to load in this process.")
  flags.DEFINE_string("serving_url", None, "Or TF Serving's REST address of the model, "
                      "http://HOST:8501/v1/models/NAME.")
  flags.DEFINE_list("urgency", [], "Categories to put first in the urgency order (most urgent first); the rest "
                    "follow the default order (disaster_tf/serve/predict.py, URGENCY).")


def make_scorer(explain: bool = False):
  """The scorer FLAGS ask for (`explain`: its results explained), and the loaded export when there is one (None
  over TF Serving)."""
  from disaster_tf.serve import predict  # pylint: disable=import-outside-toplevel
  if bool(FLAGS.export_dir) == bool(FLAGS.serving_url):
    raise app.UsageError("give one of --export_dir (score in this process) or --serving_url (through TF Serving)")
  if FLAGS.export_dir:
    cli.import_tensorflow()
    loaded = predict.load_export(FLAGS.export_dir)
    return loaded.explainer if explain else loaded.scorer, loaded
  return predict.serving_scorer(FLAGS.serving_url, explain=explain), None


def review_queue(path: str):
  """The decisions API of `path`, for queueing (no operators: this process is the operator's own)."""
  from disaster_tf.data import decisions  # pylint: disable=import-outside-toplevel
  from disaster_tf.triage import review  # pylint: disable=import-outside-toplevel
  return review.DecisionsApi(decisions.Store(path))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  from disaster_tf.serve import predict  # pylint: disable=import-outside-toplevel
  from disaster_tf.serve import scorefile  # pylint: disable=import-outside-toplevel
  order = predict.urgency_order(FLAGS.urgency)
  scorefile.check_job(FLAGS.input, FLAGS.output)  # before the model loads: a wrong path costs nothing
  queue = review_queue(FLAGS.db) if FLAGS.db else None
  scorer, loaded = make_scorer(FLAGS.explain)
  print(f"scoring with {loaded.describe() if loaded else FLAGS.serving_url}", flush=True)
  cli.exit_on_sigterm()  # a stopped run leaves no temporary file behind
  version = str(loaded.version) if loaded is not None else None
  batch_size = FLAGS.batch_size or (predict.EXPLAIN_BATCH if FLAGS.explain else predict.BATCH)
  report = scorefile.score_csv(FLAGS.input, FLAGS.output, scorer, order=order, batch_size=batch_size,
                               progress=lambda n: logging.info("scored %d rows", n),
                               on_batch=(lambda pairs: queue.enqueue(pairs, version)) if queue else None,
                               explain=FLAGS.explain, with_hxl=FLAGS.hxl,
                               english_only=bool(loaded and loaded.metadata.reads_english_only()))
  if queue:
    print(f"{report.scored} message(s) queued for review in {FLAGS.db}")
  print(f"{FLAGS.output}: {report.summary()}")
  if report.unreadable:  # the output is written, but it is not the whole input: a nightly job must notice
    print(f"{cli.prog()}: {report.unreadable} row(s) of {FLAGS.input} could not be read and are not in "
          f"{FLAGS.output} (named above)", file=sys.stderr)
    sys.exit(EXIT_SKIPPED_ROWS)


def run() -> None:
  """`disaster-predict` and `python predict.py`."""
  cli.run(define_flags, main, __doc__, errors=(client.ServingError,))


if __name__ == "__main__":
  run()
