"""The page's decisions API over HTTP: decide, undo, decided; without a login on loopback, with tokens otherwise."""

import json
import subprocess
import sys
import threading
import urllib.request

import pytest

from disaster_tf import labels
from disaster_tf.data import decisions
from disaster_tf.data import keys
from disaster_tf.serve import predict
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
  """(status, answer) of a JSON POST, with the operator's token if given."""
  return answer_of(url, json.dumps(body).encode(), token)


def get(url, token=None):
  return answer_of(url, None, token)


def answer_of(url, data, token):
  headers = {**({"Content-Type": "application/json"} if data is not None else {}),
             **({"Authorization": f"Bearer {token}"} if token else {})}
  try:
    with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers), timeout=30) as response:
      return response.status, json.loads(response.read())
  except urllib.error.HTTPError as e:
    return e.code, json.loads(e.read())


def test_a_local_operator_decides_undoes_and_the_page_sees_it(tmp_path):
  server, url = page(tmp_path)
  try:
    status, answer = post(url + "/api/decide", {"message": "We need water", "id": "17", "replaces": None,
                                                "labels": dict(LABELS, related=1, water=1), "operator": "ana"})
    key = keys.message_key("17", "We need water")
    assert status == 200 and answer["decision"]["operator"] == "ana" and answer["decision"]["message_id"] == key
    decided = json.loads(fixtures.call(url + "/api/decided")[2])["decided"]
    assert decided[key]["labels"]["water"] == 1
    stored = decisions.Store(str(tmp_path / "d.db")).standing()[key]
    assert stored.scores[labels.CATEGORIES.index("water")] == pytest.approx(0.9)  # the model's, at that moment
    status, answer = post(url + "/api/undo", {"decision_id": answer["decision"]["decision_id"]})
    assert status == 200 and answer["undone_by"] == "local"
    assert json.loads(fixtures.call(url + "/api/decided")[2])["decided"] == {}
    assert post(url + "/api/undo", {"decision_id": 99})[0] == 404
    assert post(url + "/api/undo", {"decision_id": 2 ** 70})[0] == 404  # beyond SQLite's integers: still a 404
    ok = {"message": "x", "labels": LABELS, "replaces": None}
    for body, error in ((dict(ok, message=""), "message: expected text, found nothing"),
                        (dict(ok, labels={"water": 1}), "labels: expected one label for each of the 36"),
                        (dict(ok, labels=dict(LABELS, water=2)), "labels.water: 2 is not a label"),
                        (dict(ok, labels=dict(LABELS, water=True)), "labels.water: true is not a label"),
                        (dict(ok, labels=dict(LABELS, water=1.0)), "labels.water: 1.0 is not a label"),
                        (dict(ok, id=5), "id: expected text, found 5"),
                        (dict(ok, operator=3), "operator: expected text, found 3"),
                        (dict(ok, message="water \udc80"), "message: character 7 is a lone surrogate"),
                        (dict(ok, id="\udc80"), "id: character 1 is a lone surrogate"),
                        (dict(ok, operator="ana\udc80"), "operator: character 4 is a lone surrogate"),
                        ({"message": "x", "labels": LABELS}, "replaces: expected the number of the decision"),
                        ({"decision_id": "1"}, "decision_id: expected the decision's number")):
      status, answer = post(url + ("/api/undo" if "decision_id" in body else "/api/decide"), body)
      assert status == 400 and error in answer["error"], body
    status, _, body = fixtures.call(url + "/api/decide", b"[1, 2]")
    assert status == 400 and "expected a JSON object" in json.loads(body)["error"]
  finally:
    server.shutdown()
    server.server_close()


def test_a_page_opened_before_another_operator_decided_never_overwrites_that_decision(tmp_path):
  server, url = page(tmp_path)
  try:
    body = {"message": "We need water", "labels": dict(LABELS, related=1, water=1), "replaces": None}
    first = post(url + "/api/decide", dict(body, operator="ana"))[1]["decision"]
    status, answer = post(url + "/api/decide", dict(body, operator="ben"))  # ben's page still showed the model's
    assert status == 409 and f"decision {first['decision_id']} by ana" in answer["error"]
    second = post(url + "/api/decide", dict(body, operator="ben", replaces=first["decision_id"]))[1]["decision"]
    status, answer = post(url + "/api/undo", {"decision_id": first["decision_id"]})  # ana's stale page
    assert status == 409 and f"decision {second['decision_id']} by ben" in answer["error"]
    assert decisions.Store(str(tmp_path / "d.db")).standing()[second["message_id"]].operator == "ben"
  finally:
    server.shutdown()
    server.server_close()


