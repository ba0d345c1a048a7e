"""The networks: a backbone (see ModelConfig.architecture) and one head per category.

Heads output logits; `probabilities` and `decide` turn them into scores and
labels. Losses are computed from logits (`from_logits`), which is the
numerically stable form of the 35 sigmoid heads and the softmax head.
"""

import contextlib
from typing import Dict, List, Mapping, Optional, Tuple

import keras
import tensorflow as tf

from disaster_tf import config as config_lib
from disaster_tf import labels
from disaster_tf.model import encoder as encoder_lib
from disaster_tf.model import features

# The network's inputs, named and built from raw text by features.py.
TOKEN_IDS, WORD_NGRAMS, CHAR_NGRAMS = features.TOKEN_IDS, features.WORD_NGRAMS, features.CHAR_NGRAMS
ENCODER = "encoder"  # the encoder model's pretrained layer (trainer.initialise assigns its weights)
input_names = features.input_names

# A member's logits: {category: [batch, 1], or [batch, 3] for `related`}.
Heads = Dict[str, tf.Tensor]
# The model's output: every member's heads in one flat dict, keyed by `output_key` (flat, not a list per member,
# because Keras numbers a model's layers in checkpoints by the order of its flattened outputs: this order is the
# one every checkpoint written so far has). Read it with `members`, never by key.
Outputs = Dict[str, tf.Tensor]
# The members of each architecture, in order: each has its own heads and loss, and the scores are their mean.
# The ensemble's second member is the linear TF-IDF model; every other architecture is one network.
ENSEMBLE_MEMBERS = ("network", "linear")


def output_key(member: int, category: str) -> str:
  """The key of member number `member`'s head for `category` in the model's output dict."""
  return category if member == 0 else f"{ENSEMBLE_MEMBERS[member]}/{category}"


class RightAlign(keras.layers.Layer):
  """Moves each row's padding from the end to the front: [5 7 0 0] -> [0 0 5 7].

  TextVectorization pads at the end; an RNN without masking that reads padding
  last forgets the message before its final state is taken (the reference
  article padded at the front for that reason). Pure index arithmetic, so it
  runs under XLA and in TF Serving.
  """

  def call(self, token_ids):
    length = tf.shape(token_ids)[1]
    used = tf.reduce_sum(tf.cast(token_ids != 0, tf.int32), axis=1, keepdims=True)  # [batch, 1]
    # Output position j takes input position (j - pads) mod length, pads = length - used.
    index = tf.math.floormod(tf.range(length)[tf.newaxis, :] - (length - used), length)
    return tf.gather(token_ids, index, batch_dims=1)


def build_model(model_config: config_lib.ModelConfig, input_sizes: Mapping[str, int],
                precision: str = "float32", encoder_shape: Optional[encoder_lib.Shape] = None) -> keras.Model:
  """Builds the classifier: a backbone, then one head per category.

  Args:
    model_config: the architecture and layer sizes.
    precision: the Keras dtype policy of the backbone ("float32",
      "mixed_bfloat16", "mixed_float16"; see precision.py). The heads, the
      TF-IDF part and every variable stay float32, so the logits are float32
      whatever the backbone computes in.
    input_sizes: the width of each input `input_names` gives, i.e.
      its vocabulary's length (derived from the data, hence passed
      explicitly, never stored in the config).
    encoder_shape: --model=encoder's network (its vocabularies' ENCODER entry).

  Returns:
    A Keras model from the featurizer's dict of inputs (int64 [batch,
    sequence_length] `token_ids`; sparse float32 [batch, V] TF-IDF n-grams)
    its members' logits (`members` reads them): for each, [batch, 1] per
    binary head and [batch, 3] for `related`. An ensemble has two members
    (multi_cnn's heads, then the linear model's: `ENSEMBLE_MEMBERS`), each
    trained with its own loss; every other architecture has one.
  """
  c = model_config
  if sorted(input_sizes) != sorted(input_names(c)):
    raise ValueError(f"--model={c.architecture} reads inputs {', '.join(input_names(c))}; given sizes for "
                     f"{', '.join(input_sizes) or 'none'}")
  inputs = {name: _input(name, input_sizes[name], c) for name in input_names(c)}
  tfidf = [inputs[name] for name in (WORD_NGRAMS, CHAR_NGRAMS) if name in inputs]
  if c.architecture == "linear":
    heads = [_heads_from_columns(_linear_columns(tfidf, "linear", c))]
  elif c.architecture == "encoder":
    if encoder_shape is None:
      raise ValueError("--model=encoder: no encoder shape given (the vocabularies' encoder entry)")
    with _dtype_policy(precision):
      pooled = encoder_lib.Encoder(encoder_shape, name=ENCODER)(inputs[features.WORDPIECE_IDS])
    heads = [_dense_heads(keras.layers.Dropout(c.dropout, name="dropout")(pooled))]
  else:
    backbone = {"cnn_rnn": _cnn_rnn, "bigru": _bigru, "multi_cnn": _multi_cnn,
                "ensemble": _multi_cnn, "wide_deep": _multi_cnn}[c.architecture]
    with _dtype_policy(precision):
      pooled = backbone(inputs[TOKEN_IDS], c, input_sizes[TOKEN_IDS])
    deep = _dense_heads(pooled)
    heads = [deep]
    if c.architecture == "wide_deep":  # one logit per class: the deep heads' plus the linear part's
      wide = _heads_from_columns(_linear_columns(tfidf, "wide", c))
      heads = [{name: keras.layers.Add(dtype="float32", name=f"sum_{name}")([deep[name], wide[name]])
                for name in deep}]
    elif c.architecture == "ensemble":  # a second member beside the first, with its own heads
      heads.append(_heads_from_columns(_linear_columns(tfidf, "linear", c)))
  outputs = {output_key(m, name): logits for m, member in enumerate(heads) for name, logits in member.items()}
  return keras.Model(inputs, outputs, name=f"disaster_{c.architecture}")


