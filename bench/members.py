"""An ensemble of exports: the mean of their probabilities, thresholds tuned on tune, scored on validation.

bench/quality.py uses it for a member trained apart (the fine-tuned encoder) beside the default: the same mean
of probabilities the in-graph ensemble serves, with the same threshold tuning and metrics as every other row.
"""

import json
import os
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


THREE = "three members"  # configs/pretrained.flags: the default's ensemble and the encoder member, one export


def blend_names(names) -> list:
  """The three-member runs among `names` (each also gives rows "NAME: its ensemble ..." and "NAME: its encoder
  member", which are not runs)."""
  return [n for n in names if n.startswith(THREE) and ":" not in n]


def epoch_seconds(body) -> float:
  """The seconds a metrics.json body's epochs trained for (a resumed run keeps the finished epochs' own)."""
  return sum(e["train_seconds"] for e in body["epochs"])


def three_member_rows(name: str, model_dir: str, wall: float):
  """The rows of one three-member run: its blend (members.json), its ensemble alone (the default's two members:
  metrics.json) and its encoder member alone (encoder/metrics.json), each a (name, metrics.json-like body, wall);
  the blend's body also holds `phase_seconds`, where the run's time went by phase (the epochs' own seconds and the
  blend's, which a resumed run keeps)."""
  def read(*parts):
    with open(os.path.join(model_dir, *parts), encoding="utf-8") as f:
      return json.load(f)
  blend, ensemble, encoder, linear = (read("members.json"), read("metrics.json"), read("encoder", "metrics.json"),
                                      read("linear", "metrics.json"))
  phases = {"linear member": epoch_seconds(linear), "CNN": epoch_seconds(ensemble),
            "encoder member": epoch_seconds(encoder),
            "blend": blend.get("seconds", 0.0)}
  return [(name, {"final": blend["report"], "epochs": [], "phase_seconds": phases}, wall),
          (f"{name}: its ensemble (the default)", ensemble, float("nan")),
          (f"{name}: its encoder member", encoder, float("nan"))]


def three_member_lines(rows, reference: str) -> list:
  """Per seed: the blend and its ensemble against the reference (issue 40's targets on every seed), and where the
  run's time went."""
  by_name = {n: b for n, b, _ in rows}
  if reference not in by_name:
    return []
  r = by_name[reference]["final"]
  lines, met = [], []
  for name in blend_names(by_name):
    blend, ensemble = by_name[name], by_name[f"{name}: its ensemble (the default)"]
    gains = (blend["final"]["total"] - r["total"], blend["final"]["mean_positive_f1"] - r["mean_positive_f1"])
    met.append(gains[0] >= 1.0 and gains[1] >= 0.03)
    phases = blend["phase_seconds"]
    default = phases["linear member"] + phases["CNN"]
    lines.append(f"{name} - {reference}: Total {gains[0]:+.2f}, mean positive F1 {gains[1]:+.3f}; over its own "
                 f"ensemble (the default) {blend['final']['total'] - ensemble['final']['total']:+.2f} Total, "
                 f"{blend['final']['mean_positive_f1'] - ensemble['final']['mean_positive_f1']:+.3f} mean positive "
                 "F1. Seconds by phase (the epochs' training, and the blend): " + ", ".join(
                     f"{k} {v:.0f}" for k, v in phases.items()) +
                 f"; all four {sum(phases.values()) / default:.2f}x the default's two phases (issue 40's bound on "
                 "the main job: 3x).")
  if met:
    lines.append(f"Issue 40's quality targets (>= +1.0 Total and >= +0.03 mean positive F1 over the reference on "
                 f"every seed): {'met' if all(met) else 'NOT met'} ({sum(met)} of {len(met)} seeds).")
  return lines


FLOAT32 = "encoder member float32"  # the encoder member's fine-tune alone, float32 (bench/quality.py)


def precision_line(rows) -> str:
  """bfloat16 against float32 for the encoder member, same run and seed: the three-member run's encoder member
  (bfloat16 where the CPU has it) and `FLOAT32`, by the epochs' own seconds and by validation Total."""
  by_name = {n: b for n, b, _ in rows}
  member = f"{THREE}: its encoder member"
  if FLOAT32 not in by_name or member not in by_name:
    return ""
  bf16, f32 = by_name[member], by_name[FLOAT32]
  fast, slow = epoch_seconds(bf16), epoch_seconds(f32)
  return (f"The encoder member's fine-tune, {member} against {FLOAT32} (same seed, same run): "
          f"{slow / fast:.2f}x the examples per second over its {len(bf16['epochs'])} epochs "
          f"({fast:.0f} s against {slow:.0f} s); validation Total tuned {bf16['final']['total']:.2f} "
          f"against {f32['final']['total']:.2f} ({bf16['final']['total'] - f32['final']['total']:+.2f}).")


def main_job_line(job_seconds) -> str:
  """The three-member main jobs against the default's, same run: `job_seconds` maps "default" and each
  three-member run's name to the seconds of its whole processes (vectors file, train, export)."""
  default, runs = job_seconds.get("default"), blend_names(job_seconds)
  if default is None or not runs:
    return ""
  worst = max(job_seconds[n] for n in runs) / default
  return (f"Main job (vectors file, train, export; whole processes), against the default's {default:.0f} s in this "
          "run: " + "; ".join(f"{n} {job_seconds[n]:.0f} s, {job_seconds[n] / default:.2f}x" for n in runs) +
          f" (issue 40's bound: 3x, {'met' if worst <= 3 else 'NOT met'}).")
