"""Fault injection: each fault a user or an adversary can cause, and what survives it.

Every test injects one fault into a model dir (a lost or truncated file, a
second run, a full disk, a changed flag, a hand-edited file) and checks that no
completed work is lost and that the message names the file or flag. BUILD.md's
table "Faults" lists them.
"""

import csv
import dataclasses
import glob
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import urllib.parse

import numpy as np
import pytest
import tensorflow as tf

from disaster_tf import checkpoint as ckpt_lib
from disaster_tf import client
from disaster_tf import config as config_lib
from disaster_tf import csv_data
from disaster_tf import data
from disaster_tf import decisions
from disaster_tf import dirlock
from disaster_tf import features
from disaster_tf import labels
from disaster_tf import lexicon
from disaster_tf import loop
from disaster_tf import predict
from disaster_tf import records
from disaster_tf import scorefile
from disaster_tf import serving
from disaster_tf import summaries
from disaster_tf import text
from disaster_tf import trainer as trainer_lib
from disaster_tf import triage
from disaster_tf import triageapp
from disaster_tf.cli import predict as predict_cli
from tests import fixtures
from tests import test_predict
from tests import test_triage

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


@pytest.fixture(scope="module")
def two_epochs_template(tmp_path_factory):
  root = tmp_path_factory.mktemp("template")
  config = config_for(root, epochs=2, select_metric="loss")
  train(config, root / "model")
  return config, root / "model"


@pytest.fixture
def two_epochs(two_epochs_template, tmp_path):
  """A fresh copy of a model dir after 2 epochs (selected on loss, which falls each epoch here): (config, dir)."""
  config, template = two_epochs_template
  shutil.copytree(template, tmp_path / "model")  # checkpoint state files hold relative paths
  return config, tmp_path / "model"


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
    serving.export(str(model_dir), str(tmp_path / "models"), warmup=False)
  latest = checkpoints(model_dir)[-1][:-len(".index")]
  os.remove(latest + ".index")
  path = serving.export(str(model_dir), str(tmp_path / "models"), checkpoint="latest", warmup=False)
  assert serving.read_metadata(path).checkpoint == os.path.abspath(checkpoints(model_dir)[-1][:-len(".index")])
  with pytest.raises(ValueError, match="the checkpoint cannot be read"):
    serving.export(str(model_dir), str(tmp_path / "models"), checkpoint=best, warmup=False)


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
  serving.export(str(model_dir), str(tmp_path / "models"), warmup=False)


def test_a_run_refused_for_bad_data_leaves_nothing_and_the_corrected_run_starts(tmp_path):
  config = config_for(tmp_path)
  bad = dataclasses.replace(config, train=dataclasses.replace(config.train, data=str(tmp_path / "nowhere")))
  with pytest.raises(csv_data.DataError, match="nowhere: no such file or directory"):
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
    serving.export(str(model_dir), str(tmp_path / "models"), warmup=False)


# --- Reliability III: scoring files (predict.py and the page's upload) -------------------------


def never_called(texts):
  raise AssertionError(f"the model was asked to score {len(texts)} messages")


def test_an_output_that_is_the_input_is_refused_by_name_or_by_inode_and_the_input_is_kept(tmp_path):
  source = test_predict.write_csv(tmp_path / "in.csv", "id,message\n1,water\n2,\"bad\" row\n")
  os.link(source, tmp_path / "link.csv")
  for output in (source, str(tmp_path / "link.csv"), str(tmp_path / "." / "in.csv")):
    with pytest.raises(scorefile.InputError, match=r"is the input file; choose another name"):
      scorefile.score_csv(source, output, never_called)
  assert (tmp_path / "in.csv").read_text() == "id,message\n1,water\n2,\"bad\" row\n"


