"""The outer loop on generated data: each phase alone, then whole runs (resume, two replicas, early stopping)."""

import dataclasses
import glob
import json
import logging
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from disaster_tf import config as config_lib
from disaster_tf import labels
from disaster_tf import records
from disaster_tf.data import csv_files
from disaster_tf.data import decided as decided_lib
from disaster_tf.data import decisions as decisions_lib
from disaster_tf.data import examples as examples_lib
from disaster_tf.data import keys
from disaster_tf.data import text
from disaster_tf.model import features
from disaster_tf.model import metrics
from disaster_tf.model import networks
from disaster_tf.serve import report
from disaster_tf.serve import savedmodel
from disaster_tf.train import checkpoint as ckpt_lib
from disaster_tf.train import course
from disaster_tf.train import distribute
from disaster_tf.train import inputs
from disaster_tf.train import loop
from disaster_tf.train import rundir
from disaster_tf.train import steps
from disaster_tf.train import trainer as trainer_lib
from tests import fixtures


def prepared_run(tmp_path, rows=200, **overrides):
  """The first phase on generated data: (config, RunInputs); the scratch dir is tmp_path/scratch."""
  fixtures.write_two_file(tmp_path / "data", fixtures.synthetic_rows(rows))
  config = fixtures.tiny_config(str(tmp_path / "data"), **overrides)
  os.makedirs(tmp_path / "scratch", exist_ok=True)
  return config, inputs.prepare(config, str(tmp_path / "scratch"))


def new_trainer(config, run, save_dir, strategy="default"):
  keras.utils.set_random_seed(config.train.seed)  # as the loop seeds it: the same initial weights each time
  return trainer_lib.build_trainer(config, run, distribute.make_strategy(strategy), str(save_dir))


def weights(trainer):
  return [v.numpy().copy() for v in trainer.model.trainable_variables]


class StopAfter:
  """Stands in for the loop's SIGINT/SIGTERM flag: asks to stop once the optimizer has run `steps` steps."""

  def __init__(self, trainer, steps=None):
    self.trainer, self.steps = trainer, steps

  @property
  def requested(self):
    if self.steps is None or int(self.trainer.optimizer.iterations.numpy()) < self.steps:
      return None
    return "SIGTERM"


def train_epoch(trainer, run, config, epoch, stop=None):
  return loop.train_epoch(trainer, run, config.train, epoch, stop or StopAfter(trainer),
                          tf.summary.create_noop_writer(), verbose=0)


def test_build_trainer_refuses_a_batch_that_does_not_split_over_replicas(tmp_path):
  config, run = prepared_run(tmp_path, batch_size=15)
  with pytest.raises(ValueError, match="batch_size=15 does not split evenly over 2 replicas"):
    new_trainer(config, run, tmp_path / "model", strategy="mirrored")


def test_restore_takes_the_checkpoint_and_the_flags_learning_rate(tmp_path):
  config, run = prepared_run(tmp_path)  # learning rate 0.02
  saved = new_trainer(config, run, tmp_path / "model")
  train_epoch(saved, run, config, 1)
  saved.state.epoch.assign(1)
  saved.manager.save()
  fresh = new_trainer(config, run, tmp_path / "model")
  rundir.RunDir.at(str(tmp_path / "model")).restore(fresh, run.vocabularies, learning_rate=0.001)
  assert int(fresh.state.epoch.numpy()) == 1
  assert int(fresh.optimizer.iterations.numpy()) == run.steps_per_epoch
  for a, b in zip(weights(saved), weights(fresh)):
    np.testing.assert_array_equal(a, b)
  assert float(fresh.optimizer.learning_rate.numpy()) == pytest.approx(0.001)  # the flags win
  empty = new_trainer(config, run, tmp_path / "other")
  rundir.RunDir.at(str(tmp_path / "other")).restore(empty, run.vocabularies, 0.02)  # nothing to resume: unchanged
  assert int(empty.state.epoch.numpy()) == 0


