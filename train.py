"""Trains the disaster-response classifier: the `disaster-train` console script, runnable from a checkout.

  python train.py --flagfile=configs/disaster_response.flags --model_dir=runs/default

Flags and code: disaster_tf/cli/train.py; --help prints its usage and flags.
"""

from disaster_tf.cli import train

if __name__ == "__main__":
  train.run()
