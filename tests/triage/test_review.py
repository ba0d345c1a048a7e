"""The page's decisions API over HTTP: decide, undo, decided; without a login on loopback, with tokens otherwise."""

import json
import subprocess
import sys
import urllib.request

import pytest

from disaster_tf import labels
from disaster_tf.data import decisions
from disaster_tf.triage import app as app_lib
from disaster_tf.triage import review
from tests import fixtures

ROOT = fixtures.ROOT
LABELS = {c: 0 for c in labels.CATEGORIES}


def page(tmp_path, operators=None):
  app = app_lib.TriageApp(fixtures.keyword_scorer)
  app.decisions = review.DecisionsApi(decisions.Store(str(tmp_path / "d.db")), operators)
  return fixtures.serve(app)


def post(url, body, token=None):
  headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
  request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers)
  try:
    with urllib.request.urlopen(request, timeout=30) as response:
      return response.status, json.loads(response.read())
  except urllib.error.HTTPError as e:
    return e.code, json.loads(e.read())


def test_a_local_operator_decides_undoes_and_the_page_sees_it(tmp_path):
  server, url = page(tmp_path)
  try:
    status, answer = post(url + "/api/decide", {"message": "We need water", "id": "17",
                                                "labels": dict(LABELS, related=1, water=1), "operator": "ana"})
    assert status == 200 and answer["decision"]["operator"] == "ana" and answer["decision"]["message_id"] == "17"
    decided = json.loads(fixtures.call(url + "/api/decided")[2])["decided"]
    assert decided["17"]["labels"]["water"] == 1
    stored = decisions.Store(str(tmp_path / "d.db")).standing()["17"]
    assert stored.scores[labels.CATEGORIES.index("water")] == pytest.approx(0.9)  # the model's, at that moment
    status, answer = post(url + "/api/undo", {"decision_id": answer["decision"]["decision_id"]})
    assert status == 200 and json.loads(fixtures.call(url + "/api/decided")[2])["decided"] == {}
    assert post(url + "/api/undo", {"decision_id": 99})[0] == 404
    for body, error in (({"message": "", "labels": LABELS}, "message: expected the message's text"),
                        ({"message": "x", "labels": {"water": 1}}, "labels: expected one label for each of the 36"),
                        ({"message": "x", "labels": dict(LABELS, water=2)}, "labels.water: 2 is not a label"),
                        ({"message": "x", "id": 5, "labels": LABELS}, "id: expected a string"),
                        ({"message": "x", "labels": LABELS, "operator": 3}, "operator: expected a name"),
                        ({"decision_id": "1"}, "decision_id: expected the decision's number")):
      status, answer = post(url + ("/api/undo" if "decision_id" in body else "/api/decide"), body)
      assert status == 400 and error in answer["error"], body
    status, _, body = fixtures.call(url + "/api/decide", b"[1, 2]")
    assert status == 400 and "expected a JSON object" in json.loads(body)["error"]
  finally:
    server.shutdown()
    server.server_close()


def test_with_operators_a_request_without_a_valid_token_changes_nothing(tmp_path):
  token = review.Operators.add(str(tmp_path / "operators.tsv"), "ben")
  assert token not in (tmp_path / "operators.tsv").read_text()  # only its hash is kept
  server, url = page(tmp_path, review.Operators(str(tmp_path / "operators.tsv")))
  body = {"message": "Fire in the market", "labels": dict(LABELS, related=1, fire=1), "operator": "mallory"}
  try:
    for bad in (None, "wrong", "Basic xyz"):
      status, answer = post(url + "/api/decide", body, bad)
      assert status == 401 and "a valid operator token is required" in answer["error"]
    assert json.loads(fixtures.call(url + "/api/decided")[2])["decided"] == {}
    status, answer = post(url + "/api/decide", body, token)
    assert status == 200 and answer["decision"]["operator"] == "ben"  # the token's name, not the body's
    assert json.loads(fixtures.call(url + "/api/model")[2])["operators_required"] is True
  finally:
    server.shutdown()
    server.server_close()


def test_a_page_without_a_database_says_so_and_a_bad_operators_file_is_named(tmp_path):
  server, url = fixtures.serve(app_lib.TriageApp(fixtures.keyword_scorer))
  try:
    status, _, body = fixtures.call(url + "/api/decided")
    assert status == 404 and "start it with --db=FILE" in json.loads(body)["error"]
  finally:
    server.shutdown()
    server.server_close()
  (tmp_path / "ops.tsv").write_text("ana\tnot-a-hash\n")
  with pytest.raises(ValueError, match=r"ops.tsv, line 1: expected a name, a tab and the sha256 of its token"):
    review.Operators(str(tmp_path / "ops.tsv"))
  with pytest.raises(FileNotFoundError, match="--operators=.*none.tsv: no such file"):
    review.Operators(str(tmp_path / "none.tsv"))
  with pytest.raises(ValueError, match="expected a name without tabs"):
    review.Operators.add(str(tmp_path / "ops.tsv"), "a\tb")


def test_the_page_on_the_network_with_a_database_needs_operators_before_any_model_loads(tmp_path):
  result = subprocess.run([sys.executable, "triage.py", f"--db={tmp_path / 'd.db'}", "--host=0.0.0.0",
                           "--export_dir=/no/export"], cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert result.returncode == 1 and "--host=0.0.0.0 with --db needs --operators=FILE" in result.stderr
  assert "/no/export" not in result.stderr


def test_the_review_queue_holds_what_was_scored_and_not_decided_in_either_order(tmp_path):
  server, url = page(tmp_path)
  try:
    messages = ["thanks for the news", "We need water in Carrefour please", "we need WATER in carrefour, please!",
                "People trapped under the school"]
    fixtures.call(url + "/api/classify", json.dumps({"messages": messages}).encode())
    urgent = json.loads(fixtures.call(url + "/api/queue?order=urgent")[2])["results"]
    assert [r["row"]["message"] for r in urgent][0] == "People trapped under the school"  # priority 1
    useful = json.loads(fixtures.call(url + "/api/queue?order=useful&limit=3")[2])["results"]
    texts = [r["row"]["message"] for r in useful]
    assert len(texts) == 3 and not {"We need water in Carrefour please", "we need WATER in carrefour, please!"} <= set(
        texts)  # a near-copy never takes a second slot
    post(url + "/api/decide", {"message": "People trapped under the school", "labels": dict(LABELS, related=1)})
    left = [r["row"]["message"] for r in json.loads(fixtures.call(url + "/api/queue?order=urgent")[2])["results"]]
    assert "People trapped under the school" not in left and len(left) == 3
    for query, error in (("order=newest", "order: expected one of useful, urgent"),
                         ("limit=0", "limit: expected a number from 1 to 500")):
      status, _, body = fixtures.call(url + "/api/queue?" + query)
      assert status == 400 and error in json.loads(body)["error"]
  finally:
    server.shutdown()
    server.server_close()