def test_a_cosine_schedule_decays_over_the_run_and_continues_on_resume(tmp_path):
  config, run = prepared_run(tmp_path, lr_schedule="cosine", epochs=4)  # learning rate 0.02
  saved = new_trainer(config, run, tmp_path / "model")
  assert float(saved.optimizer.learning_rate.numpy()) == pytest.approx(0.02)
  train_epoch(saved, run, config, 1)
  saved.state.epoch.assign(1)
  saved.manager.save()
  # A quarter of the way through: 0.02 * (1 + cos(pi / 4)) / 2.
  expected = 0.02 * (1 + np.cos(np.pi / 4)) / 2
  assert float(saved.optimizer.learning_rate.numpy()) == pytest.approx(expected, rel=1e-4)
  resumed = new_trainer(config, run, tmp_path / "model")
  rundir.RunDir.at(str(tmp_path / "model")).restore(resumed, run.vocabularies, config.train.learning_rate)
  assert float(resumed.optimizer.learning_rate.numpy()) == pytest.approx(expected, rel=1e-4)  # not reset to 0.02


def test_restore_keeps_the_best_record_of_best_dir_over_older_counters(tmp_path):
  config, run = prepared_run(tmp_path)
  model_dir = tmp_path / "model"
  saved = new_trainer(config, run, model_dir)
  for manager, epoch, best_metric, step in ((saved.best_manager, 2, 5.0, 20), (saved.manager, 1, 1.0, 10)):
    saved.state.epoch.assign(epoch)
    saved.state.best_metric.assign(best_metric)
    saved.state.best_epoch.assign(epoch)
    manager.save(checkpoint_number=step)
  # checkpoints/ holds epoch 1 only (epoch 2's was lost); best/ holds epoch 2, which scored 5.
  resumed = new_trainer(config, run, model_dir)
  rundir.RunDir.at(str(model_dir)).restore(resumed, run.vocabularies, config.train.learning_rate)
  state = resumed.state
  assert (int(state.epoch.numpy()), float(state.best_metric.numpy()), int(state.best_epoch.numpy())) == (1, 5.0, 2)
  assert not rundir.advance_counters(state, 2, 3.0)  # a worse epoch 2 does not replace the best
  shutil.rmtree(model_dir / ckpt_lib.BEST_DIR)  # best/ lost: the counters forget a best they cannot restore
  forgetful = new_trainer(config, run, model_dir)
  rundir.RunDir.at(str(model_dir)).restore(forgetful, run.vocabularies, config.train.learning_rate)
  assert int(forgetful.state.best_epoch.numpy()) == 0 and rundir.advance_counters(forgetful.state, 2, 0.5)


def test_a_run_refused_for_another_vocabulary_writes_nothing(tmp_path):
  config, run = prepared_run(tmp_path)
  model_dir = tmp_path / "model"
  new_trainer(config, run, model_dir).manager.save()
  rundir.RunDir.at(str(model_dir)).write_run_files(config, run.vocabularies, "--epochs=3\n")
  text.save_vocabulary(list(run.vocabularies[features.TOKEN_IDS].tokens[:-1]) + ["someotherword"], str(model_dir))
  before = {p: p.read_bytes() for p in model_dir.rglob("*") if p.is_file()}
  changed = dataclasses.replace(config, train=dataclasses.replace(config.train, epochs=7))
  with pytest.raises(ValueError, match="the model dir's vocabulary.txt differs from the training's"):
    loop.train_and_evaluate(changed, str(model_dir), flags_text="--epochs=7\n", verbose=0)
  assert {p: p.read_bytes() for p in model_dir.rglob("*") if p.is_file()} == before  # config.json kept too


