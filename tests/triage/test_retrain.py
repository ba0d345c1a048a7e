"""triage/retrain.py: N decisions train and export a new version the page serves; failures change nothing."""

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import threading
import types

import pytest

from disaster_tf.data import decisions
from disaster_tf.data import keys
from disaster_tf.triage import app as app_lib
from disaster_tf.triage import retrain
from disaster_tf.triage import queue as queue_lib
from disaster_tf.triage import review
from tests import fixtures


def tiny_flagfile(tmp_path, data) -> str:
  """A linear model of a few seconds, no language gate: the retrain's configuration in these tests."""
  path = tmp_path / "tiny.flags"
  path.write_text(f"--data={data}\n--model=linear\n--epochs=2\n--max_tokens=64\n--batch_size=16\n"
                  "--validation_fraction=0.25\n--nolanguage_gate\n--linear_epochs=0\n")
  return str(path)


def decide(store, texts, operator="ana"):
  for text in texts:
    store.record(decisions.Decision(keys.message_key(None, text), text, (1,) + (0,) * 35, operator))


@pytest.fixture
def served(tmp_path, exported):
  """An export base holding version 1 (the tiny session export), a decisions store, the data and a flagfile."""
  shutil.copytree(exported[1], tmp_path / "models" / "1")
  fixtures.write_two_file(tmp_path / "data", fixtures.synthetic_rows(120))
  store = decisions.Store(str(tmp_path / "d.db"))
  config = retrain.RetrainConfig(3, tiny_flagfile(tmp_path, tmp_path / "data"), str(tmp_path / "d.db"),
                                 str(tmp_path / "models"), str(tmp_path / "retrain"))
  return config, store


def test_n_decisions_train_and_export_a_version_the_page_then_serves_and_ranks_with(tmp_path, served, monkeypatch):
  config, store = served
  page = app_lib.TriageApp.for_export(config.export_base)
  page.decisions = review.DecisionsApi(store)
  page.retrainer = retrainer = retrain.Retrainer(config, store, page.trained_on_decisions())
  page.enqueue([({"message": "we need water in the camp"}, page.score(["we need water in the camp"])[0])])
  decide(store, ["water please", "the bridge fell"])
  assert retrainer.check().state == "waiting" and not os.path.isdir(tmp_path / "retrain")  # 2 of 3: not yet
  decide(store, ["medical help at the school"])
  status = retrainer.check()
  assert status.state == "waiting" and status.error is None, status.error
  assert status.trained_on == 3 and status.finished and sorted(os.listdir(tmp_path / "models")) == ["1", "2"]
  monkeypatch.setattr(app_lib, "RELOAD_SECONDS", 0.0)
  page.refresh()  # the page's own pick-up of a newer version, as for any export
  assert page.loaded.version == 2 and page.trained_on_decisions() == 3  # the new messages all trained
  info = page.model_info()
  assert info["retrain"]["trained_on"] == 3 and info["retrain"]["model_dir"].startswith(str(tmp_path / "retrain"))
  assert [m for _, m in store.stale("2")] == ["we need water in the camp"]  # scored by version 1
  queue_lib.answer_queue(page.decisions, page, "/api/queue?order=useful&limit=10", 500)
  assert not store.stale("2")  # the queue is ranked by the new version's scores


def test_a_failed_retrain_leaves_the_version_and_the_decisions_and_says_why(tmp_path, served):
  config, store = served
  shutil.rmtree(tmp_path / "data")  # bad data: train.py refuses it
  decide(store, ["a", "b", "c"])
  status = retrain.Retrainer(config, store, 0).check()
  assert status.state == "failed" and "train.py exited with status" in status.error
  assert "the serving version is unchanged" in status.error and status.log in status.error
  assert os.listdir(tmp_path / "models") == ["1"] and store.count_standing() == 3
  assert status.trained_on == 3  # tried again after 3 more decisions, not at every poll


def test_a_killed_retrain_leaves_the_version_and_the_decisions(tmp_path, served):
  config, store = served
  killed = [[sys.executable, "-c", f"import os; os.kill(os.getpid(), {int(signal.SIGKILL)})"]]
  decide(store, ["a", "b", "c"])
  status = retrain.Retrainer(config, store, 0, commands=lambda model_dir: killed).check()
  assert status.state == "failed" and f"was killed (signal {int(signal.SIGKILL)})" in status.error
  assert os.listdir(tmp_path / "models") == ["1"] and store.count_standing() == 3


