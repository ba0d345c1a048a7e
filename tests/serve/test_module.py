"""serve/module.py: the export's tf.Module (its signatures are exercised through real exports in
test_savedmodel.py; here what a module refuses to be built from, and the shape check every signature runs)."""

import numpy as np
import pytest
import tensorflow as tf

from disaster_tf.serve import module as module_lib


class _Identity(tf.Module):
  """Stands in for a Member; the module's constructor only holds it."""


def test_a_routed_module_without_a_gate_is_refused():
  with pytest.raises(ValueError, match="a routed export needs its language gate: it routes by it"):
    module_lib.ServingModule(_Identity(), gate=None, english=_Identity())


def test_one_text_per_row_refuses_a_single_string_and_a_matrix():
  check = tf.function(module_lib.one_text_per_row)
  assert check(tf.constant(["a", "b"])).numpy().tolist() == [b"a", b"b"]
  for bad in (tf.constant("one message"), tf.constant([["a"], ["b"]])):
    with pytest.raises(tf.errors.InvalidArgumentError, match="text: expected a list of messages"):
      check(bad)
  assert np.asarray(check(tf.constant([], tf.string))).shape == (0,)