def _dense_heads(pooled) -> Dict[str, tf.Tensor]:
  return {name: keras.layers.Dense(labels.num_classes(name) if name == labels.RELATED else 1, dtype="float32",
                                   name=f"head_{name}")(pooled) for name in labels.CATEGORIES}


@contextlib.contextmanager
def _dtype_policy(name: str):
  """Layers built inside compute in `name`'s dtype (Keras reads the global policy when a layer is made)."""
  previous = keras.config.dtype_policy()
  keras.config.set_dtype_policy(name)
  try:
    yield
  finally:
    keras.config.set_dtype_policy(previous)


def _input(name: str, size: int, c: config_lib.ModelConfig):
  if name in (TOKEN_IDS, features.WORDPIECE_IDS):
    return keras.Input(shape=(c.sequence_length,), dtype="int64", name=name)
  return keras.Input(shape=(size,), sparse=True, name=name)


def _linear_columns(tfidf_inputs, prefix: str, c: config_lib.ModelConfig):
  """[batch, 38] logits, a linear function of the sparse inputs: every head's classes side by side.

  Logistic regression's weights W are `linear_lr_multiplier` times the trained variables V, so that
  Adam moves W that many times faster than the deep part (Adam's step is about the rate whatever the
  gradient's scale). They start at 0, as a convex model may, and W carries the L2 penalty
  `linear_l2` * sum(W^2) (in `model.losses`, added by the training step); the bias is not penalised,
  as in scikit-learn's default solver.
  """
  columns = sum(labels.num_classes(name) if name == labels.RELATED else 1 for name in labels.CATEGORIES)
  scale = c.linear_lr_multiplier
  regularizer = keras.regularizers.L2(c.linear_l2 * scale ** 2) if c.linear_l2 else None  # on W = scale * V
  parts = [keras.layers.Dense(columns, use_bias=i == 0, kernel_initializer="zeros", kernel_regularizer=regularizer,
                              dtype="float32", name=f"{prefix}_{x.name}")(x)
           for i, x in enumerate(tfidf_inputs)]
  logits = parts[0] if len(parts) == 1 else keras.layers.Add(dtype="float32", name=f"{prefix}_sum")(parts)
  return keras.layers.Rescaling(scale, dtype="float32", name=f"{prefix}_logits")(logits)


def _heads_from_columns(columns) -> Dict[str, tf.Tensor]:
  """Cuts [batch, 38] logits into the heads' dict, in CATEGORIES order ([batch, 3] for `related`)."""
  heads, start = {}, 0
  for name in labels.CATEGORIES:
    width = labels.num_classes(name) if name == labels.RELATED else 1
    heads[name] = columns[:, start:start + width]
    start += width
  return heads


EMBEDDING = "embedding"  # the sequence backbones' embedding layer (vectors.py initialises it)


def _embedding(c: config_lib.ModelConfig, vocab_size: int) -> keras.layers.Embedding:
  return keras.layers.Embedding(vocab_size, c.embedding_dim, trainable=not c.freeze_vectors, name=EMBEDDING)


def _cnn_rnn(ids, c: config_lib.ModelConfig, vocab_size: int):
  x = RightAlign(name="right_align")(ids)
  x = _embedding(c, vocab_size)(x)
  x = keras.layers.Conv1D(c.conv_filters, c.conv_kernel_size, padding="same", activation="relu", name="conv")(x)
  x = keras.layers.MaxPooling1D(c.pool_size, padding="same", name="pool")(x)
  rnn = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[c.rnn]
  x = rnn(c.rnn_units, name=c.rnn)(x)
  return keras.layers.Dropout(c.dropout, name="dropout")(x)


def _bigru(ids, c: config_lib.ModelConfig, vocab_size: int):
  # Reads both directions, so padding position does not matter; pooling over
  # every step keeps a word's signal wherever it sits in the message.
  x = _embedding(c, vocab_size)(ids)
  x = keras.layers.SpatialDropout1D(c.dropout / 2, name="embedding_dropout")(x)
  x = keras.layers.Bidirectional(keras.layers.GRU(c.rnn_units, return_sequences=True), name="bigru")(x)
  x = keras.layers.Concatenate(name="pool")([keras.layers.GlobalMaxPooling1D(name="max_pool")(x),
                                             keras.layers.GlobalAveragePooling1D(name="mean_pool")(x)])
  return keras.layers.Dropout(c.dropout, name="dropout")(x)


