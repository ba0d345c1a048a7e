"""The training loop on generated data: one step, a whole run, resume, two replicas."""

import dataclasses
import glob
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from disaster_tf import checkpoint as ckpt_lib
from disaster_tf import config as config_lib
from disaster_tf import data
from disaster_tf import labels
from disaster_tf import loop
from disaster_tf import metrics
from disaster_tf import model as model_lib
from disaster_tf import text
from tests import fixtures


def tiny_model_and_optimizer(learning_rate):
  """A 13-word-vocabulary model over 5 token ids, and its built optimizer."""
  cfg = config_lib.ModelConfig(sequence_length=5, embedding_dim=4, conv_filters=4, conv_kernel_size=2,
                               rnn_units=4, dropout=0.0)
  model = model_lib.build_model(cfg, vocab_size=13)
  optimizer = keras.optimizers.Adam(learning_rate)
  optimizer.build(model.trainable_variables)
  return model, optimizer


def test_one_compiled_step_on_a_13_word_vocabulary_changes_the_weights():
  model, optimizer = tiny_model_and_optimizer(0.1)
  step = loop.make_train_step(model, optimizer, tf.distribute.get_strategy(), tf.ones([36, 3]), tf.ones([36]),
                              global_batch_size=2)
  before = [v.numpy().copy() for v in model.trainable_variables]
  ids = tf.constant([[2, 3, 4, 0, 0], [5, 6, 12, 1, 0]], tf.int64)
  y = np.zeros((2, 36), np.int32)
  y[0, :5] = 1
  loss, components = step((ids, tf.constant(y)))
  assert np.isfinite(float(loss)) and components.shape == (36,)
  assert float(tf.reduce_sum(components)) == pytest.approx(float(loss), rel=1e-5)
  changed = [not np.allclose(b, v.numpy()) for b, v in zip(before, model.trainable_variables)]
  assert all(changed), [v.name for v, c in zip(model.trainable_variables, changed) if not c]
  assert int(optimizer.iterations.numpy()) == 1


def saved_epoch(path):
  return int(tf.train.load_checkpoint(path).get_tensor("state/epoch/.ATTRIBUTES/VARIABLE_VALUE"))


def read_scalars(event_dir):
  tags = set()
  for path in glob.glob(os.path.join(event_dir, "events.out.tfevents.*")):
    for event in tf.compat.v1.train.summary_iterator(path):
      tags.update(v.tag for v in event.summary.value)
  return tags


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """One tiny run of 6 epochs, shared by the assertions below."""
  root = tmp_path_factory.mktemp("run")
  rows = fixtures.synthetic_rows(400)
  # A word that only validation messages contain: the vocabulary must not know it.
  t = config_lib.TrainConfig()
  is_validation = data.split_ids([r["id"] for r in rows], 0.25, t.tune_fraction, t.split_seed) == data.VALIDATION
  for r, v in zip(rows, is_validation):
    if v:
      r["message"] += " zanzibarx"
  fixtures.write_two_file(root / "data", rows)
  config = fixtures.tiny_config(str(root / "data"), epochs=6, learning_rate=0.03)
  final = loop.train_and_evaluate(config, str(root / "model"), flags_text="--epochs=6\n", verbose=0)
  return config, str(root / "model"), final


def test_run_writes_checkpoints_metrics_summaries_and_learns(trained):
  config, model_dir, final = trained
  with open(os.path.join(model_dir, loop.METRICS_FILE)) as f:
    body = json.load(f)
  epochs = body["epochs"]
  assert [e["epoch"] for e in epochs] == [1, 2, 3, 4, 5, 6]
  assert epochs[-1]["train_loss"] < 0.6 * epochs[0]["train_loss"]  # the loss goes down
  assert body["final"]["total"] == final["total"] and 0 < final["total"] <= 36
  assert set(final["categories"]) == set(labels.CATEGORIES)
  # The keyword signal is learned: each keyword's categories are predicted far above chance.
  def keyword_f1(scores):
    return np.mean([scores["categories"][c]["f1"] for c in ("water", "food", "fire", "floods", "earthquake")])
  assert keyword_f1(final) > 0.4 and keyword_f1(final) > keyword_f1(epochs[0]["selection"]) + 0.2
  assert body["data"]["examples"] == 400 and body["config"] == json.loads(config.to_json())
  assert sorted(os.listdir(os.path.join(model_dir, ckpt_lib.CHECKPOINTS_DIR)))[0] == "checkpoint"
  assert saved_epoch(tf.train.latest_checkpoint(os.path.join(model_dir, ckpt_lib.CHECKPOINTS_DIR))) == 6
  assert saved_epoch(final["checkpoint"]) == final["best_epoch"]
  assert {"loss/total", "loss/water", "loss/related", "epoch_loss"} <= read_scalars(os.path.join(model_dir, "train"))
  assert {"total", "mean_positive_f1", "micro_f1"} <= read_scalars(os.path.join(model_dir, "tune"))
  assert all(e["selection_split"] == "tune" for e in epochs) and final["selected_on"] == "tune"
  assert set(final["thresholds"]) == set(labels.CATEGORIES) and "at_0.5" in final
  assert final["threshold_source"].startswith("tuned on the tune split")
  assert config_lib.load(model_dir) == config
  assert open(os.path.join(model_dir, loop.FLAGS_FILE)).read() == "--epochs=6\n"
  assert not os.path.exists(os.path.join(model_dir, loop.SCRATCH_DIR))  # spool and caches removed at the end


