"""Trains the disaster-response classifier.

  disaster-train --flagfile=disaster_response --model_dir=runs/default
  python train.py --flagfile=configs/disaster_response.flags --model_dir=runs/trial --epochs=1 --linear_epochs=1

The log reads as the run's course: its phases first (the default fits its
linear member for 30 epochs, then trains the CNN for up to 10), then each
epoch with the time left, and why the epochs stopped; the second example is
a trial run of one epoch each.

Shipped flagfiles, by name or path (nine): disaster_response (the default
model, flag for flag english), multilingual (messages as sent, too), routed
(the English-only and the multilingual model in one export, routed by the
language gate), pretrained (the default with a fine-tuned BERT encoder as its
third member, in one export), encoder (that encoder alone), seed_article (the
reference article's setup), multi_cnn (the CNN alone), linear (the linear
baseline).
Later flags override a --flagfile. Flags are read here once and passed down as
a Config; the library never reads FLAGS. Flag defaults are the dataclass
defaults in disaster_tf/config.py, where each carries its reason.
"""

import dataclasses
import functools
import sys

from absl import app
from absl import flags
from absl import logging

from disaster_tf import cli
from disaster_tf import config as config_lib
from disaster_tf import flagfiles

FLAGS = flags.FLAGS


def define_flags(fv: flags.FlagValues = FLAGS) -> None:
  """Defines train.py's flags in `fv`; each help says why its default is what it is.

  Called by `run()` only, for FLAGS (export.py defines --model_dir too);
  benchmarks and tests parse flagfiles into a FlagValues of their own.
  """
  _define_data_flags(fv)
  _define_training_flags(fv)
  _define_model_flags(fv)
  _define_tfidf_flags(fv)


def _definers(fv: flags.FlagValues):
  """absl's DEFINE_string, _integer, _float and _enum, bound to `fv`."""
  return (functools.partial(f, flag_values=fv) for f in (
      flags.DEFINE_string, flags.DEFINE_integer, flags.DEFINE_float, flags.DEFINE_enum))


def _define_data_flags(fv: flags.FlagValues) -> None:
  """Where the run reads and writes, how the data is split, and what the thresholds are tuned for."""
  c, t = config_lib, config_lib.TrainConfig()
  string, integer, real, enum = _definers(fv)
  string("model_dir", None, "Directory for checkpoints, vocabulary, summaries and metrics.json; the same "
         "directory again resumes the run.", required=True)
  string("data", t.data, "A two-file data directory or one wide-format CSV file; the default is the shared "
         "data beside the checkout, relative to the working directory.")
  string("decisions", t.decisions, "Operators' decisions (the triage page's --db file): each overrides the "
         "labels of its message in --data (a two-file directory), or adds the message; decided messages keep "
         "their id's side of the split.")
  flags.DEFINE_list("text_fields", list(t.text_fields), "message, or message,original: also train on each "
                    "message as it was sent (mostly Haitian Creole), a second example with the same labels and "
                    "always on its translation's side of the split.", flag_values=fv)
  integer("original_copies", t.original_copies, "With --text_fields=message,original: read each training "
          "original this many times an epoch (its translation once), so that the language with fewer examples "
          "weighs more.", lower_bound=1)
  flags.DEFINE_bool("pairs", t.pairs, "With --text_fields=message,original: read each training message and its "
                    "original side by side in one step, the original's loss weighing --original_copies (no copies "
                    "then); needed by --consistency.", flag_values=fv)
  real("consistency", t.consistency, "With --pairs: the weight of a term pulling each original's predicted "
       "probabilities towards its translation's (KL divergence; the translation's side is the teacher and is "
       "not moved by it).")
  flags.DEFINE_bool("lexicon", config_lib.ModelConfig().lexicon, "With --text_fields=message,original: pair "
                    "the originals' words with English words on the training translations (dlo -> water) and "
                    "append the partners to every text, in the graph: Creole messages then share what the "
                    "English ones taught the model.", flag_values=fv)
  flags.DEFINE_bool("lexicon_variants", config_lib.ModelConfig().lexicon_variants, "With --lexicon: a word of "
                    "the originals too rare to pair, a letter from a paired word (tranblemam, tranbleman), gets "
                    "that word's partner too: SMS spell a word many ways.", flag_values=fv)
  # The split.
  real("validation_fraction", t.validation_fraction, "Share of ids held out for validation, which is reported "
       "and chooses nothing; 0.15 gives enough positives to score most categories.")
  real("tune_fraction", t.tune_fraction, "Share of ids that pick the best epoch and tune the thresholds, so "
       "that validation chooses nothing (0: select on validation, thresholds stay 0.5).")
  enum("threshold_objective", t.threshold_objective, c.THRESHOLD_OBJECTIVES, "What each tuned threshold "
       "maximises on the tune split: positive_f1 (the positive class), or macro_f1 (both classes' mean, which "
       "the Total sums; may predict none). bench/thresholds.py compares them on the same models.")
  integer("min_tune_positives", t.min_tune_positives, "Categories with fewer tune positives keep threshold 0.5: "
          "a threshold fit to a handful of examples does not carry over.")
  string("split_seed", t.split_seed, "Salt of the id hash that assigns the split; another salt draws another "
         "split.")


