"""The `disaster-predict` console script, runnable from a checkout.

Flags, help and code: disaster_tf/cli/predict.py.
"""

from disaster_tf.cli import predict

if __name__ == "__main__":
  predict.run()
