"""The model's inputs: raw strings -> token ids and sparse TF-IDF n-grams, in the graph.

A model reads one or more named inputs (`networks.input_names`):
  token_ids    [batch, sequence_length] int64 word ids (the sequence backbones)
  word_ngrams  [batch, V] sparse TF-IDF of word 1..ngrams-grams (the linear model)
  char_ngrams  [batch, V] sparse TF-IDF of character n-grams within words

Each comes from a TextVectorization layer over the text that `text.standardize`
cleaned once for all of them (`Featurizer.__call__`), so training and the
export share one text path. The TF-IDF weighting is scikit-learn's
TfidfVectorizer(sublinear_tf=True, smooth_idf=True, norm="l2") written in core
ops: 1 + log(count), times idf = ln((1 + n) / (1 + df)) + 1 with n the training
messages and df those holding the n-gram, each row then divided by its L2 norm.
An n-gram enters the vocabulary if at least `min_df` training messages hold it.

What is learnt from the training split (tokens, and the idf of TF-IDF inputs)
is a `Vocabulary` per input, saved in the model dir beside the checkpoints:
`vocabulary.txt` for token ids, `<input>.tsv` (token TAB idf) for the others.
With `ModelConfig.lexicon`, a `lexicon.Lexicon` (under LEXICON, `lexicon.tsv`)
extends the standardised text of every input with the English partners of
the originals' words, before any of them is split (lexicon.py).
"""

import dataclasses
import functools
import hashlib
import math
import os
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import keras
import numpy as np
import tensorflow as tf

from disaster_tf import config as config_lib
from disaster_tf import labels
from disaster_tf.data import lexicon as lexicon_lib
from disaster_tf.data import text
from disaster_tf.model import encoder as encoder_lib
from disaster_tf.model import wordpiece

# The model's inputs, built here from raw text (networks.py reads them by these names).
TOKEN_IDS = "token_ids"  # [batch, sequence_length] int64 word ids
WORD_NGRAMS = "word_ngrams"  # [batch, V] sparse TF-IDF of word n-grams
CHAR_NGRAMS = "char_ngrams"  # [batch, V] sparse TF-IDF of character n-grams within words
WORDPIECE_IDS = "wordpiece_ids"  # [batch, sequence_length] int64 WordPiece ids of the pretrained encoder
LEXICON = "lexicon"  # the key of the lexicon among a model's vocabularies
ENCODER = "encoder"  # the key of the pretrained encoder's shape (encoder.Shape) among an encoder model's
UNKNOWN = "[UNK]"  # TextVectorization's out-of-vocabulary token: idf 0, as scikit-learn ignores unknown n-grams
_ADAPT_BATCH = 1024  # strings vectorised at a time while adapting


@dataclasses.dataclass(frozen=True, eq=False)
class Vocabulary:
  """What one input learnt from the training split.

  Attributes:
    tokens: as TextVectorization's `get_vocabulary()` gives them: "" and
      "[UNK]" first for token ids, "[UNK]" first for n-gram counts.
    idf: [len(tokens)] float32 inverse document frequencies of a TF-IDF input
      ("[UNK]" 0), or None for token ids.
  """

  tokens: Tuple[str, ...]
  idf: Optional[np.ndarray] = None


# A `Vocabulary` per input name, the `lexicon.Lexicon` under LEXICON when the model uses one, and an encoder
# model's `encoder.Shape` under ENCODER.
Vocabularies = Dict[str, Union[Vocabulary, lexicon_lib.Lexicon, encoder_lib.Shape]]


def input_names(model_config: config_lib.ModelConfig) -> Tuple[str, ...]:
  """The inputs `model_config`'s network reads, in a fixed order (the first decides `has_tokens`)."""
  arch = model_config.architecture
  if arch == "encoder":
    return (WORDPIECE_IDS,)
  names = [] if arch == "linear" else [TOKEN_IDS]
  if arch in config_lib.TFIDF_ARCHITECTURES:
    names.append(WORD_NGRAMS)
    if model_config.char_ngrams:
      names.append(CHAR_NGRAMS)
  return tuple(names)


