"""Scores an export on labelled data: the `disaster-evaluate` console script, runnable from a checkout.

  python evaluate.py --export_dir=models/disaster --data=../shared/data --split=validation

Flags and code: disaster_tf/cli/evaluate.py; --help prints its usage and flags.
"""

from disaster_tf.cli import evaluate

if __name__ == "__main__":
  evaluate.run()
