"""Scores an exported SavedModel on labelled data, from its own `labels` output.

  disaster-evaluate --export_dir=models/disaster --data=../shared/data --split=validation
  python evaluate.py --export_dir=models/disaster --data=../shared/data --split=validation --output=eval.json

`--export_dir` is a version directory or a base directory (its highest version
is used). `--split` applies the training run's own id split (fractions and salt
are read from the export), so `validation` scores only messages the model
never trained on. Prints the same report as training, and writes it as JSON
with --output.
"""

import json
import os
import sys

from absl import app
from absl import flags
from absl import logging

from disaster_tf import cli

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines evaluate.py's flags (called under __main__ only)."""
  from disaster_tf import evaluate  # pylint: disable=import-outside-toplevel
  flags.DEFINE_string("export_dir", None, "A SavedModel version directory or its base directory (the highest "
                      "version is used).", required=True)
  flags.DEFINE_string("data", None, "Labelled data: a two-file directory or a wide CSV file.", required=True)
  flags.DEFINE_enum("split", "all", evaluate.SPLITS, "Which messages to score, by the training run's id split "
                    "(read from the export): validation is what the model neither trained nor chose on.")
  flags.DEFINE_string("output", None, "Where to write the report as JSON (default: printed only, so that no "
                      "file lands in the working directory unasked).")
  flags.DEFINE_integer("batch_size", 256, "Messages per call; larger batches amortise the per-call overhead.",
                       lower_bound=1)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  from disaster_tf import config, data, evaluate, labels, metrics  # pylint: disable=import-outside-toplevel
  if FLAGS.output is not None:
    output_dir = os.path.dirname(os.path.abspath(FLAGS.output))
    if not os.path.isdir(output_dir):  # found out now, not after the whole evaluation has run
      sys.exit(f"{cli.prog()}: --output={FLAGS.output}: {output_dir} is not a directory; create it first")
  try:
    scores, _ = evaluate.evaluate_export(FLAGS.export_dir, FLAGS.data, FLAGS.split, FLAGS.batch_size)
  except (data.DataError, FileNotFoundError, ValueError) as e:
    logging.error("%s", e)
    sys.exit(f"{cli.prog()}: {e}")
  print(metrics.format_table(scores, title=f"{scores['export']} on {FLAGS.data} ({FLAGS.split} split):"))
  tuned = {c: t for c, t in scores["thresholds"].items() if t != labels.DEFAULT_THRESHOLD}
  print(f"decision thresholds stored in the export: {len(tuned)} categories tuned"
        + (": " + ", ".join(f"{c} {t:.3f}" for c, t in tuned.items()) if tuned else ", all at 0.5"))
  if FLAGS.output is None:
    return
  try:
    config.write_text_atomic(FLAGS.output, json.dumps(scores, indent=1) + "\n")
  except OSError as e:
    sys.exit(f"{cli.prog()}: {e}")
  print(f"report written to {FLAGS.output}")


def run() -> None:
  """`disaster-evaluate` and `python evaluate.py`."""
  cli.run(define_flags, main, __doc__)


if __name__ == "__main__":
  run()
