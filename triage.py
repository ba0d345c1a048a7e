"""The `disaster-triage` console script, runnable from a checkout.

Flags, help and code: disaster_tf/cli/triage.py.
"""

from disaster_tf.cli import triage

if __name__ == "__main__":
  triage.run()