def test_vocabulary_is_adapted_on_the_training_split_only(trained):
  _, model_dir, _ = trained
  vocabulary = text.load_vocabulary(model_dir)
  assert "water" in vocabulary and "zanzibarx" not in vocabulary


def test_load_model_and_thresholds_reproduce_the_final_report(trained, tmp_path):
  config, model_dir, final = trained
  loaded_config, vocabulary, model, path = ckpt_lib.load_model(model_dir)
  assert loaded_config == config and path == final["checkpoint"]
  examples, _ = data.load(config.train.data, str(tmp_path))
  tc = config.train
  validation = examples.subset(data.split_ids(examples.ids, tc.validation_fraction, tc.tune_fraction,
                                              tc.split_seed) == data.VALIDATION)
  vectorizer = text.make_vectorizer(config.model, vocabulary)
  scores, related = model_lib.probabilities(model(vectorizer(tf.constant(validation.read_texts()))))
  decided = loop.decide(scores.numpy(), related.numpy(), ckpt_lib.read_thresholds(model_dir))
  assert metrics.report(validation.labels, decided)["total"] == pytest.approx(final["total"], abs=1e-9)


def test_resume_continues_from_the_latest_checkpoint(tmp_path, tiny_config):
  model_dir = str(tmp_path / "model")
  loop.train_and_evaluate(dataclasses.replace(tiny_config, train=dataclasses.replace(tiny_config.train, epochs=2)),
                          model_dir, verbose=0)
  with open(os.path.join(model_dir, loop.METRICS_FILE)) as f:
    first = json.load(f)["epochs"]
  vocabulary_before = text.load_vocabulary(model_dir)
  loop.train_and_evaluate(tiny_config, model_dir, verbose=0)  # epochs=3: one more
  with open(os.path.join(model_dir, loop.METRICS_FILE)) as f:
    body = json.load(f)
  assert [e["epoch"] for e in body["epochs"]] == [1, 2, 3]
  assert body["epochs"][:2] == first  # the first two epochs were not re-run
  assert text.load_vocabulary(model_dir) == vocabulary_before
  reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints")))
  assert reader.get_tensor("state/epoch/.ATTRIBUTES/VARIABLE_VALUE") == 3
  steps_per_epoch = (body["data"]["examples"] - body["final"]["examples"]) // 16  # train rows // batch
  assert reader.get_tensor("optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE") == 3 * steps_per_epoch


def test_mirrored_strategy_over_two_logical_cpus(tmp_path, tiny_config):
  assert len(tf.config.list_logical_devices("CPU")) == 2
  strategy = loop.make_strategy("mirrored")
  assert strategy.num_replicas_in_sync == 2
  config = dataclasses.replace(tiny_config, train=dataclasses.replace(tiny_config.train, strategy="mirrored",
                                                                      epochs=2))
  final = loop.train_and_evaluate(config, str(tmp_path / "model"), verbose=0)
  with open(tmp_path / "model" / loop.METRICS_FILE) as f:
    epochs = json.load(f)["epochs"]
  assert len(epochs) == 2 and all(np.isfinite(e["train_loss"]) for e in epochs)
  assert epochs[1]["train_loss"] < epochs[0]["train_loss"]
  assert 0 < final["total"] <= 36