def test_refuses_to_resume_with_another_model_shape(tmp_path, tiny_config):
  from tests.train.test_checkpoint import write_model_dir  # pylint: disable=import-outside-toplevel
  model_dir = tmp_path / "model"
  write_model_dir(model_dir, tiny_config)  # a run that saved a checkpoint: its model is fixed
  before = sorted(p.relative_to(model_dir) for p in model_dir.rglob("*"))
  other = dataclasses.replace(tiny_config, model=dataclasses.replace(tiny_config.model, rnn_units=9))
  with pytest.raises(ValueError, match=r"holds a run with another model \(rnn_units differ\)"):
    loop.train_and_evaluate(other, str(model_dir), verbose=0)
  assert sorted(p.relative_to(model_dir) for p in model_dir.rglob("*")) == before


def test_an_epoch_stopped_mid_way_saves_and_resumes_at_that_step_exactly(tmp_path):
  # Several blocks (examples_lib.batched draws them at random): the resumed epoch must skip into the same order.
  config, run = prepared_run(tmp_path, shuffle_buffer=50, steps_per_execution=2)
  assert len(run.train_blocks) > 1 and run.steps_per_epoch > 4
  whole = new_trainer(config, run, tmp_path / "whole")
  train_epoch(whole, run, config, epoch=1)
  stopped = new_trainer(config, run, tmp_path / "model")
  with pytest.raises(loop.TrainingInterrupted, match=rf"SIGTERM: stopped at step 2 of {run.steps_per_epoch} in "
                                                     "epoch 1; saved .*ckpt-2. Run the same command to resume"):
    train_epoch(stopped, run, config, epoch=1, stop=StopAfter(stopped, 2))
  resumed = new_trainer(config, run, tmp_path / "model")
  rundir.RunDir.at(str(tmp_path / "model")).restore(resumed, run.vocabularies, config.train.learning_rate)
  assert int(resumed.state.step_in_epoch.numpy()) == 2 and int(resumed.state.epoch.numpy()) == 0
  train_epoch(resumed, run, config, epoch=1)
  assert int(resumed.optimizer.iterations.numpy()) == run.steps_per_epoch
  for a, b in zip(weights(whole), weights(resumed)):  # the same batches, in the same order, once each
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_a_non_finite_loss_stops_the_epoch_without_saving(tmp_path):
  config, run = prepared_run(tmp_path, optimizer="sgd", learning_rate=1e30)  # the first steps overflow
  trainer = new_trainer(config, run, tmp_path / "model")
  last_good = trainer.manager.save()
  with pytest.raises(FloatingPointError, match=rf"epoch 2: the training loss is (nan|inf).*{last_good}; lower"):
    train_epoch(trainer, run, config, epoch=2)
  assert trainer.manager.latest_checkpoint == last_good and len(trainer.manager.checkpoints) == 1


def test_one_snapshot_of_the_decisions_trains_every_phase_and_a_resume_whatever_is_saved_meanwhile(
    tmp_path, monkeypatch, caplog):
  rows = fixtures.synthetic_rows(160)
  fixtures.write_two_file(tmp_path / "data", rows)
  store = decisions_lib.Store(str(tmp_path / "d.db"))
  water = tuple(int(c in ("related", "water")) for c in labels.CATEGORIES)
  store.record(decisions_lib.Decision(keys.message_key(rows[0]["id"], rows[0]["message"]),
                                      rows[0]["message"], water, "ana"))
  config = fixtures.tiny_config(str(tmp_path / "data"), epochs=2, linear_epochs=1, decisions=str(tmp_path / "d.db"))
  kept = rundir.DecisionsSnapshot.keep
  def keep_then_an_operator_saves(self):
    kept(self)
    store.record(decisions_lib.Decision(keys.message_key(None, f"new {len(store.standing())}"),
                                        "a new message about fire", water, "ben"))
  monkeypatch.setattr(rundir.DecisionsSnapshot, "keep", keep_then_an_operator_saves)
  model_dir = tmp_path / "model"
  loop.train_and_evaluate(config, str(model_dir), verbose=0)  # saves between the linear member and the network
  assert len(store.standing()) == 3 and len(decided_lib.read_snapshot(str(model_dir / "decisions"))) == 1
  monkeypatch.undo()
  caplog.set_level(logging.INFO, logger="absl")
  loop.train_and_evaluate(config, str(model_dir), verbose=0)  # the same command: a resume on the same snapshot
  assert any("this run's snapshot" in m and "2 standing now are not in it: train into a new --model_dir" in m
             for m in caplog.messages)
  source = json.loads((model_dir / loop.METRICS_FILE).read_text())["data"]["source"]
  assert source == f"{tmp_path / 'data'} with the decisions of {tmp_path / 'd.db'}"  # not the scratch copy
  with pytest.raises(decisions_lib.StoreError, match="--decisions=.*nowhere.db: no such file"):
    loop.train_and_evaluate(dataclasses.replace(config, train=dataclasses.replace(
        config.train, decisions=str(tmp_path / "nowhere.db"))), str(tmp_path / "other"), verbose=0)
  assert not (tmp_path / "other").exists()