def standardizer(lookup: Optional[tf.lookup.StaticHashTable] = None):
  """The featurizer's text cleaning: `text.standardize`, then the lexicon's `expand` if given."""
  if lookup is None:
    return text.standardize
  return functools.partial(_standardize_and_expand, lookup=lookup)


def _standardize_and_expand(texts: tf.Tensor, lookup: tf.lookup.StaticHashTable) -> tf.Tensor:
  return lexicon_lib.expand(text.standardize(texts), lookup)


def char_ngram_splitter(widths: Tuple[int, int]):
  """Returns a split function: standardised strings [batch] -> ragged [batch, (n-grams)].

  Like scikit-learn's "char_wb" analyzer: each word is padded with a space on
  both sides and cut into its character (code point) n-grams of `widths[0]`
  to `widths[1]` characters, so a misspelt word still shares most n-grams
  with the right one (`watter`, `water`) and word boundaries stay visible.
  Core ops only (StringSplitV2, UnicodeDecode, StringNGrams).
  """
  lo, hi = widths

  def split(standardized: tf.Tensor) -> tf.RaggedTensor:
    words = tf.strings.split(standardized)  # [batch, (words)]
    padded = tf.ragged.map_flat_values(lambda w: tf.strings.join([" ", w, " "]), words)
    chars = tf.strings.unicode_split(padded, "UTF-8")  # [batch, (words), (chars)]
    grams = tf.strings.ngrams(chars, ngram_width=tuple(range(lo, hi + 1)), separator="")
    return grams.merge_dims(1, 2)
  return split


def _counter(name: str, model_config: config_lib.ModelConfig,
             tokens: Optional[Sequence[str]] = None) -> keras.layers.TextVectorization:
  """A TextVectorization layer giving sparse n-gram counts [batch, V] of standardised texts for input `name`."""
  if name == WORD_NGRAMS:
    split = dict(split="whitespace", ngrams=model_config.ngrams)
  else:
    split = dict(split=char_ngram_splitter(model_config.char_ngrams))
  # No max_tokens: adapting keeps every n-gram (`_adapt_tf_idf` then applies min_df and max_ngrams).
  layer = keras.layers.TextVectorization(standardize=None, output_mode="count",
                                         sparse=True, name=name, **split)
  if tokens is not None:
    layer.set_vocabulary(list(tokens))
  return layer


def tf_idf(counts: tf.SparseTensor, idf: tf.Tensor) -> tf.SparseTensor:
  """Sublinear TF-IDF with L2-normalised rows, as scikit-learn's TfidfVectorizer.

  Args:
    counts: [batch, V] sparse n-gram counts, rows in order (TextVectorization's).
    idf: [V] float32.

  Returns:
    [batch, V] sparse float32: (1 + log(count)) * idf / row norm, at the
    positions of `counts` (an all-zero row stays all zero).
  """
  values = (1.0 + tf.math.log(tf.cast(counts.values, tf.float32))) * tf.gather(idf, counts.indices[:, 1])
  rows = counts.indices[:, 0]
  norms = tf.sqrt(tf.math.unsorted_segment_sum(tf.square(values), rows, counts.dense_shape[0]))
  values = values / tf.maximum(tf.gather(norms, rows), 1e-12)
  return tf.SparseTensor(counts.indices, values, counts.dense_shape)


def smooth_idf(document_frequency: np.ndarray, documents: int) -> np.ndarray:
  """scikit-learn's smooth idf: ln((1 + n) / (1 + df)) + 1, float32."""
  df = np.asarray(document_frequency, np.float64)
  return (np.log((1.0 + documents) / (1.0 + df)) + 1.0).astype(np.float32)


