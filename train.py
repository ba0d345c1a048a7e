"""Trains the disaster-response classifier.

  python train.py --flagfile=configs/disaster_response.flags --model_dir=/tmp/run1 --epochs=3

Flags are read here once and passed down as a Config; the library never reads
FLAGS. Flag defaults are the dataclass defaults in disaster_tf/config.py, where
each carries its reason. Later flags override a --flagfile.
"""

import dataclasses
import sys

from absl import app
from absl import flags
from absl import logging

FLAGS = flags.FLAGS


def define_flags(fv: flags.FlagValues = FLAGS) -> None:
  """Defines train.py's flags in `fv`.

  Called under __main__ only, for FLAGS (export.py defines --model_dir too);
  benchmarks and tests parse flagfiles into a FlagValues of their own.
  """
  from disaster_tf import config as c  # pylint: disable=import-outside-toplevel
  m, t = c.ModelConfig(), c.TrainConfig()
  flags.DEFINE_string("model_dir", None, "Directory for checkpoints, vocabulary, summaries, metrics.json.",
                      required=True, flag_values=fv)
  flags.DEFINE_string("data", t.data, "A two-file data directory or one wide-format CSV file.", flag_values=fv)
  flags.DEFINE_integer("epochs", t.epochs, "Maximum number of epochs.", flag_values=fv)
  flags.DEFINE_float("validation_fraction", t.validation_fraction, "Share of ids held out for validation.",
                     flag_values=fv)
  flags.DEFINE_float("tune_fraction", t.tune_fraction,
                     "Share of ids that pick the best epoch and tune thresholds (0: select on validation).",
                     flag_values=fv)
  flags.DEFINE_integer("min_tune_positives", t.min_tune_positives,
                       "Categories with fewer tune positives keep threshold 0.5.", flag_values=fv)
  flags.DEFINE_string("split_seed", t.split_seed, "Salt of the id hash that assigns the split.", flag_values=fv)
  flags.DEFINE_integer("seed", t.seed, "Seed of initialisation and shuffling.", flag_values=fv)
  flags.DEFINE_integer("batch_size", t.batch_size, "Global batch size (split over replicas).", flag_values=fv)
  flags.DEFINE_enum("optimizer", t.optimizer, c.OPTIMIZERS, "Optimizer.", flag_values=fv)
  flags.DEFINE_float("learning_rate", t.learning_rate, "Learning rate.", flag_values=fv)
  flags.DEFINE_enum("class_weight", t.class_weight, c.CLASS_WEIGHTS, "Class weighting scheme.", flag_values=fv)
  flags.DEFINE_float("class_weight_cap", t.class_weight_cap, "Upper bound on computed class weights.", flag_values=fv)
  flags.DEFINE_list("loss_weights", [], "Per-head loss weights as category=weight, e.g. related=0.5,offer=2.",
                    flag_values=fv)
  flags.DEFINE_integer("patience", t.patience, "Epochs without improvement before stopping (0: never).", flag_values=fv)
  flags.DEFINE_enum("select_metric", t.select_metric, c.SELECT_METRICS, "Validation score that picks the best epoch.",
                    flag_values=fv)
  flags.DEFINE_enum("strategy", t.strategy, c.STRATEGIES, "tf.distribute strategy.", flag_values=fv)
  flags.DEFINE_integer("shuffle_buffer", t.shuffle_buffer,
                       "Examples held for shuffling (~0.7 KB each at sequence length 64); a larger training "
                       "split is read in blocks of this size, mixed at random (see data.batched).", flag_values=fv)
  flags.DEFINE_integer("log_every", t.log_every, "Steps between TensorBoard scalars.", flag_values=fv)
  flags.DEFINE_integer("steps_per_execution", t.steps_per_execution, "Training steps per compiled call.",
                       flag_values=fv)
  flags.DEFINE_bool("jit_compile", t.jit_compile, "XLA-compile the forward/backward pass.", flag_values=fv)
  flags.DEFINE_enum("model", m.architecture, c.ARCHITECTURES, "Backbone (see ModelConfig in disaster_tf/config.py).",
                    flag_values=fv)
  flags.DEFINE_integer("max_tokens", m.max_tokens, "Vocabulary size, padding and OOV included.", flag_values=fv)
  flags.DEFINE_integer("sequence_length", m.sequence_length, "Tokens kept per message.", flag_values=fv)
  flags.DEFINE_integer("embedding_dim", m.embedding_dim, "Embedding width.", flag_values=fv)
  flags.DEFINE_integer("conv_filters", m.conv_filters, "Conv1D filters.", flag_values=fv)
  flags.DEFINE_integer("conv_kernel_size", m.conv_kernel_size, "Conv1D window.", flag_values=fv)
  flags.DEFINE_integer("pool_size", m.pool_size, "Max-pooling window.", flag_values=fv)
  flags.DEFINE_enum("rnn", m.rnn, c.RNNS, "Recurrent layer.", flag_values=fv)
  flags.DEFINE_integer("rnn_units", m.rnn_units, "Recurrent units.", flag_values=fv)
  flags.DEFINE_float("dropout", m.dropout, "Dropout before the heads.", flag_values=fv)
  flags.DEFINE_integer("ngrams", m.ngrams, "--model=linear: n-grams up to this length.", flag_values=fv)
  flags.DEFINE_integer("verbose", None, "1: a progress bar per epoch; 0: log lines only. Default: 1 on a "
                       "terminal, 0 otherwise (a bar in a log file is noise).", flag_values=fv)