def test_a_first_run_that_diverges_in_epoch_1_leaves_a_dir_the_corrected_command_trains(tmp_path, tiny_config):
  model_dir = str(tmp_path / "model")
  diverging = dataclasses.replace(tiny_config, train=dataclasses.replace(
      tiny_config.train, optimizer="sgd", learning_rate=1e30, linear_epochs=0))
  with pytest.raises(FloatingPointError, match=r"epoch 1: .*Nothing was saved yet, so the corrected command starts "
                                               r"the run anew; lower --learning_rate or --class_weight_cap"):
    loop.train_and_evaluate(diverging, model_dir, verbose=0)
  # The corrected command changes a model flag too: nothing was trained, so nothing binds the dir to the old one.
  corrected = dataclasses.replace(tiny_config, model=dataclasses.replace(tiny_config.model, embedding_dim=12))
  final = loop.train_and_evaluate(corrected, model_dir, verbose=0)
  assert final.best_epoch >= 1 and config_lib.load(model_dir).model.embedding_dim == 12
  assert course.cure(course.LINEAR).startswith("lower --linear_lr_multiplier")  # the linear member's own flags


def test_steps_per_execution_and_xla_train_every_step_of_an_epoch(tmp_path):
  config, run = prepared_run(tmp_path, architecture="multi_cnn", steps_per_execution=4, jit_compile=True)
  assert run.steps_per_epoch % 4 != 0  # so the last call of an epoch runs fewer steps
  trainer = new_trainer(config, run, tmp_path / "model")
  first, second = (train_epoch(trainer, run, config, epoch) for epoch in (1, 2))
  assert int(trainer.optimizer.iterations.numpy()) == 2 * run.steps_per_epoch
  assert second.loss < first.loss and second.loss_per_category.shape == (labels.NUM_CATEGORIES,)
  assert second.loss == pytest.approx(second.loss_per_category.sum(), rel=1e-5)


def test_without_a_progress_bar_an_epoch_logs_its_progress_at_an_interval(tmp_path, monkeypatch):
  config, run = prepared_run(tmp_path, architecture="linear", steps_per_execution=2)
  trainer = new_trainer(config, run, tmp_path / "model")
  lines = []
  monkeypatch.setattr(loop.logging, "info", lambda fmt, *args: lines.append(fmt % args))
  monkeypatch.setattr(course, "PROGRESS_SECONDS", 0.0)  # every call of the compiled steps
  train_epoch(trainer, run, config, epoch=1)  # verbose=0, as outside a terminal
  progress = [line for line in lines if " left in the epoch" in line]
  total = run.steps_per_epoch
  assert len(progress) == (total - 1) // 2  # one per call but the last, which ends the epoch
  assert progress[0].startswith(f"epoch 1: step 2/{total} (") and "examples/s, ~" in progress[0]
  monkeypatch.setattr(course, "PROGRESS_SECONDS", 3600.0)
  lines.clear()
  train_epoch(trainer, run, config, epoch=2)
  assert not [line for line in lines if " left in the epoch" in line]  # a short epoch: none


