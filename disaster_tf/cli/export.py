"""Exports a trained model as a versioned, text-in SavedModel for TF Serving.

  disaster-export --model_dir=runs/default --export_base=models/disaster
  python export.py --model_dir=runs/default --export_base=models/disaster

Writes <export_base>/<version>/ (saved_model.pb, variables/, assets.extra/)
atomically: built in a hidden temporary directory and renamed into place. An
existing version is never overwritten. The model is rebuilt from the model
dir's config.json, vocabularies and checkpoint alone.
"""


from absl import app
from absl import flags

from disaster_tf import cli

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines export.py's flags (called under __main__ only: train.py defines --model_dir too)."""
  flags.DEFINE_string("model_dir", None, "A model dir written by train.py.", required=True)
  flags.DEFINE_string("export_base", None, "TF Serving's model base path; versions go below it.", required=True)
  flags.DEFINE_string("checkpoint", "best", '"best" (the epoch reported), "latest", or a checkpoint prefix.')
  flags.DEFINE_integer("version", None, "Version number (default: one more than the highest present).",
                       lower_bound=0)
  flags.DEFINE_bool("warmup", True, "Write TF Serving warmup requests (needs tensorflow-serving-api).")
  flags.DEFINE_enum("precision", "float32", ("float32", "bfloat16"), "What the served graph computes in: "
                    "float32 (any TF Serving host), or bfloat16 (hosts with native bfloat16: AMX or "
                    "AVX512-BF16 CPUs, Ampere+ GPUs); the outputs are float32 either way.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  from disaster_tf import serving  # pylint: disable=import-outside-toplevel
  # OSError (a missing model dir, an existing version, an unwritable base) and ValueError end in cli.run.
  print(serving.export(FLAGS.model_dir, FLAGS.export_base, checkpoint=FLAGS.checkpoint, version=FLAGS.version,
                       warmup=FLAGS.warmup, precision=FLAGS.precision))


def run() -> None:
  """`disaster-export` and `python export.py`."""
  cli.run(define_flags, main, __doc__)


if __name__ == "__main__":
  run()
