"""The language gate: which side of the data a message is on, English or not, in the export's graph.

The data's messages are English translations, and for the `direct` genre the
`original` holds the message as it was sent (mostly Haitian Creole, some
French). A model that reads English only answers an appeal in Creole with
nothing at all, and without a word it would rank it last. The gate is a
logistic regression over a message's character 2-4-grams (hashed into
BUCKETS weights: no vocabulary to adapt or ship), trained in a phase of its own
on the training split alone, the translations (English, 0) against their
originals (other, 1), classes weighted equally; every export carries it, and
answers per message `language` ("english" or "other") and `language_score`
(P(other)). The text is read as written (lower-cased, digits and punctuation
as spaces): unlike the classifier's `text.standardize`, English stop words
stay, since they are what English looks like.

In a model dir: `language_gate.npy` ([BUCKETS + 1] float32: the weights, the
bias last) and `language_gate.json` (the gate's shape, threshold and its own
scores on the validation split), each written whole.
"""

import dataclasses
import json
import os
from typing import Dict, Optional, Tuple

import numpy as np
import tensorflow as tf

from disaster_tf import config as config_lib
from disaster_tf import labels

BUCKETS = 1 << 18  # hashed n-grams: few collisions among the data's ~200k distinct character 2-4-grams
WIDTHS = (2, 3, 4)  # character n-grams: short enough to generalise across spellings, long enough for words
ENGLISH, OTHER = labels.ENGLISH, labels.OTHER_LANGUAGE
WEIGHTS_FILE, RECORD_FILE = "language_gate.npy", "language_gate.json"
EPOCHS = 8  # full passes of Adam over the training texts: the gate's tune loss is flat well before
LEARNING_RATE = 0.05
L2 = 1e-6  # per weight: keeps the rare n-grams' weights from memorising single messages


@dataclasses.dataclass(frozen=True)
class GateRecord:
  """What `language_gate.json` holds: the gate's shape and threshold, and how it scored on validation."""

  buckets: int
  widths: Tuple[int, ...]
  threshold: float  # P(other) at or above which a message is "other"
  scores: Dict[str, float]  # validation: recall on originals, false flags on English messages, their counts

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)


def normalized(texts: tf.Tensor) -> tf.Tensor:
  """[batch] raw strings -> lower-cased, every run of non-letters one space, padded with a space each side."""
  texts = tf.strings.unicode_transcode(texts, "UTF-8", "UTF-8", errors="replace")
  texts = tf.strings.regex_replace(texts, r"\p{Cc}", " ")  # before lower-casing, which stops at a NUL
  texts = tf.strings.lower(texts, encoding="utf-8")
  texts = tf.strings.regex_replace(texts, r"[^\pL\pM]+", " ")
  return tf.strings.join([" ", tf.strings.strip(texts), " "])


def buckets_of(texts: tf.Tensor, buckets: int = BUCKETS, widths: Tuple[int, ...] = WIDTHS) -> tf.RaggedTensor:
  """[batch] raw strings -> [batch, (n-grams)] int64 hash buckets of their character n-grams."""
  chars = tf.strings.unicode_split(normalized(texts), "UTF-8")
  grams = tf.strings.ngrams(chars, ngram_width=widths, separator="")
  return tf.ragged.map_flat_values(tf.strings.to_hash_bucket_fast, grams, buckets)


def logits(weights: tf.Tensor, grams: tf.RaggedTensor) -> tf.Tensor:
  """[batch] logits of P(other): the bias plus the n-grams' weights, over the square root of their number (an
  L2-normalised bag of n-grams, as TF-IDF rows are)."""
  total = tf.reduce_sum(tf.gather(weights[:-1], grams), axis=1)
  count = tf.cast(grams.row_lengths(), tf.float32)
  return weights[-1] + total / tf.sqrt(tf.maximum(count, 1.0))


def probability(weights: tf.Tensor, texts: tf.Tensor, buckets: int = BUCKETS,
                widths: Tuple[int, ...] = WIDTHS) -> tf.Tensor:
  """[batch] P(other) of raw strings; a message without a letter scores 0: nothing in it is in any language
  (the classifier's "nothing to read" answers it)."""
  score = tf.sigmoid(logits(weights, buckets_of(texts, buckets, widths)))
  return tf.where(tf.strings.regex_full_match(normalized(texts), r".*\pL.*"), score, 0.0)


