"""Fault injection into a model dir: each fault a user or an adversary can cause, and what survives it.

Every test injects one fault into a model dir (a lost or truncated file, a
second run, a full disk, a changed flag, a hand-edited file) and checks that no
completed work is lost and that the message names the file or flag. BUILD.md's
table "Faults" lists them, with those of tests/serve/test_faults.py and
tests/triage/test_faults.py.
"""


import dataclasses
import glob
import json
import logging
import os
import re

import pytest
import tensorflow as tf

from disaster_tf import config as config_lib
from disaster_tf import records
from disaster_tf.data import csv_files
from disaster_tf.data import examples as examples_lib
from disaster_tf.serve import savedmodel
from disaster_tf.train import checkpoint as ckpt_lib
from disaster_tf.train import dirlock
from disaster_tf.train import loop
from disaster_tf.train import summaries
from disaster_tf.train import trainer as trainer_lib
from tests import fixtures

pytestmark = pytest.mark.faults


def config_for(tmp_path, **overrides):
  if not (tmp_path / "data").exists():
    fixtures.write_two_file(tmp_path / "data", fixtures.synthetic_rows(160))
  return fixtures.tiny_config(str(tmp_path / "data"), **overrides)


def train(config, model_dir, **overrides):
  config = dataclasses.replace(config, train=dataclasses.replace(config.train, **overrides))
  return loop.train_and_evaluate(config, str(model_dir), verbose=0)


def epochs_in(model_dir):
  with open(os.path.join(model_dir, loop.METRICS_FILE)) as f:
    return [e["epoch"] for e in json.load(f)["epochs"]]


def state_of(path):
  return ckpt_lib.read_state(path)


def best_of(model_dir):
  return ckpt_lib.latest_readable(os.path.join(model_dir, ckpt_lib.BEST_DIR))[0]


def checkpoints(model_dir):
  return sorted(glob.glob(os.path.join(model_dir, ckpt_lib.CHECKPOINTS_DIR, "ckpt-*.index")),
                key=lambda p: int(p.split("-")[-1].split(".")[0]))


def test_a_lost_state_file_resumes_from_the_newest_checkpoint(two_epochs, caplog):
  caplog.set_level(logging.INFO, logger="absl")  # whatever level earlier tests left absl at
  config, model_dir = two_epochs
  os.remove(model_dir / ckpt_lib.CHECKPOINTS_DIR / "checkpoint")
  newest = os.path.abspath(checkpoints(model_dir)[-1][:-len(".index")])
  train(config, model_dir, epochs=3)
  assert epochs_in(model_dir) == [1, 2, 3]  # epochs 1 and 2 were not trained again
  assert f"resumed from {newest} (epoch 2)" in caplog.text