class Featurizer(tf.Module):
  """Raw strings -> the model's inputs; the same object in tf.data and in the export."""

  def __init__(self, model_config: config_lib.ModelConfig, vocabularies: Vocabularies):
    """Args: the model's config (which inputs, n-gram widths, a lexicon or not); what `adapt` learnt."""
    super().__init__(name="featurizer")
    self.names = input_names(model_config)
    missing = [n for n in self.names + ((LEXICON,) if model_config.lexicon else ()) if n not in vocabularies]
    if missing:
      raise ValueError(f"no vocabulary for input(s) {', '.join(missing)} of --model={model_config.architecture}")
    self.vocabularies = {n: vocabularies[n] for n in self.names}
    self.lexicon = vocabularies[LEXICON] if model_config.lexicon else None
    # An attribute, so that the export tracks the table (and TF Serving initialises it).
    self.lexicon_table = lexicon_lib.table(self.lexicon) if self.lexicon else None
    # Cleaned once for all the inputs (`__call__`), so the layers split what they are given.
    self.standardize = standardizer(self.lexicon_table)
    self.layers = {}
    self.idf = {}  # variables, so that the export's variables hold them (TF Serving restores them)
    for name in self.names:
      tokens = self.vocabularies[name].tokens
      if name == WORDPIECE_IDS:
        self.layers[name] = wordpiece.WordPieceIds(tokens, vocabularies[ENCODER].lower_case,
                                                   model_config.sequence_length)
      elif name == TOKEN_IDS:
        self.layers[name] = text.make_vectorizer(model_config, tokens, clean=None)
      else:
        self.layers[name] = _counter(name, model_config, tokens)
        self.idf[name] = tf.Variable(self.vocabularies[name].idf, trainable=False, name=f"{name}_idf")

  @property
  def sizes(self) -> Dict[str, int]:
    """Each input's width: its vocabulary's size."""
    return {name: len(v.tokens) for name, v in self.vocabularies.items()}

  def __call__(self, text_batch: tf.Tensor) -> Dict[str, Union[tf.Tensor, tf.SparseTensor]]:
    """Vectorises [batch] raw strings into {input name: [batch, ...]} (see the module docstring)."""
    if self.names == (WORDPIECE_IDS,):  # the encoder's own tokenizer reads the raw text
      return {WORDPIECE_IDS: self.layers[WORDPIECE_IDS](text_batch)}
    out = {}
    clean = self.standardize(text_batch)
    for name in self.names:
      x = self.layers[name](clean)
      out[name] = x if name == TOKEN_IDS else tf_idf(x, self.idf[name])
    return out


def has_tokens(inputs: Mapping[str, Union[tf.Tensor, tf.SparseTensor]]) -> tf.Tensor:
  """[batch] bool: whether each message holds a token (an unknown word counts); see `text.has_tokens`.

  Every input comes from the same standardised text, so the first one decides.
  """
  if WORDPIECE_IDS in inputs:
    return wordpiece.has_pieces(inputs[WORDPIECE_IDS])
  name = TOKEN_IDS if TOKEN_IDS in inputs else WORD_NGRAMS
  return text.has_tokens(inputs[name])


def adapt(model_config: config_lib.ModelConfig, texts: tf.data.Dataset,
          lexicon: Optional[lexicon_lib.Lexicon] = None) -> Vocabularies:
  """Learns each input's vocabulary (and idf) from `texts`, the training split's scalar strings.

  Args:
    lexicon: the model's lexicon (learnt first: the vocabularies hold the
      English partners it adds), or None for a model without one.
  """
  if model_config.architecture == "encoder":  # the checkpoint's own vocabulary: nothing to learn
    tokens, shape = wordpiece.from_checkpoint(model_config)
    return {WORDPIECE_IDS: Vocabulary(tokens), ENCODER: shape}
  if model_config.lexicon != (lexicon is not None):
    raise ValueError(f"lexicon={model_config.lexicon} in the model config, but a lexicon was "
                     f"{'not ' * (lexicon is None)}given")
  standardize = standardizer(lexicon_lib.table(lexicon) if lexicon else None)
  clean = texts.batch(_ADAPT_BATCH).map(standardize).unbatch()  # as `Featurizer.__call__` cleans them
  vocabularies: Vocabularies = {}
  for name in input_names(model_config):
    if name == TOKEN_IDS:
      layer = text.make_vectorizer(model_config, clean=None)
      vocabularies[name] = Vocabulary(tuple(str(t) for t in text.adapt(layer, clean)))
    else:
      vocabularies[name] = _adapt_tf_idf(name, model_config, clean)
  if lexicon is not None:
    vocabularies[LEXICON] = lexicon
  return vocabularies


