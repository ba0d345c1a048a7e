"""serve/module.py: the export's tf.Module (its signatures are exercised through real exports in
test_savedmodel.py; here what a module refuses to be built from, and the shape check every signature runs)."""

import numpy as np
import pytest
import tensorflow as tf

from disaster_tf import labels
from disaster_tf.model import language
from disaster_tf.serve import module as module_lib


class _Identity(tf.Module):
  """Stands in for a Member; the module's constructor only holds it."""


class _Member(tf.Module):
  """A member whose every score is `value`: which member answered a message shows in its scores."""

  def __init__(self, value: float):
    super().__init__()
    self.value = value

  def answers(self, text_batch):
    n = tf.shape(text_batch)[0]
    scores = tf.fill([n, labels.NUM_CATEGORIES], self.value)
    return scores, tf.fill([n, labels.RELATED_CLASSES], 1 / 3), tf.zeros([n, labels.NUM_CATEGORIES], tf.int32)


def _gate(text_batch):
  """A stand-in gate: a text with `dlo` is the other side."""
  other = tf.strings.regex_full_match(text_batch, ".*dlo.*")
  return tf.where(other, language.OTHER, language.ENGLISH), tf.cast(other, tf.float32)


TEXTS = tf.constant(["we need water", "nou bezwen dlo", "fire"])


@pytest.mark.parametrize("english_only, routed, reads", [
    (True, False, [True, False, True]),  # an English-only export: it cannot read the Creole message
    (False, False, [True, True, True]),  # a multilingual one
    (False, True, [True, True, True]),  # a routed one
])
def test_reads_language_says_whether_the_export_reads_each_message(english_only, routed, reads):
  module = module_lib.ServingModule(_Member(0.25), _gate, _Member(0.75) if routed else None,
                                    english_only=english_only)
  out = module.predict(TEXTS)
  assert out["reads_language"].numpy().tolist() == reads
  expected = [0.75, 0.25, 0.75] if routed else [0.25] * 3  # routed: English to the English member
  np.testing.assert_allclose(out["scores"].numpy()[:, 0], expected)


def test_a_routed_module_without_a_gate_is_refused():
  with pytest.raises(ValueError, match="a routed export needs its language gate: it routes by it"):
    module_lib.ServingModule(_Identity(), gate=None, english=_Identity())


def test_a_routed_module_that_says_it_reads_english_only_is_refused():
  with pytest.raises(ValueError, match="a routed export reads both sides: english_only=True contradicts it"):
    module_lib.ServingModule(_Identity(), gate=_Identity(), english=_Identity(), english_only=True)


def test_one_text_per_row_refuses_a_single_string_and_a_matrix():
  check = tf.function(module_lib.one_text_per_row)
  assert check(tf.constant(["a", "b"])).numpy().tolist() == [b"a", b"b"]
  for bad in (tf.constant("one message"), tf.constant([["a"], ["b"]])):
    with pytest.raises(tf.errors.InvalidArgumentError, match="text: expected a list of messages"):
      check(bad)
  assert np.asarray(check(tf.constant([], tf.string))).shape == (0,)
