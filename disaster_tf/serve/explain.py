"""Which words made each category: leave-one-word-out explanations, computed in the export's graph.

A message's words are its tokens as sent, separated where the model
separates them too (whitespace, control characters such as NUL or ESC,
Unicode's line, paragraph and format separators), with the punctuation and
symbols at their edges left out (`Water!` is shown as `Water`), so a word
shown is always a piece of the message and never holds a control character. For each
distinct word (words are compared case-folded; the first MAX_WORDS of the
message's first MAX_TOKENS tokens), the message is scored again without it
(every occurrence at once) by the same featurizer and model, and the word's
contribution to a category is

    score(message) - score(message without the word)      (in [-1, 1])

where `score` is what the export answers (an ensemble's: the mean of its
members' probabilities). What that is, exactly:

  - Exact for what it says, for every model: the score the served model
    gives the message without the word, through the same standardisation,
    lexicon and vocabularies (a Creole word takes its English partners with
    it). No gradient is involved, so the export holds forward ops only and
    TF Serving answers it like `serving_default`.
  - Not an additive split of the score. For the ensemble's linear member
    alone an additive split exists (its TF-IDF features times its weights);
    the CNN member has none (gradient x input would be a first-order
    approximation). Leave-one-out measures the model as served instead, and
    pays for it where two words each suffice: "water" and "dlo" (which the
    lexicon reads as water) in one message each contribute little, because
    the other still carries the category. A category with no word above 0
    is one no single word decides.

The `explain` signature (savedmodel.py) returns, besides predict's outputs,
`words` [batch, MAX_WORDS] (padded with ""), `contributions` [batch,
MAX_WORDS, 36] (0 for padding), and for each category its TOP_WORDS best
words: `top_words` [batch, 36, TOP_WORDS] and `top_contributions` (a word
only where its contribution is above 0, else "": no further word raised the
score).
"""

from typing import Callable, Dict

import tensorflow as tf

from disaster_tf import labels

MAX_WORDS = 64  # distinct words explained per message: 99% of the data's messages have at most 66 tokens
MAX_TOKENS = 256  # the tokens words are taken from (later ones still count in every score); bounds the [n, n] match
TOP_WORDS = 3  # words per category in the answer: enough to see why, few enough to read on a row
# Punctuation and symbols at a token's edges are not part of its word ("water," "#help" "(Leogane)").
_EDGES = r"^[\pP\pS]+|[\pP\pS]+$"
# What separates words besides ASCII whitespace, as text.standardize separates them: control characters (NUL,
# ESC of an ANSI sequence), every Unicode space and line or paragraph separator, and format characters.
_SEPARATORS = r"[\p{Cc}\p{Z}\p{Cf}]+"

# (texts [n] strings, sources [n] int64: the message of the batch each text is made from) -> [n, 36] scores. A
# routed export scores every text at its source message's side, so that a word's contribution is the word's,
# never a switch of model.
ScoreFn = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


def explain(text_batch: tf.Tensor, score: ScoreFn) -> Dict[str, tf.Tensor]:
  """Leave-one-word-out contributions of each message's words to each category's score.

  Args:
    text_batch: [batch] raw messages (invalid UTF-8 bytes read as U+FFFD).
    score: the export's scoring of [n] raw strings, each made from the message of `text_batch` its [n] int64
      source names -> [n, 36] scores.

  Returns:
    words [batch, MAX_WORDS] string, contributions [batch, MAX_WORDS, 36]
    float32, top_words [batch, 36, TOP_WORDS] string, top_contributions
    [batch, 36, TOP_WORDS] float32 (see the module docstring).
  """
  text_batch = tf.strings.unicode_transcode(text_batch, "UTF-8", "UTF-8", errors="replace")
  tokens = tf.strings.split(tf.strings.regex_replace(text_batch, _SEPARATORS, " "))  # [batch, (tokens)]
  shown = tf.ragged.map_flat_values(tf.strings.regex_replace, tokens, _EDGES, "")
  keys = tf.ragged.map_flat_values(tf.strings.lower, shown, encoding="utf-8")
  words, word_keys = _distinct_words(shown, keys)  # [batch, (words)] each
  rows = word_keys.value_rowids()  # the message of each word: [words]
  # Each word's message without it: its tokens whose key differs from the word's.
  tokens_of, keys_of = tf.gather(tokens, rows), tf.gather(keys, rows)  # [words, (tokens)]
  other = keys_of.flat_values != tf.gather(word_keys.flat_values, keys_of.value_rowids())
  without = tf.strings.reduce_join(tf.ragged.boolean_mask(tokens_of, keys_of.with_flat_values(other)),
                                   axis=-1, separator=" ")  # [words]
  # The message itself is scored joined the same way, so that a difference is the word's alone.
  whole = tf.strings.reduce_join(tokens, axis=-1, separator=" ")  # [batch]
  batch = tf.shape(text_batch, out_type=tf.int64)[0]
  sources = tf.concat([tf.range(batch), rows], axis=0)  # the message each scored text is made from
  scores = score(tf.concat([whole, without], axis=0), sources)  # [batch + words, 36]
  flat = tf.gather(scores[:batch], rows) - scores[batch:]  # [words, 36]
  contributions = word_keys.with_flat_values(flat).to_tensor(
      0.0, shape=[None, MAX_WORDS, labels.NUM_CATEGORIES])  # [batch, MAX_WORDS, 36]
  words = words.to_tensor("", shape=[None, MAX_WORDS])
  top, index = tf.math.top_k(tf.transpose(contributions, [0, 2, 1]), k=TOP_WORDS)  # [batch, 36, TOP_WORDS]
  raised = tf.where(top > 0, tf.gather(words, index, batch_dims=1), "")  # a word that did not raise it is no reason
  return {"words": words, "contributions": contributions, "top_words": raised, "top_contributions": top}


def _distinct_words(shown: tf.RaggedTensor, keys: tf.RaggedTensor):
  """The first occurrence of each distinct non-empty key among the first MAX_TOKENS tokens, the first MAX_WORDS.

  Returns:
    (words as shown, their keys): [batch, (words)] each.
  """
  first = keys[:, :MAX_TOKENS].to_tensor("")  # [batch, n]
  n = tf.shape(first)[1]
  same = tf.equal(first[:, :, tf.newaxis], first[:, tf.newaxis, :])  # [batch, n, n]: token i's key is token j's
  earlier = tf.range(n)[tf.newaxis, :] < tf.range(n)[:, tf.newaxis]  # [n, n]: j before i
  seen = tf.reduce_any(tf.logical_and(same, earlier[tf.newaxis]), axis=-1)  # [batch, n]
  new = tf.logical_and(tf.logical_not(seen), first != "")
  new = tf.RaggedTensor.from_tensor(new, lengths=tf.minimum(keys.row_lengths(), tf.cast(n, tf.int64)))
  pick = lambda x: tf.ragged.boolean_mask(x[:, :MAX_TOKENS], new)[:, :MAX_WORDS]  # noqa: E731
  return pick(shown), pick(keys)
