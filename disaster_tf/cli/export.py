"""Exports a trained model as a versioned, text-in SavedModel for TF Serving.

  disaster-export --model_dir=runs/default --export_base=models/disaster
  python export.py --model_dir=runs/default --export_base=models/disaster

Writes <export_base>/<version>/ (saved_model.pb, variables/, assets.extra/)
atomically: built in a hidden temporary directory and renamed into place. An
existing version is never overwritten. The model is rebuilt from the model
dir's config.json, vocabularies and checkpoint alone.

  disaster-export --model_dir=runs/default --prune

removes from a finished model dir what only training reads (its resumable
checkpoints and the linear member's own run), keeping it exportable.
"""


from absl import app
from absl import flags

from disaster_tf import cli

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines export.py's flags (called under __main__ only: train.py defines --model_dir too)."""
  flags.DEFINE_string("model_dir", None, "A model dir written by train.py.", required=True)
  flags.DEFINE_string("export_base", None, "TF Serving's model base path; versions go below it (required, unless "
                      "--prune).")
  flags.DEFINE_string("checkpoint", "best", '"best" (the epoch reported), "latest", or a checkpoint prefix.')
  flags.DEFINE_integer("version", None, "Version number (default: one more than the highest present).",
                       lower_bound=0)
  flags.DEFINE_bool("warmup", True, "Write TF Serving warmup requests (needs tensorflow-serving-api).")
  flags.DEFINE_enum("precision", "float32", ("float32", "bfloat16"), "What the served graph computes in: "
                    "float32 (any TF Serving host), or bfloat16 (hosts with native bfloat16: AMX or "
                    "AVX512-BF16 CPUs, Ampere+ GPUs); the outputs are float32 either way.")
  flags.DEFINE_bool("prune", False, "Instead of exporting: remove from a finished --model_dir what only training "
                    "reads (checkpoints/ to resume, linear/ the linear member's own run: most of its size), keeping "
                    "it exportable; train.py then refuses it (disaster_tf/train/prune.py).")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if FLAGS.prune:
    if FLAGS.export_base:
      raise app.UsageError("--prune removes what export does not need; export first, then prune (two commands)")
    cli.import_tensorflow()
    from disaster_tf.train import prune  # pylint: disable=import-outside-toplevel
    print(f"{FLAGS.model_dir}: {prune.prune(FLAGS.model_dir).summary()}")
    return
  if not FLAGS.export_base:
    raise app.UsageError("--export_base is required: TF Serving's model base path (or pass --prune)")
  cli.import_tensorflow()
  from disaster_tf.serve import savedmodel  # pylint: disable=import-outside-toplevel
  # OSError (a missing model dir, an existing version, an unwritable base) and ValueError end in cli.run.
  print(savedmodel.export(FLAGS.model_dir, FLAGS.export_base, checkpoint=FLAGS.checkpoint, version=FLAGS.version,
                       warmup=FLAGS.warmup, precision=FLAGS.precision))


def run() -> None:
  """`disaster-export` and `python export.py`."""
  cli.run(define_flags, main, __doc__)


if __name__ == "__main__":
  run()