def _adapt_tf_idf(name: str, model_config: config_lib.ModelConfig, clean: tf.data.Dataset) -> Vocabulary:
  """Keeps the n-grams of at least `min_df` messages (at most `max_ngrams`, most frequent first), with idf.

  Args:
    clean: the training texts, standardised.
  """
  layer = _counter(name, model_config)  # no cap yet: every n-gram, to count the messages holding each
  layer.adapt(clean.batch(_ADAPT_BATCH))
  tokens = [str(t) for t in layer.get_vocabulary()]
  df = np.zeros(len(tokens), np.int64)
  documents = 0
  for batch in clean.batch(_ADAPT_BATCH):
    counts = layer(batch)  # one entry per (message, n-gram): counting columns counts messages
    df += np.bincount(counts.indices[:, 1].numpy(), minlength=len(tokens))
    documents += int(batch.shape[0])
  kept = [i for i in np.argsort(-df[1:], kind="stable") + 1 if df[i] >= model_config.min_df]
  kept = kept[:model_config.max_ngrams - 1]
  idf = smooth_idf(df[kept], documents)
  return Vocabulary((UNKNOWN,) + tuple(tokens[i] for i in kept), np.concatenate([[0.0], idf]).astype(np.float32))


def file_name(name: str) -> str:
  """The model dir's file holding input `name`'s vocabulary."""
  special = {TOKEN_IDS: text.VOCABULARY_FILE, WORDPIECE_IDS: wordpiece.VOCABULARY_FILE, ENCODER: encoder_lib.SHAPE_FILE}
  return special.get(name, f"{name}.tsv")


def save(vocabularies: Vocabularies, model_dir: str) -> None:
  """Writes each vocabulary (and a lexicon) atomically; the first input's file last (`saved` tests it)."""
  if ENCODER in vocabularies:
    wordpiece.save(vocabularies[WORDPIECE_IDS].tokens, vocabularies[ENCODER], model_dir)
    return
  for name in reversed(list(vocabularies)):
    vocab = vocabularies[name]
    if name == LEXICON:
      lexicon_lib.save(vocab, model_dir)
    elif name == TOKEN_IDS:
      text.save_vocabulary(vocab.tokens, model_dir)
    else:
      lines = "".join(f"{token}\t{float(idf)!r}\n" for token, idf in zip(vocab.tokens, vocab.idf))
      config_lib.write_text_atomic(os.path.join(model_dir, file_name(name)), lines)


def saved(model_config: config_lib.ModelConfig, model_dir: str) -> bool:
  """Whether `model_dir` holds a previous run's vocabularies (its first input's file is written last)."""
  return os.path.exists(os.path.join(model_dir, file_name(input_names(model_config)[0])))


def load(model_config: config_lib.ModelConfig, model_dir: str) -> Vocabularies:
  """Reads the vocabularies `save` wrote for `model_config`'s inputs."""
  if model_config.architecture == "encoder":
    tokens, shape = wordpiece.load(model_dir)
    return {WORDPIECE_IDS: Vocabulary(tokens), ENCODER: shape}
  vocabularies = {}
  for name in input_names(model_config):
    if name == TOKEN_IDS:
      vocabularies[name] = Vocabulary(tuple(text.load_vocabulary(model_dir)))
    else:
      vocabularies[name] = _load_tsv(os.path.join(model_dir, file_name(name)))
  if model_config.lexicon:
    vocabularies[LEXICON] = lexicon_lib.load(model_dir)
  return vocabularies


