"""Quality on held-out messages: the article's setup, the linear baseline, and backbones.

  python bench/quality.py [--data=../shared/data] [--out=/tmp/disaster_tf_quality]

Trains, one after the other on the shared data, the reference article's setup
(configs/seed_article.flags), the linear baseline (configs/linear.flags), and
each candidate backbone for the default, then writes to BENCHMARKS.md: the
summary scores at 0.5 and at tuned thresholds, the F1 of the rare categories,
and the two targets (default vs. article on Total, default vs. linear on mean
positive-class F1, both tuned, validation split). Every run uses the same id
split: train 75%, tune 10% (best epoch, thresholds), validation 15% (reported).
"""

import os
import sys

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (bench/common.py)

DEFAULT = "configs/disaster_response.flags"
# The default (multi_cnn, 128 wide) and the other backbones and settings it was chosen against.
RUNS = (
    ("article", "configs/seed_article.flags", []),
    ("linear", "configs/linear.flags", []),
    ("default", DEFAULT, []),
    ("cnn_rnn", DEFAULT, ["--model=cnn_rnn", "--embedding_dim=64", "--conv_filters=64"]),
    ("bigru", DEFAULT, ["--model=bigru", "--embedding_dim=64"]),
    ("multi_cnn 64", DEFAULT, ["--conv_filters=64", "--embedding_dim=64"]),
    ("default, effective_number", DEFAULT, ["--class_weight=effective_number"]),
    ("default, dropout 0.5", DEFAULT, ["--dropout=0.5"]),
)
RARE = ("offer", "security", "tools", "shops", "fire", "clothing", "missing_people", "hospitals", "aid_centers",
        "electricity", "money", "cold")


def define_flags():
  flags.DEFINE_string("data", "../shared/data", "Data to train on.")
  flags.DEFINE_string("out", "/tmp/disaster_tf_quality", "Parent of the runs' model dirs (emptied first).")
  flags.DEFINE_list("only", [], "Run only these names (default: all).")


def rare_table(rows) -> str:
  head = "| category | validation support | " + " | ".join(f"{n} @0.5 | {n} tuned" for n, _, _ in rows) + " |"
  lines = [head, "| --- | --- | " + " | ".join("--- | ---" for _ in rows) + " |"]
  for c in RARE:
    support = rows[0][1]["final"]["categories"][c]["support"]
    cells = " | ".join(f"{b['final']['at_0.5']['categories'][c]['f1']:.2f} | {b['final']['categories'][c]['f1']:.2f}"
                       for _, b, _ in rows)
    lines.append(f"| {c} | {support} | {cells} |")
  return "\n".join(lines)


def targets(rows) -> str:
  by_name = {n: b["final"] for n, b, _ in rows}
  if not {"default", "article", "linear"} <= set(by_name):
    return ""
  d, a, l = by_name["default"], by_name["article"], by_name["linear"]
  total_gain = d["total"] - a["total"]
  f1_gain = d["mean_positive_f1"] - l["mean_positive_f1"]
  return (f"Targets (validation split, tuned thresholds): default - article Total = {total_gain:+.2f} "
          f"(target >= +3: {'met' if total_gain >= 3 else 'NOT met'}); default - linear mean positive F1 = "
          f"{f1_gain:+.3f} (target >= +0.03: {'met' if f1_gain >= 0.03 else 'NOT met'}).")


def main(argv):
  del argv
  f = flags.FLAGS
  rows = []
  for name, flagfile, extra in RUNS:
    if f.only and name not in f.only:
      continue
    body, wall = common.run_train(name, flagfile, extra, f.data, f.out)
    rows.append((name, body, wall))
  text = "\n\n".join(x for x in (
      "Runs: " + "; ".join(f"`{n}` = `{ff}{(' ' + ' '.join(e)) if e else ''}`" for n, ff, e in RUNS
                           if not f.only or n in f.only),
      common.summary_table(rows), targets(rows),
      "F1 of the positive class of rare categories on the validation split:", rare_table(rows)) if x)
  print(text)
  common.write_section("quality", "Quality on held-out messages", text)


if __name__ == "__main__":
  define_flags()
  app.run(main)