def test_with_operators_a_request_without_a_valid_token_changes_nothing(tmp_path):
  token = review.Operators.add(str(tmp_path / "operators.tsv"), "ben")
  assert token not in (tmp_path / "operators.tsv").read_text()  # only its hash is kept
  server, url = page(tmp_path, review.Operators(str(tmp_path / "operators.tsv")))
  body = {"message": "Fire in the market", "labels": dict(LABELS, related=1, fire=1), "operator": "mallory",
          "replaces": None}
  try:
    for bad in (None, "wrong", "Basic xyz"):
      status, answer = post(url + "/api/decide", body, bad)
      assert status == 401 and "a valid operator token is required" in answer["error"]
    status, answer = post(url + "/api/decide", body, token)
    assert status == 200 and answer["decision"]["operator"] == "ben"  # the token's name, not the body's
    assert json.loads(fixtures.call(url + "/api/model")[2])["operators_required"] is True
  finally:
    server.shutdown()
    server.server_close()


def test_off_loopback_only_operators_read_messages_and_each_undoes_only_their_own(tmp_path):
  ana = review.Operators.add(str(tmp_path / "operators.tsv"), "ana")
  ben = review.Operators.add(str(tmp_path / "operators.tsv"), "ben")
  with pytest.raises(ValueError, match="operators.tsv lists ana already"):
    review.Operators.add(str(tmp_path / "operators.tsv"), "ana")  # a second token would silently void the first
  server, url = page(tmp_path, review.Operators(str(tmp_path / "operators.tsv")))
  try:
    for path in ("/api/decided", "/api/queue"):  # the public's messages and who decided what
      assert get(url + path)[0] == 401 and get(url + path, ana)[0] == 200
    for path, data in (("/api/classify", {"messages": ["water"]}), ("/api/explain", {"message": "water"})):
      assert post(url + path, data)[0] == 401
    assert post(url + "/api/classify", {"messages": ["water"]}, ana)[0] == 200
    assert fixtures.call(url + "/api/upload", b"message\nwater\n", "text/csv")[0] == 401
    saved = post(url + "/api/decide", {"message": "We need water", "labels": dict(LABELS, related=1, water=1),
                                       "replaces": None}, ana)[1]["decision"]
    status, answer = post(url + "/api/undo", {"decision_id": saved["decision_id"]}, ben)
    assert status == 403 and "is ana's, and only ana undoes it" in answer["error"]
    status, answer = post(url + "/api/undo", {"decision_id": saved["decision_id"]}, ana)
    assert status == 200 and answer["undone_by"] == "ana"
    assert decisions.Store(str(tmp_path / "d.db")).undone_by(saved["decision_id"]) == "ana"
  finally:
    server.shutdown()
    server.server_close()


def test_a_decisions_file_that_cannot_be_written_never_stops_triage(tmp_path, monkeypatch):
  server, url = page(tmp_path)
  def full(*args, **kwargs):
    raise decisions.StoreError(f"{tmp_path / 'd.db'}: the disk is full; free space, and nothing saved before is lost")
  monkeypatch.setattr(decisions.Store, "enqueue", full)
  try:
    status, _, body = fixtures.call(url + "/api/classify", json.dumps({"messages": ["We need water"]}).encode())
    answer = json.loads(body)
    assert status == 200 and answer["results"][0]["predicted"][0] == "water"
    assert answer["warning"].startswith("scored, but not queued for review:")
    assert "the disk is full" in answer["warning"]
    status, _, body = fixtures.call(url + "/api/upload", b"message\nWe need water\n", "text/csv")
    assert status == 200 and "the disk is full" in fixtures.ndjson(body)[-1]["warning"]
  finally:
    server.shutdown()
    server.server_close()


def test_with_an_english_only_model_the_queue_puts_what_it_cannot_read_first_in_either_order(tmp_path):
  store = decisions.Store(str(tmp_path / "d.db"))
  api = review.DecisionsApi(store)
  texts = ["People trapped under the school", "We need water", "Nou bezwen dlo ak manje"]
  api.enqueue([({"message": t}, r) for t, r in zip(texts, fixtures.keyword_scorer(texts))], None)
  for order in ("urgent", "useful"):
    first = api.queue(order, 3, predict.URGENCY, english_only=True)[0][1]
    assert first == "Nou bezwen dlo ak manje", order
  assert api.queue("urgent", 3, predict.URGENCY)[0][1] == "People trapped under the school"  # reads Creole