def test_finish_tunes_thresholds_for_the_configured_objective_and_reports_on_validation(tmp_path):
  config, run = prepared_run(tmp_path, threshold_objective="macro_f1")
  trainer = new_trainer(config, run, tmp_path / "model")
  train_epoch(trainer, run, config, epoch=1)
  trainer.best_manager.save(checkpoint_number=1)
  chosen = loop.choose_thresholds(trainer, run, config.train, rundir.RunDir.at(str(tmp_path / "model")))
  final = loop.validation_report(trainer, run, config.train, chosen,
                                 tf.summary.create_file_writer(str(tmp_path / "events")))
  tune = steps.evaluate_dataset(trainer.eval_step, run.tune_ds)
  expected = metrics.tune_thresholds(run.splits.tune.labels, tune.scores, config.train.min_tune_positives,
                                     "macro_f1")
  np.testing.assert_array_equal(ckpt_lib.read_thresholds(str(tmp_path / "model")), expected)
  assert final.threshold_source == f"tuned on the tune split ({len(run.splits.tune)} messages) for macro_f1"
  validation = steps.evaluate_dataset(trainer.eval_step, run.validation_ds)
  assert final.scores.total == metrics.report(run.splits.validation.labels, validation.labels(expected)).total
  training = final.training_data  # what the export's Model tab shows of the data
  assert training.examples == len(run.splits.train) and training.genres == {"direct": len(run.splits.train)}
  water = run.splits.train.labels[:, labels.CATEGORIES.index("water")]
  assert training.positives["water"] == int((water == 1).sum())
  # TensorBoard's PR Curves tab: one curve per category and split, at the best epoch.
  curves = {}
  for path in (tmp_path / "events").iterdir():
    for event in tf.compat.v1.train.summary_iterator(str(path)):
      for value in event.summary.value:
        curves[value.tag] = (event.step, value.metadata.plugin_data.plugin_name, tf.make_ndarray(value.tensor))
  assert len(curves) == 2 * labels.NUM_CATEGORIES
  step, plugin, counts = curves["pr_validation/water"]
  assert (step, plugin, counts.shape) == (int(trainer.state.best_epoch.numpy()), "pr_curves", (6, 101))
  water = labels.CATEGORIES.index("water")
  assert counts[0, 0] == (run.splits.validation.labels[:, water] == 1).sum()  # at threshold 0 every positive is a TP


