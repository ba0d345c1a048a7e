"""Scores an exported SavedModel on labelled data, from its own `labels` output.

The library half of `evaluate.py` (the entry point, beside train.py and
export.py). `split` applies the training run's own id split (fractions and
salt are read from the export's config), so "validation" scores only messages
the model never trained on.
"""

import json
import tempfile
from typing import Any, Dict, Tuple

import numpy as np
import tensorflow as tf
from absl import logging

from disaster_tf import config as config_lib
from disaster_tf import data
from disaster_tf import metrics
from disaster_tf import serving

SPLITS = ("all",) + data.SPLIT_NAMES


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
      train = dict(metadata["config"]["train"])
      train.setdefault("tune_fraction", 0.0)  # exports from before the tune split have none
      train_config = config_lib.Config.from_json(json.dumps({"train": train})).train
      examples = getattr(data.split(examples, train_config), split)
      if not len(examples):
        raise ValueError(f"{data_path}: no examples in the {split} split")
    predict = tf.saved_model.load(path).signatures[serving.PREDICT_KEY]
    # Messages stream from the spool a batch at a time; only the decisions are kept.
    predictions = [predict(text=batch)["labels"].numpy() for batch in examples.texts().batch(batch_size)]
  scores = metrics.report(examples.labels, np.concatenate(predictions))
  scores.update(export=path, data=load_report.__dict__, split=split,
                thresholds=dict(zip(metadata["categories"], metadata["thresholds"])))
  return scores, metadata
