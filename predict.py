"""The `disaster-predict` console script, runnable from a checkout.

Flags and code: disaster_tf/cli/predict.py; --help prints its usage and flags.
"""

from disaster_tf.cli import predict

if __name__ == "__main__":
  predict.run()
