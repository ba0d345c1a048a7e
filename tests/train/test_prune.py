"""export.py --prune: a finished model dir gives up what only training reads, and stays exportable."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from disaster_tf.serve import savedmodel
from disaster_tf.train import checkpoint as ckpt_lib
from disaster_tf.train import dirlock
from disaster_tf.train import loop
from disaster_tf.train import prune
from tests import fixtures

ROOT = fixtures.ROOT
TEXTS = ["We need water and food", "Fire in the market", ""]


def files(directory):
  return {os.path.relpath(os.path.join(root, name), directory): os.path.getsize(os.path.join(root, name))
          for root, _, names in os.walk(directory) for name in names}


@pytest.fixture
def model_dir(exported, tmp_path):
  """A copy of the `exported` fixture's finished run, with a linear member's own run beside it."""
  source, _ = exported
  copy = tmp_path / "model"
  shutil.copytree(source, copy)
  (copy / "linear" / "best").mkdir(parents=True)
  (copy / "linear" / "best" / "ckpt-1.index").write_bytes(b"x" * 1000)
  return copy


def scores(version_dir):
  return tf.saved_model.load(version_dir).signatures["serving_default"](text=tf.constant(TEXTS))["scores"].numpy()


def test_a_pruned_dir_keeps_what_export_reads_and_exports_the_same_model(model_dir, exported, tmp_path):
  _, original_export = exported
  before = files(model_dir)
  pruned = prune.prune(str(model_dir))
  assert [path for path, _ in pruned.removed] == ["checkpoints", "linear"]
  assert dict(pruned.removed)["checkpoints"] == sum(s for p, s in before.items() if p.startswith("checkpoints/"))
  assert not (model_dir / "checkpoints").exists() and not (model_dir / "linear").exists()
  assert (model_dir / "best").is_dir() and (model_dir / prune.PRUNED_FILE).is_file()
  assert pruned.kept_bytes == sum(files(model_dir).values())
  assert "removed checkpoints (" in pruned.summary() and "all that export reads" in pruned.summary()
  path = savedmodel.export(str(model_dir), str(tmp_path / "models"), warmup=False)
  np.testing.assert_allclose(scores(path), scores(original_export), rtol=1e-6)
  again = prune.prune(str(model_dir))  # nothing left to remove: said so
  assert again.removed == () and "nothing (pruned already)" in again.summary()
  with pytest.raises(FileNotFoundError, match=r"pruned \(export.py --prune removed checkpoints/\); its best "
                                              r"checkpoint is what it keeps: --checkpoint=best"):
    savedmodel.export(str(model_dir), str(tmp_path / "models"), checkpoint="latest", warmup=False)


def test_training_refuses_a_pruned_dir_and_writes_nothing(model_dir):
  prune.prune(str(model_dir))
  before = files(model_dir)
  config = json.loads((model_dir / "config.json").read_text())
  from disaster_tf import config as config_lib  # pylint: disable=import-outside-toplevel
  with pytest.raises(ValueError, match=r"model was pruned \(export.py --prune\).*Train into a new --model_dir"):
    loop.train_and_evaluate(config_lib.Config.from_json(json.dumps(config)), str(model_dir), verbose=0)
  assert files(model_dir) == before


def test_an_unfinished_run_is_refused_and_nothing_is_removed(model_dir):
  metrics = json.loads((model_dir / ckpt_lib.METRICS_FILE).read_text())
  metrics["final"] = None  # stopped before its final report
  (model_dir / ckpt_lib.METRICS_FILE).write_text(json.dumps(metrics))
  before = files(model_dir)
  with pytest.raises(ValueError, match=r"model: the run has not finished .* Run the same train.py command"):
    prune.prune(str(model_dir))
  assert files(model_dir) == before


def test_an_unreadable_best_checkpoint_is_refused(model_dir):
  (data,) = [p for p in (model_dir / "best").iterdir() if ".data-" in p.name]
  data.write_bytes(data.read_bytes()[:10])
  with pytest.raises(ValueError, match="the best checkpoint cannot be read"):
    prune.prune(str(model_dir))
  assert (model_dir / "checkpoints").is_dir()


def test_a_dir_in_use_or_not_a_model_dir_is_refused(model_dir, tmp_path):
  with dirlock.shared(str(model_dir)):  # an export reading it
    with pytest.raises(dirlock.DirectoryInUse):
      prune.prune(str(model_dir))
  assert (model_dir / "checkpoints").is_dir()
  with pytest.raises(FileNotFoundError, match=r"elsewhere: no config.json; expected a model dir written by train"):
    prune.prune(str(tmp_path / "elsewhere"))


def test_the_prune_flag_is_its_own_command(tmp_path):
  def export(*args):
    return subprocess.run([sys.executable, os.path.join(ROOT, "export.py"), f"--model_dir={tmp_path}", *args],
                          capture_output=True, text=True, timeout=120)
  both = export("--prune", f"--export_base={tmp_path / 'models'}")
  assert both.returncode == 1 and "export first, then prune (two commands)" in both.stderr
  neither = export()
  assert neither.returncode == 1 and "--export_base is required" in neither.stderr


def test_a_routed_runs_english_model_is_pruned_too_and_must_have_finished(model_dir, tmp_path):
  english = model_dir / ckpt_lib.ENGLISH_DIR  # --route_english's run inside the run: here a copy of the run
  shutil.copytree(model_dir, tmp_path / "english")
  shutil.move(str(tmp_path / "english"), english)
  os.remove(english / ckpt_lib.METRICS_FILE)
  with pytest.raises(ValueError, match="english: the run has not finished"):
    prune.prune(str(model_dir))
  assert os.path.isdir(english / ckpt_lib.CHECKPOINTS_DIR)  # refused: nothing removed
  shutil.copy(model_dir / ckpt_lib.METRICS_FILE, english / ckpt_lib.METRICS_FILE)
  removed = dict(prune.prune(str(model_dir)).removed)
  assert os.path.join(ckpt_lib.ENGLISH_DIR, ckpt_lib.CHECKPOINTS_DIR) in removed
  assert not os.path.exists(english / ckpt_lib.CHECKPOINTS_DIR) and os.path.isdir(english / "best")
