"""Scores an exported SavedModel on labelled data, from its own `labels` output.

  python -m disaster_tf.evaluate --export_dir=/tmp/models/disaster --data=../shared/data --split=validation

`--export_dir` is a version directory or a base directory (its highest version
is used). `--split` applies the training run's own id split (fraction and salt
are read from the export), so `validation` scores only messages the model
never trained on. Prints the same report as training and writes it as JSON.
"""

import json
import sys
import tempfile
from typing import Any, Dict, Tuple

import numpy as np
import tensorflow as tf
from absl import app
from absl import flags
from absl import logging

from disaster_tf import data
from disaster_tf import labels
from disaster_tf import metrics
from disaster_tf import serving

SPLITS = ("all", "train", "tune", "validation")


def evaluate_export(export_dir: str, data_path: str, split: str = "all",
                    batch_size: int = 256) -> Tuple[Dict[str, Any], Dict[str, Any]]:
  """Runs the export's serving_default on labelled messages and scores its `labels`.

  Args:
    export_dir: a version directory, or a base directory holding versions.
    data_path: labelled data in either format (see `data.load`).
    split: "all", or "train" / "tune" / "validation" by the training run's id split.
    batch_size: messages per call.

  Returns:
    (report as in `metrics.report`, plus `export`, `data`, `split` and the
     export's `thresholds` by category; the export's metadata).
  """
  if split not in SPLITS:
    raise ValueError(f"split={split!r}: expected one of {', '.join(SPLITS)}")
  path = serving.version_dir(export_dir)
  metadata = serving.read_metadata(path)
  with tempfile.TemporaryDirectory(prefix="disaster_tf-evaluate-") as spool_dir:
    examples, load_report = data.load(data_path, spool_dir)
    logging.info("data: %s", load_report.summary())
    if split != "all":
      tc = metadata["config"]["train"]
      sides = data.split_ids(examples.ids, tc["validation_fraction"], tc.get("tune_fraction", 0.0), tc["split_seed"])
      side = {"train": data.TRAIN, "tune": data.TUNE, "validation": data.VALIDATION}[split]
      examples = examples.subset(sides == side)
      if not len(examples):
        raise ValueError(f"{data_path}: no examples in the {split} split")
    predict = tf.saved_model.load(path).signatures[serving.PREDICT_KEY]
    # Messages stream from the spool a batch at a time; only the decisions are kept.
    predictions = [predict(text=batch)["labels"].numpy() for batch in examples.texts().batch(batch_size)]
  scores = metrics.report(examples.labels, np.concatenate(predictions))
  scores.update(export=path, data=load_report.__dict__, split=split,
                thresholds=dict(zip(metadata["categories"], metadata["thresholds"])))
  return scores, metadata


def define_flags() -> None:
  flags.DEFINE_string("export_dir", None, "A SavedModel version directory or its base directory.", required=True)
  flags.DEFINE_string("data", None, "Labelled data: a two-file directory or a wide CSV file.", required=True)
  flags.DEFINE_enum("split", "all", SPLITS, "Which messages to score, by the training run's id split.")
  flags.DEFINE_string("output", "evaluation.json", "Where to write the report as JSON.")
  flags.DEFINE_integer("batch_size", 256, "Messages per call.", lower_bound=1)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  f = flags.FLAGS
  try:
    scores, _ = evaluate_export(f.export_dir, f.data, f.split, f.batch_size)
  except (data.DataError, FileNotFoundError, ValueError) as e:
    logging.error("%s", e)
    sys.exit(f"evaluate: {e}")
  print(metrics.format_table(scores, title=f"{scores['export']} on {f.data} ({f.split} split):"))
  tuned = {c: t for c, t in scores["thresholds"].items() if t != labels.DEFAULT_THRESHOLD}
  print(f"decision thresholds stored in the export: {len(tuned)} categories tuned"
        + (": " + ", ".join(f"{c} {t:.3f}" for c, t in tuned.items()) if tuned else ", all at 0.5"))
  with open(f.output, "w", encoding="utf-8") as out:
    json.dump(scores, out, indent=1)
  print(f"report written to {f.output}")


if __name__ == "__main__":
  define_flags()
  app.run(main)
