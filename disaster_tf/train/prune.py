"""What a finished model dir can give up: the parts that only training needs (`export.py --prune`).

A finished run keeps, for export, its config, vocabularies, thresholds,
report and best checkpoint (and its refit's, with --refit). Only training
reads the rest, and it is most of the size (README's main job: 270 of its
302 MB, for a 23 MB export):

  checkpoints/   the latest checkpoints, to resume a stopped run
  linear/        the linear member's own run (--linear_epochs): its weights are
                 copied into the ensemble's checkpoints, which export reads

Pruning removes those, in the run and in its refit or its English model
(--route_english), and leaves PRUNED_FILE,
which train.py reads to refuse the dir: a pruned run cannot be resumed, and
training it anew would overwrite the model it holds. The marker is written
first, so a prune that stops midway is finished by running it again.
"""

import dataclasses
import json
import os
import shutil
from typing import Tuple

from disaster_tf import config as config_lib
from disaster_tf.train import checkpoint as ckpt_lib
from disaster_tf.train import dirlock

PRUNED_FILE = ckpt_lib.PRUNED_FILE
TRAINING_ONLY = (ckpt_lib.CHECKPOINTS_DIR, ckpt_lib.LINEAR_DIR)  # what export never reads
# Runs inside a run: --refit's, --route_english's, --encoder_member's.
SUB_RUNS = (ckpt_lib.REFIT_DIR, ckpt_lib.ENGLISH_DIR, ckpt_lib.ENCODER_DIR)


@dataclasses.dataclass(frozen=True)
class Pruned:
  """What a prune removed and what it kept."""

  removed: Tuple[Tuple[str, int], ...]  # (path, bytes) of each directory removed
  kept_bytes: int  # what the model dir holds afterwards

  def summary(self) -> str:
    parts = ", ".join(f"{path} ({_mb(size)})" for path, size in self.removed) or "nothing (pruned already)"
    return f"removed {parts}; the model dir keeps {_mb(self.kept_bytes)}, all that export reads"


def prune(model_dir: str) -> Pruned:
  """Removes what only training reads from a finished model dir, keeping it exportable.

  Raises:
    FileNotFoundError: no run in `model_dir`.
    dirlock.DirectoryInUse: a run (or an export) holds it.
    ValueError: a run in it has not finished (its checkpoints are what resumes it), or its best checkpoint
      cannot be read (it would not be exportable after the prune either).
  """
  if not os.path.isfile(os.path.join(model_dir, config_lib.CONFIG_FILE)):
    raise FileNotFoundError(f"{model_dir}: no {config_lib.CONFIG_FILE}; expected a model dir written by train.py")
  with dirlock.exclusive(model_dir):
    runs = [model_dir] + [d for d in (os.path.join(model_dir, sub) for sub in SUB_RUNS) if os.path.isdir(d)]
    if not os.path.exists(os.path.join(model_dir, PRUNED_FILE)):
      for run in runs:
        _check_finished(run)
    targets = [os.path.join(run, part) for run in runs for part in TRAINING_ONLY
               if os.path.isdir(os.path.join(run, part))]
    removed = [(os.path.relpath(path, model_dir), _size(path)) for path in targets]
    config_lib.write_text_atomic(os.path.join(model_dir, PRUNED_FILE), json.dumps(
        {"removed": [path for path, _ in removed], "why": "export.py --prune: what only training reads"}) + "\n")
    for path in targets:
      shutil.rmtree(path)
  return Pruned(tuple(removed), _size(model_dir))


def _check_finished(run: str) -> None:
  """Refuses a run without a final report, or whose best checkpoint cannot be read."""
  if not ckpt_lib.finished(run):
    raise ValueError(f"{run}: the run has not finished (no final report in its {ckpt_lib.METRICS_FILE}); its "
                     "checkpoints are what resumes it. Run the same train.py command to finish it, then prune")
  ckpt_lib.resolve(run, "best")  # its ValueError names an unreadable best checkpoint


def check_not_pruned(model_dir: str) -> None:
  """Refuses to train in a pruned model dir.

  Raises:
    ValueError: `model_dir` holds PRUNED_FILE.
  """
  if os.path.exists(os.path.join(model_dir, PRUNED_FILE)):
    raise ValueError(f"{model_dir} was pruned (export.py --prune): it keeps what export reads, not what resumes "
                     "or continues a run. Train into a new --model_dir")


def _size(path: str) -> int:
  total = 0
  for root, _, files in os.walk(path):
    total += sum(os.path.getsize(os.path.join(root, name)) for name in files
                 if not os.path.islink(os.path.join(root, name)))
  return total


def _mb(size: int) -> str:
  return f"{size / 1e6:.1f} MB"
