"""The compiled inner loop: the step the loop runs, evaluation, predictions."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from disaster_tf import config as config_lib
from disaster_tf import labels
from disaster_tf.model import encoder as encoder_lib
from disaster_tf.model import features
from disaster_tf.model import losses
from disaster_tf.model import networks
from disaster_tf.train import steps
from tests import fixtures
from tests.model import test_encoder


def tiny_config(architecture="cnn_rnn", sequence_length=5, max_tokens=13):
  """A tiny model config; TF-IDF inputs keep every n-gram (min_df 1) and add character 2-3-grams."""
  return config_lib.ModelConfig(architecture=architecture, max_tokens=max_tokens, sequence_length=sequence_length,
                                embedding_dim=4, conv_filters=4, conv_kernel_size=2, rnn_units=4, dropout=0.0,
                                min_df=1, char_ngrams=(2, 3))


def tiny_model_and_optimizer(learning_rate, cfg, input_sizes, encoder_shape=None):
  """The model `cfg` describes over inputs of `input_sizes`, and its built optimizer."""
  model = networks.build_model(cfg, input_sizes, encoder_shape=encoder_shape)
  optimizer = keras.optimizers.Adam(learning_rate)
  optimizer.build(model.trainable_variables)
  return model, optimizer


def labelled_batch(cfg, rows, vocabularies=None):
  """Featurises the rows' messages with vocabularies adapted on them (at most cfg.max_tokens words)."""
  messages = [r["message"] for r in rows]
  vocabularies = vocabularies or features.adapt(cfg, tf.data.Dataset.from_tensor_slices(messages))
  featurizer = features.Featurizer(cfg, vocabularies)
  y = np.array([[r["labels"][c] for c in labels.CATEGORIES] for r in rows], np.int32)
  return featurizer, featurizer(tf.constant(messages)), tf.constant(y)


def random_ids(seed, rows, length=5, vocab=13):
  return {features.TOKEN_IDS: np.random.default_rng(seed).integers(0, vocab, size=(rows, length))}


ID_SPEC = {features.TOKEN_IDS: tf.TensorSpec([None, 5], tf.int64)}


def test_one_compiled_step_of_the_loops_step_on_a_13_word_vocabulary_changes_every_weight():
  rows = fixtures.synthetic_rows(8, seed=3)
  cfg = tiny_config()
  featurizer, ids, y = labelled_batch(cfg, rows)
  model, optimizer = tiny_model_and_optimizer(0.1, cfg, featurizer.sizes)
  assert featurizer.sizes == {features.TOKEN_IDS: 13} and int(tf.reduce_sum(y)) > 8  # real keyword labels
  class_weights = tf.constant(losses.class_weight_table("balanced", losses.label_counts(y.numpy()), 50.0))
  train_steps = steps.make_train_steps(model, optimizer, tf.distribute.get_strategy(), class_weights,
                                       tf.ones([36]), global_batch_size=8)
  before = [v.numpy().copy() for v in model.trainable_variables]
  loss, components = train_steps(iter(tf.data.Dataset.from_tensors((ids, y))), tf.constant(1))
  assert np.isfinite(float(loss)) and components.shape == (36,)
  assert float(tf.reduce_sum(components)) == pytest.approx(float(loss), rel=1e-5)
  # The step's loss is the combined loss of the weights it started from.
  model_after = [v.numpy() for v in model.trainable_variables]
  for v, b in zip(model.trainable_variables, before):
    v.assign(b)
  expected, _ = losses.combined_loss(y, model(ids, training=True), class_weights, tf.ones([36]), 8)
  assert float(loss) == pytest.approx(float(expected), rel=1e-5)
  changed = [not np.allclose(b, a) for b, a in zip(before, model_after)]
  assert all(changed), [v.name for v, c in zip(model.trainable_variables, changed) if not c]
  assert int(optimizer.iterations.numpy()) == 1


def test_a_paired_step_trains_on_both_sides_and_its_loss_counts_the_originals_where_present():
  rows = fixtures.synthetic_rows(8, seed=3)
  cfg = tiny_config(max_tokens=40)
  texts = [r["message"] for r in rows] + [r["original"] for r in rows]
  vocabularies = features.adapt(cfg, tf.data.Dataset.from_tensor_slices(texts))
  featurizer, ids, y = labelled_batch(cfg, rows, vocabularies)
  sent = featurizer(tf.constant([r["original"] if k % 2 else "" for k, r in enumerate(rows)]))
  present = tf.constant([float(k % 2) for k in range(8)])
  model, optimizer = tiny_model_and_optimizer(0.1, cfg, featurizer.sizes)
  pairing = losses.Pairing(original_weight=2.0, consistency=1.0)
  train_steps = steps.make_train_steps(model, optimizer, tf.distribute.get_strategy(), tf.ones([36, 3]),
                                       tf.ones([36]), global_batch_size=8, pairing=pairing)
  before = [v.numpy().copy() for v in model.trainable_variables]
  expected, _ = losses.combined_loss(y, model(ids, training=True), tf.ones([36, 3]), tf.ones([36]), 8,
                                     losses.Pair(model(sent, training=True), present, pairing))
  plain, _ = losses.combined_loss(y, model(ids, training=True), tf.ones([36, 3]), tf.ones([36]), 8)
  loss, _ = train_steps(iter(tf.data.Dataset.from_tensors((ids, y, sent, present))), tf.constant(1))
  assert float(loss) == pytest.approx(float(expected), rel=1e-5) and float(loss) > float(plain)
  assert all(not np.allclose(b, v.numpy()) for b, v in zip(before, model.trainable_variables))