def _define_training_flags(fv: flags.FlagValues) -> None:
  """Optimisation, devices and speed."""
  c, t = config_lib, config_lib.TrainConfig()
  string, integer, real, enum = _definers(fv)
  del string
  integer("epochs", t.epochs, "Maximum number of epochs; early stopping (--patience) usually ends the run sooner.")
  integer("seed", t.seed, "Seed of initialisation and shuffling; it fixes each epoch's order, so a stopped "
          "run resumes exactly.")
  integer("batch_size", t.batch_size, "Global batch size, split over replicas; small batches generalised "
          "better here than the article's 512.")
  enum("optimizer", t.optimizer, c.OPTIMIZERS, "Optimizer; Adam converges in a few epochs, the article's "
       "Adadelta needs ~40. adam runs Keras' Adam in TensorFlow's fused kernel; keras_adam is the same update "
       "unfused (slower: bench/speed.py).")
  real("learning_rate", t.learning_rate, "Learning rate (Adam's default); on resume the flag replaces the "
       "checkpoint's rate.")
  enum("lr_schedule", t.lr_schedule, c.LR_SCHEDULES, "constant, or cosine: the rate decays to 0 over --epochs, "
       "which lets Adam converge on the convex --model=linear.")
  enum("class_weight", t.class_weight, c.CLASS_WEIGHTS, "Class weights, applied as per-head sample weights; "
       "sqrt_balanced lifts rare labels without the instability of balanced.")
  real("class_weight_cap", t.class_weight_cap, "Upper bound on a computed class weight, so that a label seen "
       "a handful of times cannot dominate the loss.")
  flags.DEFINE_list("loss_weights", [], "Per-head loss weights as category=weight, e.g. related=0.5,offer=2; "
                    "heads not named weigh 1.", flag_values=fv)
  integer("linear_epochs", t.linear_epochs, "--model=ensemble: fit the linear member first on its own for this "
          "many epochs (in <model_dir>/linear), then hold it fixed while the network trains; 0: both together.",
          lower_bound=0)
  integer("patience", t.patience, "Epochs without improvement on the selection split before stopping "
          "(0: never).")
  enum("select_metric", t.select_metric, c.SELECT_METRICS, "Score on the tune split (validation with "
       "--tune_fraction=0) that picks the best epoch; the article's Total by default.")
  enum("strategy", t.strategy, c.STRATEGIES, "tf.distribute strategy: default (one device), one_device, "
       "mirrored (every local GPU, else every logical CPU), multi_worker (TF_CONFIG; see BUILD.md).")
  integer("shuffle_buffer", t.shuffle_buffer, "Examples held for shuffling (~0.7 KB each at sequence length "
          "64): holds the shared training split; a larger one is read in blocks of this size, mixed at "
          "random (see data.batched).")
  integer("log_every", t.log_every, "Training steps between TensorBoard loss scalars: fine enough for a curve, "
          "few enough writes to stay out of the step time.")
  integer("steps_per_execution", t.steps_per_execution, "Training steps per compiled call: fewer Python round "
          "trips (+4-5% examples/s at 16 over 1, bench/speed.py).")
  enum("precision", t.precision, c.PRECISIONS, "What the backbone computes in: float32, mixed_bfloat16, "
       "mixed_float16 (with loss scaling), or auto (bfloat16 where the CPU or GPU has it natively); variables, "
       "heads, losses and probabilities stay float32. Fixed at a run's first epoch.")
  flags.DEFINE_bool("refit", t.refit, "After the run, retrain from scratch on train + tune for the epoch count "
                    "it chose, keep its thresholds, report on validation; export.py then exports that (in "
                    "<model_dir>/refit). Off by default: +0.10 Total over 3 seeds, within their spread "
                    "(BENCHMARKS.md).", flag_values=fv)
  flags.DEFINE_bool("language_gate", t.language_gate, "Fit the language gate in a phase of its own (the training "
                    "split's messages against their originals, ~25 s): every export then answers per message "
                    "whether it is English (`language`, `language_score`), and the page flags what an English-only "
                    "model cannot read.", flag_values=fv)
  flags.DEFINE_bool("route_english", t.route_english, "With --text_fields=message,original: train the English-only "
                    "model too (these flags reading `message` alone, in <model_dir>/english, first); the export "
                    "then routes each message by the language gate: English to it, the rest to this model "
                    "(configs/routed.flags).", flag_values=fv)
  flags.DEFINE_bool("jit_compile", t.jit_compile, "XLA-compile the forward and backward pass; it was 25-37% "
                    "slower on CPU here (bench/speed.py), so try it on a GPU.", flag_values=fv)