def test_one_retrain_at_a_time_while_operators_save(tmp_path, served):
  """A check during a run (another thread's, with decisions being saved) starts nothing; the decisions saved
  meanwhile count for the next run."""
  config, store = served
  seen = {}

  def commands(model_dir):
    savers = [threading.Thread(target=decide, args=(store, [f"saved during the run {k} {j}" for j in range(2)],
                                                    f"op{k}")) for k in range(4)]
    checks = [threading.Thread(target=lambda: seen.setdefault("during", []).append(retrainer.check().state))
              for _ in range(2)]
    for t in savers + checks:
      t.start()
    for t in savers + checks:
      t.join()
    seen.setdefault("runs", []).append(model_dir)
    return [[sys.executable, "-c", "pass"]]

  retrainer = retrain.Retrainer(config, store, 0, commands=commands)
  decide(store, ["a", "b", "c"])
  assert retrainer.check().trained_on == 3 and len(seen["runs"]) == 1
  assert seen["during"] == ["training", "training"]  # the run under way, not a second one
  assert store.count_standing() == 11
  assert retrainer.check().trained_on == 11 and len(seen["runs"]) == 2  # 8 more: the next run takes them


def test_another_process_holding_the_lock_refuses_a_run_that_starts_nothing(tmp_path, served):
  config, store = served
  os.makedirs(config.retrain_dir)
  started = []
  decide(store, ["a", "b", "c"])
  with open(os.path.join(config.retrain_dir, retrain.LOCK_FILE), "a+", encoding="utf-8") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    status = retrain.Retrainer(config, store, 0, commands=lambda d: started.append(d) or []).check()
  assert status.state == "refused" and "another process is retraining" in status.error and not started


def test_a_model_trained_on_another_databases_decisions_waits_for_n_new_ones_here(tmp_path, served):
  config, store = served
  decide(store, ["a", "b"])
  started = []
  retrainer = retrain.Retrainer(config, store, 1000, commands=lambda d: started.append(d) or [])
  assert retrainer.status.trained_on == 2 and retrainer.check().state == "waiting" and not started
  decide(store, ["c", "d", "e"])
  assert retrainer.check().trained_on == 5 and len(started) == 1  # 3 new here: a run


def test_bad_retrain_settings_name_the_flag(tmp_path):
  with pytest.raises(ValueError, match="--retrain_every=0: expected a number of decisions >= 1"):
    retrain.RetrainConfig(0, __file__, "d.db", "models", "r")
  with pytest.raises(ValueError, match="--retrain_flagfile=.*nothing.flags: no such file"):
    retrain.RetrainConfig(5, str(tmp_path / "nothing.flags"), "d.db", "models", "r")


def test_the_page_names_a_decision_as_trained_and_its_count_on_the_model_tab(served, exported):
  config, store = served
  page = app_lib.TriageApp.for_export(config.export_base)
  assert page.trained_on_decisions() == 0 and page.model_info()["retrain"] is None
  page.retrainer = retrain.Retrainer(config, store, 0)
  assert page.model_info()["retrain"]["state"] == "waiting"


@pytest.mark.parametrize("args, error", [
    (["--export_dir=/no/export"], "--retrain_every needs --db: the decisions it retrains on"),
    (["--db=D", "--serving_url=http://localhost:8501/v1/models/m"], "--retrain_every needs --export_dir=BASE"),
    (["--db=D", "--export_dir=VERSION"], "--retrain_every needs --export_dir=BASE, the export base directory "
                                         "(not a version"),
    (["--db=D", "--export_dir=/no/export", "--retrain_flagfile=/no/such.flags"],
     "--retrain_flagfile=/no/such.flags: no such file"),
])
def test_triage_refuses_retrain_flags_without_their_companions_before_a_model_loads(tmp_path, exported, args, error):
  args = [a.replace("=D", f"={tmp_path / 'd.db'}").replace("VERSION", exported[1]) for a in args]
  result = subprocess.run([sys.executable, "triage.py", "--retrain_every=5", *args], cwd=fixtures.ROOT,
                          capture_output=True, text=True, timeout=120)
  assert result.returncode == 1 and error in result.stderr, result.stderr[-2000:]


def test_a_saved_decision_wakes_the_retrainer_and_a_refused_one_does_not(tmp_path):
  from tests.triage import test_review  # pylint: disable=import-outside-toplevel
  pokes = []
  app = app_lib.TriageApp(fixtures.keyword_scorer)
  app.decisions = review.DecisionsApi(decisions.Store(str(tmp_path / "d.db")))
  app.retrainer = types.SimpleNamespace(poke=lambda: pokes.append(1), status=None)
  server, url = fixtures.serve(app)
  try:
    body = {"message": "We need water", "replaces": None, "labels": dict(test_review.LABELS, related=1)}
    assert test_review.post(url + "/api/decide", body)[0] == 200 and pokes == [1]
    assert test_review.post(url + "/api/decide", {**body, "labels": {}})[0] == 400 and pokes == [1]
  finally:
    server.shutdown()
    server.server_close()
