"""TensorBoard summaries written with core TensorFlow only (TF 2.21 no longer installs the tensorboard package).

A run writes to `train/` and to its selection split's directory (`SummaryWriters`).

Each function writes what the TensorBoard plugin of that kind reads: the same
tensor and plugin metadata that `tensorboard.summary` would write.
"""

import dataclasses
import os
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from disaster_tf import labels

_SCALAR_METADATA = summary_pb2.SummaryMetadata(
    plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")).SerializeToString()
PR_THRESHOLDS = 101  # thresholds 0, 0.01, ..., 1: the PR-curve plugin's usual resolution


def scalar(name: str, value: float, step: Optional[int] = None) -> None:
  """Writes one scalar to the default summary writer (at `step`, or the default step the loop sets)."""
  tf.summary.write(name, tf.constant(value, tf.float32), step=step, metadata=_SCALAR_METADATA)


def _pr_metadata(num_thresholds: int) -> bytes:
  # PrCurvePluginData {version = 0 (field 1, left out), num_thresholds = field 2, a varint}.
  varint, n = bytearray(), num_thresholds
  while True:
    varint.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
    n >>= 7
    if not n:
      break
  content = b"\x10" + bytes(varint)
  return summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(
      plugin_name="pr_curves", content=content)).SerializeToString()


def pr_counts(truth: np.ndarray, scores: np.ndarray, num_thresholds: int = PR_THRESHOLDS) -> np.ndarray:
  """[6, num_thresholds] float32 rows TP, FP, TN, FN, precision, recall at thresholds 0..1 (>= each)."""
  thresholds = np.linspace(0.0, 1.0, num_thresholds)
  positive = truth.astype(bool)
  above = scores[None, :] >= thresholds[:, None]  # [thresholds, N]
  tp = (above & positive).sum(axis=1).astype(np.float64)
  fp = (above & ~positive).sum(axis=1).astype(np.float64)
  fn, tn = positive.sum() - tp, (~positive).sum() - fp
  precision = tp / np.maximum(tp + fp, 1.0)
  recall = tp / np.maximum(tp + fn, 1.0)
  return np.stack([tp, fp, tn, fn, precision, recall]).astype(np.float32)


def pr_curve(name: str, truth: np.ndarray, scores: np.ndarray, step: int,
             num_thresholds: int = PR_THRESHOLDS) -> None:
  """Writes one precision-recall curve (TensorBoard's PR Curves tab) to the default summary writer."""
  tf.summary.write(name, tf.constant(pr_counts(truth, scores, num_thresholds)), step=step,
                   metadata=_pr_metadata(num_thresholds))


@dataclasses.dataclass(frozen=True)
class SummaryWriters:
  """A run's TensorBoard writers: `train/` and the selection split's (`tune/` or `validation/`); no-ops off chief."""

  train: tf.summary.SummaryWriter
  selection: tf.summary.SummaryWriter

  @classmethod
  def for_run(cls, model_dir: str, chief: bool, selection_name: str) -> "SummaryWriters":
    if not chief:
      return cls(tf.summary.create_noop_writer(), tf.summary.create_noop_writer())
    return cls(tf.summary.create_file_writer(os.path.join(model_dir, "train")),
               tf.summary.create_file_writer(os.path.join(model_dir, selection_name)))

  def flush(self) -> None:
    self.train.flush()
    self.selection.flush()


def loss_scalars(loss: float, per_category: Sequence[float]) -> None:
  """The training loss and each head's share of it, to the default writer at its default step."""
  scalar("loss/total", loss)
  for name, value in zip(labels.CATEGORIES, per_category):
    scalar(f"loss/{name}", value)


def pr_curves(writer: tf.summary.SummaryWriter, step: int, curves: Dict[str, Tuple[np.ndarray, np.ndarray]]) -> None:
  """Each category's precision-recall curve on each split: {split: (labels [N, 36], scores [N, 36])}."""
  with writer.as_default():
    for split, (truth, scores) in curves.items():
      for k, name in enumerate(labels.CATEGORIES):
        pr_curve(f"pr_{split}/{name}", truth[:, k] == 1, scores[:, k], step=step)
  writer.flush()
