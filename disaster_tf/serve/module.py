"""What an export holds: `ServingModule`, a `tf.Module` with three signatures, raw text in.

It wraps the training code's own featurizer (`features.Featurizer`: the same `text.standardize`, vocabularies
and lexicon) and the trained Keras model, with the run's thresholds (a `Member`), and the run's language gate:

  serving_default (tensorflow/serving/predict)
    text [batch] string -> scores [batch, 36] float32, labels [batch, 36] int32,
                           classes [batch, 36] string, related_probabilities [batch, 3] float32,
                           and with a language gate: language [batch] string ("english" or "other"),
                           language_score [batch] float32 (P(other)), reads_language [batch] bool (whether
                           this export reads the message's language: false where the gate says "other" and
                           the export reads English only, so that a client needs no metadata to flag it)
  classify (tensorflow/serving/classify)
    inputs [batch] serialized tf.Example with a `text` bytes feature
                        -> classes [batch, 36] string, scores [batch, 36] float32
                        (an Example without `text` is an INVALID_ARGUMENT error naming it)
  explain (tensorflow/serving/predict)
    text [batch] string -> serving_default's outputs, and which words made each category
                           (explain.py: leave-one-word-out): words [batch, 64] string,
                           contributions [batch, 64, 36] float32, top_words [batch, 36, 3] string,
                           top_contributions [batch, 36, 3] float32

A routed export (--route_english) holds two members: each message goes, by the gate, to the English-only
model if it is English and to the multilingual one if not, in the graph (`tf.dynamic_partition`, each member
scoring only its own messages, then `tf.dynamic_stitch`), with each member's own thresholds: one contract, one
version, TF Serving unchanged.

A three-member export (--encoder_member) holds the ensemble and its fine-tuned encoder (`Blend`): each reads the
raw text through its own featurizer (the encoder's WordPiece tokenizer is TF Text's op, in the graph), and
their probabilities are mixed by the weight training chose, then decided at the blend's thresholds.

A message with no token after standardisation (empty, whitespace, control characters, punctuation or English
stop words only) is answered with scores 0, labels 0, related = 0 and related_probabilities (1, 0, 0), whatever
the thresholds: nothing applies.
"""

from typing import Dict, Optional, Tuple, Union

import numpy as np
import tensorflow as tf

from disaster_tf import labels
from disaster_tf.model import features
from disaster_tf.model import language
from disaster_tf.model import networks
from disaster_tf.serve import explain as explain_lib


