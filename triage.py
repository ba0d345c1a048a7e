"""The `disaster-triage` console script, runnable from a checkout.

Flags and code: disaster_tf/cli/triage.py; --help prints its usage and flags.
"""

from disaster_tf.cli import triage

if __name__ == "__main__":
  triage.run()
