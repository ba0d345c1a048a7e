"""A three-member run's export (--encoder_member): its blend record checked, its three members described, the
`module.Blend` that serves them.

The run's model dir holds the ensemble (the CNN beside its linear member, in <model_dir>/linear), the encoder
member in <model_dir>/encoder, and members.json, the blend training chose (train/members.py). `savedmodel.export`
checks the record before any TensorFlow object is built (`record`), then builds the served model (`build`).
"""

import json
import os
from typing import Any, Dict, Optional, Tuple

import numpy as np

from disaster_tf import config as config_lib
from disaster_tf.model import precision as precision_lib
from disaster_tf.serve import module as module_lib
from disaster_tf.train import checkpoint as ckpt_lib
from disaster_tf.train import members as members_lib


def record(model_dir: str) -> Optional[members_lib.Blend]:
  """The blend of a three-member run, or None for any other run.

  Raises:
    ValueError: a three-member run whose encoder member or blend is not finished, or members.json unreadable
      (named).
  """
  if not config_lib.load(model_dir).train.encoder_member:
    return None
  encoder_dir = os.path.join(model_dir, ckpt_lib.ENCODER_DIR)
  blend_record = members_lib.read(model_dir)
  if blend_record is None or not ckpt_lib.finished(encoder_dir):
    raise ValueError(f"{model_dir}: a three-member run (--encoder_member) exports with its encoder member "
                     f"({encoder_dir}) and its blend ({ckpt_lib.MEMBERS_FILE}), and one of them is not finished: "
                     "run the same train.py command again")
  return blend_record


def build(model_dir: str, ensemble: ckpt_lib.LoadedModel, blend_record: members_lib.Blend, thresholds: np.ndarray,
          precision: str) -> Tuple[module_lib.Blend, Tuple[Dict[str, Any], ...]]:
  """(the served blend of `ensemble` and the encoder member, decided at `thresholds`; the metadata's `members`:
  the CNN, the linear member and the encoder, each with its share of the scores and validation scores)."""
  encoder_dir = os.path.join(model_dir, ckpt_lib.ENCODER_DIR)
  encoder = ckpt_lib.load_model(encoder_dir, blend_record.encoder_checkpoint, precision_lib.EXPORT_PRECISIONS[
      precision])
  weight = blend_record.weight
  served = module_lib.Blend(module_lib.Member(ensemble.model, ensemble.featurizer, thresholds, name="ensemble"),
                            module_lib.Member(encoder.model, encoder.featurizer, thresholds, name="encoder"),
                            weight, thresholds)
  linear_dir = os.path.join(model_dir, ckpt_lib.LINEAR_DIR)
  described = (
      _member("the CNN", model_dir, ensemble.checkpoint_path, (1 - weight) / 2, model_dir,
              "the CNN and the linear member together"),
      _member("the linear member (TF-IDF logistic regression)", linear_dir, None, (1 - weight) / 2, linear_dir,
              "alone"),
      _member(f"the encoder ({ensemble.config.train.encoder_member}, fine-tuned)", encoder_dir,
              encoder.checkpoint_path, weight, encoder_dir, "alone"))
  return served, described


def _member(name: str, directory: str, checkpoint: Optional[str], weight: float, report_dir: str,
            scored: str) -> Dict[str, Any]:
  """One member as the metadata lists it; `report` is the validation scores of `report_dir`'s run (`scored`
  says of what), None without a readable one."""
  try:
    with open(os.path.join(report_dir, ckpt_lib.METRICS_FILE), encoding="utf-8") as f:
      final = json.load(f).get("final")
  except (OSError, ValueError, AttributeError):
    final = None
  report = {k: v for k, v in final.items() if k in ("total", "mean_positive_f1", "micro_f1", "examples")} \
      if isinstance(final, dict) else None
  return {"name": name, "model_dir": os.path.abspath(directory), "checkpoint": checkpoint, "weight": weight,
          "report": report, "scored": scored}