def test_over_tf_serving_the_exports_own_reads_language_puts_what_it_cannot_read_first(tmp_path):
  api = review.DecisionsApi(decisions.Store(str(tmp_path / "d.db")))
  texts = ["People trapped under the school", "Nou bezwen dlo ak manje"]
  results = [dict(r, reads_language=r["language"] == "english") for r in fixtures.keyword_scorer(texts)]
  api.enqueue([({"message": t}, r) for t, r in zip(texts, results)], None)
  for order in ("urgent", "useful"):  # no metadata (english_only False): the stored result says it
    assert api.queue(order, 2, predict.URGENCY)[0][1] == "Nou bezwen dlo ak manje", order


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
    # A new day's file numbers its messages from 1 again, and one file may give two messages one id: each is
    # its own message in the queue, and a decision of one marks no other.
    fixtures.call(url + "/api/upload", b"id,message\n1,Roads blocked to Jacmel\n1,Thank you all\n", "text/csv")
    rows = json.loads(fixtures.call(url + "/api/queue?order=urgent")[2])["results"]
    ids = [r["message_id"] for r in rows] + [c["message_id"] for r in rows for c in r["copies"]]
    assert len(rows) == 5 and len(ids) == 6 and len(set(ids)) == 6  # the two water appeals are one row
    (water,) = [r for r in rows if r["copies"]]
    assert {water["row"]["message"], water["copies"][0]["message"]} == {"We need water in Carrefour please",
                                                                       "we need WATER in carrefour, please!"}
    urgent = json.loads(fixtures.call(url + "/api/queue?order=urgent")[2])["results"]
    assert [r["row"]["message"] for r in urgent][0] == "People trapped under the school"  # priority 1
    useful = json.loads(fixtures.call(url + "/api/queue?order=useful&limit=3")[2])["results"]
    texts = [r["row"]["message"] for r in useful]
    assert len(texts) == 3 and not {"We need water in Carrefour please", "we need WATER in carrefour, please!"} <= set(
        texts)  # a near-copy never takes a second slot
    post(url + "/api/decide", {"message": "People trapped under the school", "labels": dict(LABELS, related=1),
                               "replaces": None})
    left = [r["row"]["message"] for r in json.loads(fixtures.call(url + "/api/queue?order=urgent")[2])["results"]]
    assert "People trapped under the school" not in left and len(left) == 4
    for query, error in (("order=newest", "order: expected one of useful, urgent"),
                         ("limit=0", "limit: expected a number from 1 to 500"),
                         ("limit=%C2%B2", "limit: expected a number from 1 to 500, found '²'")):
      status, _, body = fixtures.call(url + "/api/queue?" + query)
      assert status == 400 and error in json.loads(body)["error"]
  finally:
    server.shutdown()
    server.server_close()


# --- Team triage: claims ------------------------------------------------------------------------------------


def test_a_shift_asking_for_the_next_message_at_once_never_gets_the_same_one(tmp_path):
  server, url = page(tmp_path)
  try:
    # Thirty different appeals (digits are not words: "camp 1" and "camp 2" would be copies of one)
    messages = [f"we need water at camp {_letters(i)} near {_letters(i + 100)}" for i in range(30)]
    fixtures.call(url + "/api/classify", json.dumps({"messages": messages}).encode())
    got, barrier = {}, threading.Barrier(12)

    def next_for(name):
      barrier.wait()  # twelve operators press Next at the same moment, on twelve connections
      got[name] = post(url + "/api/claim", {"next": "urgent", "operator": name})

    threads = [threading.Thread(target=next_for, args=(f"op{i}",)) for i in range(12)]
    for t in threads:
      t.start()
    for t in threads:
      t.join()
    assert all(status == 200 for status, _ in got.values())
    claimed = [a["claim"]["message_id"] for _, a in got.values()]
    assert len(set(claimed)) == 12 and all(a["result"]["message_id"] == a["claim"]["message_id"]
                                           for _, a in got.values())
    queue = json.loads(fixtures.call(url + "/api/queue?order=urgent&limit=30")[2])["results"]
    holders = {r["message_id"]: r["claimed_by"] for r in queue}
    assert {holders[a["claim"]["message_id"]] for _, a in got.values()} == set(got)  # the list says who reads what
    assert sum(h is None for h in holders.values()) == 18
  finally:
    server.shutdown()
    server.server_close()


def _letters(n):
  return "".join(chr(ord("a") + int(d)) for d in str(n))