class Member(tf.Module):
  """One trained model of an export: its Keras model, featurizer and [36] thresholds."""

  def __init__(self, model, featurizer, thresholds: np.ndarray, name: str = "member"):
    super().__init__(name=name)
    # Keras 3 saves each keras.Variable as an object of its own, while the traced function reads the
    # tf.Variable inside it; session-based loaders (TF Serving, saved_model_cli run) then restore the copies and
    # serve uninitialised weights: "Could not find variable head_x/kernel" (keras-team/keras#20095, #19274).
    # So the module tracks the tf.Variables themselves, and holds the Keras model without tracking it.
    object.__setattr__(self, "_model", model)
    self.model_variables = [v.value for v in model.variables]
    self.featurizer = featurizer
    # A variable, so the thresholds live in the export's variables and can be tuned later.
    self.thresholds = tf.Variable(np.asarray(thresholds, np.float32), trainable=False, name="thresholds")

  @property
  def model(self):
    return self._model

  def probabilities(self, text_batch: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    """(scores [batch, 36], related probabilities [batch, 3]) of raw messages."""
    def run():
      inputs = self.featurizer(text_batch)
      # A message with no token is answered "nothing applies" (networks.probabilities).
      return networks.probabilities(self._model(inputs, training=False), features.has_tokens(inputs))

    def empty():  # an LSTM fails on a batch of 0; answer it with empty outputs
      return (tf.zeros([0, labels.NUM_CATEGORIES], tf.float32), tf.zeros([0, labels.RELATED_CLASSES], tf.float32))

    return tf.cond(tf.shape(text_batch)[0] > 0, run, empty)

  def answers(self, text_batch: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(scores, related probabilities, labels at this member's thresholds) of raw messages."""
    scores, related = self.probabilities(text_batch)
    return scores, related, networks.decide(scores, related, self.thresholds)


class Blend(tf.Module):
  """A three-member export's model (--encoder_member): the ensemble's and the encoder's probabilities mixed,
  (1 - weight) and weight (train/members.py chose it on tune), decided at the blend's own [36] thresholds.

  It answers as a `Member` does (`probabilities`, `answers`, `thresholds`), so the module serves it unchanged.
  """

  def __init__(self, ensemble: Member, encoder: Member, weight: float, thresholds: np.ndarray):
    super().__init__(name="blend")
    self.ensemble, self.encoder, self.weight = ensemble, encoder, float(weight)
    self.thresholds = tf.Variable(np.asarray(thresholds, np.float32), trainable=False, name="thresholds")

  def probabilities(self, text_batch: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    """(scores [batch, 36], related probabilities [batch, 3]): each member's from the raw text, mixed; a message
    with no token for the ensemble (stop words only, ...) gets nothing, whatever WordPiece makes of it."""
    first, second = self.ensemble.probabilities(text_batch), self.encoder.probabilities(text_batch)
    scores, related = ((1.0 - self.weight) * a + self.weight * b for a, b in zip(first, second))
    return networks.nothing_applies(scores, related, features.has_tokens(self.ensemble.featurizer(text_batch)))

  def answers(self, text_batch: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(scores, related probabilities, labels at the blend's thresholds) of raw messages."""
    scores, related = self.probabilities(text_batch)
    return scores, related, networks.decide(scores, related, self.thresholds)


class ServingModule(tf.Module):
  """Raw text in, per-category scores and decisions out (see the module docstring)."""

  def __init__(self, member: Union[Member, Blend], gate: Optional[language.LanguageGate] = None,
               english: Optional[Member] = None, english_only: bool = False):
    """Args: the trained model, the run's language gate (if any), a routed run's English-only model (needs the
    gate: English messages go to it, the others to `member`), and whether `member` reads English only (its
    `reads_language` is then false for what the gate calls another language)."""
    super().__init__(name="disaster_classifier")
    if english is not None and gate is None:
      raise ValueError("a routed export needs its language gate: it routes by it")
    if english is not None and english_only:
      raise ValueError("a routed export reads both sides: english_only=True contradicts it")
    self.member, self.gate, self.english, self.english_only = member, gate, english, english_only
    self.category_names = tf.constant(labels.CATEGORIES)

  @property
  def thresholds(self) -> tf.Variable:
    return self.member.thresholds

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
  def predict(self, text_batch: tf.Tensor) -> Dict[str, tf.Tensor]:
    """Scores raw messages: [batch] raw UTF-8 messages (invalid bytes are tolerated) -> the outputs of the
    module docstring."""
    text_batch = one_text_per_row(text_batch)
    language_of = self.gate(text_batch) if self.gate is not None else None
    scores, related, decided = self._answers(text_batch, self._side(language_of))
    out = {"scores": scores, "labels": decided, "related_probabilities": related,
           "classes": tf.tile(self.category_names[tf.newaxis, :], [tf.shape(text_batch)[0], 1])}
    if language_of is not None:
      out["language"], out["language_score"] = language_of
      out["reads_language"] = (tf.equal(language_of[0], language.ENGLISH) if self.english_only
                               else tf.fill(tf.shape(language_of[1]), True))
    return out

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
  def explain(self, text_batch: tf.Tensor) -> Dict[str, tf.Tensor]:
    """predict's outputs, and which words made each category (explain.py): words [batch, 64], contributions
    [batch, 64, 36], top_words and top_contributions [batch, 36, 3]."""
    out = self.predict(text_batch)
    side = self._side((out["language"], out["language_score"]) if self.gate is not None else None)

    def score(texts, sources):  # a message without one of its words is scored on the message's side
      return self._answers(texts, None if side is None else tf.gather(side, sources))[0]

    out.update(explain_lib.explain(one_text_per_row(text_batch), score))
    return out

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
  def classify(self, serialized: tf.Tensor) -> Dict[str, tf.Tensor]:
    """TF Serving's Classify API: serialized tf.Examples with a `text` bytes feature."""
    # No default: an Example without a `text` feature is an error that names it, not an empty message.
    parsed = tf.io.parse_example(serialized, {"text": tf.io.FixedLenFeature([], tf.string)})
    out = self.predict(parsed["text"])
    return {"classes": out["classes"], "scores": out["scores"]}

  def _side(self, language_of) -> Optional[tf.Tensor]:
    """[batch] int32, 0 for English and 1 for the other side, from the gate's (language, score); None unrouted."""
    if self.english is None:
      return None
    return tf.cast(tf.equal(language_of[0], language.OTHER), tf.int32)

  def _answers(self, text_batch: tf.Tensor, side: Optional[tf.Tensor]) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(scores, related, labels): the member's, or by `side` (`_side`) the English member's or the other's."""
    if side is None:
      return self.member.answers(text_batch)
    rows = tf.dynamic_partition(tf.range(tf.shape(text_batch)[0]), side, 2)
    texts = tf.dynamic_partition(text_batch, side, 2)
    english, other = self.english.answers(texts[0]), self.member.answers(texts[1])
    return tuple(tf.dynamic_stitch(rows, [e, o]) for e, o in zip(english, other))


def one_text_per_row(text_batch: tf.Tensor) -> tf.Tensor:
  """`text_batch` checked at run time to be [batch]: TF Serving feeds whatever shape a request sends, and a
  single string instead of a list would otherwise fail deep in the graph ("slice index 0 of dimension 0")."""
  rank = tf.raw_ops.Rank(input=text_batch)  # the op itself: tf.rank folds the signature's static [None] to 1
  check = tf.debugging.Assert(tf.equal(rank, 1), ["text: expected a list of messages ([batch] strings), found "
                                                  "a tensor of rank", rank])
  with tf.control_dependencies([check]):
    return tf.identity(text_batch)
