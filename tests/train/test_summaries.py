"""TensorBoard summaries written with core TF: what the scalar and PR-curve plugins read."""

import numpy as np
import tensorflow as tf

from disaster_tf.train import summaries


def test_pr_counts_at_each_threshold():
  truth = np.array([1, 0, 1, 0])
  scores = np.array([0.9, 0.6, 0.4, 0.1])
  counts = summaries.pr_counts(truth, scores, num_thresholds=3)  # thresholds 0, 0.5, 1
  np.testing.assert_array_equal(counts[:4], [[2, 1, 0], [2, 1, 0], [0, 1, 2], [0, 1, 2]])  # TP, FP, TN, FN
  np.testing.assert_allclose(counts[4], [0.5, 0.5, 0.0])  # precision (0 where nothing is predicted)
  np.testing.assert_allclose(counts[5], [1.0, 0.5, 0.0])  # recall


def test_the_plugins_metadata_is_what_tensorboard_reads(tmp_path):
  with tf.summary.create_file_writer(str(tmp_path)).as_default():
    summaries.scalar("loss", 1.5, step=3)
    summaries.pr_curve("pr/water", np.array([1, 0]), np.array([0.8, 0.2]), step=3, num_thresholds=200)
  found = {}
  for path in tmp_path.iterdir():
    for event in tf.compat.v1.train.summary_iterator(str(path)):
      for value in event.summary.value:
        found[value.tag] = value.metadata.plugin_data
  assert found["loss"].plugin_name == "scalars"
  # PrCurvePluginData: field 2 (num_thresholds) as a varint; 200 takes two bytes.
  assert found["pr/water"].plugin_name == "pr_curves" and found["pr/water"].content == b"\x10\xc8\x01"
