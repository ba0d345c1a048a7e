"""Scores an exported SavedModel on labelled data, from its own `labels` output.

  disaster-evaluate --export_dir=models/disaster --data=../shared/data --split=validation
  python evaluate.py --export_dir=models/disaster --data=../shared/data --split=validation --output=runs/eval.json

`--export_dir` is a version directory or a base directory (its highest version
is used). `--split` applies the training run's own id split (fractions and salt
are read from the export), so `validation` scores only messages the model
never trained on. Prints the same report as training, writes it as JSON with
--output, and as one self-contained HTML page with --report (model card, F1
bars, precision-recall curves, `related`'s confusion matrix, scores per genre).
`--text_field=original` scores the messages that have an original as they
were sent.
"""

import json
import os

from absl import app
from absl import flags

from disaster_tf import cli
from disaster_tf import config as config_lib

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines evaluate.py's flags (called under __main__ only)."""
  flags.DEFINE_string("export_dir", None, "A SavedModel version directory or its base directory (the highest "
                      "version is used).", required=True)
  flags.DEFINE_string("data", None, "Labelled data: a two-file directory or a wide CSV file.", required=True)
  flags.DEFINE_enum("split", "all", ("all",) + config_lib.SPLIT_NAMES, "Which messages to score, by the "
                    "training run's id split (read from the export): validation is what the model neither trained "
                    "nor chose on.")
  flags.DEFINE_enum("text_field", "message", ("message", "original"), "Score each message as translated "
                    "(message), or the messages that have an original as they were sent (original).")
  flags.DEFINE_string("output", None, "Where to write the report as JSON (default: printed only, so that no "
                      "file lands in the working directory unasked).")
  flags.DEFINE_string("report", None, "Also write the evaluation as one self-contained HTML page (model card, "
                      "F1 bars, precision-recall curves, related's confusion matrix, scores per genre).")
  flags.DEFINE_integer("batch_size", 256, "Messages per call; larger batches amortise the per-call overhead.",
                       lower_bound=1)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  for name in ("output", "report"):
    value = getattr(FLAGS, name)
    output_dir = os.path.dirname(os.path.abspath(value)) if value is not None else None
    # Found out now, before TensorFlow loads and evaluates (cli.run says it).
    if output_dir and not os.path.isdir(output_dir):
      raise ValueError(f"--{name}={value}: {output_dir} is not a directory; create it first")
    if value is not None and os.path.isdir(value):
      raise ValueError(f"--{name}={value}: a directory; expected a file name")
  cli.import_tensorflow()
  from disaster_tf import labels  # pylint: disable=import-outside-toplevel
  from disaster_tf.model import metrics  # pylint: disable=import-outside-toplevel
  from disaster_tf.serve import evaluate  # pylint: disable=import-outside-toplevel
  from disaster_tf.serve import report  # pylint: disable=import-outside-toplevel
  evaluation, _ = evaluate.evaluate_export(FLAGS.export_dir, FLAGS.data, FLAGS.split, FLAGS.batch_size,
                                           FLAGS.text_field, FLAGS.report)
  print(metrics.format_table(evaluation.scores, title=f"{evaluation.export} on {FLAGS.data} ({FLAGS.split} split, "
                                                     f"{FLAGS.text_field} texts):"))
  if evaluation.languages:
    print(report.language_summary(evaluation.languages, "scored"))
  tuned = {c: t for c, t in evaluation.thresholds.items() if t != labels.DEFAULT_THRESHOLD}
  print(f"decision thresholds stored in the export: {len(tuned)} categories tuned"
        + (": " + ", ".join(f"{c} {t:.3f}" for c, t in tuned.items()) if tuned else ", all at 0.5"))
  if FLAGS.report is not None:
    print(f"HTML report written to {FLAGS.report}")
  if FLAGS.output is None:
    return
  config_lib.write_text_atomic(FLAGS.output, json.dumps(evaluation.to_json(), indent=1) + "\n")
  print(f"report written to {FLAGS.output}")


def run() -> None:
  """`disaster-evaluate` and `python evaluate.py`."""
  cli.run(define_flags, main, __doc__)


if __name__ == "__main__":
  run()
