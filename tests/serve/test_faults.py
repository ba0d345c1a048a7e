"""Fault injection into what serves the model: scoring files (predict.py, the page's upload) and the export.

Each test injects one fault (a malformed row, an output that is the input, a
stopped run, a hand-edited file, a run still training) and checks that nothing
is lost or silently wrong and that the message names the file, line or flag.
"""


import csv
import json
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from disaster_tf import labels
from disaster_tf.cli import predict as predict_cli
from disaster_tf.data import csv_files
from disaster_tf.data import textfiles
from disaster_tf.data import decisions
from disaster_tf.data import keys
from disaster_tf.data import lexicon
from disaster_tf.data import text
from disaster_tf.model import features
from disaster_tf.serve import client
from disaster_tf.serve import predict
from disaster_tf.serve import savedmodel
from disaster_tf.serve import scorefile
from disaster_tf.train import checkpoint as ckpt_lib
from disaster_tf.train import dirlock
from disaster_tf.train import loop
from disaster_tf.triage import app as app_lib
from tests import fixtures

pytestmark = pytest.mark.faults


# --- Reliability III: scoring files (predict.py and the page's upload) -------------------------


def never_called(texts):
  raise AssertionError(f"the model was asked to score {len(texts)} messages")


def test_an_output_that_is_the_input_is_refused_by_name_or_by_inode_and_the_input_is_kept(tmp_path):
  source = fixtures.write_csv(tmp_path / "in.csv", "id,message\n1,water\n2,\"bad\" row\n")
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
  fixtures.write_csv(tmp_path / "in.csv", "id,message\n1,water\n")
  source, output = (str(tmp_path / a) for a in arguments)
  with pytest.raises(scorefile.InputError, match=error):
    scorefile.check_job(source, output)
  # The command checks them before it loads a model: a bad export path is not even looked at.
  result = subprocess.run([sys.executable, os.path.join(fixtures.ROOT, "predict.py"), f"--input={source}",
                           f"--output={output}", "--export_dir=/no/such/export"], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  assert result.returncode == 1 and re.search(error, result.stderr) and "/no/such/export" not in result.stderr


def test_a_scored_file_scored_again_is_refused_naming_the_columns(tmp_path):
  source = fixtures.write_csv(tmp_path / "in.csv", "id,message\n1,We need water\n")
  scorefile.score_csv(source, str(tmp_path / "scored.csv"), fixtures.keyword_scorer)
  with pytest.raises(scorefile.InputError, match=r"scored.csv:1: column\(s\) priority, predicted, related, language, "
                                                 "score_"):
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
  source = fixtures.write_csv(tmp_path / "in.csv", MALFORMED)
  report = scorefile.score_csv(source, str(tmp_path / "out.csv"), fixtures.keyword_scorer)
  rows = fixtures.read_csv(tmp_path / "out.csv")
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
  app = app_lib.TriageApp(fixtures.keyword_scorer)
  server, url = fixtures.serve(app)
  try:
    status, _, answer = fixtures.call(url + "/api/upload", MALFORMED.encode(), "text/csv")
  finally:
    server.shutdown()
    server.server_close()
  lines = fixtures.ndjson(answer)
  assert status == 200 and [line["row"]["id"] for line in lines[1:-1]] == ["1", "4", "6", "7"]
  assert lines[-1]["unreadable"] == 3 and "upload:6: malformed CSV (unexpected end of data)" in lines[-1]["report"]


def test_the_command_writes_what_it_could_read_and_exits_with_its_own_code(exported, tmp_path):  # new process
  _, path = exported
  source = fixtures.write_csv(tmp_path / "in.csv", MALFORMED)
  result = subprocess.run([sys.executable, os.path.join(fixtures.ROOT, "predict.py"), f"--input={source}",
                           f"--output={tmp_path / 'out.csv'}", f"--export_dir={path}", f"--db={tmp_path / 'd.db'}",
                           "--batch_size=3"], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  assert result.returncode == predict_cli.EXIT_SKIPPED_ROWS == 3, result.stderr[-2000:]
  # --db queued the scored rows for the page's Review tab, by their ids (and texts: a message is both).
  queued = decisions.Store(str(tmp_path / "d.db")).undecided()
  assert sorted(keys.id_of(i) for i, _, _ in queued) == ["1", "4", "6", "7"]
  assert "3 row(s) of" in result.stderr and "in.csv:6: malformed CSV" in result.stdout
  assert f"scoring with version 1 ({path})" in result.stdout
  assert [r["id"] for r in fixtures.read_csv(tmp_path / "out.csv")] == ["1", "4", "6", "7"]


def test_the_output_keeps_the_mode_of_the_file_it_replaces_and_no_temporary_is_left(tmp_path):
  source = fixtures.write_csv(tmp_path / "in.csv", "id,message\n1,water\n")
  out = tmp_path / "out.csv"
  umask = os.umask(0o022)
  try:
    scorefile.score_csv(source, str(out), fixtures.keyword_scorer)
    assert out.stat().st_mode & 0o777 == 0o644  # a new file: what the umask gives
    out.chmod(0o640)
    scorefile.score_csv(source, str(out), fixtures.keyword_scorer)
    assert out.stat().st_mode & 0o777 == 0o640  # a replaced file keeps its mode
  finally:
    os.umask(umask)
  assert sorted(os.listdir(tmp_path)) == ["in.csv", "out.csv"]


def test_a_stopped_run_leaves_no_temporary_and_a_killed_ones_is_removed_by_the_next(tmp_path):
  source = fixtures.write_csv(tmp_path / "in.csv", "id,message\n1,water\n2,fire\n")
  script = ("import os, signal, sys\nfrom disaster_tf import cli\nfrom disaster_tf.serve import scorefile\n"
            "from tests import fixtures\n"
            "cli.exit_on_sigterm()\n"
            "def score(texts):\n  os.kill(os.getpid(), signal.SIGTERM)\n  return fixtures.keyword_scorer(texts)\n"
            f"scorefile.score_csv({source!r}, {str(tmp_path / 'out.csv')!r}, score, batch_size=1)\n")
  result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=fixtures.ROOT)
  assert result.returncode == 128 + signal.SIGTERM, result.stderr[-2000:]
  assert sorted(os.listdir(tmp_path)) == ["in.csv"]  # neither the output nor its temporary
  dead = tmp_path / ".out.csv.999999999.abcd.tmp"  # what a SIGKILLed run would leave (no such process)
  dead.write_text("partial")
  mine = tmp_path / f".out.csv.{os.getpid()}.abcd.tmp"  # a live run's: left alone
  mine.write_text("partial")
  scorefile.score_csv(source, str(tmp_path / "out.csv"), fixtures.keyword_scorer)
  assert not dead.exists() and mine.exists()


def test_every_cell_a_spreadsheet_would_run_is_neutralised(tmp_path):
  source = fixtures.write_csv(tmp_path / "in.csv", 'id,message,note\n1,"=HYPERLINK(""http://x"",""y"")",+1\n'
                                  '2,@SUM(A1),-2\n3,"\tcmd",=cmd|\' /C calc\'!A0\n4,we need water,ok\n')
  scorefile.score_csv(source, str(tmp_path / "out.csv"), fixtures.keyword_scorer)
  rows = fixtures.read_csv(tmp_path / "out.csv")
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
  with pytest.raises(csv_files.DataError, match=re.escape(encoding)):
    list(textfiles.read_rows(str(tmp_path / "data" / "disaster_messages.csv"), ["message"]))


# --- Reliability III: the export -----------------------------------------------------------------


def test_an_export_beside_a_running_training_is_refused_unless_latest_is_asked_and_then_marked(two_epochs, tmp_path):
  _, model_dir = two_epochs
  base = tmp_path / "models"
  with dirlock.exclusive(str(model_dir)):  # a training run holds the model dir
    with pytest.raises(dirlock.DirectoryInUse, match=rf"model is being written by a run \(process {os.getpid()}\)"
                                                     r".*pass --checkpoint=latest"):
      savedmodel.export(str(model_dir), str(base), warmup=False)
    assert not base.exists()  # nothing published
    path = savedmodel.export(str(model_dir), str(base), checkpoint="latest", warmup=False)
  metadata = savedmodel.read_metadata(path)
  assert metadata.unfinished and metadata.report is None
  with open(os.path.join(path, "assets.extra", savedmodel.MODEL_CARD_FILE), encoding="utf-8") as f:
    assert "**Unfinished.**" in f.read()
  finished = savedmodel.read_metadata(savedmodel.export(str(model_dir), str(base), warmup=False))  # the run has ended
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
  assert savedmodel.read_metadata(savedmodel.export(str(model_dir), str(tmp_path / "models"), warmup=False)).unfinished


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
    savedmodel.export(str(model_dir), str(tmp_path / "models"), warmup=False)
  edit_idf(model_dir, 1 / 1.5)  # put back (the same float32 value): exported
  savedmodel.export(str(model_dir), str(tmp_path / "models"), warmup=False)


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
    savedmodel.export(str(model_dir), str(tmp_path / "models"), warmup=False)


# --- Reliability III: odd text --------------------------------


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


def test_an_evaluation_report_path_that_is_a_directory_is_refused_before_evaluating(tmp_path):
  result = subprocess.run([sys.executable, os.path.join(fixtures.ROOT, "evaluate.py"), "--export_dir=/no/export",
                           f"--data={tmp_path}", f"--report={tmp_path}"], capture_output=True, text=True, timeout=120)
  assert result.returncode == 1 and f"--report={tmp_path}: a directory; expected a file name" in result.stderr
  assert "/no/export" not in result.stderr  # nothing was loaded