class LanguageGate(tf.Module):
  """The gate in a graph: raw strings -> (language [batch] string, language_score [batch] float32)."""

  def __init__(self, weights: np.ndarray, record: GateRecord):
    super().__init__(name="language_gate")
    self.weights = tf.Variable(weights.astype(np.float32), trainable=False, name="weights")
    self.threshold = tf.constant(record.threshold, tf.float32)
    self.buckets, self.widths = record.buckets, tuple(record.widths)

  def __call__(self, text_batch: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    """([batch] "english" or "other", [batch] P(other): `probability`)."""
    score = probability(self.weights, text_batch, self.buckets, self.widths)
    return tf.where(score >= self.threshold, OTHER, ENGLISH), score


def train(english: tf.data.Dataset, other: tf.data.Dataset, seed: int) -> np.ndarray:
  """The gate's weights, fitted by Adam on [N] English and [M] other texts, the two classes weighted equally.

  Args:
    english, other: datasets of raw strings (the training split's messages and originals).
    seed: seeds the shuffle of each epoch.

  Returns:
    [BUCKETS + 1] float32 weights, the bias last.
  """
  def labelled(ds: tf.data.Dataset, label: float) -> tf.data.Dataset:
    return ds.map(lambda t: (t, tf.constant(label)))
  sizes = [int(ds.reduce(0, lambda n, _: n + 1)) for ds in (english, other)]
  if not all(sizes):
    raise ValueError(f"the language gate needs texts of both sides: {sizes[0]} English, {sizes[1]} originals in "
                     "the training split")
  class_weight = tf.constant([sum(sizes) / (2.0 * s) for s in sizes])
  data = labelled(english, 0.0).concatenate(labelled(other, 1.0)).cache()
  weights = tf.Variable(tf.zeros([BUCKETS + 1]))
  optimizer = tf.keras.optimizers.Adam(LEARNING_RATE)

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string), tf.TensorSpec([None], tf.float32)])
  def step(texts, y):
    grams = buckets_of(texts)
    with tf.GradientTape() as tape:
      per_example = tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=logits(weights, grams))
      w = tf.gather(class_weight, tf.cast(y, tf.int32))
      loss = tf.reduce_sum(per_example * w) / tf.reduce_sum(w) + L2 * tf.reduce_sum(tf.square(weights[:-1]))
    optimizer.apply_gradients([(tape.gradient(loss, weights), weights)])
    return loss

  for epoch in range(EPOCHS):
    for texts, y in data.shuffle(sum(sizes), seed=seed * 1000 + epoch).batch(256):
      step(texts, y)
  return weights.numpy()


def scores(weights: np.ndarray, english: tf.data.Dataset, other: tf.data.Dataset, threshold: float,
           batch: int = 1024) -> Dict[str, float]:
  """How the gate sorts held-out texts: recall on the other side, false flags on English ones."""
  def flagged(ds: tf.data.Dataset) -> np.ndarray:
    out = [probability(tf.constant(weights), t).numpy() >= threshold for t in ds.batch(batch)]
    return np.concatenate(out) if out else np.zeros(0, bool)
  english_flags, other_flags = flagged(english), flagged(other)
  return {"other_recall": float(other_flags.mean()) if len(other_flags) else float("nan"),
          "english_false_flags": float(english_flags.mean()) if len(english_flags) else float("nan"),
          "other_texts": int(len(other_flags)), "english_texts": int(len(english_flags))}


def save(weights: np.ndarray, record: GateRecord, model_dir: str) -> None:
  """Writes the gate into a model dir, each file whole (the record last: it says the gate is complete)."""
  path = os.path.join(model_dir, WEIGHTS_FILE)
  tmp = f"{path}.tmp-{os.getpid()}.npy"
  try:
    np.save(tmp, weights.astype(np.float32))
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
  config_lib.write_text_atomic(os.path.join(model_dir, RECORD_FILE), record.to_json() + "\n")


def load(model_dir: str) -> Optional[Tuple[np.ndarray, GateRecord]]:
  """The gate a model dir holds, or None (a model trained before gates, or whose gate's phase has not run).

  Raises:
    ValueError: a gate's files that are not what `save` wrote, named.
  """
  record_path, weights_path = (os.path.join(model_dir, name) for name in (RECORD_FILE, WEIGHTS_FILE))
  if not os.path.isfile(record_path):
    return None
  try:
    with open(record_path, encoding="utf-8") as f:
      raw = json.load(f)
    record = GateRecord(int(raw["buckets"]), tuple(int(w) for w in raw["widths"]), float(raw["threshold"]),
                        {k: float(v) for k, v in raw["scores"].items()})
    weights = np.load(weights_path)
  except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
    raise ValueError(f"{record_path}: not the language gate train.py writes ({type(e).__name__}: {e}); train "
                     "again, or remove it and its .npy to export without a gate") from None
  if weights.shape != (record.buckets + 1,) or not np.isfinite(weights).all():
    raise ValueError(f"{weights_path}: shape {weights.shape}, expected ({record.buckets + 1},) finite weights")
  return weights, record
