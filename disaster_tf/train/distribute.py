"""Which devices and workers a run uses, and which of them writes the model dir."""

import dataclasses
import os

import tensorflow as tf

from disaster_tf import config as config_lib

SCRATCH_DIR = "scratch"  # per process: the text spool and vectorised caches, removed when the run ends

# The data is one spool file, not shards: each worker keeps its share of every global batch.
SHARD_BY_DATA = tf.data.Options()
SHARD_BY_DATA.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA


def make_strategy(name: str) -> tf.distribute.Strategy:
  """Builds the tf.distribute strategy named by `TrainConfig.strategy`.

  "default": one device, TF's own placement. "one_device": the first GPU, else
  the CPU. "mirrored": every local GPU, else every logical CPU. "multi_worker":
  several machines, as TF_CONFIG describes them (call this before any other TF
  op: collectives are set up when the strategy is made).
  """
  if name == "default":
    return tf.distribute.get_strategy()
  if name == "one_device":
    return tf.distribute.OneDeviceStrategy("/cpu:0" if not tf.config.list_logical_devices("GPU") else "/gpu:0")
  if name == "mirrored":
    gpus = tf.config.list_logical_devices("GPU")
    devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
    return tf.distribute.MirroredStrategy(devices)
  if name == "multi_worker":
    if "TF_CONFIG" not in os.environ:
      raise ValueError("strategy=multi_worker needs TF_CONFIG (the cluster and this task); see BUILD.md")
    return tf.distribute.MultiWorkerMirroredStrategy()
  raise ValueError(f"strategy={name!r}: expected one of {', '.join(config_lib.STRATEGIES)}")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
  """True for the one task that writes checkpoints, summaries, metrics and the vocabulary."""
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or not resolver.task_type:
    return True
  has_chief = "chief" in resolver.cluster_spec().as_dict()
  return resolver.task_type == "chief" or (not has_chief and resolver.task_type == "worker"
                                           and resolver.task_id == 0)


@dataclasses.dataclass(frozen=True)
class RunDirs:
  """Where one process of a run reads and writes; decided once, from the strategy.

  Attributes:
    model_dir: the run's model dir (the chief's): what export reads, and where
      every process looks for the vocabulary and checkpoint to resume from.
    save_dir: where this process saves checkpoints: `model_dir` for the chief;
      for another worker a `.worker-N` directory it deletes at the end (every
      worker must save, since a save is a collective op).
    scratch: this process's text spool and vectorised caches.
    chief: whether this process writes the model dir's files and summaries.
  """

  model_dir: str
  save_dir: str
  scratch: str
  chief: bool

  @classmethod
  def for_task(cls, model_dir: str, strategy: tf.distribute.Strategy) -> "RunDirs":
    chief = is_chief(strategy)
    save_dir = model_dir if chief else os.path.join(model_dir, f".worker-{strategy.cluster_resolver.task_id}")
    return cls(model_dir, save_dir, os.path.join(save_dir, SCRATCH_DIR), chief)

  def inside(self, name: str) -> "RunDirs":
    """The dirs of a run nested in this one (a refit): `name` below each; this process's created."""
    nested = RunDirs(*(os.path.join(d, name) for d in (self.model_dir, self.save_dir, self.scratch)), self.chief)
    for directory in (nested.save_dir, nested.scratch):
      os.makedirs(directory, exist_ok=True)
    return nested
