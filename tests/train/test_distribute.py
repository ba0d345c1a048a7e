"""Strategies, and which process writes where."""

import pytest
import tensorflow as tf

from disaster_tf.train import distribute


def test_make_strategy_errors(monkeypatch):
  monkeypatch.delenv("TF_CONFIG", raising=False)
  with pytest.raises(ValueError, match="strategy=multi_worker needs TF_CONFIG"):
    distribute.make_strategy("multi_worker")
  with pytest.raises(ValueError, match="strategy='tpu': expected one of default, mirrored, one_device, multi_worker"):
    distribute.make_strategy("tpu")


def test_mirrored_uses_every_logical_cpu_without_a_gpu():
  assert len(tf.config.list_logical_devices("CPU")) == 2  # tests/conftest.py splits the CPU
  assert distribute.make_strategy("mirrored").num_replicas_in_sync == 2
  assert distribute.make_strategy("one_device").num_replicas_in_sync == 1


def test_a_single_process_is_the_chief_and_writes_its_model_dir(tmp_path):
  strategy = distribute.make_strategy("default")
  assert distribute.is_chief(strategy)
  dirs = distribute.RunDirs.for_task(str(tmp_path), strategy)
  assert dirs == distribute.RunDirs(str(tmp_path), str(tmp_path), str(tmp_path / "scratch"), True)


class _Resolver:
  def __init__(self, task_type, task_id, cluster):
    self.task_type, self.task_id, self._cluster = task_type, task_id, cluster

  def cluster_spec(self):
    return tf.train.ClusterSpec(self._cluster)


class _Strategy:  # what is_chief and RunDirs read of a MultiWorkerMirroredStrategy
  def __init__(self, resolver):
    self.cluster_resolver = resolver


@pytest.mark.parametrize("task_type, task_id, cluster, chief", [
    ("worker", 0, {"worker": ["a:1", "b:1"]}, True),  # no chief task: worker 0 is the chief
    ("worker", 1, {"worker": ["a:1", "b:1"]}, False),
    ("chief", 0, {"chief": ["a:1"], "worker": ["b:1"]}, True),
    ("worker", 0, {"chief": ["a:1"], "worker": ["b:1"]}, False),
])
def test_workers_other_than_the_chief_save_to_a_directory_of_their_own(tmp_path, task_type, task_id, cluster,
                                                                       chief):
  strategy = _Strategy(_Resolver(task_type, task_id, cluster))
  assert distribute.is_chief(strategy) == chief
  dirs = distribute.RunDirs.for_task(str(tmp_path), strategy)
  save_dir = str(tmp_path) if chief else str(tmp_path / f".worker-{task_id}")
  assert (dirs.chief, dirs.model_dir, dirs.save_dir) == (chief, str(tmp_path), save_dir)
  assert dirs.scratch == f"{save_dir}/scratch"