def config_from_flags(fv: flags.FlagValues = FLAGS):
  """Builds the run's Config from the parsed flags in `fv`."""
  from disaster_tf import config as c  # pylint: disable=import-outside-toplevel
  values = fv.flag_values_dict()
  values["architecture"] = values["model"]  # the flag users know as --model
  def pick(cls):
    return {f.name: values[f.name] for f in dataclasses.fields(cls) if f.name in values}
  train_values = pick(c.TrainConfig)
  pairs = []
  for item in fv.loss_weights:
    name, _, weight = item.partition("=")
    try:
      pairs.append((name.strip(), float(weight)))
    except ValueError:  # also catches a missing "=" (the weight is then "")
      raise app.UsageError(f"--loss_weights: {item!r} is not category=weight") from None
  train_values["loss_weights"] = tuple(pairs)
  try:
    return c.Config(model=c.ModelConfig(**pick(c.ModelConfig)), train=c.TrainConfig(**train_values))
  except ValueError as e:
    raise app.UsageError(str(e)) from None


def config_from_flagfile(path: str, *overrides: str):
  """The Config that `python train.py --flagfile=path *overrides` trains, parsed in a FlagValues of its own.

  For benchmarks and tests: one flag -> Config mapping, with no global flags defined.
  """
  fv = flags.FlagValues()
  define_flags(fv)
  fv(["train.py", f"--flagfile={path}", "--model_dir=unused", *overrides])
  return config_from_flags(fv)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  from disaster_tf import data, loop  # pylint: disable=import-outside-toplevel
  config = config_from_flags()
  try:
    verbose = FLAGS.verbose if FLAGS.verbose is not None else int(sys.stdout.isatty())
    loop.train_and_evaluate(config, FLAGS.model_dir, flags_text=FLAGS.flags_into_string(), verbose=verbose)
  except loop.TrainingInterrupted as e:
    logging.warning("%s", e)
    print(f"train.py: {e}", file=sys.stderr)
    sys.exit(130)  # the shell's code for a run stopped by a signal
  except (data.DataError, ValueError, FileNotFoundError, FloatingPointError) as e:
    logging.error("%s", e)
    sys.exit(f"train.py: {e}")


if __name__ == "__main__":
  define_flags()
  app.run(main)