def test_early_stopping_stops_and_a_finished_run_stays_stopped(tmp_path, tiny_config):
  # learning rate 0: nothing improves after epoch 1, so patience 1 stops after epoch 2.
  config = dataclasses.replace(tiny_config, train=dataclasses.replace(
      tiny_config.train, epochs=5, patience=1, learning_rate=1e-12, select_metric="loss"))
  model_dir = str(tmp_path / "model")
  final = loop.train_and_evaluate(config, model_dir, verbose=0)
  with open(os.path.join(model_dir, loop.METRICS_FILE)) as f:
    assert len(json.load(f)["epochs"]) == 2
  assert final["best_epoch"] == 1
  loop.train_and_evaluate(config, model_dir, verbose=0)
  with open(os.path.join(model_dir, loop.METRICS_FILE)) as f:
    assert len(json.load(f)["epochs"]) == 2


def test_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path, tiny_config):
  model_dir = str(tmp_path / "model")
  good = dataclasses.replace(tiny_config, train=dataclasses.replace(tiny_config.train, epochs=1))
  loop.train_and_evaluate(good, model_dir, verbose=0)
  bad = dataclasses.replace(tiny_config, train=dataclasses.replace(
      tiny_config.train, epochs=2, optimizer="sgd", learning_rate=float("inf")))
  last_good = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
  with pytest.raises(FloatingPointError, match=rf"epoch 2: the training loss is (nan|inf).*{last_good}"):
    loop.train_and_evaluate(bad, model_dir, verbose=0)
  assert tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints")) == last_good
  assert saved_epoch(last_good) == 1


def test_a_resumed_run_uses_the_learning_rate_of_its_flags(tmp_path, tiny_config):
  model_dir = str(tmp_path / "model")
  loop.train_and_evaluate(dataclasses.replace(tiny_config, train=dataclasses.replace(tiny_config.train, epochs=1)),
                          model_dir, verbose=0)
  slower = dataclasses.replace(tiny_config, train=dataclasses.replace(tiny_config.train, epochs=2,
                                                                      learning_rate=0.001))
  loop.train_and_evaluate(slower, model_dir, verbose=0)
  reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints")))
  rate = [k for k in reader.get_variable_to_shape_map() if k.startswith("optimizer/") and "learning_rate" in k]
  assert rate and reader.get_tensor(rate[0]) == pytest.approx(0.001)


def test_refuses_a_batch_larger_than_the_training_split(tmp_path, tiny_config):
  config = dataclasses.replace(tiny_config, train=dataclasses.replace(tiny_config.train, batch_size=1000))
  with pytest.raises(ValueError, match=r"batch_size=1000 is larger than the training split \(\d+ examples\)"):
    loop.train_and_evaluate(config, str(tmp_path / "m"), verbose=0)


def test_refuses_a_batch_that_does_not_split_over_replicas(tmp_path, tiny_config):
  config = dataclasses.replace(tiny_config, train=dataclasses.replace(tiny_config.train, batch_size=15,
                                                                      strategy="mirrored"))
  with pytest.raises(ValueError, match="batch_size=15 does not split evenly over 2 replicas"):
    loop.train_and_evaluate(config, str(tmp_path / "m"), verbose=0)


def test_refuses_an_empty_validation_split(tmp_path):
  fixtures.write_two_file(tmp_path / "d", fixtures.synthetic_rows(40))
  config = fixtures.tiny_config(str(tmp_path / "d"), validation_fraction=1e-9)
  with pytest.raises(ValueError, match="the validation split is empty"):
    loop.train_and_evaluate(config, str(tmp_path / "m"), verbose=0)


def test_refuses_to_resume_with_another_model_shape(tmp_path, tiny_config):
  model_dir = str(tmp_path / "model")
  loop.train_and_evaluate(dataclasses.replace(tiny_config, train=dataclasses.replace(tiny_config.train, epochs=1)),
                          model_dir, verbose=0)
  other = dataclasses.replace(tiny_config, model=dataclasses.replace(tiny_config.model, rnn_units=9))
  with pytest.raises(ValueError, match=r"holds a run with another model \(rnn_units differ\)"):
    loop.train_and_evaluate(other, model_dir, verbose=0)


def test_a_checkpoint_from_another_vocabulary_is_refused(tmp_path, tiny_config):
  model_dir = str(tmp_path / "model")
  loop.train_and_evaluate(dataclasses.replace(tiny_config, train=dataclasses.replace(tiny_config.train, epochs=1)),
                          model_dir, verbose=0)
  vocabulary = text.load_vocabulary(model_dir)
  text.save_vocabulary(vocabulary[:-1] + ["someotherword"], model_dir)
  with pytest.raises(ValueError, match="trained with another vocabulary or category list"):
    ckpt_lib.load_model(model_dir)
  with pytest.raises(ValueError, match="trained with another vocabulary or category list"):
    loop.train_and_evaluate(tiny_config, model_dir, verbose=0)