def _define_model_flags(fv: flags.FlagValues) -> None:
  """The model's shape (ModelConfig), and the progress display."""
  c, m = config_lib, config_lib.ModelConfig()
  _, integer, real, enum = _definers(fv)
  enum("model", m.architecture, c.ARCHITECTURES, "Backbone: cnn_rnn, bigru, multi_cnn, linear (TF-IDF "
       "logistic regression), ensemble (multi_cnn and linear, probabilities averaged), wide_deep (both into "
       "the same heads) or encoder (a pretrained BERT, --pretrained_encoder); see ModelConfig in "
       "disaster_tf/config.py.")
  integer("max_tokens", m.max_tokens, "Vocabulary size, padding and OOV included; the article's 20000 covers "
          "the words seen at least 3 times in training.")
  integer("sequence_length", m.sequence_length, "Tokens kept per message: 64 keeps ~99% of messages whole "
          "once stop words are gone.")
  integer("embedding_dim", m.embedding_dim, "Embedding width: 128 beat 64 on rare-label F1, and the CNN has "
          "few other weights.")
  integer("conv_filters", m.conv_filters, "Conv1D filters (per width, 2 to 5, for multi_cnn): 512 n-gram "
          "detectors in all by default.")
  integer("conv_kernel_size", m.conv_kernel_size, "cnn_rnn's Conv1D window: the article's 5, about one short "
          "phrase.")
  integer("pool_size", m.pool_size, "cnn_rnn's max-pooling window: 2 halves the sequence for the RNN without "
          "losing short messages.")
  enum("rnn", m.rnn, c.RNNS, "cnn_rnn's recurrent layer: the article's lstm; gru is ~25% cheaper.")
  integer("rnn_units", m.rnn_units, "Units of the recurrent layer (cnn_rnn, bigru): enough for 36 heads on 20k "
          "messages.")
  real("dropout", m.dropout, "Dropout rate before the heads: the article's 0.3; 0.5 did no better.")
  fv_string = functools.partial(flags.DEFINE_string, flag_values=fv)
  fv_string("pretrained_vectors", m.pretrained_vectors, "Word vectors that start the sequence model's embedding "
            "(GloVe, word2vec text or fastText .vec; read once, at a new run's start, never downloaded), in its "
            "first columns: --embedding_dim is at least their width. Empty: the embedding is learnt from scratch.")
  flags.DEFINE_bool("freeze_vectors", m.freeze_vectors, "With --pretrained_vectors: keep the embedding fixed "
                    "while training.", flag_values=fv)
  fv_string("pretrained_encoder", m.pretrained_encoder, "--model=encoder: a BERT checkpoint directory "
            "(config.json, vocab.txt, model.safetensors), fine-tuned under the heads with its own WordPiece "
            "tokenizer in the graph; read at a new run's start, never downloaded (configs/encoder.flags).")
  fv_string("encoder_member", config_lib.TrainConfig().encoder_member, "--model=ensemble: a BERT checkpoint "
            "directory (as --pretrained_encoder) fine-tuned as a third member after the network, in "
            "<model_dir>/encoder; the export serves the three members' blend, its thresholds tuned on tune "
            "(configs/pretrained.flags).")
  integer("encoder_epochs", config_lib.TrainConfig().encoder_epochs, "With --encoder_member: its fine-tune's passes "
          "over the training split (BERT's paper: 2 to 4; each takes minutes on a CPU).", lower_bound=1)
  integer("verbose", None, "1: a progress bar per epoch; 0: log lines only. Default: 1 on a terminal, 0 "
          "otherwise (a bar in a log file is noise).")