@pytest.mark.parametrize("damage", ["index deleted", "data truncated"])
def test_a_broken_latest_checkpoint_falls_back_to_the_previous_and_keeps_the_best(two_epochs, caplog, damage):
  caplog.set_level(logging.INFO, logger="absl")  # whatever level earlier tests left absl at
  config, model_dir = two_epochs
  best_before = state_of(best_of(model_dir))
  latest = checkpoints(model_dir)[-1][:-len(".index")]
  if damage == "index deleted":
    os.remove(latest + ".index")
  else:
    data_file = glob.glob(latest + ".data-*")[0]
    with open(data_file, "r+b") as f:
      f.truncate(os.path.getsize(data_file) // 2)
  train(config, model_dir, epochs=2)
  assert f"skipped an unreadable checkpoint: {os.path.abspath(latest)}" in caplog.text
  assert "(epoch 1)" in caplog.text  # resumed from epoch 1's checkpoint: epoch 2 ran again
  assert epochs_in(model_dir) == [1, 2]
  # best/ still holds a model at least as good as before: lost state never lets a worse epoch replace it.
  assert state_of(best_of(model_dir))["best_metric"] >= best_before["best_metric"]


def test_export_refuses_an_unreadable_best_checkpoint_and_latest_falls_back(two_epochs, tmp_path):
  _, model_dir = two_epochs
  best = best_of(model_dir)
  with open(glob.glob(best + ".data-*")[0], "r+b") as f:
    f.truncate(10)
  with pytest.raises(ValueError, match=r"best: the best checkpoint cannot be read \(.*\); use --checkpoint=latest"):
    savedmodel.export(str(model_dir), str(tmp_path / "models"), warmup=False)
  latest = checkpoints(model_dir)[-1][:-len(".index")]
  os.remove(latest + ".index")
  path = savedmodel.export(str(model_dir), str(tmp_path / "models"), checkpoint="latest", warmup=False)
  assert savedmodel.read_metadata(path).checkpoint == os.path.abspath(checkpoints(model_dir)[-1][:-len(".index")])
  with pytest.raises(ValueError, match="the checkpoint cannot be read"):
    savedmodel.export(str(model_dir), str(tmp_path / "models"), checkpoint=best, warmup=False)


def test_a_second_run_on_the_same_model_dir_is_refused_and_touches_nothing(tmp_path):
  config = config_for(tmp_path)
  model_dir = tmp_path / "model"
  with dirlock.exclusive(str(model_dir)):  # the first run, still going
    (model_dir / "scratch").mkdir()
    (model_dir / "scratch" / "spool").write_text("the first run's")
    with pytest.raises(dirlock.DirectoryInUse, match=rf"model is in use by another run \(process {os.getpid()}\)"):
      train(config, model_dir)
    assert (model_dir / "scratch" / "spool").read_text() == "the first run's"
  train(config, model_dir, epochs=1)  # the lock went with its holder
  assert epochs_in(model_dir) == [1] and not (model_dir / dirlock.LOCK_FILE).exists()


class _FullDisk:
  """Makes CheckpointManager.save raise ENOSPC for one directory, from its `after`-th save on."""

  def __init__(self, monkeypatch, directory, after=0):
    self.directory, self.after, self.failed = directory, after, 0
    real = tf.train.CheckpointManager.save

    def save(manager, *args, **kwargs):
      if os.path.basename(manager.directory) == self.directory:
        if self.after:
          self.after -= 1
        else:
          self.failed += 1
          raise OSError(28, "No space left on device")
      return real(manager, *args, **kwargs)
    monkeypatch.setattr(tf.train.CheckpointManager, "save", save)


@pytest.mark.parametrize("directory", [ckpt_lib.BEST_DIR, ckpt_lib.CHECKPOINTS_DIR])
def test_a_full_disk_while_saving_stops_with_a_sentence_and_the_rerun_resumes(tmp_path, monkeypatch, directory):
  config = config_for(tmp_path, select_metric="loss")
  model_dir = tmp_path / "model"
  full = _FullDisk(monkeypatch, directory, after=1)  # epoch 1 saves; epoch 2's save finds the disk full
  with pytest.raises(OSError, match=rf"{directory}: could not save a checkpoint \(.*No space left on device\); the "
                                    r"last complete one, .*ckpt-\d+, is intact"):
    train(config, model_dir, epochs=2)
  assert full.failed == 1
  assert epochs_in(model_dir) == [1]  # the epoch whose save failed is not recorded
  monkeypatch.undo()  # space freed
  train(config, model_dir, epochs=2)
  assert epochs_in(model_dir) == [1, 2]
  best = best_of(model_dir)
  assert best and state_of(best)["best_epoch"] == state_of(best)["epoch"]  # best/ holds the epoch it names
  savedmodel.export(str(model_dir), str(tmp_path / "models"), warmup=False)


def test_a_run_refused_for_bad_data_leaves_nothing_and_the_corrected_run_starts(tmp_path):
  config = config_for(tmp_path)
  bad = dataclasses.replace(config, train=dataclasses.replace(config.train, data=str(tmp_path / "nowhere")))
  with pytest.raises(csv_files.DataError, match="nowhere: no such file or directory"):
    loop.train_and_evaluate(bad, str(tmp_path / "model"), verbose=0)
  assert not (tmp_path / "model").exists()
  other_shape = dataclasses.replace(config, model=dataclasses.replace(config.model, embedding_dim=6))
  loop.train_and_evaluate(dataclasses.replace(other_shape, train=dataclasses.replace(config.train, epochs=1)),
                          str(tmp_path / "model"), verbose=0)
  assert config_lib.load(str(tmp_path / "model")).model.embedding_dim == 6


@pytest.mark.parametrize("change, message", [
    (dict(split_seed="another"), r"--split_seed='another' \(was 'disaster_tf'\)"),
    (dict(validation_fraction=0.3), r"--validation_fraction=0.3 \(was 0.25\)"),
    (dict(tune_fraction=0.0), r"--tune_fraction=0.0 \(was 0.1\)"),
    (dict(precision="mixed_bfloat16"), r"--precision='mixed_bfloat16' \(was 'float32'\)"),
    (dict(select_metric="loss"), r"--select_metric='loss' \(was 'total'\)"),
])
def test_a_checkpoint_refuses_another_split_naming_the_flag(tmp_path, change, message):
  # The sentence alone, from the identity a run records (the whole run's refusal: the test below).
  config = fixtures.tiny_config("data")
  loaded = records.LoadReport(source="data", format="two-file", fingerprint="abc")
  state = ckpt_lib.TrainState("fingerprint", trainer_lib.run_identity(config, loaded))
  path = tf.train.Checkpoint(state=state).save(str(tmp_path / "ckpt"))
  changed = dataclasses.replace(config, train=dataclasses.replace(config.train, **change))
  with pytest.raises(ValueError, match=rf"ckpt-1: this run was started with other settings: {message}\. A run's "
                                       "data, split, model and selection metric are fixed at its first epoch"):
    ckpt_lib.check_identity(path, trainer_lib.run_identity(changed, loaded))
  ckpt_lib.check_identity(path, trainer_lib.run_identity(config, loaded))  # the same settings pass


def test_resuming_on_other_data_is_refused_naming_the_flag_and_touches_nothing(tmp_path):
  config = config_for(tmp_path, epochs=1)
  train(config, tmp_path / "model")
  files = {p: p.read_bytes() for p in (tmp_path / "model").rglob("*") if p.is_file()}
  fixtures.write_two_file(tmp_path / "data", fixtures.synthetic_rows(170))  # rows added
  with pytest.raises(ValueError, match=r"this run was started with other settings: --data: other contents "
                                       r"\(fingerprint \w+, was \w+\)\. A run's data, split, model and selection "
                                       r"metric are fixed"):
    train(config, tmp_path / "model", epochs=2)
  assert {p: p.read_bytes() for p in (tmp_path / "model").rglob("*") if p.is_file()} == files


def test_a_model_dir_that_is_a_file_is_a_sentence(tmp_path):
  (tmp_path / "model").write_text("oops")
  with pytest.raises(OSError, match=r"model: cannot hold a run there \(.*\); expected a writable directory"):
    train(config_for(tmp_path), tmp_path / "model")
  assert (tmp_path / "model").read_text() == "oops"


def test_a_hand_edited_metrics_file_is_named(two_epochs):
  config, model_dir = two_epochs
  (model_dir / loop.METRICS_FILE).write_text('{"epochs": [')
  with pytest.raises(ValueError, match=r"metrics.json: not a metrics file written by train.py"):
    train(config, model_dir, epochs=3)


def test_a_hand_edited_config_is_refused_by_export_naming_the_file(two_epochs, tmp_path):
  config, model_dir = two_epochs
  config_lib.save(dataclasses.replace(config, model=dataclasses.replace(config.model, embedding_dim=9)),
                  str(model_dir))
  with pytest.raises(ValueError, match=r"the checkpoint does not fit the model that .*config.json describes"):
    savedmodel.export(str(model_dir), str(tmp_path / "models"), warmup=False)


# --- Reliability III: a full disk anywhere, another selection metric ------------------------------


def no_space(where):
  return tf.errors.ResourceExhaustedError(None, None, f"{where}; No space left on device")


@pytest.mark.parametrize("target, where", [
    # the vectorised splits, before an epoch
    ((examples_lib, "save"), "scratch/train-0/00000000.shard/00000000.snapshot"),
    ((summaries.SummaryWriters, "flush"), "train/events.out.tfevents.1"),  # TensorBoard's events, at the end
])
def test_a_full_disk_in_tensorflows_own_writes_is_a_sentence_and_the_run_resumes(two_epochs, monkeypatch, target,
                                                                                  where):
  config, model_dir = two_epochs
  monkeypatch.setattr(*target, lambda *args: (_ for _ in ()).throw(no_space(where)))
  with pytest.raises(OSError, match=rf"model: a write failed \(.*{re.escape(where)}; No space left on device\); "
                                    r"every epoch saved before it is intact\. Free space .* run the same command"):
    train(config, model_dir, epochs=3)
  monkeypatch.undo()  # space freed
  train(config, model_dir, epochs=3)
  assert epochs_in(model_dir) == [1, 2, 3]
  assert not loop.out_of_space(tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor"))


def test_resuming_with_another_selection_metric_is_refused(two_epochs):
  config, model_dir = two_epochs  # selected on loss
  files = {p: p.read_bytes() for p in model_dir.rglob("*") if p.is_file()}
  with pytest.raises(ValueError, match=r"--select_metric='total' \(was 'loss'\)\. A run's data, split, model and "
                                       r"selection metric are fixed at its first epoch"):
    train(config, model_dir, epochs=3, select_metric="total")
  assert {p: p.read_bytes() for p in model_dir.rglob("*") if p.is_file()} == files