def test_resolve_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match="no checkpoint; has train.py finished an epoch"):
    ckpt_lib.resolve(str(tmp_path))
  with pytest.raises(FileNotFoundError, match=r"nope: no such checkpoint \(expected .*nope.index\)"):
    ckpt_lib.resolve(str(tmp_path), str(tmp_path / "nope"))
  tf.train.Checkpoint(v=tf.Variable(1)).write(str(tmp_path / "foreign"))
  with pytest.raises(ValueError, match="not a disaster_tf checkpoint"):
    ckpt_lib.check_fingerprint(str(tmp_path / "foreign"), "x")


def test_refuses_an_empty_tune_split(tmp_path):
  fixtures.write_two_file(tmp_path / "d", fixtures.synthetic_rows(40))
  config = fixtures.tiny_config(str(tmp_path / "d"), tune_fraction=1e-9)
  with pytest.raises(ValueError, match="the tune split is empty"):
    loop.train_and_evaluate(config, str(tmp_path / "m"), verbose=0)


def test_without_a_tune_split_selection_is_on_validation_and_thresholds_stay_at_half(tmp_path):
  fixtures.write_two_file(tmp_path / "d", fixtures.synthetic_rows(100))
  final = loop.train_and_evaluate(fixtures.tiny_config(str(tmp_path / "d"), tune_fraction=0.0, epochs=1),
                                  str(tmp_path / "m"), verbose=0)
  assert final["selected_on"] == "validation" and final["threshold_source"] == "0.5"
  assert set(final["thresholds"].values()) == {0.5} and final["total"] == final["at_0.5"]["total"]


def test_steps_per_execution_and_xla_train_the_same_number_of_steps(tmp_path, tiny_config):
  config = dataclasses.replace(tiny_config, train=dataclasses.replace(
      tiny_config.train, epochs=2, steps_per_execution=4, jit_compile=True))
  model_dir = str(tmp_path / "model")
  loop.train_and_evaluate(config, model_dir, verbose=0)
  with open(os.path.join(model_dir, loop.METRICS_FILE)) as f:
    body = json.load(f)
  epochs = body["epochs"]
  assert epochs[1]["train_loss"] < epochs[0]["train_loss"]
  reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints")))
  examples, _ = data.load(config.train.data, str(tmp_path))
  sides = data.split_ids(examples.ids, config.train.validation_fraction, config.train.tune_fraction,
                         config.train.split_seed)
  steps_per_epoch = int((sides == data.TRAIN).sum()) // config.train.batch_size
  assert steps_per_epoch % 4 != 0  # so the last call of an epoch runs fewer steps
  assert reader.get_tensor("optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE") == 2 * steps_per_epoch


def test_train_and_eval_functions_trace_a_bounded_number_of_times():
  model, optimizer = tiny_model_and_optimizer(0.01)
  train_steps = loop.make_train_steps(model, optimizer, tf.distribute.get_strategy(), tf.ones([36, 3]),
                                      tf.ones([36]), 4)
  eval_step = loop.make_eval_step(model, tf.TensorSpec([None, 5], tf.int64), tf.ones([36, 3]), tf.ones([36]))
  ids = np.random.default_rng(0).integers(0, 13, size=(40, 5))
  ds = tf.data.Dataset.from_tensor_slices((ids, np.zeros((40, 36), np.int32))).batch(4, drop_remainder=True)
  for epoch in range(3):  # a new iterator each epoch, and a varying number of steps per call
    iterator = iter(ds)
    for steps in (1, 3, 6):
      train_steps(iterator, tf.constant(steps))
  assert train_steps.experimental_get_tracing_count() == 1
  many = np.tile(ids, (2, 1))  # 80 rows
  for batch in (1, 2, 7, 64, 3):
    eval_step(tf.constant(many[:batch]), tf.zeros([batch, 36], tf.int32))
  assert eval_step.experimental_get_tracing_count() == 1


def test_make_strategy_errors(monkeypatch):
  monkeypatch.delenv("TF_CONFIG", raising=False)
  with pytest.raises(ValueError, match="strategy=multi_worker needs TF_CONFIG"):
    loop.make_strategy("multi_worker")
  with pytest.raises(ValueError, match="strategy='tpu': expected one of default, mirrored, one_device, multi_worker"):
    loop.make_strategy("tpu")
  assert loop.is_chief(loop.make_strategy("default"))
