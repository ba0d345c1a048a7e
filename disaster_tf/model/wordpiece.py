"""Raw text -> the pretrained encoder's WordPiece ids, in the graph (TF Text's BertTokenizer).

The tokenizer BERT checkpoints were trained with: split on whitespace and
punctuation, lower-case and strip accents when the checkpoint is uncased
(case folding, NFD, marks removed), then the longest pieces of the
vocabulary, `[UNK]` for a word it cannot spell. Each message becomes
`[CLS] pieces [SEP]`, cut to `length` and padded with `[PAD]` (id 0).

The ops are TF Text's (CaseFoldUTF8, NormalizeUTF8, RegexSplitWithOffsets,
WordpieceTokenizeWithOffsets): every TF Serving since 2.2 links them; a Python
process loading such an export imports `tensorflow_text` first
(`savedmodel.register_text_ops`). Only an encoder model uses them, so the
package imports TF Text here and nowhere else.
"""

import json
import os
from typing import Sequence

import tensorflow as tf

from disaster_tf import config as config_lib
from disaster_tf.model import encoder as encoder_lib

VOCABULARY_FILE = "wordpiece.txt"  # the encoder's vocabulary, in a model dir


class WordPieceIds(tf.Module):
  """[batch] raw strings -> [batch, length] int64 piece ids: [CLS], the pieces, [SEP], then 0 (padding)."""

  def __init__(self, tokens: Sequence[str], lower_case: bool, length: int):
    super().__init__(name="wordpiece")
    import tensorflow_text  # pylint: disable=import-outside-toplevel  # only encoder models need TF Text's ops
    if tokens[0] != encoder_lib.PAD:
      raise ValueError(f"the WordPiece vocabulary starts with {tokens[0]!r}; expected {encoder_lib.PAD!r} (id 0)")
    self.length = length
    self.cls, self.sep = tokens.index(encoder_lib.CLS), tokens.index(encoder_lib.SEP)
    # -1 for a piece not in the vocabulary: what the WordPiece op reads as "not a piece".
    self.table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
        tf.constant(list(tokens)), tf.range(len(tokens), dtype=tf.int64)), default_value=-1)
    self.tokenizer = tensorflow_text.BertTokenizer(self.table, token_out_type=tf.int64, lower_case=lower_case,
                                                   unknown_token=encoder_lib.UNKNOWN)

  def __call__(self, texts: tf.Tensor) -> tf.Tensor:
    pieces = self.tokenizer.tokenize(texts).merge_dims(-2, -1)[:, :self.length - 2]  # [batch, (pieces)]
    rows = pieces.nrows()
    ends = [tf.fill([rows, 1], tf.constant(i, tf.int64)) for i in (self.cls, self.sep)]
    ids = tf.concat([ends[0], pieces, ends[1]], axis=1)
    return ids.to_tensor(default_value=0, shape=[None, self.length])


def has_pieces(ids: tf.Tensor) -> tf.Tensor:
  """[batch] bool: whether a message has a piece beyond [CLS] and [SEP] (an unknown word counts)."""
  return tf.reduce_sum(tf.cast(ids != 0, tf.int32), axis=-1) > 2


def from_checkpoint(model_config: config_lib.ModelConfig):
  """(vocabulary tokens, encoder shape) of --pretrained_encoder's directory.

  Raises:
    encoder.EncoderError: the checkpoint's files (named), or a --sequence_length it has no positions for.
  """
  shape = encoder_lib.read_shape(model_config.pretrained_encoder)
  if model_config.sequence_length > shape.max_position_embeddings:
    raise encoder_lib.EncoderError(
        f"--sequence_length={model_config.sequence_length}: over the {shape.max_position_embeddings} positions "
        f"{os.path.join(model_config.pretrained_encoder, encoder_lib.CONFIG_FILE)} gives the encoder "
        f"(max_position_embeddings); use --sequence_length={shape.max_position_embeddings} or less")
  return encoder_lib.read_vocabulary(model_config.pretrained_encoder, shape), shape


def save(tokens: Sequence[str], shape: encoder_lib.Shape, model_dir: str) -> None:
  """Writes the vocabulary and the encoder's shape into a model dir, atomically."""
  config_lib.write_text_atomic(os.path.join(model_dir, encoder_lib.SHAPE_FILE), shape.to_json() + "\n")
  config_lib.write_text_atomic(os.path.join(model_dir, VOCABULARY_FILE), "".join(t + "\n" for t in tokens))


def load(model_dir: str):
  """(vocabulary tokens, encoder shape) as `save` wrote them.

  Raises:
    FileNotFoundError: a file is missing; ValueError: the shape file is not the encoder's.
  """
  shape_path, vocabulary_path = (os.path.join(model_dir, name) for name in (encoder_lib.SHAPE_FILE, VOCABULARY_FILE))
  for path in (shape_path, vocabulary_path):
    if not os.path.isfile(path):
      raise FileNotFoundError(f"{path}: no such file; is {model_dir!r} a model dir written by train.py?")
  with open(shape_path, encoding="utf-8") as f:
    try:
      shape = encoder_lib.Shape(**json.load(f))
    except (ValueError, TypeError) as e:
      raise ValueError(f"{shape_path}: not an encoder shape written by train.py ({e})") from None
  with open(vocabulary_path, encoding="utf-8") as f:
    tokens = tuple(line.rstrip("\n") for line in f)
  return tokens, shape