def test_advance_counters_keeps_the_best_epoch_and_counts_the_others():
  state = ckpt_lib.TrainState("fingerprint")
  state.step_in_epoch.assign(7)  # a resumed epoch's offset is spent once the epoch ends
  improved = [rundir.advance_counters(state, epoch, score) for epoch, score in enumerate([1.0, 3.0, 2.0, 3.0], 1)]
  assert improved == [True, True, False, False]  # a tie is not an improvement
  assert (int(state.epoch.numpy()), int(state.best_epoch.numpy()), float(state.best_metric.numpy()),
          int(state.bad_epochs.numpy()), int(state.step_in_epoch.numpy())) == (4, 2, 3.0, 2, 0)
  scores = records.Scores(examples=10, total=5.0, mean_positive_f1=0.4, micro_f1=0.6, categories={})
  assert loop.selection_score(scores, loss=0.3, metric="total", epoch=4) == 5.0
  assert loop.selection_score(scores, loss=0.3, metric="micro_f1", epoch=4) == 0.6
  assert loop.selection_score(scores, loss=0.3, metric="loss", epoch=4) == -0.3  # lower loss is better
  assert loop.selection_score(scores, loss=0.3, metric="last", epoch=4) == 4.0  # every epoch beats the last


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
  is_validation = (examples_lib.split_ids([r["id"] for r in rows], 0.25, t.tune_fraction, t.split_seed)
                   == examples_lib.VALIDATION)
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
  assert body["final"]["total"] == final.scores.total and 0 < final.scores.total <= 36
  assert set(final.scores.categories) == set(labels.CATEGORIES)
  # The keyword signal is learned: each keyword's categories are predicted far above chance (~0.1 untrained).
  keyword_f1 = np.mean([final.scores.categories[c].f1 for c in ("water", "food", "fire", "floods", "earthquake")])
  assert keyword_f1 > 0.8
  assert body["data"]["examples"] == 400 and body["config"] == json.loads(config.to_json())
  assert sorted(os.listdir(os.path.join(model_dir, ckpt_lib.CHECKPOINTS_DIR)))[0] == "checkpoint"
  assert saved_epoch(tf.train.latest_checkpoint(os.path.join(model_dir, ckpt_lib.CHECKPOINTS_DIR))) == 6
  assert saved_epoch(final.checkpoint) == final.best_epoch
  assert {"loss/total", "loss/water", "loss/related", "epoch_loss"} <= read_scalars(os.path.join(model_dir, "train"))
  assert {"total", "mean_positive_f1", "micro_f1"} <= read_scalars(os.path.join(model_dir, "tune"))
  assert all(e["selection_split"] == "tune" for e in epochs) and final.selected_on == "tune"
  assert set(final.thresholds) == set(labels.CATEGORIES) and final.at_half.examples == final.scores.examples
  assert final.threshold_source.startswith("tuned on the tune split")
  assert config_lib.load(model_dir) == config
  assert open(os.path.join(model_dir, loop.FLAGS_FILE)).read() == "--epochs=6\n"
  assert not os.path.exists(os.path.join(model_dir, distribute.SCRATCH_DIR))  # spool and caches removed at the end


def test_vocabulary_is_adapted_on_the_training_split_only(trained):
  _, model_dir, _ = trained
  vocabulary = text.load_vocabulary(model_dir)
  assert "water" in vocabulary and "zanzibarx" not in vocabulary


def test_load_model_and_thresholds_reproduce_the_final_report(trained, tmp_path):
  config, model_dir, final = trained
  loaded = ckpt_lib.load_model(model_dir)
  assert loaded.config == config and loaded.checkpoint_path == final.checkpoint
  examples, _ = csv_files.load(config.train.data, str(tmp_path))
  validation = examples_lib.split(examples, config.train).validation
  outputs = loaded.model(loaded.featurizer(tf.constant(validation.read_texts())))
  decided = networks.decide(*networks.probabilities(outputs), ckpt_lib.read_thresholds(model_dir))
  assert metrics.report(validation.labels, decided).total == pytest.approx(final.scores.total, abs=1e-9)


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
  config = dataclasses.replace(tiny_config, train=dataclasses.replace(tiny_config.train, strategy="mirrored",
                                                                      epochs=2))
  final = loop.train_and_evaluate(config, str(tmp_path / "model"), verbose=0)
  with open(tmp_path / "model" / loop.METRICS_FILE) as f:
    epochs = json.load(f)["epochs"]
  assert len(epochs) == 2 and all(np.isfinite(e["train_loss"]) for e in epochs)
  assert epochs[1]["train_loss"] < epochs[0]["train_loss"]
  assert 0 < final.scores.total <= 36


def test_a_new_run_naming_missing_vectors_is_refused_before_its_linear_member_trains(tmp_path, tiny_config):
  config = dataclasses.replace(tiny_config, model=dataclasses.replace(
      tiny_config.model, pretrained_vectors=str(tmp_path / "no.txt")), train=dataclasses.replace(
          tiny_config.train, linear_epochs=2))
  with pytest.raises(FileNotFoundError, match=r"no\.txt: no such vectors file; `disaster-vectors --out="):
    loop.train_and_evaluate(config, str(tmp_path / "model"), verbose=0)
  assert not (tmp_path / "model").exists()  # a refused run writes nothing


