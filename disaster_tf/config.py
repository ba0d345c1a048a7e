"""Run configuration: frozen dataclasses saved to and loaded from JSON.

The defaults here are the project's default configuration; `train.py` takes its
flag defaults from these fields, so there is one place to change a default and
one line saying why. `configs/seed_article.flags` overrides them to reproduce
the reference article's setup.

Values derived from data (the vocabulary size, the class weights) are never
stored in a config: they are computed from the run's artefacts and passed to
the functions that need them.
"""

import dataclasses
import json
import math
import os
from typing import Any, Dict, Tuple

from disaster_tf import labels

CONFIG_FILE = "config.json"  # written by training, read by export / evaluate

ARCHITECTURES = ("cnn_rnn", "bigru", "multi_cnn", "linear", "ensemble", "wide_deep", "encoder")
TFIDF_ARCHITECTURES = ("linear", "ensemble", "wide_deep")  # those reading TF-IDF n-grams (features.py)
# "adam" is Keras' Adam in TF's fused kernel (optimizers.FusedAdam); "keras_adam" the same update unfused,
# for comparison (bench/speed.py).
OPTIMIZERS = ("adam", "keras_adam", "adadelta", "rmsprop", "sgd")
LR_SCHEDULES = ("constant", "cosine")  # see loop.make_optimizer
CLASS_WEIGHTS = ("none", "article", "balanced", "sqrt_balanced", "effective_number")
# "last" keeps the last epoch: what a refit (which has no split to select on) exports.
SELECT_METRICS = ("total", "mean_positive_f1", "micro_f1", "loss", "last")
THRESHOLD_OBJECTIVES = ("positive_f1", "macro_f1")  # see metrics.tune_thresholds
STRATEGIES = ("default", "mirrored", "one_device", "multi_worker")
# What the backbone computes in (precision.py): 16-bit policies keep variables, heads and losses in float32.
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16", "auto")
RNNS = ("lstm", "gru")
# The sides of the id split (data.split_ids), as evaluate.py --split names them.
SPLIT_NAMES = ("train", "tune", "validation")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Shape of the text pipeline and the network (everything export needs).

  `architecture` picks the backbone (all share the heads, losses and loop):
    cnn_rnn    embedding -> Conv1D -> max-pool -> LSTM/GRU (the article's shape)
    bigru      embedding -> bidirectional GRU -> max + mean pooling over time
    multi_cnn  embedding -> Conv1D of widths 2..5 -> max pooling, concatenated
    linear     TF-IDF of word (and character) n-grams -> the heads: logistic regression
    ensemble   multi_cnn and linear side by side, each with its own heads and
               loss; the served scores average their probabilities
    wide_deep  multi_cnn's pooled features and linear's TF-IDF into the same
               heads: one logit, the sum of both parts
    encoder    a pretrained BERT-family encoder (--pretrained_encoder) fine-tuned
               under the heads, its own WordPiece tokenizer in the graph
  Fields a backbone does not use are ignored by it.
  """

  # Defaults chosen on the validation split by bench/quality.py (BENCHMARKS.md).
  # The CNN and the TF-IDF model make different mistakes: their average (26.06 Total) beat multi_cnn alone
  # (25.35), linear (25.65) and wide_deep (25.56).
  architecture: str = "ensemble"
  max_tokens: int = 20000  # the article's vocabulary; covers words seen >= 3 times in train
  sequence_length: int = 64  # ~99% of messages are shorter once stop words are gone
  embedding_dim: int = 128  # beat 64 (mean positive F1 0.430 vs 0.413); the CNN has few other weights
  conv_filters: int = 128  # per width (2..5): 512 n-gram detectors in all
  conv_kernel_size: int = 5  # cnn_rnn: the article's window, about one short phrase
  pool_size: int = 2  # cnn_rnn: halves the sequence for the RNN without losing short messages
  rnn: str = "lstm"  # cnn_rnn: the article's recurrent layer; "gru" is ~25% cheaper
  rnn_units: int = 64  # cnn_rnn and bigru: enough for 36 heads on 20k messages
  dropout: float = 0.3  # the article's rate, before the heads; 0.5 did no better
  # TF-IDF inputs (linear, ensemble, wide_deep), as the classic scikit-learn pipeline builds them:
  ngrams: int = 2  # word uni+bigrams
  min_df: int = 2  # an n-gram of one training message only is noise to a linear model
  max_ngrams: int = 300000  # per TF-IDF input; a bound on memory, above what min_df leaves here
  # (lo, hi): character lo..hi-grams within words as a second TF-IDF input, () off; 2..5 lifted linear's
  # Total by 0.28 and the default's by 0.15 (misspellings, SMS spelling, untranslated words).
  char_ngrams: Tuple[int, ...] = (2, 5)
  # L2 penalty on the linear weights (their squared sum, times this): scikit-learn's C=4 on ~17.9k messages,
  # 1 / (2 C n); without it the linear model overfits within a few epochs (BENCHMARKS.md).
  linear_l2: float = 7e-6
  # The linear part learns this many times faster than --learning_rate, the deep part's (its weights are
  # this times a trained variable): a convex TF-IDF model converges at ~30x the rate that suits the CNN.
  linear_lr_multiplier: float = 30.0
  # With originals in training: append to every text the English partners of its words, paired on the
  # training translations (lexicon.py). Off by default: the default reads English only.
  lexicon: bool = False
  # With the lexicon: a rare word of the originals a letter from a paired word (`tranblemam`, `tranbleman`; one
  # letter changed, added, dropped, or two swapped, or one dropped and one added: lexicon._one_edit_keys) gets
  # that word's partner too (lexicon.variants): SMS spell a word many ways.
  lexicon_variants: bool = False
  # Word vectors (GloVe, word2vec text or fastText .vec; vectors.py) that initialise the sequence model's embedding
  # for the words they have; "" learns it from scratch. In an embedding_dim at least their width: a wider
  # embedding learns its other columns from scratch.
  pretrained_vectors: str = ""
  freeze_vectors: bool = False  # keep the embedding at the vectors (and the draws of missing words) while training
  # --model=encoder: a BERT checkpoint directory (config.json, vocab.txt, model.safetensors; encoder.py).
  pretrained_encoder: str = ""

  def __post_init__(self):
    _check_positive(self, ("max_tokens", "sequence_length", "embedding_dim", "conv_filters",
                           "conv_kernel_size", "pool_size", "rnn_units", "ngrams", "min_df", "max_ngrams",
                           "linear_lr_multiplier"))
    _check_choice(self, "architecture", ARCHITECTURES)
    if self.max_tokens < 3:
      raise ValueError(f"max_tokens={self.max_tokens}: need at least 3 (padding, OOV and one word)")
    _check_choice(self, "rnn", RNNS)
    if not (self.linear_l2 >= 0 and math.isfinite(self.linear_l2)):
      raise ValueError(f"linear_l2={self.linear_l2}: expected a finite penalty >= 0")
    if not 0.0 <= self.dropout < 1.0:
      raise ValueError(f"dropout={self.dropout}: expected a rate in [0, 1)")
    if (self.pretrained_vectors or self.freeze_vectors) and self.architecture == "linear":
      raise ValueError("pretrained_vectors / freeze_vectors with --model=linear: the linear model has no word "
                       "embedding; use a sequence model (multi_cnn, ensemble, ...)")
    if (self.architecture == "encoder") != bool(self.pretrained_encoder):
      raise ValueError(f"--model={self.architecture} with pretrained_encoder={self.pretrained_encoder!r}: the "
                       "encoder model needs a checkpoint directory, and only it reads one")
    if self.lexicon_variants and not self.lexicon:
      raise ValueError("lexicon_variants=True without lexicon: the variants take the partners of the lexicon's "
                       "words; add --lexicon")
    if self.architecture == "encoder" and (self.pretrained_vectors or self.lexicon):
      raise ValueError("--model=encoder reads its own WordPiece vocabulary: no --pretrained_vectors or --lexicon")
    if self.freeze_vectors and not self.pretrained_vectors:
      raise ValueError("freeze_vectors=True without pretrained_vectors: nothing to keep fixed; name a vectors file")
    object.__setattr__(self, "char_ngrams", tuple(self.char_ngrams))  # JSON gives a list back
    if self.char_ngrams and not (len(self.char_ngrams) == 2 and all(isinstance(n, int) for n in self.char_ngrams)
                                 and 1 <= self.char_ngrams[0] <= self.char_ngrams[1] <= 10):
      raise ValueError(f"char_ngrams={self.char_ngrams}: expected two widths lo,hi with 1 <= lo <= hi <= 10, "
                       "or none")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """How one training run reads data and optimises."""

  data: str = "../shared/data"  # the shared Figure Eight data, beside the checkout
  # ("message",), or ("message", "original") to also train on each message as it was sent (data/examples.py).
  text_fields: Tuple[str, ...] = ("message",)  # bench/quality.py measures both
  # With originals: how many times each training original is read per epoch (its translation: once).
  original_copies: int = 1  # configs/multilingual.flags reads 2 (bench/quality.py, section "languages")
  # With originals: read each message and its original side by side in one step (the original's loss then
  # weighs `original_copies` per example, instead of whole copies), so that `consistency` can compare them.
  pairs: bool = False
  # With pairs: the weight of a KL term pulling each original's predicted probabilities towards its
  # translation's (the translation is the teacher, its side held fixed: English is not pulled towards Creole).
  consistency: float = 0.0
  decisions: str = ""  # an operators' decisions file (SQLite, the triage page's --db), applied over --data
  validation_fraction: float = 0.15  # ~3,500 messages: enough positives to score most categories
  # Carved from the rest: picks the best epoch and tunes per-category thresholds,
  # so that the validation split that is reported is never used to choose anything.
  tune_fraction: float = 0.1  # ~2,400 messages; 0 selects on validation and keeps thresholds at 0.5
  min_tune_positives: int = 5  # fewer positives in the tune split: keep that category at 0.5
  # What the tuned thresholds maximise per category: "positive_f1" or "macro_f1" (metrics.tune_thresholds).
  threshold_objective: str = "positive_f1"  # bench/thresholds.py measures both on the same models
  split_seed: str = "disaster_tf"  # salt of the id hash; change it to draw another split
  seed: int = 42  # initialisation and shuffling
  batch_size: int = 64  # small batches generalise better here than the article's 512
  epochs: int = 10  # the cosine schedule's length; early stopping usually ends the run sooner
  optimizer: str = "adam"  # converges in a few epochs; the article's Adadelta needs ~40
  learning_rate: float = 1e-3  # Adam's default
  # "cosine" decays the rate to 0 over `epochs`, so that the run ends converged, not hovering; against a
  # constant rate it was within the seed spread for the default (bench/quality.py).
  lr_schedule: str = "cosine"
  # --model=ensemble: fit the linear member first, on its own, for this many epochs (its own run in
  # <model_dir>/linear: configs/linear.flags' balanced weights and cosine decay, the last epoch kept), then hold
  # it fixed while the network trains; 0 trains both together.
  linear_epochs: int = 0
  class_weight: str = "sqrt_balanced"  # lifts rare labels without the instability of "balanced"
  class_weight_cap: float = 50.0  # bounds the weight of a label seen a handful of times
  loss_weights: Tuple[Tuple[str, float], ...] = ()  # (category, weight) pairs; others weigh 1
  patience: int = 3  # epochs without improvement before stopping; 0 never stops early
  select_metric: str = "total"  # the article's Total picks the best checkpoint
  # "default": one device; "one_device": the GPU, else the CPU; "mirrored": every local GPU,
  # else every logical CPU; "multi_worker": the machines TF_CONFIG names (distribute.make_strategy).
  strategy: str = "default"  # one device: nothing to synchronise on a small machine
  # Holds the shared data's training split (a full shuffle) in ~20 MB; more data is read in blocks.
  shuffle_buffer: int = 30000
  steps_per_execution: int = 16  # steps per compiled call: +4-5% examples/s over 1 (bench/speed.py)
  jit_compile: bool = False  # XLA was 25-37% slower on CPU here (bench/speed.py); try it on GPU
  # mixed_bfloat16 trained the default only 1.1x faster on an AMX CPU (bench/speed.py): most of a step is
  # float32 by design (sparse TF-IDF part, heads, Adam update). "auto" takes bfloat16 where it is native.
  precision: str = "float32"
  log_every: int = 50  # steps between TensorBoard scalars
  # After the run, retrain its chosen epoch count from scratch on train + tune, keep the tuned thresholds, and
  # export that (`refit_config`). Off: +0.10 Total over 3 seeds, within their spread, for ~70% more time.
  refit: bool = False
  # Fit the language gate (model/language.py) in a phase of its own, on the training split's messages against
  # their originals: every export then says per message whether it is English, so that a model that reads
  # English only never ranks an appeal in Creole last in silence. ~25 s on the shared data; needs originals.
  language_gate: bool = True
  # With text_fields message,original and the gate: also train the English-only model (these flags, reading
  # `message` alone, no lexicon) in <model_dir>/english, first; the export then routes each message by the gate,
  # English to that model and the rest to this one, in one SavedModel (configs/routed.flags).
  route_english: bool = False
  # --model=ensemble: a BERT checkpoint directory (model/encoder.py's layout) fine-tuned as a third member in a
  # phase of its own after the network (<model_dir>/encoder: train/members.py), its probabilities averaged with
  # the other two in the one export; "" keeps two members. configs/pretrained.flags names all-MiniLM-L6-v2.
  encoder_member: str = ""
  encoder_epochs: int = 2  # the encoder member's passes: BERT's paper fine-tunes for 2 to 4, each minutes on CPU

  def __post_init__(self):
    _check_positive(self, ("batch_size", "epochs", "learning_rate", "class_weight_cap",
                           "shuffle_buffer", "log_every", "steps_per_execution", "encoder_epochs"))
    if not 0.0 < self.validation_fraction < 1.0:
      raise ValueError(f"validation_fraction={self.validation_fraction}: expected a fraction in (0, 1)")
    if not 0.0 <= self.tune_fraction < 1.0 - self.validation_fraction:
      raise ValueError(f"tune_fraction={self.tune_fraction}: expected a fraction in [0, 1 - validation_fraction)")
    if self.min_tune_positives < 1:
      raise ValueError(f"min_tune_positives={self.min_tune_positives}: expected at least 1")
    if self.refit and not self.tune_fraction:
      raise ValueError("refit=True with tune_fraction=0: a refit retrains on train + tune the epoch count and "
                       "thresholds chosen on tune; set --tune_fraction above 0")
    if self.linear_epochs < 0:
      raise ValueError(f"linear_epochs={self.linear_epochs}: expected 0 (train with the network) or a number of "
                       "epochs")
    if self.patience < 0:
      raise ValueError(f"patience={self.patience}: expected 0 (off) or a positive number of epochs")
    _check_choice(self, "optimizer", OPTIMIZERS)
    _check_choice(self, "lr_schedule", LR_SCHEDULES)
    _check_choice(self, "class_weight", CLASS_WEIGHTS)
    _check_choice(self, "select_metric", SELECT_METRICS)
    _check_choice(self, "threshold_objective", THRESHOLD_OBJECTIVES)
    _check_choice(self, "strategy", STRATEGIES)
    _check_choice(self, "precision", PRECISIONS)
    object.__setattr__(self, "text_fields", tuple(self.text_fields))  # JSON gives a list back
    if self.text_fields not in (("message",), ("message", "original")):
      raise ValueError(f"text_fields={','.join(self.text_fields)}: expected message, or message,original")
    if self.original_copies < 1 or (self.original_copies > 1 and "original" not in self.text_fields):
      raise ValueError(f"original_copies={self.original_copies}: expected 1, or more with "
                       "text_fields=message,original")
    if self.pairs and "original" not in self.text_fields:
      raise ValueError("pairs=True with text_fields=message: a pair is a message and its original; add "
                       "--text_fields=message,original or drop --pairs")
    if not (self.consistency >= 0 and math.isfinite(self.consistency)):
      raise ValueError(f"consistency={self.consistency}: expected a finite weight >= 0")
    if self.consistency and not self.pairs:
      raise ValueError(f"consistency={self.consistency} without pairs: the term compares a message with its "
                       "original in the same step; add --pairs")
    # JSON gives lists back; keep the dataclass hashable and comparable.
    object.__setattr__(self, "loss_weights", tuple((str(k), float(v)) for k, v in self.loss_weights))
    for name, weight in self.loss_weights:
      if name not in labels.CATEGORIES:
        raise ValueError(f"loss_weights: unknown category {name!r}; expected one of "
                         f"{', '.join(labels.CATEGORIES)}")
      if not (weight >= 0 and math.isfinite(weight)):
        raise ValueError(f"loss_weights: {name}={weight}: expected a finite weight >= 0")


@dataclasses.dataclass(frozen=True)
class Config:
  """Everything a run needs; saved as `<model_dir>/config.json`."""

  model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
  train: TrainConfig = dataclasses.field(default_factory=TrainConfig)

  def __post_init__(self):
    if self.train.jit_compile and self.model.architecture in TFIDF_ARCHITECTURES:
      raise ValueError(f"jit_compile=True with --model={self.model.architecture}: XLA cannot compile the sparse "
                       "ops of the TF-IDF inputs (SparseFillEmptyRows); use --nojit_compile or a sequence model "
                       "(cnn_rnn, bigru, multi_cnn)")
    if self.train.linear_epochs and self.model.architecture != "ensemble":
      raise ValueError(f"linear_epochs={self.train.linear_epochs} with --model={self.model.architecture}: only "
                       "an ensemble has a linear member to fit apart; use --model=ensemble or --linear_epochs=0")
    if self.train.route_english and ("original" not in self.train.text_fields or not self.train.language_gate):
      raise ValueError("route_english=True needs text_fields=message,original and language_gate=True: the export "
                       "routes by the gate between this model and the English-only one")
    if self.train.route_english and self.train.refit:
      raise ValueError("route_english=True with refit=True: a routed run exports its two models' best epochs; "
                       "drop --refit")
    if self.train.encoder_member and (self.model.architecture != "ensemble" or self.train.route_english
                                      or self.train.refit):
      raise ValueError(f"encoder_member={self.train.encoder_member!r} with --model={self.model.architecture}"
                       f"{' --route_english' * self.train.route_english}{' --refit' * self.train.refit}: the encoder "
                       "is the third member of an ensemble's one export; use --model=ensemble, without "
                       "--route_english or --refit")
    if self.model.lexicon and "original" not in self.train.text_fields:
      raise ValueError("lexicon=True with text_fields=message: the lexicon is learnt from the originals and "
                       "their translations; add --text_fields=message,original or drop --lexicon")

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

  @classmethod
  def from_json(cls, text: str) -> "Config":
    raw = json.loads(text)
    if not isinstance(raw, dict):
      raise ValueError(f"expected a JSON object with `model` and `train`, found a JSON {type(raw).__name__}")
    return cls(model=_build(ModelConfig, raw.get("model", {}), "model"),
               train=_build(TrainConfig, raw.get("train", {}), "train"))


def refit_config(config: Config) -> Config:
  """The run a refit trains: `config` on train + tune (no tune split), keeping its last epoch.

  The loop stops it at the epoch count the first run chose; `epochs` stays, so that a cosine
  schedule decays over the same share of the run as it did when that epoch was chosen.
  """
  return dataclasses.replace(config, train=dataclasses.replace(
      config.train, tune_fraction=0.0, select_metric="last", patience=0, refit=False))


def linear_member_config(config: Config) -> Config:
  """The run that fits an ensemble's linear member on its own (--linear_epochs), as configs/linear.flags does.

  The same data, split and n-grams; scikit-learn's "balanced" class weights (uncapped in effect), which the
  converged linear fits measured best with; a cosine decay over its epochs and no early stopping (the problem
  is convex: the L2 penalty regularises it, and the last epoch is the converged one).
  """
  model = dataclasses.replace(config.model, architecture="linear", pretrained_vectors="", freeze_vectors=False)
  train = dataclasses.replace(config.train, epochs=config.train.linear_epochs, linear_epochs=0, patience=0,
                              select_metric="last", class_weight="balanced", class_weight_cap=1000.0,
                              lr_schedule="cosine", refit=False, encoder_member="")
  return Config(model=model, train=train)


def english_member_config(config: Config) -> Config:
  """The English-only model a routed run (--route_english) trains first, in <model_dir>/english: the same flags,
  reading `message` alone (no originals, no lexicon, no pairs); the run's language gate is its parent's."""
  model = dataclasses.replace(config.model, lexicon=False, lexicon_variants=False)
  train = dataclasses.replace(config.train, text_fields=("message",), original_copies=1, pairs=False,
                              consistency=0.0, route_english=False, language_gate=False, refit=False)
  return Config(model=model, train=train)


def save(config: Config, model_dir: str) -> str:
  """Writes `config.json` into `model_dir` atomically; returns its path."""
  path = os.path.join(model_dir, CONFIG_FILE)
  write_text_atomic(path, config.to_json() + "\n")
  return path


def load(model_dir: str) -> Config:
  """Reads `<model_dir>/config.json`, written by training."""
  path = os.path.join(model_dir, CONFIG_FILE)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path}: no such file; is {model_dir!r} a model dir written by train.py?")
  with open(path, encoding="utf-8") as f:
    try:
      return Config.from_json(f.read())
    except (ValueError, TypeError) as e:
      raise ValueError(f"{path}: not a valid disaster_tf config: {e}") from e


def write_text_atomic(path: str, text: str) -> None:
  """Writes `text` to `path` so that a reader sees the old file or the new one, never half.

  Raises:
    OSError: the write failed (a full disk, a read-only or missing directory);
      the message names the file, the previous version is intact, and no
      temporary file is left behind.
  """
  tmp, opened = f"{path}.tmp-{os.getpid()}", False
  try:
    with open(tmp, "w", encoding="utf-8") as f:
      opened = True
      f.write(text)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except OSError as e:
    if opened and os.path.isfile(tmp):
      os.remove(tmp)
    raise OSError(f"{path}: could not write it ({e.strerror or e}); the previous version, if any, "
                  "is intact") from e


def _build(cls, raw: Dict[str, Any], section: str):
  if not isinstance(raw, dict):
    raise ValueError(f"{section}: expected a JSON object of fields, found a JSON {type(raw).__name__}")
  known = {f.name for f in dataclasses.fields(cls)}
  unknown = sorted(set(raw) - known)
  if unknown:
    raise ValueError(f"{section}: unknown field(s) {', '.join(unknown)}; expected {', '.join(sorted(known))}")
  return cls(**raw)


def _check_positive(obj, names) -> None:
  for name in names:
    value = getattr(obj, name)
    if not (value > 0 and math.isfinite(value)):
      raise ValueError(f"{name}={value}: expected a positive, finite number")


def _check_choice(obj, name, choices) -> None:
  value = getattr(obj, name)
  if value not in choices:
    raise ValueError(f"{name}={value!r}: expected one of {', '.join(choices)}")
