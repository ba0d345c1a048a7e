"""Trains the default configuration and the reference article's setup on the shared data.

  python bench/train_configs.py [--data=../shared/data] [--out=/tmp/disaster_tf_bench] [--epochs=N]

Runs `train.py` once per flagfile, one after the other (the machine's cores are
shared otherwise), then prints a Markdown table built from each run's
metrics.json and writes it into BENCHMARKS.md: validation Total, mean positive-class F1, micro-F1, best epoch,
epochs run and seconds per epoch. Nothing in the table is typed by hand.
"""

import os
import sys

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (bench/common.py)

RUNS = (("default", "configs/disaster_response.flags"), ("seed_article", "configs/seed_article.flags"))


def define_flags():
  flags.DEFINE_string("data", "../shared/data", "Data to train on.")
  flags.DEFINE_string("out", "/tmp/disaster_tf_bench", "Parent of the runs' model dirs (emptied first).")
  flags.DEFINE_integer("epochs", None, "Override every run's --epochs (None: the flagfile's).")


def main(argv):
  del argv
  flags_ = flags.FLAGS
  rows = []
  for name, flagfile in RUNS:
    extra = [f"--epochs={flags_.epochs}"] if flags_.epochs else []
    body, wall = common.run_train(name, flagfile, extra, flags_.data, flags_.out)
    rows.append((name, body, wall))
  body = (common.summary_table(rows) + "\n\nValidation split: 15% of ids by hash, the same for every run; "
          "the best epoch is chosen and thresholds are tuned on a separate 10% tune split. Total is the "
          "article's score (sum over the 36 outputs of macro-F1, max 36); s / epoch is training time only.")
  print(body)
  common.write_section("train_configs", "Default configuration vs. the reference article's setup", body)


if __name__ == "__main__":
  define_flags()
  app.run(main)
