"""An ensemble of exports: the mean of their probabilities, thresholds tuned on tune, scored on validation.

bench/quality.py uses it for a member trained apart (the fine-tuned encoder) beside the default: the same mean
of probabilities the in-graph ensemble serves, with the same threshold tuning and metrics as every other row.
"""

import tempfile
from typing import Any, Dict, Sequence

import numpy as np


def mean_of_exports(export_dirs: Sequence[str], data_path: str, train_config) -> Dict[str, Any]:
  """A metrics.json-like body ("final" with "at_0.5") of the exports' mean probabilities on the run's split."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from disaster_tf import labels  # pylint: disable=import-outside-toplevel
  from disaster_tf.data import csv_files  # pylint: disable=import-outside-toplevel
  from disaster_tf.data import examples as examples_lib  # pylint: disable=import-outside-toplevel
  from disaster_tf.model import metrics  # pylint: disable=import-outside-toplevel
  from disaster_tf.model import networks  # pylint: disable=import-outside-toplevel
  from disaster_tf.serve import savedmodel  # pylint: disable=import-outside-toplevel
  with tempfile.TemporaryDirectory() as spool:
    examples, _ = csv_files.load(data_path, spool)
    splits = examples_lib.split(examples, train_config)
    texts = {side: getattr(splits, side).read_texts() for side in ("tune", "validation")}
  outputs = {side: ([], []) for side in texts}
  for path in export_dirs:
    predict = savedmodel.load_predict(savedmodel.version_dir(path))
    for side, messages in texts.items():
      batches = [predict(text=tf.constant(messages[i:i + 256])) for i in range(0, len(messages), 256)]
      outputs[side][0].append(np.concatenate([b["scores"].numpy() for b in batches]))
      outputs[side][1].append(np.concatenate([b["related_probabilities"].numpy() for b in batches]))
  mean = {side: (np.mean(s, axis=0), np.mean(r, axis=0)) for side, (s, r) in outputs.items()}
  tuned = metrics.tune_thresholds(splits.tune.labels, mean["tune"][0], train_config.min_tune_positives,
                                  train_config.threshold_objective)

  def report(thresholds):
    decided = networks.decide(tf.constant(mean["validation"][0]), tf.constant(mean["validation"][1]),
                               tf.constant(thresholds, tf.float32)).numpy()
    return metrics.report(splits.validation.labels, decided).to_json()
  final = report(tuned)
  final["at_0.5"] = report(labels.default_thresholds())
  final["best_epoch"] = "-"
  return {"final": final, "epochs": []}