def _load_tsv(path: str) -> Vocabulary:
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path}: no such file; is {os.path.dirname(path)!r} a model dir written by train.py?")
  tokens: List[str] = []
  idf: List[float] = []
  with open(path, encoding="utf-8") as f:
    for number, line in enumerate(f, 1):
      token, _, value = line.rstrip("\n").rpartition("\t")
      try:
        weight = float(value)
      except ValueError:
        weight = math.nan
      if not token or not math.isfinite(weight) or weight < 0:
        raise ValueError(f"{path}, line {number}: expected an n-gram, a tab and its idf (a number >= 0), "
                         f"found {line.rstrip()[:80]!r}")
      tokens.append(token)
      idf.append(weight)
  if tokens[:1] != [UNKNOWN]:
    raise ValueError(f"{path}: not a vocabulary written by train.py (expected {UNKNOWN!r} first)")
  return Vocabulary(tuple(tokens), np.array(idf, np.float32))


def fingerprint(vocabularies: Vocabularies) -> str:
  """A short hash of the category list and every input's vocabulary, idf values included.

  The one definition used by training (`TrainState`, through `fingerprint_record`), restore,
  `checkpoint.load_model` and the export's metadata: a hand-edited token, idf or lexicon pair gives another one.
  """
  return _hash(fingerprint_items(vocabularies) + _idf_items(vocabularies))


def legacy_fingerprint(vocabularies: Vocabularies) -> str:
  """`fingerprint` as older checkpoints recorded it: tokens and lexicon pairs, no idf values (nor `file=hash`)."""
  return _hash(fingerprint_items(vocabularies))


def file_fingerprints(vocabularies: Vocabularies) -> Dict[str, str]:
  """{model dir file: a hash of what it holds (tokens and idf, or lexicon pairs)}, to name a file that changed."""
  return {file_name_of(name): _hash(_items(name, vocab)) for name, vocab in vocabularies.items()}


def fingerprint_record(vocabularies: Vocabularies) -> str:
  """What a checkpoint stores: `fingerprint`, then `file=hash` for each file, so that a mismatch names the file."""
  return " ".join([fingerprint(vocabularies)] + [f"{f}={h}" for f, h in file_fingerprints(vocabularies).items()])


def file_name_of(name: str) -> str:
  """The model dir's file holding vocabulary `name` (an input's, or the lexicon)."""
  return lexicon_lib.LEXICON_FILE if name == LEXICON else file_name(name)


def _hash(items: List[str]) -> str:
  h = hashlib.sha256()
  for item in ("\x00".join(labels.CATEGORIES), "\x00".join(items)):
    h.update(item.encode("utf-8"))
    h.update(b"\x01")
  return h.hexdigest()[:16]


def _items(name: str, vocab) -> List[str]:
  """What one file holds, as fingerprinted: a lexicon's pairs, or the tokens and then the idf values."""
  if name == LEXICON:
    return _pairs(vocab)
  if name == ENCODER:
    return [vocab.to_json()]
  return list(vocab.tokens) + ([_idf_hex(vocab)] if vocab.idf is not None else [])


def _idf_items(vocabularies: Vocabularies) -> List[str]:
  return [f"\x03{name}\t{_idf_hex(v)}" for name, v in vocabularies.items() if getattr(v, "idf", None) is not None]


def _pairs(lexicon: lexicon_lib.Lexicon) -> List[str]:
  return [f"{s}\t{t}" for s, t in zip(lexicon.sources, lexicon.targets)]


def _idf_hex(vocab: Vocabulary) -> str:
  return np.asarray(vocab.idf, np.float32).tobytes().hex()


def fingerprint_items(vocabularies: Vocabularies) -> List[str]:
  """Every input's tokens in one list, for `fingerprint` (token ids alone: the list itself).

  A lexicon's pairs are in it too: the same vocabularies under another lexicon are other features.
  """
  if list(vocabularies) == [TOKEN_IDS]:
    return list(vocabularies[TOKEN_IDS].tokens)
  items = []
  for name, vocab in vocabularies.items():
    if name in (LEXICON, ENCODER):
      items += [f"\x02{name}", *_items(name, vocab)]
    else:
      items += [f"\x02{name}", *vocab.tokens]
  return items