@pytest.mark.parametrize("arguments, error", [
    (("missing.csv", "out.csv"), r"--input=.*missing.csv: no such file"),
    ((".", "out.csv"), r"--input=.*: a directory; expected a CSV file"),
    (("in.csv", "."), r"--output=.*: a directory; expected a file name"),
    (("in.csv", "nowhere/out.csv"), r"--output=.*nowhere/out.csv: no directory .*nowhere; create it first"),
])
def test_every_argument_is_checked_before_the_model_loads(tmp_path, arguments, error):
  test_predict.write_csv(tmp_path / "in.csv", "id,message\n1,water\n")
  source, output = (str(tmp_path / a) for a in arguments)
  with pytest.raises(scorefile.InputError, match=error):
    scorefile.check_job(source, output)
  # The command checks them before it loads a model: a bad export path is not even looked at.
  result = subprocess.run([sys.executable, os.path.join(test_predict.ROOT, "predict.py"), f"--input={source}",
                           f"--output={output}", "--export_dir=/no/such/export"], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  assert result.returncode == 1 and re.search(error, result.stderr) and "/no/such/export" not in result.stderr


def test_a_scored_file_scored_again_is_refused_naming_the_columns(tmp_path):
  source = test_predict.write_csv(tmp_path / "in.csv", "id,message\n1,We need water\n")
  scorefile.score_csv(source, str(tmp_path / "scored.csv"), test_predict.keyword_scorer)
  with pytest.raises(scorefile.InputError, match=r"scored.csv:1: column\(s\) priority, predicted, related, score_"):
    scorefile.score_csv(str(tmp_path / "scored.csv"), str(tmp_path / "again.csv"), never_called)
  assert not (tmp_path / "again.csv").exists()


MALFORMED = ('id,message,genre\n1,We need water,direct\n2,"help" me,direct\n3,"' + "x" * 140_000 + '",direct\n'
             '4,People trapped,direct\n5,"never closed,direct\n6,Send water,direct\n7,food please,direct\n')


@pytest.fixture
def csv_default_field_limit():
  """The csv module's own field size limit (training's reader raises it for the whole process)."""
  before = csv.field_size_limit(131_072)
  yield
  csv.field_size_limit(before)


def test_malformed_rows_are_skipped_named_and_the_read_goes_on(tmp_path, csv_default_field_limit):
  source = test_predict.write_csv(tmp_path / "in.csv", MALFORMED)
  report = scorefile.score_csv(source, str(tmp_path / "out.csv"), test_predict.keyword_scorer)
  rows = test_predict.read_csv(tmp_path / "out.csv")
  assert [r["id"] for r in rows] == ["1", "4", "6", "7"]  # every row after each bad one is read and scored
  assert report.unreadable == 3 and report.scored == 4
  assert [p.split(": ", 1)[0] for p in report.problems] == [f"{source}:3", f"{source}:4", f"{source}:6"]
  assert "field larger than field limit" in report.problems[1] and "that row is skipped" in report.problems[2]


def test_a_quote_never_closed_costs_its_row_in_a_long_file_too(tmp_path):
  lines = ["id,message", '1,"never closed'] + [f"{i},message {i}" for i in range(2, 2 + 3 * scorefile.MAX_RECORD_LINES)]
  report = scorefile.ScoreReport()
  header, rows = scorefile.read_rows([line + "\n" for line in lines], "in.csv", report)
  assert header == ["id", "message"] and [r["id"] for r in rows] == [str(i) for i in range(2, 302)]
  assert report.problems == [f"in.csv:2: malformed CSV (a quoted field runs over more than "
                             f"{scorefile.MAX_RECORD_LINES} lines: a quote never closed?); that row is skipped"]


def test_the_upload_skips_a_malformed_row_and_goes_on(tmp_path, csv_default_field_limit):
  app = triageapp.TriageApp(test_predict.keyword_scorer)
  server, url = test_triage.serve(app)
  try:
    status, _, answer = test_triage.call(url + "/api/upload", MALFORMED.encode(), "text/csv")
  finally:
    server.shutdown()
    server.server_close()
  lines = test_triage.ndjson(answer)
  assert status == 200 and [line["row"]["id"] for line in lines[1:-1]] == ["1", "4", "6", "7"]
  assert lines[-1]["unreadable"] == 3 and "upload:6: malformed CSV (unexpected end of data)" in lines[-1]["report"]


def test_the_command_writes_what_it_could_read_and_exits_with_its_own_code(exported, tmp_path):  # new process
  _, path = exported
  source = test_predict.write_csv(tmp_path / "in.csv", MALFORMED)
  result = subprocess.run([sys.executable, os.path.join(test_predict.ROOT, "predict.py"), f"--input={source}",
                           f"--output={tmp_path / 'out.csv'}", f"--export_dir={path}", f"--db={tmp_path / 'd.db'}",
                           "--batch_size=3"], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  assert result.returncode == predict_cli.EXIT_SKIPPED_ROWS == 3, result.stderr[-2000:]
  # --db queued the scored rows for the page's Review tab, by their ids.
  assert sorted(i for i, _, _ in decisions.Store(str(tmp_path / "d.db")).undecided()) == ["1", "4", "6", "7"]
  assert "3 row(s) of" in result.stderr and "in.csv:6: malformed CSV" in result.stdout
  assert f"scoring with version 1 ({path})" in result.stdout
  assert [r["id"] for r in test_predict.read_csv(tmp_path / "out.csv")] == ["1", "4", "6", "7"]


def test_the_output_keeps_the_mode_of_the_file_it_replaces_and_no_temporary_is_left(tmp_path):
  source = test_predict.write_csv(tmp_path / "in.csv", "id,message\n1,water\n")
  out = tmp_path / "out.csv"
  umask = os.umask(0o022)
  try:
    scorefile.score_csv(source, str(out), test_predict.keyword_scorer)
    assert out.stat().st_mode & 0o777 == 0o644  # a new file: what the umask gives
    out.chmod(0o640)
    scorefile.score_csv(source, str(out), test_predict.keyword_scorer)
    assert out.stat().st_mode & 0o777 == 0o640  # a replaced file keeps its mode
  finally:
    os.umask(umask)
  assert sorted(os.listdir(tmp_path)) == ["in.csv", "out.csv"]


def test_a_stopped_run_leaves_no_temporary_and_a_killed_ones_is_removed_by_the_next(tmp_path):
  source = test_predict.write_csv(tmp_path / "in.csv", "id,message\n1,water\n2,fire\n")
  script = ("import os, signal, sys\nfrom disaster_tf import cli, scorefile\nfrom tests import test_predict\n"
            "cli.exit_on_sigterm()\n"
            "def score(texts):\n  os.kill(os.getpid(), signal.SIGTERM)\n  return test_predict.keyword_scorer(texts)\n"
            f"scorefile.score_csv({source!r}, {str(tmp_path / 'out.csv')!r}, score, batch_size=1)\n")
  result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=test_predict.ROOT)
  assert result.returncode == 128 + signal.SIGTERM, result.stderr[-2000:]
  assert sorted(os.listdir(tmp_path)) == ["in.csv"]  # neither the output nor its temporary
  dead = tmp_path / ".out.csv.999999999.abcd.tmp"  # what a SIGKILLed run would leave (no such process)
  dead.write_text("partial")
  mine = tmp_path / f".out.csv.{os.getpid()}.abcd.tmp"  # a live run's: left alone
  mine.write_text("partial")
  scorefile.score_csv(source, str(tmp_path / "out.csv"), test_predict.keyword_scorer)
  assert not dead.exists() and mine.exists()


def test_every_cell_a_spreadsheet_would_run_is_neutralised(tmp_path):
  source = test_predict.write_csv(tmp_path / "in.csv", 'id,message,note\n1,"=HYPERLINK(""http://x"",""y"")",+1\n'
                                  '2,@SUM(A1),-2\n3,"\tcmd",=cmd|\' /C calc\'!A0\n4,we need water,ok\n')
  scorefile.score_csv(source, str(tmp_path / "out.csv"), test_predict.keyword_scorer)
  rows = test_predict.read_csv(tmp_path / "out.csv")
  assert [r["message"] for r in rows] == ["'=HYPERLINK(\"http://x\",\"y\")", "'@SUM(A1)", "'\tcmd", "we need water"]
  assert [r["note"] for r in rows] == ["'+1", "'-2", "'=cmd|' /C calc'!A0", "ok"]
  assert rows[3]["predicted"] == "water;aid_related"  # the answers are untouched
  assert [scorefile.neutralise(c) for c in ("=1", "+1", "-1", "@a", "\t1", "\r1", "1", "", "a=1")] == [
      "'=1", "'+1", "'-1", "'@a", "'\t1", "'\r1", "1", "", "a=1"]


@pytest.mark.parametrize("content, encoding", [
    ("id,message\n1,we need water\n".encode("utf-16"), "UTF-16 LE"),
    ("id,message\n1,we need water\n".encode("utf-16-be").join([b"\xfe\xff", b""]), "UTF-16 BE"),
    ("id,message\n".encode("utf-16-le"), "NUL bytes, as UTF-16 text does"),
    ("id,méssage\n1,eau\n".encode("cp1252"), "byte 5 of the first line is not valid UTF-8"),
])
def test_a_file_in_another_encoding_is_named_as_such(tmp_path, content, encoding):
  (tmp_path / "in.csv").write_bytes(content)
  with pytest.raises(scorefile.InputError, match=re.escape(encoding)):
    scorefile.score_csv(str(tmp_path / "in.csv"), str(tmp_path / "out.csv"), never_called)
  (tmp_path / "data").mkdir()
  (tmp_path / "data" / "disaster_messages.csv").write_bytes(content)
  with pytest.raises(csv_data.DataError, match=re.escape(encoding)):
    list(csv_data._rows(str(tmp_path / "data" / "disaster_messages.csv"), ["message"], hashlib.sha256()))


# --- Reliability III: the export -----------------------------------------------------------------


def test_an_export_beside_a_running_training_is_refused_unless_latest_is_asked_and_then_marked(two_epochs, tmp_path):
  _, model_dir = two_epochs
  base = tmp_path / "models"
  with dirlock.exclusive(str(model_dir)):  # a training run holds the model dir
    with pytest.raises(dirlock.DirectoryInUse, match=rf"model is being written by a run \(process {os.getpid()}\)"
                                                     r".*pass --checkpoint=latest"):
      serving.export(str(model_dir), str(base), warmup=False)
    assert not base.exists()  # nothing published
    path = serving.export(str(model_dir), str(base), checkpoint="latest", warmup=False)
  metadata = serving.read_metadata(path)
  assert metadata.unfinished and metadata.report is None
  with open(os.path.join(path, "assets.extra", serving.MODEL_CARD_FILE), encoding="utf-8") as f:
    assert "**Unfinished.**" in f.read()
  finished = serving.read_metadata(serving.export(str(model_dir), str(base), warmup=False))  # the run has ended
  assert not finished.unfinished and finished.report is not None
  assert not (model_dir / dirlock.LOCK_FILE).exists()  # the last reader out removed the lock file
  with dirlock.shared(str(model_dir)):  # an export reading it: a training run is refused
    with pytest.raises(dirlock.DirectoryInUse, match="is in use by another run"):
      with dirlock.exclusive(str(model_dir)):
        pass


def test_a_run_that_never_finished_exports_marked_unfinished(two_epochs, tmp_path):
  _, model_dir = two_epochs
  metrics = json.loads((model_dir / loop.METRICS_FILE).read_text())
  (model_dir / loop.METRICS_FILE).write_text(json.dumps({**metrics, "final": None}))  # stopped before its report
  assert serving.read_metadata(serving.export(str(model_dir), str(tmp_path / "models"), warmup=False)).unfinished


def edit_idf(model_dir, factor):
  path = model_dir / "word_ngrams.tsv"
  lines = path.read_text(encoding="utf-8").splitlines()
  token, idf = lines[5].split("\t")
  lines[5] = f"{token}\t{float(idf) * factor!r}"
  path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_a_hand_edited_idf_value_is_refused_by_export_naming_the_file(two_epochs, tmp_path):
  _, model_dir = two_epochs
  edit_idf(model_dir, 1.5)
  with pytest.raises(ValueError, match=r"best/ckpt-\d+: the model dir's word_ngrams.tsv differs from the training's "
                                       r"\(edited by hand, or copied from another run\?\)"):
    serving.export(str(model_dir), str(tmp_path / "models"), warmup=False)
  edit_idf(model_dir, 1 / 1.5)  # put back (the same float32 value): exported
  serving.export(str(model_dir), str(tmp_path / "models"), warmup=False)


def test_a_legacy_checkpoint_without_idf_in_its_fingerprint_still_exports(tmp_path):
  vocabularies = {"word_ngrams": features.Vocabulary(("[UNK]", "water"), np.array([0.0, 1.5], np.float32))}
  legacy = features.legacy_fingerprint(vocabularies)
  assert legacy != features.fingerprint(vocabularies)  # the idf is in the new one
  path = tf.train.Checkpoint(state=ckpt_lib.TrainState(legacy)).save(str(tmp_path / "ckpt"))
  ckpt_lib.check_fingerprint(path, vocabularies)  # accepted, with a warning
  edited = {"word_ngrams": features.Vocabulary(("[UNK]", "waters"), np.array([0.0, 1.5], np.float32))}
  with pytest.raises(ValueError, match="it was trained with another vocabulary or category list"):
    ckpt_lib.check_fingerprint(path, edited)


@pytest.mark.parametrize("content, error", [
    ("dlo\twater\ndlo\tdrink\n", r"lexicon.tsv, line 2: 'dlo' is paired already on line 1; keep one partner a word"),
    ("dlo\twater\nmanje \tfood\n", r"lexicon.tsv, line 2: expected a word, a tab and its English partner"),
])
def test_a_malformed_lexicon_is_a_sentence_naming_the_line(tmp_path, content, error):
  (tmp_path / lexicon.LEXICON_FILE).write_text(content, encoding="utf-8")
  with pytest.raises(ValueError, match=error):
    lexicon.load(str(tmp_path))


def test_a_broken_thresholds_file_is_named_before_the_model_is_built(two_epochs, tmp_path, monkeypatch):
  _, model_dir = two_epochs
  (model_dir / ckpt_lib.THRESHOLDS_FILE).write_text('{"water": 2}')
  monkeypatch.setattr(ckpt_lib, "load_model", never_called)
  with pytest.raises(ValueError, match=r"thresholds.json: expected one threshold for each of the 36 categories"):
    serving.export(str(model_dir), str(tmp_path / "models"), warmup=False)


# --- Reliability III: the page server ------------------------------------------------------------


@pytest.fixture
def page():
  """A triage server with a stand-in model and a one-second socket timeout: (app, url)."""
  app = triageapp.TriageApp(test_predict.keyword_scorer, max_request_bytes=4000, max_upload_bytes=3000, timeout=1.0)
  server, url = test_triage.serve(app)
  yield app, url
  server.shutdown()
  server.server_close()


def raw(url, data, close_writing=True):
  """(status, body) of bytes sent as they are on one connection (half-closed after them, unless asked not to)."""
  address = urllib.parse.urlsplit(url)
  with socket.create_connection((address.hostname, address.port), timeout=30) as connection:
    connection.sendall(data)
    if close_writing:
      connection.shutdown(socket.SHUT_WR)
    answer = b""
    while chunk := connection.recv(1 << 16):
      answer += chunk
  head, _, body = answer.partition(b"\r\n\r\n")
  return int(head.split(b" ")[1]), body


def post(url, length_headers, body=b"", host=None):
  netloc = host or urllib.parse.urlsplit(url).netloc
  return (f"POST /api/classify HTTP/1.0\r\nHost: {netloc}\r\n{length_headers}\r\n").encode() + body


@pytest.mark.parametrize("headers, status, error", [
    ("Content-Length: -1\r\n", 400, "Content-Length must be one non-negative integer, found '-1'"),
    ("Content-Length: 1_0\r\n", 400, "found '1_0'"),
    ("Content-Length: 10\r\nContent-Length: 5000\r\n", 400, "found '10', '5000'"),
    ("Transfer-Encoding: chunked\r\n", 411, "Transfer-Encoding is not accepted"),
    ("Content-Length: 100\r\n", 400, "the body ended after 17 of the 100 bytes its Content-Length announced"),
])
def test_a_missing_negative_or_lying_length_is_refused_with_a_sentence(page, headers, status, error):
  _, url = page
  got, body = raw(url, post(url, headers, b'{"messages": []}\n'))
  assert got == status and error in json.loads(body)["error"]


def test_a_client_that_stops_mid_body_is_answered_and_frees_its_thread(page):
  _, url = page
  got, body = raw(url, post(url, "Content-Length: 100\r\n", b'{"messa'), close_writing=False)  # then silence
  assert got == 408 and "nothing arrived for 1 seconds" in json.loads(body)["error"]
  assert test_triage.call(url + "/api/model")[0] == 200  # the server goes on


@pytest.mark.parametrize("body", [b"[" * 100_000, b'{"messages": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
                                  b'{"messages": {"a": 1}}', b"\xff\xfe", b"1e999999", b'"messages"'])
def test_any_body_that_cannot_be_parsed_gets_a_400_and_a_sentence(body):
  app = triageapp.TriageApp(test_predict.keyword_scorer, max_request_bytes=1 << 20)
  server, url = test_triage.serve(app)
  try:
    status, _, answer = test_triage.call(url + "/api/classify", body)
  finally:
    server.shutdown()
    server.server_close()
  assert status == 400 and json.loads(answer)["error"].startswith(("request: expected JSON", "messages: expected"))


def test_one_bad_line_of_a_pasted_batch_fails_alone(page):
  _, url = page
  body = b'{"messages": ["we need water", "\\ud800 lone", 7, null, "trapped"]}'
  status, _, answer = test_triage.call(url + "/api/classify", body)
  results = json.loads(answer)["results"]
  assert status == 200 and len(results) == 5
  assert results[0]["predicted"] == ["water", "aid_related"] and results[4]["priority"] == 1
  assert results[1]["error"] == "messages[1]: character 1 is a lone surrogate ('\\ud800'), not text"
  assert results[2]["error"] == "messages[2]: expected a string, found int" and results[2]["row"]["message"] == "7"
  assert results[3]["error"] == "messages[3]: expected a string, found NoneType"
  assert results[0]["error"] is None and len(results[1]["scored"]) == len(predict.SCORED_COLUMNS)


def test_the_host_header_must_name_this_server(page):
  _, url = page
  port = urllib.parse.urlsplit(url).port
  status, body = raw(url, f"GET /api/model HTTP/1.0\r\nHost: evil.example:{port}\r\n\r\n".encode())
  assert status == 403 and "Host: 'evil.example:" in json.loads(body)["error"]
  status, body = raw(url, b"GET /api/model HTTP/1.0\r\n\r\n")
  assert status == 403 and "Host: '(none)'" in json.loads(body)["error"]
  for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"LOCALHOST:{port}"):
    assert raw(url, f"GET /api/model HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())[0] == 200
  assert triage.allowed_hosts("0.0.0.0", 8080, ["triage.example.org"]) >= {"triage.example.org:8080",
                                                                            "triage.example.org", "localhost:8080"}


def test_head_answers_with_the_headers_only(page):
  _, url = page
  port = urllib.parse.urlsplit(url).port
  status, body = raw(url, f"HEAD / HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
  assert status == 200 and body == b""


def test_a_defect_in_the_server_is_an_answer_not_a_closed_connection(page, monkeypatch):
  app, url = page
  monkeypatch.setattr(app, "scorer", lambda texts: 1 / 0)
  status, _, answer = test_triage.call(url + "/api/classify", b'{"messages": ["water"]}')
  assert status == 500 and "internal error (ZeroDivisionError" in json.loads(answer)["error"]
  status, _, answer = test_triage.call(url + "/api/upload", b"id,message\n1,water\n", "text/csv")
  assert status == 200 and "stopped early: ZeroDivisionError" in test_triage.ndjson(answer)[-1]["report"]


# --- Reliability III: a full disk anywhere, another selection metric ------------------------------


def no_space(where):
  return tf.errors.ResourceExhaustedError(None, None, f"{where}; No space left on device")


@pytest.mark.parametrize("target, where", [
    ((data, "save"), "scratch/train-0/00000000.shard/00000000.snapshot"),  # the vectorised splits, before an epoch
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


# --- Reliability III: odd text, and what the page says of the model --------------------------------


def test_a_message_the_model_cannot_read_is_put_first_and_said_so(exported):
  _, path = exported
  texts = ["🆘🆘 💧", "", "   ", "is it?", "we need water please"]
  answers = [predict.ranked(r, predict.URGENCY, t) for r, t in zip(predict.local_scorer(path)(texts), texts)]
  assert [a["unread"] for a in answers] == [True, False, False, False, False]
  assert answers[0]["priority"] == 1 and answers[0]["related"] == "unsure" and answers[0]["predicted"] == []
  assert answers[1]["priority"] == answers[3]["priority"] == len(predict.URGENCY) + 1  # nothing there: last
  water = client.result_row([0.9] * labels.NUM_CATEGORIES, [0] + [1] * 35, labels.CATEGORIES)
  assert predict.ranked(water, predict.URGENCY, "water")["related"] == "yes"  # never "no" beside a category


def test_compatibility_characters_read_as_the_letters_they_stand_for(exported):
  _, path = exported
  assert text.standardize(tf.constant(["ｗａｔｅｒ ＦＯＯＤ", "𝐰𝐚𝐭𝐞𝐫", "water\u00a0food"])).numpy().tolist() == [
      b"water food", b"water", b"water food"]
  predict_fn = tf.saved_model.load(path).signatures["serving_default"]
  folded, plain = (predict_fn(text=tf.constant([t]))["scores"].numpy() for t in ("ｗｅ ｎｅｅｄ ｗａｔｅｒ", "we need water"))
  np.testing.assert_allclose(folded, plain, rtol=1e-6)


def test_the_page_picks_up_a_newer_export_and_says_when(exported, tmp_path, monkeypatch):
  _, path = exported
  base = tmp_path / "models"
  shutil.copytree(path, base / "1")
  app = triageapp.TriageApp.for_export(str(base))
  assert app.model_info()["about"]["export_version"] == 1 and app.model_info()["about"]["history"] == []
  shutil.copytree(path, base / "2")  # a newer export, published whole (export.py renames it into place)
  monkeypatch.setattr(triageapp, "RELOAD_SECONDS", 0.0)
  server, url = test_triage.serve(app)
  try:
    about = json.loads(test_triage.call(url + "/api/model")[2])["about"]
    (base / "3").mkdir()  # a broken version: the page keeps the one it has, and says why
    broken = json.loads(test_triage.call(url + "/api/model")[2])["about"]
  finally:
    server.shutdown()
    server.server_close()
  assert about["export_version"] == 2 and about["path"] == str(base / "2") and about["history"][0]["version"] == 1
  assert broken["export_version"] == 2 and "FileNotFoundError" in broken["reload_error"]


def test_an_evaluation_report_path_that_is_a_directory_is_refused_before_evaluating(tmp_path):
  result = subprocess.run([sys.executable, os.path.join(test_predict.ROOT, "evaluate.py"), "--export_dir=/no/export",
                           f"--data={tmp_path}", f"--report={tmp_path}"], capture_output=True, text=True, timeout=120)
  assert result.returncode == 1 and f"--report={tmp_path}: a directory; expected a file name" in result.stderr
  assert "/no/export" not in result.stderr  # nothing was loaded