def test_early_stopping_stops_and_a_finished_run_stays_stopped(tmp_path, tiny_config, caplog):
  # learning rate 0: nothing improves after epoch 1, so patience 1 stops after epoch 2.
  config = dataclasses.replace(tiny_config, train=dataclasses.replace(
      tiny_config.train, epochs=5, patience=1, learning_rate=1e-12, select_metric="loss"))
  model_dir = str(tmp_path / "model")
  caplog.set_level(logging.INFO, logger="absl")  # whatever level earlier tests left absl at
  final = loop.train_and_evaluate(config, model_dir, verbose=0)
  with open(os.path.join(model_dir, loop.METRICS_FILE)) as f:
    assert len(json.load(f)["epochs"]) == 2
  assert final.best_epoch == 1
  said = [r.getMessage() for r in caplog.records]
  # The log reads as the run's course: its plan, the phase, each epoch with the time left, why it stopped.
  assert said[0] == f"training {model_dir} in 2 phases, then thresholds tuned on tune and the report on validation:"
  assert said[1] == ("  1. the ensemble: up to 5 epochs (--epochs), stopping after 1 without a better tune loss "
                     "(--patience)")
  assert "phase 1/2: the ensemble, up to 5 epochs" in said and "phase 2/2: the language gate, 8 epochs" in said
  assert any("has no originals" in m for m in said)  # the tiny data has none: no gate, said so
  assert any(m.startswith("epoch 1/5: ") and m.endswith("s left at most in the ensemble, then the language gate")
             for m in said)
  assert "stopped early after epoch 2 (best 1): 1 epoch without a better tune loss" in said
  loop.train_and_evaluate(config, model_dir, verbose=0)
  with open(os.path.join(model_dir, loop.METRICS_FILE)) as f:
    assert len(json.load(f)["epochs"]) == 2


def test_refit_retrains_on_train_and_tune_for_the_chosen_epochs_with_the_chosen_thresholds(tmp_path):
  rows = fixtures.synthetic_rows(240)
  t = config_lib.TrainConfig()
  is_tune = examples_lib.split_ids([r["id"] for r in rows], 0.25, t.tune_fraction, t.split_seed) == examples_lib.TUNE
  for r, tune in zip(rows, is_tune):
    if tune:  # a word only tune messages contain: the refit's vocabulary must know it, the first run's not
      r["message"] += " tunewordx"
  fixtures.write_two_file(tmp_path / "d", rows)
  # A rate of ~0 and selection on the loss: nothing improves after epoch 1, so the first run chooses
  # epoch 1 of 3 and the refit must stop there.
  config = fixtures.tiny_config(str(tmp_path / "d"), epochs=3, refit=True, select_metric="loss",
                                learning_rate=1e-12)
  model_dir = str(tmp_path / "m")
  final = loop.train_and_evaluate(config, model_dir, verbose=0)
  refit_dir = os.path.join(model_dir, ckpt_lib.REFIT_DIR)
  refit = final.refit
  assert final.best_epoch == 1 and refit.best_epoch == 1 and refit.selected_on == "nothing"
  with open(os.path.join(refit_dir, loop.METRICS_FILE)) as f:
    body = json.load(f)
  assert [e["epoch"] for e in body["epochs"]] == [1] and body["final"]["total"] == refit.scores.total
  assert config_lib.load(refit_dir) == config_lib.refit_config(config)
  # The first run's thresholds, tuned on tune; the refit's examples are train + tune.
  assert refit.thresholds == final.thresholds and "by the run that chose epoch 1" in refit.threshold_source
  np.testing.assert_allclose(ckpt_lib.read_thresholds(refit_dir), ckpt_lib.read_thresholds(model_dir))
  assert refit.training_data.examples == final.training_data.examples + int(is_tune.sum())
  main_ngrams = features.load(config.model, model_dir)[features.WORD_NGRAMS].tokens
  refit_ngrams = features.load(config.model, refit_dir)[features.WORD_NGRAMS].tokens
  assert "tunewordx" in refit_ngrams and "tunewordx" not in main_ngrams
  # One epoch of the larger split: the refit's global step.
  steps_per_epoch = refit.training_data.examples // config.train.batch_size
  assert refit.checkpoint.endswith(f"ckpt-{steps_per_epoch}") and saved_epoch(refit.checkpoint) == 1
  assert ckpt_lib.release_dir(model_dir) == refit_dir
  # export.py takes the refit, and carries its report; --checkpoint=latest names the first run's own.
  metadata = savedmodel.read_metadata(savedmodel.export(model_dir, str(tmp_path / "e"), warmup=False))
  assert metadata.model_dir == os.path.abspath(refit_dir) and metadata.report.scores.total == refit.scores.total
  assert metadata.thresholds == pytest.approx(list(ckpt_lib.read_thresholds(model_dir)))
  assert metadata.refit and "--refit" in report.model_card(metadata)
  # The same command again trains nothing more and reports the same.
  again = loop.train_and_evaluate(config, model_dir, verbose=0)
  assert again.refit.scores.total == refit.scores.total and again.refit.checkpoint == refit.checkpoint


