"""In-graph text standardisation and the TextVectorization layer.

`standardize` is the only text cleaning in the project. `features.Featurizer`
calls it once a batch, for all the model's inputs: inside tf.data in training,
and in the exported SavedModel's serving function.

It uses core TensorFlow string ops only (UnicodeTranscode, StringLower,
StaticRegexReplace, StringJoin, StringStrip): the export then holds no custom
op, so it loads in any TF Serving version, in `saved_model_cli run`, and in a
Python process that never imports tensorflow_text. (TF Text's CaseFoldUTF8
would add NFKC normalisation at the price of a custom op in the graph; the part
of it that changes words, one character folded to another, is done here with
core ops: `fold_compatibility`.)
"""

import functools
import os
import unicodedata
from typing import List, Sequence, Tuple, Union

import keras
import numpy as np
import tensorflow as tf

from disaster_tf import config as config_lib

VOCABULARY_FILE = "vocabulary.txt"  # one token a line, as get_vocabulary() returns it
URL_TOKEN = "xxurl"  # a link is a signal (news, appeals), its address is noise
NUMBER_TOKEN = "xxnum"  # street numbers, counts, SMS short codes: the fact, not the value

# English stop words (the NLTK list that the reference article used), written
# the way `standardize` leaves them: apostrophes removed ("don't" -> "dont").
# Negations ("no", "not", "nor") are kept: "no food" and "food" differ here.
STOP_WORDS = (
    "i", "me", "my", "myself", "we", "our", "ours", "ourselves", "you", "youre", "youve", "youll",
    "youd", "your", "yours", "yourself", "yourselves", "he", "him", "his", "himself", "she",
    "shes", "her", "hers", "herself", "it", "its", "itself", "they", "them", "their", "theirs",
    "themselves", "what", "which", "who", "whom", "this", "that", "thatll", "these", "those", "am",
    "is", "are", "was", "were", "be", "been", "being", "have", "has", "had", "having", "do", "does",
    "did", "doing", "a", "an", "the", "and", "but", "if", "or", "because", "as", "until", "while",
    "of", "at", "by", "for", "with", "about", "against", "between", "into", "through", "during",
    "before", "after", "above", "below", "to", "from", "up", "down", "in", "out", "on", "off",
    "over", "under", "again", "further", "then", "once", "here", "there", "when", "where", "why",
    "how", "all", "any", "both", "each", "few", "more", "most", "other", "some", "such", "only",
    "own", "same", "so", "than", "too", "very", "s", "t", "can", "will", "just", "should",
    "shouldve", "now", "d", "ll", "m", "o", "re", "ve", "y",
)

_STOP_WORDS_RE = " (?:" + "|".join(STOP_WORDS) + ") "


@keras.saving.register_keras_serializable(package="disaster_tf")
def standardize(text: tf.Tensor) -> tf.Tensor:
  """Cleans raw messages; elementwise, so any shape works.

  In order, each step for a reason:
    1. invalid UTF-8 bytes -> U+FFFD, so later ops never fail on user input;
       then compatibility characters folded (`fold_compatibility`: `ｗａｔｅｒ`
       and `𝐰𝐚𝐭𝐞𝐫` read as `water`);
    2. control characters (NUL, tab, newline, ...) -> space, so they separate
       words: `tf.strings.lower` would otherwise stop at a NUL and drop the rest;
    3. Unicode lower-casing (`É` -> `é`, `Д` -> `д`);
    4. URLs -> `xxurl`;
    5. @mentions removed (a handle names a person, not a need);
    6. `#` dropped, the hashtag's word kept (`#flood` -> `flood`);
    7. apostrophes removed (`don't` -> `dont`, one token);
    8. runs of digits -> `xxnum`;
    9. everything that is not a letter or a combining mark (punctuation,
       symbols, emoji, underscores) -> space; letters of every script stay;
    10. English stop words removed, whitespace collapsed, ends stripped.

  Args:
    text: string tensor of any shape, e.g. [batch] or [batch, 1].

  Returns:
    A string tensor of the same shape: space-separated tokens.
  """
  text = tf.strings.unicode_transcode(text, "UTF-8", "UTF-8", errors="replace",
                                      replacement_char=0xFFFD)
  text = fold_compatibility(text)
  text = tf.strings.regex_replace(text, r"\p{Cc}", " ")
  text = tf.strings.lower(text, encoding="utf-8")
  text = tf.strings.regex_replace(text, r"(?:https?://|www\.)\S*", f" {URL_TOKEN} ")
  text = tf.strings.regex_replace(text, r"@\w+", " ")
  text = tf.strings.regex_replace(text, r"['’`]", "")
  text = tf.strings.regex_replace(text, r"\pN+", f" {NUMBER_TOKEN} ")
  text = tf.strings.regex_replace(text, r"[^\pL\pM]+", " ")  # `#` goes here
  # Give every token its own pair of spaces so that adjacent stop words both
  # match: " of  the  flood " -> " flood ".
  text = tf.strings.join([" ", tf.strings.regex_replace(text, " ", "  "), " "])
  text = tf.strings.regex_replace(text, _STOP_WORDS_RE, " ")
  text = tf.strings.regex_replace(text, " +", " ")
  return tf.strings.strip(text)