def _define_tfidf_flags(fv: flags.FlagValues) -> None:
  """The TF-IDF n-gram inputs of --model=linear, ensemble and wide_deep (features.py)."""
  m = config_lib.ModelConfig()
  _, integer, real, _ = _definers(fv)
  integer("ngrams", m.ngrams, "Word n-grams up to this length; uni+bigrams is the classic strong baseline.")
  integer("min_df", m.min_df, "Keep an n-gram seen in at least this many training messages (scikit-learn's "
          "min_df): one message's n-gram is noise to a linear model.")
  integer("max_ngrams", m.max_ngrams, "At most this many n-grams per TF-IDF input (the most frequent): a bound "
          "on memory, above what --min_df leaves on the shared data.")
  flags.DEFINE_list("char_ngrams", list(map(str, m.char_ngrams)), "lo,hi: character lo- to hi-grams within "
                    "words as a second TF-IDF input, for misspellings and SMS spelling (+~0.3 Total); empty: off.",
                    flag_values=fv)
  real("linear_l2", m.linear_l2, "L2 penalty on the linear weights (times their squared sum): scikit-learn's C=4 "
       "on ~17.9k messages; 0 lets the linear model overfit in a few epochs.")
  real("linear_lr_multiplier", m.linear_lr_multiplier, "The linear weights learn this many times faster than "
       "--learning_rate (the CNN's): the convex TF-IDF model converges at ~30x the CNN's Adam rate.")


def config_from_flags(fv: flags.FlagValues = FLAGS):
  """Builds the run's Config from the parsed flags in `fv`."""
  values = fv.flag_values_dict()
  values["architecture"] = values["model"]  # the flag users know as --model
  def pick(cls):
    return {f.name: values[f.name] for f in dataclasses.fields(cls) if f.name in values}
  train_values = pick(config_lib.TrainConfig)
  pairs = []
  for item in fv.loss_weights:
    name, _, weight = item.partition("=")
    try:
      pairs.append((name.strip(), float(weight)))
    except ValueError:  # also catches a missing "=" (the weight is then "")
      raise app.UsageError(f"--loss_weights: {item!r} is not category=weight") from None
  train_values["loss_weights"] = tuple(pairs)
  train_values["text_fields"] = tuple(fv.text_fields)
  model_values = pick(config_lib.ModelConfig)
  try:
    model_values["char_ngrams"] = tuple(int(n) for n in fv.char_ngrams)
  except ValueError:
    raise app.UsageError(f"--char_ngrams={','.join(fv.char_ngrams)}: expected two integers lo,hi (e.g. 2,5), or "
                         "nothing") from None
  try:
    return config_lib.Config(model=config_lib.ModelConfig(**model_values),
                             train=config_lib.TrainConfig(**train_values))
  except ValueError as e:
    raise app.UsageError(str(e)) from None


def config_from_flagfile(path: str, *overrides: str):
  """The Config that `train.py --flagfile=path *overrides` trains, parsed in a FlagValues of its own.

  For benchmarks and tests: one flag -> Config mapping, with no global flags defined.
  `path` is a file or a shipped flagfile's name.
  """
  fv = flags.FlagValues()
  define_flags(fv)
  fv(flagfiles.expand(["train.py", f"--flagfile={path}", "--model_dir=unused", *overrides]))
  return config_from_flags(fv)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  config = config_from_flags()
  cli.import_tensorflow()
  from disaster_tf.train import loop  # pylint: disable=import-outside-toplevel
  from disaster_tf.train import stops  # pylint: disable=import-outside-toplevel
  verbose = FLAGS.verbose if FLAGS.verbose is not None else int(sys.stdout.isatty())
  try:
    final = loop.train_and_evaluate(config, FLAGS.model_dir, flags_text=FLAGS.flags_into_string(), verbose=verbose)
  except stops.TrainingInterrupted as e:
    logging.warning("%s", e)
    print(f"{cli.prog()}: {e}", file=sys.stderr)
    sys.exit(130)  # the shell's code for a run stopped by a signal
  for report in (final, final.refit):
    if report is not None:
      print_report(report)


def print_report(final) -> None:
  """Prints a run's `records.FinalReport`: the per-category table, the scores at 0.5, and per language."""
  from disaster_tf.model import metrics  # pylint: disable=import-outside-toplevel
  which = "last" if final.select_metric == "last" else "best"
  print(metrics.format_table(final.scores, title=f"validation split, {which} epoch {final.best_epoch} "
                                                 f"({final.checkpoint}), thresholds {final.threshold_source}:"))
  half = final.at_half
  print(f"at threshold 0.5: Total {half.total:.2f} | mean positive-class F1 {half.mean_positive_f1:.3f} | "
        f"micro-F1 {half.micro_f1:.3f}", flush=True)
  for name, scores in final.languages.items():
    print(f"validation messages that have an original, {name + 's':12}: {scores.examples} | Total "
          f"{scores.total:.2f} | mean positive-class F1 {scores.mean_positive_f1:.3f} | micro-F1 "
          f"{scores.micro_f1:.3f}", flush=True)


def run() -> None:
  """`disaster-train` and `python train.py`."""
  cli.run(define_flags, main, __doc__)


if __name__ == "__main__":
  run()
