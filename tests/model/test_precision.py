"""Numeric precision: the device check behind --precision=auto, and each precision's training step."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from disaster_tf import config as config_lib
from disaster_tf import records
from disaster_tf.model import networks
from disaster_tf.model import precision
from disaster_tf.train import steps
from disaster_tf.train import trainer as trainer_lib
from tests import fixtures
from tests.train import test_steps


@pytest.mark.parametrize("flags_line, native", [
    ("flags\t\t: fpu sse avx512f avx512_bf16 amx_tile", True),
    ("flags\t\t: fpu sse avx512f amx_bf16 amx_tile", True),
    ("flags\t\t: fpu sse avx2 avx512f", False),
])
def test_cpu_bfloat16_is_read_from_the_cpu_flags(tmp_path, flags_line, native):
  (tmp_path / "cpuinfo").write_text(f"processor\t: 0\nmodel name\t: x\n{flags_line}\n")
  assert precision.cpu_has_bf16(str(tmp_path / "cpuinfo")) is native
  assert precision.cpu_has_bf16(str(tmp_path / "missing")) is False


def test_auto_resolves_to_a_policy_and_the_others_to_themselves():
  assert precision.resolve("mixed_float16") == "mixed_float16" and precision.resolve("float32") == "float32"
  expected = "mixed_bfloat16" if precision.cpu_has_bf16() else "float32"  # no GPU here
  assert precision.gpu_has_bf16() is None and precision.resolve("auto") == expected


@pytest.mark.parametrize("found, said", [
    (("amx_bf16", "avx512_bf16"), "mixed_bfloat16 (auto: the CPU has amx_bf16 and avx512_bf16)"),
    ((), "float32 (auto: the CPU has neither AMX nor AVX512-BF16: bfloat16 would be emulated)"),
])
def test_the_log_says_what_auto_chose_and_why(monkeypatch, found, said):
  monkeypatch.setattr(precision, "cpu_bf16_flags", lambda cpuinfo="/proc/cpuinfo": found)
  assert precision.describe("auto") == said  # no GPU here
  assert precision.describe("float32") == "float32 (--precision)"


def optimizer_for(name, model, learning_rate=0.05):
  tc = config_lib.TrainConfig(precision=name, learning_rate=learning_rate)
  optimizer = trainer_lib.make_optimizer(tc, steps_per_epoch=10)
  optimizer.build(model.trainable_variables)
  return optimizer


@pytest.mark.parametrize("name", ["float32", "mixed_bfloat16", "mixed_float16"])
def test_each_precision_trains_the_loops_step_and_keeps_the_loss_float32(name):
  cfg = test_steps.tiny_config("multi_cnn", sequence_length=6, max_tokens=30)
  featurizer, inputs, y = test_steps.labelled_batch(cfg, fixtures.synthetic_rows(32, seed=2))
  keras.utils.set_random_seed(0)
  model = networks.build_model(cfg, featurizer.sizes, name)
  optimizer = optimizer_for(name, model)
  assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer) == (name == "mixed_float16")
  train_steps = steps.make_train_steps(model, optimizer, tf.distribute.get_strategy(), tf.ones([36, 3]),
                                       tf.ones([36]), 32)
  batch = tf.data.Dataset.from_tensors((inputs, y)).repeat()
  losses = [float(train_steps(iter(batch), tf.constant(1))[0]) for _ in range(15)]
  assert losses[-1] < 0.7 * losses[0], losses  # it learns in every precision
  assert all(v.dtype == "float32" for v in model.trainable_variables)
  assert model(inputs)["water"].dtype == tf.float32  # the heads stay float32


def test_a_float16_step_that_overflows_is_skipped_and_training_recovers():
  cfg = test_steps.tiny_config("multi_cnn", sequence_length=6, max_tokens=30)
  featurizer, inputs, y = test_steps.labelled_batch(cfg, fixtures.synthetic_rows(16, seed=4))
  model = networks.build_model(cfg, featurizer.sizes, "mixed_float16")
  optimizer = optimizer_for("mixed_float16", model)
  batch = iter(tf.data.Dataset.from_tensors((inputs, y)).repeat())
  scale = float(optimizer.dynamic_scale.numpy())
  # Class weights of 1e38 make the loss, and so the gradients, overflow: the step must change nothing.
  huge = steps.make_train_steps(model, optimizer, tf.distribute.get_strategy(), tf.fill([36, 3], 1e38),
                                tf.ones([36]), 16)
  before = [v.numpy().copy() for v in model.trainable_variables]
  huge(batch, tf.constant(1))
  assert all(np.array_equal(b, v.numpy()) for b, v in zip(before, model.trainable_variables))
  assert float(optimizer.dynamic_scale.numpy()) < scale  # the scale was lowered
  normal = steps.make_train_steps(model, optimizer, tf.distribute.get_strategy(), tf.ones([36, 3]),
                                  tf.ones([36]), 16)
  normal(batch, tf.constant(1))
  assert not all(np.array_equal(b, v.numpy()) for b, v in zip(before, model.trainable_variables))  # recovered


def test_a_runs_identity_holds_the_resolved_precision(tiny_config):
  # What a resume compares: "auto" is recorded as what it resolved to, so the same flags on another host that
  # resolves it otherwise are refused (the sentence: test_faults.test_a_checkpoint_refuses_another_split...).
  loaded = records.LoadReport(source="d", format="two-file", fingerprint="abc")
  for name in ("float32", "mixed_bfloat16", "auto"):
    config = dataclasses.replace(tiny_config, train=dataclasses.replace(tiny_config.train, precision=name))
    assert trainer_lib.run_identity(config, loaded)["precision"] == precision.resolve(name)