def _multi_cnn(ids, c: config_lib.ModelConfig, vocab_size: int):
  # Kim (2014): n-gram detectors of several widths, each max-pooled over the message.
  x = _embedding(c, vocab_size)(ids)
  pooled = [keras.layers.GlobalMaxPooling1D(name=f"pool_{width}")(
      keras.layers.Conv1D(c.conv_filters, width, padding="same", activation="relu", name=f"conv_{width}")(x))
            for width in (2, 3, 4, 5)]
  x = keras.layers.Concatenate(name="pool")(pooled)
  return keras.layers.Dropout(c.dropout, name="dropout")(x)


def linear_layers(model: keras.Model) -> List[keras.layers.Layer]:
  """The weighted layers of a model's linear member (`linear`, or an ensemble's second), by their names."""
  return [layer for layer in model.layers if layer.name.startswith("linear_") and layer.weights]


def members(outputs: Outputs) -> List[Heads]:
  """The model's output as its members' logits dicts, each keyed by category, in order (one for most models)."""
  count = len(outputs) // labels.NUM_CATEGORIES
  return [{name: outputs[output_key(m, name)] for name in labels.CATEGORIES} for m in range(count)]


def split_logits(outputs: Heads) -> Tuple[tf.Tensor, tf.Tensor]:
  """Returns (binary logits [batch, 35] in BINARY_CATEGORIES order, related logits [batch, 3])."""
  binary = tf.concat([outputs[name] for name in labels.BINARY_CATEGORIES], axis=-1)
  return binary, outputs[labels.RELATED]


def probabilities(outputs: Outputs,
                  has_tokens: Optional[tf.Tensor] = None) -> Tuple[tf.Tensor, tf.Tensor]:
  """Turns head logits into probabilities.

  Args:
    outputs: the model's output (every member's logits: see `members`).
    has_tokens: [batch] bool (`text.has_tokens`), or None. A message with no
      token (empty, whitespace, punctuation, stop words only) gets scores 0
      and related probabilities (1, 0, 0), i.e. not related, whatever the
      network says of an all-padding input; training's evaluation and the
      export apply the same rule.

  Returns:
    scores: [batch, 36] float32 in CATEGORIES order; P(category applies), and
      for `related` P(related = 1).
    related_probabilities: [batch, 3] float32.
  """
  # An ensemble's probabilities are its members' mean (a single model: its own).
  related_probs, binary_probs = [], []
  for member in members(outputs):
    binary, related = split_logits(member)
    related_probs.append(tf.nn.softmax(related, axis=-1))
    binary_probs.append(tf.sigmoid(binary))
  related_probs, binary_probs = _mean(related_probs), _mean(binary_probs)
  # `related` is column 0, the binary categories follow in order.
  scores = tf.concat([related_probs[:, 1:2], binary_probs], axis=-1)
  return (scores, related_probs) if has_tokens is None else nothing_applies(scores, related_probs, has_tokens)


def nothing_applies(scores: tf.Tensor, related_probabilities: tf.Tensor,
                    has_tokens: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
  """Scores 0 and related probabilities (1, 0, 0) where `has_tokens` ([batch] bool) is false: the answer to a
  message with no token (see `probabilities`); a three-member export applies it to its mix too."""
  keep = has_tokens[:, tf.newaxis]  # broadcasting constants: no op beyond serving/allowed_ops.txt
  scores = tf.where(keep, scores, tf.constant(0.0, scores.dtype))
  not_related = tf.constant([[1.0] + [0.0] * (labels.RELATED_CLASSES - 1)], related_probabilities.dtype)
  return scores, tf.where(keep, related_probabilities, not_related)


def _mean(tensors: List[tf.Tensor]) -> tf.Tensor:
  return tensors[0] if len(tensors) == 1 else tf.add_n(tensors) / float(len(tensors))


def decide(scores: tf.Tensor, related_probabilities: tf.Tensor, thresholds: tf.Tensor) -> tf.Tensor:
  """Turns probabilities into labels: argmax for `related`, a threshold for the rest.

  A score of 0 is never a positive, whatever its threshold (even 0): that is
  what a message with no token scores (see `probabilities`). `related` is
  never 0 when another category is decided 1, as it never is in the data.

  Args:
    scores: [batch, 36] as returned by `probabilities`.
    related_probabilities: [batch, 3].
    thresholds: [36] float32; the `related` entry is unused.

  Returns:
    [batch, 36] int32 labels in CATEGORIES order.
  """
  positive = tf.logical_and(scores >= thresholds[tf.newaxis, :], scores > 0)
  binary = tf.cast(positive, tf.int32)[:, 1:]
  related = tf.argmax(related_probabilities, axis=-1, output_type=tf.int32)[:, tf.newaxis]
  # A message with a category is related (the data has no exception): never `related` 0 beside a category.
  related = tf.where(tf.reduce_any(positive[:, 1:], axis=-1, keepdims=True), tf.maximum(related, 1), related)
  return tf.concat([related, binary], axis=-1)
