"""The ablation of bench/active.py: which of its settings decide whether the queue teaches more than random choice.

  python bench/ablation.py --arms='10-epoch linear=/tmp/a/r1/results.json,...' [--random_from=...]

Each arm is a run of bench/active.py (its results.json) that changes one setting against the first arm, the
project's learner and sampler as they stood before (issue 38): the learner (--train_flags: epochs, class weights;
--l2_examples; --learner=sklearn), the way heads combine (--methods), the margins' reference (--sample_at), the
diversity step (--diverse) and the round size (--round_size). Reported for the first seed every arm shares,
after the last round: random's and each sampler's validation Total, at the tuned thresholds and at 0.5, and the
rare categories' F1. An arm without random choice (a sampler-only change) is compared with `--random_from`'s arm
of the same learner. Writes BENCHMARKS.md's "active_ablation" section.
"""

import json
import os
import sys
from typing import Dict, List, Tuple

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench import common  # pylint: disable=wrong-import-position


def define_flags() -> None:
  flags.DEFINE_list("arms", [], "LABEL=results.json pairs, the first the baseline; labels may not hold commas.")
  flags.DEFINE_list("random_from", [], "LABEL=OTHER_LABEL: the arm whose random choice LABEL (a sampler-only "
                    "change) is compared with.")
  flags.DEFINE_list("pairs", [], "LABEL=OTHER: also compare LABEL's samplers with OTHER's same samplers, seed by "
                    "seed (an arm that changes where acquired labels go, against the same sampler without it).")
  flags.DEFINE_string("note", "", "A sentence under the table (what the arms' commands were).")
  flags.DEFINE_bool("write", True, "Write BENCHMARKS.md's section.")


def load(arms: List[str]) -> List[Tuple[str, Dict]]:
  out = []
  for arm in arms:
    label, _, path = arm.partition("=")
    with open(path, encoding="utf-8") as f:
      out.append((label, json.load(f)["results"]))
  return out


def rows(arms: List[Tuple[str, Dict]], random_from: Dict[str, str]) -> List[str]:
  """One table row per (arm, sampler): the last round's numbers, seed by seed where the arm has several."""
  by_label = dict(arms)
  lines = []
  for label, results in arms:
    for seed in sorted(results):
      curves = results[seed]
      random_curves = curves if "random" in curves else by_label[random_from[label]].get(seed, {})
      rnd = random_curves["random"][-1]
      for method, curve in curves.items():
        if method == "random":
          continue
        last = curve[-1]
        lines.append(
            f"| {label} | {seed} | `{method}` | {last['labels'] - curve[0]['labels']:,} | {rnd['total']:.2f} | "
            f"{last['total']:.2f} | {last['total'] - rnd['total']:+.2f} | {rnd['total_at_0.5']:.2f} | "
            f"{last['total_at_0.5'] - rnd['total_at_0.5']:+.2f} | {rnd['rare_f1']:.3f} | "
            f"{last['rare_f1'] - rnd['rare_f1']:+.3f} | {last['rare_f1_at_0.5'] - rnd['rare_f1_at_0.5']:+.3f} |")
  return lines


def paired(arms: List[Tuple[str, Dict]], pairs: List[str]) -> List[str]:
  """A line per LABEL=OTHER pair and sampler: LABEL's last-round Total (tuned, 0.5) minus OTHER's, by seed."""
  by_label, lines = dict(arms), []
  for pair in pairs:
    label, other = pair.split("=", 1)
    for method in next(iter(by_label[label].values())):
      seeds = [s for s in sorted(by_label[label]) if method in by_label[other].get(s, {})]
      tuned = [by_label[label][s][method][-1]["total"] - by_label[other][s][method][-1]["total"] for s in seeds]
      half = [by_label[label][s][method][-1]["total_at_0.5"] - by_label[other][s][method][-1]["total_at_0.5"]
              for s in seeds]
      lines.append(f"- {label} - {other}, `{method}`, seeds {', '.join(seeds)}: Total "
                   f"{', '.join(f'{d:+.2f}' for d in tuned)} (tuned), {', '.join(f'{d:+.2f}' for d in half)} (0.5).")
  return lines


def main(argv):
  del argv
  f = flags.FLAGS
  arms = load(f.arms)
  random_from = dict(pair.split("=", 1) for pair in f.random_from)
  text = "\n".join([
      "Validation after the last round (each arm's own random choice, same seed and start set; tuned: the "
      "thresholds tuned on tune, as the export decides; 0.5: every head at 0.5).", "",
      "| arm | seed | sampler | acquired | random Total (tuned) | sampler Total | - random | random Total @0.5 | "
      "- random @0.5 | random rare F1 | - random rare F1 | - random rare F1 @0.5 |",
      "| --- |" + " --- |" * 11, *rows(arms, random_from), "", *paired(arms, f.pairs), "", f.note])
  print(text)
  if f.write:
    common.write_section("active_ablation", "Learning from operators: the ablation", text)


if __name__ == "__main__":
  define_flags()
  app.run(main)