@functools.lru_cache(maxsize=None)
def compatibility_table() -> Tuple[np.ndarray, np.ndarray]:
  """(code points, what NFKC makes of each), sorted: every character NFKC folds to one other character.

  Full-width Latin (`ｗ` -> `w`), mathematical and "fancy" letters (`𝐰` -> `w`), no-break spaces, superscript
  digits, circled and compatibility forms: ~3,600 characters. Those NFKC folds to several characters (the
  ligature `ﬁ`, `½`) are left as they are.
  """
  folded = {cp: unicodedata.normalize("NFKC", chr(cp)) for cp in range(0xA0, 0x30000) if not 0xD800 <= cp < 0xE000}
  pairs = [(cp, ord(f)) for cp, f in folded.items() if len(f) == 1 and f != chr(cp)]
  return np.array([k for k, _ in pairs], np.int32), np.array([v for _, v in pairs], np.int32)


def fold_compatibility(text: tf.Tensor) -> tf.Tensor:
  """NFKC's one-character foldings (`compatibility_table`) in core TF ops, so the export needs no custom op.

  (TF Text's `normalize_utf8` does all of NFKC, but it is a custom op: loading the export in Python would need
  tensorflow_text. A sorted table of ~3,600 code points and `searchsorted` do the part that changes words.)

  Args:
    text: valid UTF-8 strings of any shape (after `unicode_transcode`).
  """
  keys, values = (tf.constant(a) for a in compatibility_table())
  points = tf.strings.unicode_decode(text, "UTF-8")
  flat = points.flat_values
  at = tf.minimum(tf.searchsorted(keys, flat), keys.shape[0] - 1)
  folded = tf.where(tf.gather(keys, at) == flat, tf.gather(values, at), flat)
  return tf.strings.unicode_encode(points.with_flat_values(folded), "UTF-8")


def make_vectorizer(model_config: config_lib.ModelConfig, vocabulary: Sequence[str] = None,
                    clean=standardize) -> keras.layers.TextVectorization:
  """Builds the word-id TextVectorization layer; adapt it, or pass a saved vocabulary.

  (The TF-IDF n-gram inputs are built by `features.py`, over the same `standardize`.)

  Args:
    model_config: gives `max_tokens` and `sequence_length`.
    vocabulary: tokens as `get_vocabulary()` returns them, or None for a layer
      still to adapt.
    clean: the layer's own cleaning, `standardize`; None for texts already
      cleaned (`features.Featurizer` cleans once for all its inputs).

  Returns:
    A layer mapping [batch] strings to [batch, sequence_length] int64 ids (0
    padding, 1 out-of-vocabulary).
  """
  layer = keras.layers.TextVectorization(max_tokens=model_config.max_tokens, standardize=clean,
                                         split="whitespace", output_mode="int",
                                         output_sequence_length=model_config.sequence_length, name="vectorizer")
  if vocabulary is not None:
    layer.set_vocabulary(list(vocabulary))
  return layer


def has_tokens(vectorized) -> tf.Tensor:
  """[batch] bool: whether each row of the vectorizer's output holds a token (an unknown word counts).

  Args:
    vectorized: [batch, sequence_length] int ids (0 is padding), or sparse
      [batch, vocabulary] n-gram features (an entry per n-gram present).
  """
  if isinstance(vectorized, tf.SparseTensor):
    rows = tf.cast(vectorized.indices[:, 0], tf.int32)
    batch = tf.cast(vectorized.dense_shape[0], tf.int32)
    return tf.math.bincount(rows, minlength=batch, maxlength=batch) > 0
  return tf.reduce_max(vectorized, axis=-1) > 0


def adapt(layer: keras.layers.TextVectorization, texts: Union[tf.data.Dataset, Sequence[str]]) -> List[str]:
  """Adapts `layer` on `texts` (the training split only) and returns its vocabulary.

  Args:
    texts: a dataset of scalar strings, streamed (memory grows with the
      distinct tokens, not with the data), or a list for small inputs.
  """
  if not isinstance(texts, tf.data.Dataset):
    texts = tf.data.Dataset.from_tensor_slices(list(texts))
  layer.adapt(texts.batch(1024))
  return layer.get_vocabulary()


def save_vocabulary(vocabulary: Sequence[str], model_dir: str) -> str:
  """Writes the vocabulary to `<model_dir>/vocabulary.txt` atomically."""
  path = os.path.join(model_dir, VOCABULARY_FILE)
  config_lib.write_text_atomic(path, "".join(f"{token}\n" for token in vocabulary))
  return path


def load_vocabulary(model_dir: str) -> List[str]:
  """Reads `<model_dir>/vocabulary.txt` as written by `save_vocabulary`."""
  path = os.path.join(model_dir, VOCABULARY_FILE)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path}: no such file; is {model_dir!r} a model dir written by train.py?")
  with open(path, encoding="utf-8") as f:
    tokens = f.read().split("\n")[:-1]
  if tokens[:2] != ["", "[UNK]"]:  # int mode: padding, then out-of-vocabulary
    raise ValueError(f"{path}: not a vocabulary written by train.py (expected '' and '[UNK]' first)")
  return tokens
