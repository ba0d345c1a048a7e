"""Test setup: two logical CPUs (for MirroredStrategy), quiet TF logs, fixtures."""

import fcntl
import os
import shutil

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from disaster_tf import cli  # noqa: E402

tf = cli.import_quietly()  # TensorFlow's start-up lines (a cuInit error on a machine without a GPU) kept out

# Must happen before TF initialises its devices: split the CPU in two so that
# MirroredStrategy has two replicas on a machine without accelerators.
_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])

from tests import fixtures  # noqa: E402


@pytest.fixture
def two_file_dir(tmp_path):
  """A small generated two-file data directory (120 messages)."""
  fixtures.write_two_file(tmp_path / "data", fixtures.synthetic_rows(120))
  return str(tmp_path / "data")


@pytest.fixture
def tiny_config(two_file_dir):
  return fixtures.tiny_config(two_file_dir)


@pytest.fixture(scope="session")
def two_epochs_template(tmp_path_factory):
  """A model dir after 2 epochs (selected on loss, which falls each epoch here): (config, dir); trained once a
  test process, for the fault tests of tests/train/ and tests/serve/, which copy it (`two_epochs`)."""
  from disaster_tf.train import loop  # pylint: disable=import-outside-toplevel
  root = tmp_path_factory.mktemp("template")
  fixtures.write_two_file(root / "data", fixtures.synthetic_rows(160))
  config = fixtures.tiny_config(str(root / "data"), epochs=2, select_metric="loss")
  loop.train_and_evaluate(config, str(root / "model"), verbose=0)
  return config, root / "model"


@pytest.fixture
def two_epochs(two_epochs_template, tmp_path):
  """A fresh copy of a model dir after 2 epochs (selected on loss, which falls each epoch here): (config, dir)."""
  config, template = two_epochs_template
  shutil.copytree(template, tmp_path / "model")  # checkpoint state files hold relative paths
  return config, tmp_path / "model"


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
  """A tiny model trained for 2 epochs and exported: (model_dir, version dir). Read-only for every test.

  Trained once for the whole run: with README's `-n 2`, the first test process to need it trains it under a
  lock in the run's shared temporary directory, and the other reads it.
  """
  from disaster_tf.serve import savedmodel  # pylint: disable=import-outside-toplevel
  from disaster_tf.train import loop  # pylint: disable=import-outside-toplevel
  shared = tmp_path_factory.getbasetemp()
  if os.environ.get("PYTEST_XDIST_WORKER"):
    shared = shared.parent  # every worker's base temp dir sits in it
  root = shared / "exported"
  with open(shared / "exported.lock", "w", encoding="utf-8") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if not (root / "done").exists():
      shutil.rmtree(root, ignore_errors=True)
      # Both languages, as configs/multilingual.flags reads them; side by side in each step (--pairs, consistency).
      fixtures.write_two_file(root / "data", fixtures.synthetic_rows(200), originals=True)
      config = fixtures.tiny_config(str(root / "data"), epochs=2, text_fields=("message", "original"), pairs=True,
                                    consistency=1.0)
      loop.train_and_evaluate(config, str(root / "model"), verbose=0)
      savedmodel.export(str(root / "model"), str(root / "models" / "disaster"))
      (root / "done").write_text("")
  return str(root / "model"), str(root / "models" / "disaster" / "1")
