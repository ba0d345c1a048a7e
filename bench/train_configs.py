"""Trains the default configuration and the reference article's setup on the shared data.

  python bench/train_configs.py [--data=../shared/data] [--out=/tmp/disaster_tf_bench] [--epochs=N]

Runs `train.py` once per flagfile, one after the other (the machine's cores are
shared otherwise), then prints a Markdown table built from each run's
metrics.json and writes it into BENCHMARKS.md: validation Total, mean positive-class F1, micro-F1, best epoch,
epochs run and seconds per epoch. Nothing in the table is typed by hand.
"""

import json
import os
import subprocess
import sys
import time

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report  # noqa: E402  (bench/report.py)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNS = (("default", "configs/disaster_response.flags"), ("seed_article", "configs/seed_article.flags"))


def define_flags():
  flags.DEFINE_string("data", "../shared/data", "Data to train on.")
  flags.DEFINE_string("out", "/tmp/disaster_tf_bench", "Parent of the runs' model dirs (emptied first).")
  flags.DEFINE_integer("epochs", None, "Override every run's --epochs (None: the flagfile's).")


def table(rows):
  lines = ["| run | validation Total | mean positive F1 | micro-F1 | best epoch | epochs run | s / epoch (train) | wall s |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
  for name, body, wall in rows:
    final, epochs = body["final"], body["epochs"]
    per_epoch = sum(e["train_seconds"] for e in epochs) / len(epochs)
    lines.append(f"| {name} | {final['total']:.2f} | {final['mean_positive_f1']:.3f} | {final['micro_f1']:.3f} | "
                 f"{final['best_epoch']} | {len(epochs)} | {per_epoch:.1f} | {wall:.0f} |")
  return "\n".join(lines)


def main(argv):
  del argv
  flags_ = flags.FLAGS
  rows = []
  for name, flagfile in RUNS:
    model_dir = os.path.join(flags_.out, name)
    subprocess.run(["rm", "-rf", model_dir], check=True)
    cmd = [sys.executable, "train.py", f"--flagfile={flagfile}", f"--data={flags_.data}",
           f"--model_dir={model_dir}", "--verbose=0"]
    if flags_.epochs:
      cmd.append(f"--epochs={flags_.epochs}")
    print("$", " ".join(cmd[1:]), flush=True)
    start = time.time()
    subprocess.run(cmd, cwd=ROOT, check=True)
    with open(os.path.join(model_dir, "metrics.json")) as f:
      rows.append((name, json.load(f), time.time() - start))
  body = (table(rows) + "\n\nValidation split: 15% of ids by hash (the same for both runs). Total is the "
          "article's score (sum over the 36 outputs of macro-F1, max 36), for the best epoch; "
          "s / epoch is training time only (validation excluded).")
  print(body)
  report.write_section("train_configs", "Default configuration vs. the reference article's setup", body)


if __name__ == "__main__":
  define_flags()
  app.run(main)
