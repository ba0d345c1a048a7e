"""The networks: a backbone (see ModelConfig.architecture) and one head per category.

Heads output logits; `probabilities` and `decide` turn them into scores and
labels. Losses are computed from logits (`from_logits`), which is the
numerically stable form of the 35 sigmoid heads and the softmax head.
"""

from typing import Dict, Optional, Tuple

import keras
import tensorflow as tf

from disaster_tf import config as config_lib
from disaster_tf import labels

TOKEN_IDS = "token_ids"


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


def build_model(model_config: config_lib.ModelConfig, vocab_size: int) -> keras.Model:
  """Builds the classifier: a backbone, then one head per category.

  Args:
    model_config: the architecture and layer sizes.
    vocab_size: the adapted vocabulary's length (derived from the data, hence
      passed explicitly, never stored in the config).

  Returns:
    A Keras model from the vectorizer's output (int64 [batch, sequence_length]
    ids, or for `linear` a sparse [batch, vocab_size] multi-hot) to a dict of
    logits keyed by category: [batch, 1] for the 35 binary heads and
    [batch, 3] for `related`.
  """
  c = model_config
  if c.architecture == "linear":
    inputs = keras.Input(shape=(vocab_size,), sparse=True, name=TOKEN_IDS)
    features = inputs  # logistic regression: the heads read the bag of n-grams directly
  else:
    inputs = keras.Input(shape=(c.sequence_length,), dtype="int64", name=TOKEN_IDS)
    features = {"cnn_rnn": _cnn_rnn, "bigru": _bigru, "multi_cnn": _multi_cnn}[c.architecture](inputs, c, vocab_size)
  outputs = {name: keras.layers.Dense(labels.num_classes(name) if name == labels.RELATED else 1,
                                      name=f"head_{name}")(features)
             for name in labels.CATEGORIES}
  return keras.Model(inputs, outputs, name=f"disaster_{c.architecture}")


def _cnn_rnn(ids, c: config_lib.ModelConfig, vocab_size: int):
  x = RightAlign(name="right_align")(ids)
  x = keras.layers.Embedding(vocab_size, c.embedding_dim, name="embedding")(x)
  x = keras.layers.Conv1D(c.conv_filters, c.conv_kernel_size, padding="same", activation="relu", name="conv")(x)
  x = keras.layers.MaxPooling1D(c.pool_size, padding="same", name="pool")(x)
  rnn = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[c.rnn]
  x = rnn(c.rnn_units, name=c.rnn)(x)
  return keras.layers.Dropout(c.dropout, name="dropout")(x)


def _bigru(ids, c: config_lib.ModelConfig, vocab_size: int):
  # Reads both directions, so padding position does not matter; pooling over
  # every step keeps a word's signal wherever it sits in the message.
  x = keras.layers.Embedding(vocab_size, c.embedding_dim, name="embedding")(ids)
  x = keras.layers.SpatialDropout1D(c.dropout / 2, name="embedding_dropout")(x)
  x = keras.layers.Bidirectional(keras.layers.GRU(c.rnn_units, return_sequences=True), name="bigru")(x)
  x = keras.layers.Concatenate(name="pool")([keras.layers.GlobalMaxPooling1D(name="max_pool")(x),
                                             keras.layers.GlobalAveragePooling1D(name="mean_pool")(x)])
  return keras.layers.Dropout(c.dropout, name="dropout")(x)


def _multi_cnn(ids, c: config_lib.ModelConfig, vocab_size: int):
  # Kim (2014): n-gram detectors of several widths, each max-pooled over the message.
  x = keras.layers.Embedding(vocab_size, c.embedding_dim, name="embedding")(ids)
  pooled = [keras.layers.GlobalMaxPooling1D(name=f"pool_{width}")(
      keras.layers.Conv1D(c.conv_filters, width, padding="same", activation="relu", name=f"conv_{width}")(x))
            for width in (2, 3, 4, 5)]
  x = keras.layers.Concatenate(name="pool")(pooled)
  return keras.layers.Dropout(c.dropout, name="dropout")(x)


def split_logits(outputs: Dict[str, tf.Tensor]) -> Tuple[tf.Tensor, tf.Tensor]:
  """Returns (binary logits [batch, 35] in BINARY_CATEGORIES order, related logits [batch, 3])."""
  binary = tf.concat([outputs[name] for name in labels.BINARY_CATEGORIES], axis=-1)
  return binary, outputs[labels.RELATED]


def probabilities(outputs: Dict[str, tf.Tensor],
                  has_tokens: Optional[tf.Tensor] = None) -> Tuple[tf.Tensor, tf.Tensor]:
  """Turns head logits into probabilities.

  Args:
    outputs: the model's logits dict.
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
  binary, related = split_logits(outputs)
  related_probs = tf.nn.softmax(related, axis=-1)
  binary_probs = tf.sigmoid(binary)
  # `related` is column 0, the binary categories follow in order.
  scores = tf.concat([related_probs[:, 1:2], binary_probs], axis=-1)
  if has_tokens is not None:  # broadcasting constants: no op beyond serving/allowed_ops.txt
    keep = has_tokens[:, tf.newaxis]
    scores = tf.where(keep, scores, tf.constant(0.0, scores.dtype))
    not_related = tf.constant([[1.0] + [0.0] * (labels.RELATED_CLASSES - 1)], related_probs.dtype)
    related_probs = tf.where(keep, related_probs, not_related)
  return scores, related_probs


def decide(scores: tf.Tensor, related_probabilities: tf.Tensor, thresholds: tf.Tensor) -> tf.Tensor:
  """Turns probabilities into labels: argmax for `related`, a threshold for the rest.

  A score of 0 is never a positive, whatever its threshold (even 0): that is
  what a message with no token scores (see `probabilities`).

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
  return tf.concat([related, binary], axis=-1)