def test_without_a_tune_split_selection_is_on_validation_and_thresholds_stay_at_half(tmp_path):
  fixtures.write_two_file(tmp_path / "d", fixtures.synthetic_rows(100))
  final = loop.train_and_evaluate(fixtures.tiny_config(str(tmp_path / "d"), tune_fraction=0.0, epochs=1),
                                  str(tmp_path / "m"), verbose=0)
  assert final.selected_on == "validation" and final.threshold_source == "0.5"
  assert set(final.thresholds.values()) == {0.5} and final.scores.total == final.at_half.total


def test_linear_epochs_fit_the_linear_member_apart_first_then_hold_it_fixed(tmp_path):
  fixtures.write_two_file(tmp_path / "d", fixtures.synthetic_rows(200))
  config = fixtures.tiny_config(str(tmp_path / "d"), epochs=2, linear_epochs=3)
  model_dir = str(tmp_path / "m")
  loop.train_and_evaluate(config, model_dir, verbose=0)
  linear_dir = os.path.join(model_dir, ckpt_lib.LINEAR_DIR)
  assert config_lib.load(linear_dir) == config_lib.linear_member_config(config)
  with open(os.path.join(linear_dir, loop.METRICS_FILE)) as f:
    body = json.load(f)
  assert [e["epoch"] for e in body["epochs"]] == [1, 2, 3] and body["final"]["best_epoch"] == 3  # the last kept
  member = ckpt_lib.load_model(linear_dir).model
  assert np.abs(member.get_layer("linear_word_ngrams").get_weights()[0]).sum() > 0  # fitted
  # Both epochs of the ensemble trained its network only: its linear layers are the member's, to the bit.
  ensemble = ckpt_lib.load_model(model_dir, "latest").model
  for layer in networks.linear_layers(member):
    for fitted, held in zip(layer.get_weights(), ensemble.get_layer(layer.name).get_weights()):
      np.testing.assert_array_equal(fitted, held)
  # A member fitted on other n-grams than the run's is refused, by name.
  config, run = prepared_run(tmp_path / "other")
  trainer = new_trainer(config, run, tmp_path / "other" / "m")
  other = dict(run.vocabularies)
  other[features.WORD_NGRAMS] = dataclasses.replace(other[features.WORD_NGRAMS], tokens=("[UNK]", "x"))
  with pytest.raises(ValueError, match=r"linear: its word_ngrams differ from this run's; remove that directory"):
    trainer_lib.initialise(trainer, config, other, linear_dir)
