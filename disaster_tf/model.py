"""The network: embedding -> Conv1D -> max-pool -> LSTM/GRU -> one head per category.

Heads output logits; `probabilities` and `decide` turn them into scores and
labels. Losses are computed from logits (`from_logits`), which is the
numerically stable form of the 35 sigmoid heads and the softmax head.
"""

from typing import Dict, Tuple

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
  """Builds the classifier over token ids.

  Args:
    model_config: layer sizes.
    vocab_size: rows of the embedding; the adapted vocabulary's length (derived
      from the data, hence passed explicitly, never stored in the config).

  Returns:
    A Keras model: int64 [batch, sequence_length] -> dict of logits keyed by
    category, [batch, 1] for the 35 binary heads and [batch, 3] for `related`.
  """
  c = model_config
  ids = keras.Input(shape=(c.sequence_length,), dtype="int64", name=TOKEN_IDS)
  x = RightAlign(name="right_align")(ids)
  x = keras.layers.Embedding(vocab_size, c.embedding_dim, name="embedding")(x)
  x = keras.layers.Conv1D(c.conv_filters, c.conv_kernel_size, padding="same", activation="relu",
                          name="conv")(x)
  x = keras.layers.MaxPooling1D(c.pool_size, padding="same", name="pool")(x)
  rnn = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[c.rnn]
  x = rnn(c.rnn_units, name=c.rnn)(x)
  x = keras.layers.Dropout(c.dropout, name="dropout")(x)
  outputs = {name: keras.layers.Dense(labels.num_classes(name) if name == labels.RELATED else 1,
                                      name=f"head_{name}")(x)
             for name in labels.CATEGORIES}
  return keras.Model(ids, outputs, name="disaster_classifier")


def split_logits(outputs: Dict[str, tf.Tensor]) -> Tuple[tf.Tensor, tf.Tensor]:
  """Returns (binary logits [batch, 35] in BINARY_CATEGORIES order, related logits [batch, 3])."""
  binary = tf.concat([outputs[name] for name in labels.BINARY_CATEGORIES], axis=-1)
  return binary, outputs[labels.RELATED]


def probabilities(outputs: Dict[str, tf.Tensor]) -> Tuple[tf.Tensor, tf.Tensor]:
  """Turns head logits into probabilities.

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
  return scores, related_probs


def decide(scores: tf.Tensor, related_probabilities: tf.Tensor, thresholds: tf.Tensor) -> tf.Tensor:
  """Turns probabilities into labels: argmax for `related`, a threshold for the rest.

  Args:
    scores: [batch, 36] as returned by `probabilities`.
    related_probabilities: [batch, 3].
    thresholds: [36] float32; the `related` entry is unused.

  Returns:
    [batch, 36] int32 labels in CATEGORIES order.
  """
  binary = tf.cast(scores >= thresholds[tf.newaxis, :], tf.int32)[:, 1:]
  related = tf.argmax(related_probabilities, axis=-1, output_type=tf.int32)[:, tf.newaxis]
  return tf.concat([related, binary], axis=-1)