@pytest.mark.parametrize("architecture", config_lib.ARCHITECTURES)
def test_every_backbone_trains_one_step_of_the_loops_step(architecture, tmp_path):
  rows = fixtures.synthetic_rows(6, seed=5)
  encoder = architecture == "encoder"
  cfg = tiny_config("multi_cnn" if encoder else architecture, sequence_length=6, max_tokens=30)
  vocabularies = None
  if encoder:  # a tiny checkpoint whose vocabulary spells the messages (tests/test_encoder.py)
    cfg = dataclasses.replace(cfg, architecture="encoder",
                              pretrained_encoder=test_encoder.write_checkpoint(tmp_path / "bert"))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + sorted({w.strip("!").lower() for r in rows for w in
                                                          r["message"].split()}) + ["!"]
    vocabularies = {features.WORDPIECE_IDS: features.Vocabulary(tuple(vocab)),
                    features.ENCODER: dataclasses.replace(encoder_lib.read_shape(cfg.pretrained_encoder),
                                                          vocab_size=len(vocab))}
  featurizer, inputs, y = labelled_batch(cfg, rows, vocabularies)
  assert set(inputs) == set(features.input_names(cfg))
  model, optimizer = tiny_model_and_optimizer(0.05, cfg, featurizer.sizes,  # one TF-IDF weight per n-gram
                                              (vocabularies or {}).get(features.ENCODER))
  train_steps = steps.make_train_steps(model, optimizer, tf.distribute.get_strategy(), tf.ones([36, 3]),
                                       tf.ones([36]), 6)
  before = [v.numpy().copy() for v in model.trainable_variables]
  loss, _ = train_steps(iter(tf.data.Dataset.from_tensors((inputs, y))), tf.constant(1))
  assert np.isfinite(float(loss))
  assert all(not np.allclose(b, v.numpy()) for b, v in zip(before, model.trainable_variables))


def test_several_steps_per_call_equal_the_same_steps_one_call_each():
  rows = fixtures.synthetic_rows(32, seed=1)
  results = []
  for per_call in (1, 4):
    keras.utils.set_random_seed(0)
    cfg = tiny_config(max_tokens=20)
    featurizer, ids, y = labelled_batch(cfg, rows)
    model, optimizer = tiny_model_and_optimizer(0.05, cfg, featurizer.sizes)
    train_steps = steps.make_train_steps(model, optimizer, tf.distribute.get_strategy(), tf.ones([36, 3]),
                                         tf.ones([36]), 8)
    iterator = iter(tf.data.Dataset.from_tensor_slices((ids, y)).batch(8))
    total = sum(float(train_steps(iterator, tf.constant(per_call))[0]) for _ in range(4 // per_call))
    results.append((total, [v.numpy() for v in model.trainable_variables]))
  assert results[0][0] == pytest.approx(results[1][0], rel=1e-5)
  for a, b in zip(results[0][1], results[1][1]):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_train_and_eval_functions_trace_a_bounded_number_of_times():
  model, optimizer = tiny_model_and_optimizer(0.01, tiny_config(), {features.TOKEN_IDS: 13})
  train_steps = steps.make_train_steps(model, optimizer, tf.distribute.get_strategy(), tf.ones([36, 3]),
                                       tf.ones([36]), 4)
  eval_step = steps.make_eval_step(model, ID_SPEC, tf.ones([36, 3]), tf.ones([36]))
  ids = random_ids(0, 40)
  ds = tf.data.Dataset.from_tensor_slices((ids, np.zeros((40, 36), np.int32))).batch(4, drop_remainder=True)
  for _ in range(3):  # a new iterator each epoch, and a varying number of steps per call
    iterator = iter(ds)
    for count in (1, 3, 6):
      train_steps(iterator, tf.constant(count))
  assert train_steps.experimental_get_tracing_count() == 1
  many = np.tile(ids[features.TOKEN_IDS], (2, 1))  # 80 rows
  for batch in (1, 2, 7, 64, 3):
    eval_step({features.TOKEN_IDS: tf.constant(many[:batch])}, tf.zeros([batch, 36], tf.int32))
  assert eval_step.experimental_get_tracing_count() == 1


def test_predict_concatenates_batches_and_decides_like_the_export():
  model, _ = tiny_model_and_optimizer(0.01, tiny_config(), {features.TOKEN_IDS: 13})
  eval_step = steps.make_eval_step(model, ID_SPEC, tf.ones([36, 3]), tf.ones([36]))
  ids = random_ids(1, 10)
  y = np.zeros((10, 36), np.int32)
  predictions = steps.evaluate_dataset(eval_step, tf.data.Dataset.from_tensor_slices((ids, y)).batch(4))
  scores, related = networks.probabilities(model(ids, training=False))
  np.testing.assert_allclose(predictions.scores, scores.numpy(), rtol=1e-5)
  np.testing.assert_allclose(predictions.related, related.numpy(), rtol=1e-5)
  expected_loss = float(tf.reduce_sum(losses.per_head_loss(tf.constant(y), model(ids), tf.ones([36, 3]),
                                                           tf.ones([36]))))
  assert predictions.loss_sum == pytest.approx(expected_loss, rel=1e-5)
  thresholds = np.linspace(0.2, 0.8, 36).astype(np.float32)
  np.testing.assert_array_equal(predictions.labels(thresholds),
                                networks.decide(scores, related, tf.constant(thresholds)).numpy())
