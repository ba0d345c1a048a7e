"""The run's course in the log: the plan of phases, the time left after each epoch."""

import dataclasses

from disaster_tf import config as config_lib
from disaster_tf.train import course


def default_like(**train):
  """The default's shape: an ensemble whose linear member is fitted first (configs/english.flags)."""
  return config_lib.Config(model=config_lib.ModelConfig(architecture="ensemble"), train=config_lib.TrainConfig(
      **{"linear_epochs": 30, "epochs": 10, "patience": 3, **train}))


def test_the_plan_names_each_phase_with_the_flag_that_sets_its_length_and_how_to_make_a_short_run():
  lines = course.plan_lines(default_like(), "runs/default")
  assert lines == [
      "training runs/default in 3 phases, then thresholds tuned on tune and the report on validation:",
      "  1. the linear member: 30 epochs (--linear_epochs), in runs/default/linear",
      "  2. the CNN: up to 10 epochs (--epochs), stopping after 3 without a better tune Total (--patience)",
      "  3. the language gate: 8 epochs over the training split's messages against their originals "
      "(--language_gate), in seconds",
      "a short trial run: add --epochs=1 --linear_epochs=1 (and another --model_dir)"]
  refit = course.plan_lines(default_like(refit=True, tune_fraction=0.1), "m")
  assert refit[3:5] == [
      "  3. the refit's linear member: 30 epochs on train + tune, in m/refit/linear",
      "  4. the refit's CNN: as many epochs as the network's phase chose, on train + tune, in m/refit"]
  alone = course.plan_lines(dataclasses.replace(default_like(linear_epochs=0, epochs=1, patience=0, tune_fraction=0.0,
                                                             language_gate=False),
                                                model=config_lib.ModelConfig(architecture="cnn_rnn")), "m")
  assert alone == ["training m in 1 phase, then thresholds 0.5 (no tune split) and the report on validation:",
                   "  1. the CNN-RNN: up to 1 epochs (--epochs)"]  # already short: no hint


def test_the_time_left_comes_from_this_processs_own_epochs_and_names_the_phases_after(monkeypatch):
  clock = iter([0.0, 0.0, 99.0, 109.0, 129.0, 130.0, 130.0, 135.0, 155.0, 195.0])
  monkeypatch.setattr(course.time, "monotonic", lambda: next(clock))
  run = course.Course(default_like(linear_epochs=3, epochs=10, language_gate=False), "m")
  run.begin(course.LINEAR)  # then 99 s of data and vocabularies, which no epoch counts
  run.epochs_start()
  assert run.epoch_done(1) == ", ~20s left in the linear member, then the CNN"  # 2 more of 10 s
  assert run.epoch_done(2) == ", ~15s left in the linear member, then the CNN"  # 1 more of (10 + 20) / 2
  run.begin(course.NETWORK)
  run.epochs_start()
  assert run.epoch_done(1) == ", ~45s left at most in the run"  # 9 more of 5 s: patience may end it sooner
  assert run.epoch_done(2) == ", ~1m40s left at most in the run"  # 8 more of (5 + 20) / 2
  assert run.epoch_done(10) == ""
  assert course.duration(185) == "3m05s" and course.duration(42.4) == "42s"