def test_an_opened_message_is_refused_to_another_and_freed_by_a_decision_or_a_release(tmp_path):
  server, url = page(tmp_path)
  try:
    fixtures.call(url + "/api/classify", json.dumps({"messages": ["we need water", "trapped"]}).encode())
    water, trapped = (keys.message_key(None, t) for t in ("we need water", "trapped"))
    assert post(url + "/api/claim", {"message_id": water, "operator": "ana"})[0] == 200
    status, answer = post(url + "/api/claim", {"message_id": water, "operator": "ben"})
    assert status == 409 and "being read by ana" in answer["error"]
    assert post(url + "/api/claim", {"next": "urgent", "operator": "ben"})[1]["claim"]["message_id"] == trapped
    assert post(url + "/api/claim", {"next": "urgent", "operator": "cai"})[1] == {"claim": None, "result": None}
    status, answer = post(url + "/api/release", {"message_id": trapped, "operator": "ana"})
    assert status == 403 and "ben is reading it; only ben releases it" in answer["error"]
    assert post(url + "/api/release", {"message_id": trapped, "operator": "ben"})[1]["released"] is True
    post(url + "/api/decide", {"message": "we need water", "labels": dict(LABELS, related=1), "replaces": None,
                               "operator": "ana"})
    assert post(url + "/api/claim", {"next": "urgent", "operator": "cai"})[1]["claim"]["message_id"] == trapped
    for body, error in (({"next": "newest"}, 'next: expected one of useful, urgent, found "newest"'),
                        ({"message_id": 7}, "message_id: expected text, found 7"), ({}, "message_id: expected text")):
      status, answer = post(url + "/api/claim", body)
      assert status == 400 and error in answer["error"], body
  finally:
    server.shutdown()
    server.server_close()


# --- Team triage: a second opinion ------------------------------------------------------------------------


def test_a_second_operator_decides_again_blind_and_a_reviewer_settles_the_disagreement(tmp_path):
  app = app_lib.TriageApp(fixtures.keyword_scorer)
  app.decisions = review.DecisionsApi(decisions.Store(str(tmp_path / "d.db")), second_share=1.0,
                                      reviewers=frozenset({"rev"}))
  server, url = fixtures.serve(app)
  try:
    saved = post(url + "/api/decide", {"message": "we need water", "labels": dict(LABELS, related=1, water=1),
                                       "replaces": None, "operator": "ana"})[1]["decision"]
    mine = json.loads(fixtures.call(url + "/api/queue?order=urgent&operator=ana")[2])["results"]
    assert not any(r.get("second_opinion") for r in mine)  # never back to its first operator
    (ben_item,) = json.loads(fixtures.call(url + "/api/queue?order=urgent&operator=ben")[2])["results"]
    assert ben_item["second_opinion"] and ben_item["standing_id"] == saved["decision_id"]
    assert ben_item["predicted"] == ["water", "aid_related"]  # the model's answer, not ana's decision
    status, _ = post(url + "/api/decide", {"message": "we need water", "labels": dict(LABELS, related=1, food=1),
                                           "replaces": ben_item["standing_id"], "operator": "ben"})
    assert status == 200
    assert json.loads(fixtures.call(url + "/api/queue?order=urgent&operator=cai")[2])["results"] == []  # two: done
    agreement = json.loads(fixtures.call(url + "/api/agreement")[2])
    water = next(c for c in agreement["categories"] if c["category"] == "water")
    assert (agreement["messages"], agreement["disagreements"], agreement["settled"]) == (1, 1, 0)
    assert water == {"category": "water", "messages": 1, "agreement": 0.0, "kappa": 0.0}
    status, answer = get(url + "/api/queue?order=disputed&operator=ben")
    assert status == 403 and "disputed is the reviewers' queue (rev" in answer["error"]
    (disputed,) = json.loads(fixtures.call(url + "/api/queue?order=disputed&operator=rev")[2])["results"]
    assert [o["operator"] for o in disputed["opinions"]] == ["ana", "ben"]
    status, answer = post(url + "/api/decide", {"message": "we need water", "replaces": disputed["standing_id"],
                                                "labels": dict(LABELS, related=1, water=1, food=1), "operator": "rev"})
    assert status == 200
    (standing,) = app.decisions.store.standing().values()
    assert standing.operator == "rev" and standing.reviewer
    assert json.loads(fixtures.call(url + "/api/agreement")[2])["settled"] == 1
    assert json.loads(fixtures.call(url + "/api/queue?order=disputed&operator=rev")[2])["results"] == []
  finally:
    server.shutdown()
    server.server_close()
