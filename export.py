"""Exports a trained model for TF Serving: the `disaster-export` console script, runnable from a checkout.

  python export.py --model_dir=runs/default --export_base=models/disaster

Flags and code: disaster_tf/cli/export.py; --help prints its usage and flags.
"""

from disaster_tf.cli import export

if __name__ == "__main__":
  export.run()
