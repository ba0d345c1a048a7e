"""The triage page: every endpoint at the HTTP level, then the page itself in a real browser (headless Chromium)."""

import contextlib
import csv
import dataclasses
import http.client
import json
import os
import shutil
import types
import urllib.error
import urllib.parse
import urllib.request

import re

import pytest

from disaster_tf import labels
from disaster_tf import records
from disaster_tf.data import decisions
from disaster_tf.data import keys
from disaster_tf.serve import evaluate
from disaster_tf.serve import predict
from disaster_tf.serve import scorefile
from disaster_tf.triage import app as app_lib
from disaster_tf.triage import retrain
from disaster_tf.triage import review
from tests import fixtures
from tests.triage import test_surges

ROOT = fixtures.ROOT
SCREENSHOT = os.path.join(ROOT, "docs", "triage.png")
TEAM_SCREENSHOT = os.path.join(ROOT, "docs", "team.png")
INJECTION = "<img src=x onerror=alert(1)>"


@pytest.fixture
def site():
  model = records.ExportMetadata(labels.CATEGORIES, {"model": {"architecture": "ensemble"}}, "ckpt-1", "/m", "f",
                                 (0.5,) * labels.NUM_CATEGORIES)
  server, url = fixtures.serve(app_lib.TriageApp(fixtures.keyword_scorer, model, max_request_bytes=4000,
                                                 max_upload_bytes=3000))
  yield url
  server.shutdown()
  server.server_close()


def test_the_page_and_its_files_are_served_by_the_app_with_a_strict_content_policy(site):
  status, headers, body = fixtures.call(site + "/")
  assert status == 200 and b'<script src="/static/app.js">' in body and headers["Content-Type"].startswith("text/html")
  assert "script-src 'self'" in headers["Content-Security-Policy"] and headers["X-Content-Type-Options"] == "nosniff"
  assert b"http" not in body.replace(b"http-equiv", b"")  # nothing fetched from elsewhere: works offline
  for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css")):
    status, headers, body = fixtures.call(f"{site}/static/{name}")
    assert status == 200 and headers["Content-Type"].startswith(kind) and b"https://" not in body
  for path in ("/static/../triage.py", "/static/.hidden", "/nothing"):
    status, _, body = fixtures.call(site + path)
    assert status == 404 and b"no such page" in body


def test_model_endpoint_describes_the_export(site):
  status, _, body = fixtures.call(site + "/api/model")
  info = json.loads(body)
  assert status == 200 and info["urgency"] == list(predict.URGENCY) and info["thresholds"]["water"] == 0.5
  assert info["config"]["model"]["architecture"] == "ensemble" and info["max_messages"] == app_lib.MAX_MESSAGES


APP_JS = os.path.join(ROOT, "disaster_tf", "triage", "static", "app.js")


def fields_read(variable):
  """The fields app.js reads of `variable` (`variable.name`), from its source."""
  with open(APP_JS, encoding="utf-8") as f:
    found = set(re.findall(rf"(?<![\w.]){re.escape(variable)}\.(\w+)", f.read()))
  return found - {"length", "includes", "slice", "map", "join", "toFixed"}  # methods, not fields


def test_the_model_answer_of_a_real_export_has_every_field_the_page_reads(exported):
  _, path = exported
  app = app_lib.TriageApp(predict.local_scorer(path), predict.model_summary(path))
  info = json.loads(json.dumps(app.model_info()))  # as the page receives it
  for variable, value in (("state.model", info), ("m", info), ("about", info["about"]),
                          ("report", info["report"]), ("training", info["report"]["training_data"]),
                          ("config", info["config"]["model"]), ("train", info["config"]["train"]),
                          ("gate", info["language_gate"])):
    missing = fields_read(variable) - set(value)
    assert not missing, f"app.js reads {variable}.{missing} and /api/model has none"
  assert len(fields_read("state.model") | fields_read("m")) >= 6  # the extraction itself works
  assert {"total", "categories", "training_data"} <= fields_read("report")
  water = info["report"]["categories"]["water"]
  assert {"precision", "recall", "f1", "support"} <= set(water) and set(info["thresholds"]) == set(labels.CATEGORIES)
  assert set(info["report"]["training_data"]["positives"]) == set(labels.CATEGORIES)
  # Each answer of /api/classify has what the table, the detail bars and the download read.
  item = app.result({"message": "need water"}, app.score(["need water"])[0])
  queue_only = {"claimed_by", "copies", "second_opinion", "opinions", "standing_id"}  # a Review row's (test_review)
  assert fields_read("item") - queue_only <= set(item) and len(item["scored"]) == len(info["scored_columns"])


def test_classify_answers_each_message_with_its_priority_and_scores(site):
  messages = json.dumps({"messages": ["need water", INJECTION, ""]}).encode()
  status, _, body = fixtures.call(site + "/api/classify", messages)
  results = json.loads(body)["results"]
  assert status == 200 and [r["row"]["message"] for r in results] == ["need water", INJECTION, ""]
  assert results[0]["predicted"] == ["water", "aid_related"] and results[0]["priority"] == 6
  assert set(results[0]["scores"]) == set(labels.CATEGORIES)


@pytest.mark.parametrize("body, status, error", [
    (b"not json", 400, 'request: expected JSON {"messages": ["...", ...]}'),
    (b'{"text": ["a"]}', 400, 'request: expected JSON {"messages"'),
    (b'{"messages": "water"}', 400, "messages: expected a list of strings"),
    (json.dumps({"messages": ["a"] * (app_lib.MAX_MESSAGES + 1)}).encode(), 413,
     "is over the limit of 500 a request"),
    (json.dumps({"messages": ["x" * 5000]}).encode(), 413, "request: 5018 bytes is over the limit of 4000 bytes"),
])
def test_classify_refuses_bad_requests_naming_the_field(site, body, status, error):
  got, _, answer = fixtures.call(site + "/api/classify", body)
  assert got == status and error in json.loads(answer)["error"]


def keyword_explainer(texts):
  """fixtures.keyword_scorer's answers, with `water` explained by the word water wherever it is predicted."""
  results = fixtures.keyword_scorer(texts)
  for r in results:
    r["explanation"] = {c: [["water", 0.8]] if c == "water" else [] for c in r["predicted"]}
  return results


@pytest.mark.parametrize("body, status, error", [
    (b'{"messages": ["a"]}', 400, 'request: expected JSON {"message": "..."}'),
    (b'{"message": 3}', 400, "message: expected a string, found int"),
    (b'{"message": "\\ud800"}', 400, "message: character 1 is a lone surrogate"),
])
def test_explain_answers_one_message_with_its_words_or_names_the_field(body, status, error):
  model = records.ExportMetadata(labels.CATEGORIES, {}, "ckpt-1", "/m", "f", (0.5,) * labels.NUM_CATEGORIES)
  server, url = fixtures.serve(app_lib.TriageApp(fixtures.keyword_scorer, model, explainer=keyword_explainer))
  try:
    got, _, answer = fixtures.call(url + "/api/explain", json.dumps({"message": "Need WATER!"}).encode())
    answer = json.loads(answer)
    assert got == 200 and answer["row"]["message"] == "Need WATER!" and answer["predicted"][0] == "water"
    assert answer["explanation"] == {"water": [["water", 0.8]], "aid_related": []}  # in urgency order
    got, _, answer = fixtures.call(url + "/api/explain", body)
    assert got == status and error in json.loads(answer)["error"]
  finally:
    server.shutdown()
    server.server_close()


def test_explain_is_refused_by_a_page_without_an_explainer(site):
  status, _, body = fixtures.call(site + "/api/explain", b'{"message": "water"}')
  assert status == 404 and "explanations are not offered" in json.loads(body)["error"]


def test_a_post_elsewhere_or_without_a_length_is_refused(site):
  status, _, body = fixtures.call(site + "/api/other", b"{}")
  assert status == 404 and "no such endpoint" in json.loads(body)["error"]
  connection = http.client.HTTPConnection(urllib.parse.urlsplit(site).netloc, timeout=30)
  connection.putrequest("POST", "/api/classify")  # headers only: no Content-Length, no body
  connection.endheaders()
  response = connection.getresponse()
  assert response.status == 411 and "Content-Length header is required" in json.loads(response.read())["error"]
  connection.close()


def test_upload_streams_the_rows_with_their_answers_and_a_report(site):
  body = b"id,message,genre\n1,We need water,direct\n2,trapped,direct\n3,bad\n" + b"4,caf\xe9,direct\n"
  status, headers, answer = fixtures.call(site + "/api/upload", body, "text/csv")
  lines = fixtures.ndjson(answer)
  assert status == 200 and headers["Content-Type"].startswith("application/x-ndjson")
  assert lines[0] == {"columns": ["id", "message", "genre"]}
  assert [line["row"]["id"] for line in lines[1:-1]] == ["1", "2"]
  assert lines[2]["priority"] == 1 and lines[2]["row"]["genre"] == "direct"
  assert lines[-1]["unreadable"] == 2 and "upload:4: expected 3 fields, found 2" in lines[-1]["report"]
  assert "upload:5: byte 6 is not valid UTF-8" in lines[-1]["report"]
  assert lines[-1]["report"].startswith("4 rows read, 2 scored, 2 not readable")


@pytest.mark.parametrize("body, status, error", [
    (b"", 400, "upload: the file is empty; expected a CSV file with a 'message' column"),
    (b"id,text\n1,water\n", 400, "upload:1: no 'message' column; found id, text"),
    (b"id,message\n" + b"1,water\n" * 400, 413, "upload: 3211 bytes is over the limit of 3000 bytes; split it"),
])
def test_bad_uploads_get_a_clear_message(site, body, status, error):
  got, _, answer = fixtures.call(site + "/api/upload", body, "text/csv")
  assert got == status and error in json.loads(answer)["error"]


# --- the page in a real browser -------------------------------------------------------------


def chromium(download_dir, user_dir):
  """Headless Debian Chromium under selenium; skips the test where either cannot be had."""
  webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e .[test])")
  binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
  if not binary or not driver:
    pytest.skip("no Chromium here (Debian packages chromium and chromium-driver; .ci/run installs them)")
  options = webdriver.ChromeOptions()
  options.binary_location = binary
  for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage", f"--user-data-dir={user_dir}", "--window-size=1200,900"):
    options.add_argument(flag)
  options.add_experimental_option("prefs", {"download.default_directory": str(download_dir),
                                            "download.prompt_for_download": False})
  browser = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver))
  browser.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(download_dir)})
  return browser


def stale(element) -> bool:
  """True once `element` has left the page (its list was drawn anew)."""
  from selenium.common.exceptions import StaleElementReferenceException  # pylint: disable=import-outside-toplevel
  try:
    element.is_enabled()
  except StaleElementReferenceException:
    return True
  return False


def wait_for(browser, condition, what, timeout=60):
  from selenium.webdriver.support.ui import WebDriverWait  # pylint: disable=import-outside-toplevel
  return WebDriverWait(browser, timeout).until(lambda _: condition(), message=f"waited for {what}")


def open_and_classify(browser, url):
  """Opens the page, pastes three messages (one of them markup) and classifies them: {message: its row}."""
  from selenium.webdriver.common.by import By  # pylint: disable=import-outside-toplevel
  browser.get(url + "/")
  wait_for(browser, lambda: len(browser.find_elements(By.CSS_SELECTOR, "#filter option")) > 1, "the model")
  browser.find_element(By.ID, "messages").send_keys(f"We need water please\n{INJECTION}\nfire in the town")
  browser.find_element(By.ID, "classify-button").click()
  wait_for(browser, lambda: "Scored 3 messages" in browser.find_element(By.ID, "status").text, "the answers")
  return {r.find_element(By.CLASS_NAME, "message").text: r
          for r in browser.find_elements(By.CSS_SELECTOR, "#results tr.item")}


def test_an_operator_classifies_uploads_filters_and_downloads_in_a_real_browser(exported, tmp_path):
  from selenium.common.exceptions import NoAlertPresentException  # pylint: disable=import-outside-toplevel
  from selenium.webdriver.common.by import By  # pylint: disable=import-outside-toplevel
  _, path = exported
  app = app_lib.TriageApp.for_export(path)
  app.decisions = review.DecisionsApi(decisions.Store(str(tmp_path / "decisions.db")))
  server, url = fixtures.serve(app)
  browser = chromium(tmp_path / "downloads", tmp_path / "profile")
  try:
    rows = open_and_classify(browser, url)
    chips = [c.text for c in rows["We need water please"].find_elements(By.CSS_SELECTOR, ".categories .chip")]
    assert "water" in chips
    # The injected markup is shown as the text it is: no element made of it, no script run.
    assert INJECTION in rows and not browser.find_elements(By.CSS_SELECTOR, "#results img")
    with pytest.raises(NoAlertPresentException):
      browser.switch_to.alert.text  # pylint: disable=expression-not-assigned
    rows["We need water please"].click()  # its 36 scores as bars, each with its threshold marked
    # Which words made each predicted category: `water` highlighted in the message on water's line.
    wait_for(browser, lambda: browser.find_elements(By.CSS_SELECTOR, "tr.detail .why-line"), "the explanation")
    lines = {line.find_element(By.CLASS_NAME, "why-category").text: line
             for line in browser.find_elements(By.CSS_SELECTOR, "tr.detail .why-line")}
    assert [m.text for m in lines["water"].find_elements(By.TAG_NAME, "mark")] == ["water"]
    assert lines["water"].find_element(By.CLASS_NAME, "why-words").text.startswith("water +")
    assert len(browser.find_elements(By.CSS_SELECTOR, "tr.detail .bar")) == labels.NUM_CATEGORIES
    assert len(browser.find_elements(By.CSS_SELECTOR, "tr.detail .threshold")) == labels.NUM_CATEGORIES
    take_screenshot(browser)
    # The operator corrects it (adds fire), saves; after a reload the page shows it decided, by whom.
    browser.find_element(By.CSS_SELECTOR, "tr.detail input[data-category='fire']").click()
    browser.find_element(By.CSS_SELECTOR, "tr.detail button.save").click()
    wait_for(browser, lambda: "Saved: decided by local" in browser.find_element(By.ID, "status").text, "the save")
    rows = open_and_classify(browser, url)  # a reload: what the page shows comes from the server
    assert "decided by local" in rows["We need water please"].text
    (standing,) = decisions.Store(str(tmp_path / "decisions.db")).standing().values()
    assert standing.labels[labels.CATEGORIES.index("fire")] == 1 and standing.message == "We need water please"
    # The Review tab: the undecided messages, most useful to teach first or most urgent first; decide from there.
    browser.find_element(By.ID, "tab-review").click()
    wait_for(browser, lambda: len(browser.find_elements(By.CSS_SELECTOR, "#review-results tr.item")) == 2, "the queue")
    queued = [r.text for r in browser.find_elements(By.CSS_SELECTOR, "#review-results tr.item .message")]
    assert "Retraining is by hand" in browser.find_element(By.ID, "review-retrain").text  # no --retrain_every
    assert sorted(queued) == sorted([INJECTION, "fire in the town"])  # the decided message left the queue
    browser.find_element(By.CSS_SELECTOR, "#review-order option[value='urgent']").click()
    shown_before = browser.find_element(By.CSS_SELECTOR, "#review-results tr.item")
    browser.find_element(By.ID, "review-button").click()
    # The list is drawn anew (drawRows replaces its rows): wait for the old rows to go, not merely for rows, which
    # the old list already had (clicking one of them raced the redraw and found it stale).
    wait_for(browser, lambda: stale(shown_before) and browser.find_elements(By.CSS_SELECTOR,
                                                                          "#review-results tr.item"),
             "the urgent order")
    browser.find_element(By.CSS_SELECTOR, "#review-results tr.item").click()  # claims it, then opens it
    wait_for(browser, lambda: browser.find_elements(By.CSS_SELECTOR, "#review-results tr.detail button.save"),
             "the claimed message")
    browser.find_element(By.CSS_SELECTOR, "#review-results tr.detail button.save").click()
    wait_for(browser, lambda: "Saved: decided by local" in browser.find_element(By.ID, "status").text, "a review save")
    assert len(decisions.Store(str(tmp_path / "decisions.db")).standing()) == 2
    browser.find_element(By.ID, "tab-classify").click()
    select = browser.find_element(By.ID, "filter")
    select.find_element(By.CSS_SELECTOR, "option[value='water']").click()
    shown = browser.find_elements(By.CSS_SELECTOR, "#results tr.item")
    assert "We need water please" in [r.find_element(By.CLASS_NAME, "message").text for r in shown]
    assert len(shown) < 3 and all("water" in [c.text for c in r.find_elements(By.CSS_SELECTOR, ".chip")] for r in shown)
    select.find_element(By.CSS_SELECTOR, "option[value='']").click()
    upload = tmp_path / "incoming.csv"
    upload.write_text('id,message\n7,Send water to the north road\n8,"=HYPERLINK(""http://x"")"\n'
                      '9,earthquake in town\n')
    browser.find_element(By.ID, "upload").send_keys(str(upload))
    wait_for(browser, lambda: "3 scored" in browser.find_element(By.ID, "status").text, "the upload")
    browser.find_element(By.ID, "download").click()
    scored = tmp_path / "downloads" / "scored.csv"
    wait_for(browser, scored.exists, "the download")
    with open(scored, encoding="utf-8", newline="") as f:
      downloaded = list(csv.DictReader(f))
    assert sorted(r["id"] for r in downloaded) == ["7", "8", "9"] and "score_water" in downloaded[0]
    # A cell a spreadsheet would run is written as text, by the rule predict.py follows (scorefile.neutralise).
    assert [r["message"] for r in downloaded if r["id"] == "8"] == [scorefile.neutralise('=HYPERLINK("http://x")')]
    browser.find_element(By.ID, "tab-model").click()
    assert browser.find_elements(By.CSS_SELECTOR, "#model svg.chart")  # the thresholds (and F1) as charts
    model_text = browser.find_element(By.ID, "model").text
    assert "Validation:" in model_text and "Training data" in model_text and "direct" in model_text
    assert "trained on 0 operators' decisions" in browser.find_element(By.ID, "trained-on").text
    assert len(browser.find_elements(By.CSS_SELECTOR, "#model .model-table tr")) == 1 + labels.NUM_CATEGORIES
    # The same validation messages as sent and in English, so that an operator knows how far to trust it on either.
    assert "By language" in model_text and "as sent, micro-F1" in model_text
    assert [r.text.split()[0] for r in browser.find_elements(By.CSS_SELECTOR, "#model .language-table tr")[1:]] == [
        "as", "in"]
    # The evaluation's HTML report, opened from disk: its charts are there without any network.
    model_dir, _ = exported
    evaluate.evaluate_export(path, os.path.join(os.path.dirname(model_dir), "data"), "validation",
                             report_path=str(tmp_path / "report.html"))
    browser.get((tmp_path / "report.html").as_uri())
    assert len(browser.find_elements(By.CSS_SELECTOR, "figure.curve svg polyline")) == labels.NUM_CATEGORIES
    assert browser.find_elements(By.CSS_SELECTOR, "svg.bars rect") and "Model card" in browser.page_source
    assert "By language" in browser.page_source and "as sent" in browser.page_source
  finally:
    browser.quit()
    server.shutdown()
    server.server_close()


def test_an_english_only_pages_flags_a_creole_appeal_first_and_says_what_it_reads(exported, tmp_path):
  from selenium.webdriver.common.by import By  # pylint: disable=import-outside-toplevel
  _, path = exported  # its gate reads the fixtures' Creole; its metadata is made English-only's, as the default's
  app = app_lib.TriageApp.for_export(path)
  app.model = dataclasses.replace(app.model, config={**app.model.config, "train": {
      **app.model.config["train"], "text_fields": ["message"]}})
  app.retrainer = types.SimpleNamespace(status=retrain.Status(  # a retrain that failed, as the Model tab says it
      "failed", 100, 140, 130, "2026-12-02 10:00:00 UTC", "2026-12-02 10:05:00 UTC",
      "train.py exited with status 1; the serving version is unchanged. End of r.log:\nValueError: bad row", "r.log"))
  server, url = fixtures.serve(app)
  browser = chromium(tmp_path / "downloads", tmp_path / "profile")
  try:
    browser.get(url + "/")
    wait_for(browser, lambda: len(browser.find_elements(By.CSS_SELECTOR, "#filter option")) > 1, "the model")
    pasted = "We need water please\nplease send help to the village\nNou bezwen dlo tanpri voye manje"
    browser.find_element(By.ID, "messages").send_keys(pasted)
    browser.find_element(By.ID, "classify-button").click()
    wait_for(browser, lambda: "Scored 3 messages" in browser.find_element(By.ID, "status").text, "the answers")
    first, *others = browser.find_elements(By.CSS_SELECTOR, "#results tr.item")
    assert first.find_element(By.CLASS_NAME, "message").text == "Nou bezwen dlo tanpri voye manje"
    assert "not English: this model reads English only; read it yourself" in first.text
    assert not any("not English" in row.text for row in others)
    browser.find_element(By.ID, "tab-model").click()
    assert "It reads English only" in browser.find_element(By.ID, "model-info").text
    assert "failed; the next starts after 100 more decisions (10 so far)" in browser.find_element(
        By.ID, "retrain-status").text
    assert "ValueError: bad row" in browser.find_element(By.CSS_SELECTOR, "#model-info pre.error").text
  finally:
    browser.quit()
    server.shutdown()
    server.server_close()


def test_over_tf_serving_the_page_flags_what_the_export_says_it_cannot_read(tmp_path):
  from selenium.webdriver.common.by import By  # pylint: disable=import-outside-toplevel
  def served(texts):  # what client.predict_rest answers from an English-only export: no metadata, its own word
    return [dict(r, reads_language=r["language"] == "english") for r in fixtures.keyword_scorer(texts)]
  server, url = fixtures.serve(app_lib.TriageApp(served))
  browser = chromium(tmp_path / "downloads", tmp_path / "profile")
  try:
    browser.get(url + "/")
    wait_for(browser, lambda: len(browser.find_elements(By.CSS_SELECTOR, "#filter option")) > 1, "the model")
    browser.find_element(By.ID, "messages").send_keys("We need water please\nNou bezwen dlo tanpri")
    browser.find_element(By.ID, "classify-button").click()
    wait_for(browser, lambda: "Scored 2 messages" in browser.find_element(By.ID, "status").text, "the answers")
    first = browser.find_elements(By.CSS_SELECTOR, "#results tr.item")[0]
    assert "Nou bezwen dlo tanpri" in first.text and "not English" in first.text
    browser.find_element(By.ID, "tab-model").click()
    model_text = browser.find_element(By.ID, "model-info").text
    assert "Served through TF Serving: this page has no model card" in model_text
    assert "reads English and messages as they were sent" not in model_text  # no claim it cannot know
  finally:
    browser.quit()
    server.shutdown()
    server.server_close()


QUEUED = ["people trapped in the church", "we need water at the camp", "thanks for the news"]


@contextlib.contextmanager
def review_page(tmp_path, names=("op",), store=None, queued=(), **api):
  """A page over a decisions file (`store`, else a new one) with `queued` in its queue (`api`: more
  review.DecisionsApi arguments), served, and a Chromium for each of `names`: (app, url, {name: browser});
  all closed after."""
  app = app_lib.TriageApp(fixtures.keyword_scorer)
  app.decisions = review.DecisionsApi(store or decisions.Store(str(tmp_path / "decisions.db")), **api)
  app.enqueue([({"message": t}, r) for t, r in zip(queued, fixtures.keyword_scorer(list(queued)))])
  server, url = fixtures.serve(app)
  browsers = {}
  try:
    for name in names:
      browsers[name] = chromium(tmp_path / f"{name}-downloads", tmp_path / f"{name}-profile")
    yield app, url, browsers
  finally:
    for browser in browsers.values():
      browser.quit()
    server.shutdown()
    server.server_close()


def test_two_operators_side_by_side_never_read_the_same_message(tmp_path):
  from selenium.webdriver.common.by import By  # pylint: disable=import-outside-toplevel
  with review_page(tmp_path, ("ana", "ben"), queued=QUEUED) as (app, url, browsers):
    ana, ben = browsers["ana"], browsers["ben"]
    for browser, name in ((ana, "ana"), (ben, "ben")):
      browser.get(url + "/")
      wait_for(browser, lambda b=browser: not b.find_element(By.ID, "tab-review").get_attribute("hidden"), "the tab")
      browser.find_element(By.ID, "operator-name").send_keys(name)
      browser.find_element(By.ID, "tab-review").click()
      browser.find_element(By.CSS_SELECTOR, "#review-order option[value='urgent']").click()
    ana.find_element(By.ID, "review-next").click()  # ana: the most urgent one, claimed for her
    wait_for(ana, lambda: ana.find_elements(By.CSS_SELECTOR, "#review-results tr.detail button.save"), "ana's message")
    opened = ana.find_element(By.CSS_SELECTOR, "#review-results tr.detail").find_element(
        By.XPATH, "preceding-sibling::tr[1]").find_element(By.CLASS_NAME, "message").text
    assert opened == "people trapped in the church"
    ben.find_element(By.ID, "review-button").click()
    wait_for(ben, lambda: "being read by ana" in ben.find_element(By.ID, "review-results").text, "ana's claim")
    row = next(r for r in ben.find_elements(By.CSS_SELECTOR, "#review-results tr.item") if opened in r.text)
    row.click()  # ben opens it anyway: refused, with who reads it
    wait_for(ben, lambda: "being read by ana" in ben.find_element(By.ID, "status").text, "the refusal")
    assert not ben.find_elements(By.CSS_SELECTOR, "#review-results tr.detail")
    ben.find_element(By.ID, "review-next").click()  # ben's Next: the next one nobody reads
    wait_for(ben, lambda: ben.find_elements(By.CSS_SELECTOR, "#review-results tr.detail button.save"), "ben's message")
    held = app.decisions.claims.held()
    assert sorted(c.operator for c in held.values()) == ["ana", "ben"] and len(held) == 2
    ana.find_element(By.CSS_SELECTOR, "#review-results tr.detail button.save").click()
    wait_for(ana, lambda: "Saved: decided by ana" in ana.find_element(By.ID, "status").text, "ana's save")
    assert [c.operator for c in app.decisions.claims.held().values()] == ["ben"]  # her decision ended her claim


def test_near_copies_fold_into_one_row_and_one_decision_covers_them(tmp_path):
  from selenium.webdriver.common.by import By  # pylint: disable=import-outside-toplevel
  with review_page(tmp_path) as (_, url, browsers):
    browser = browsers["op"]
    browser.get(url + "/")
    wait_for(browser, lambda: len(browser.find_elements(By.CSS_SELECTOR, "#filter option")) > 1, "the model")
    browser.find_element(By.ID, "messages").send_keys(
        "We need water in Carrefour please\nthanks for the news\nwe need WATER in carrefour, please!")
    browser.find_element(By.ID, "classify-button").click()
    wait_for(browser, lambda: "Scored 3 messages" in browser.find_element(By.ID, "status").text, "the answers")
    rows = browser.find_elements(By.CSS_SELECTOR, "#results tr.item")
    assert len(rows) == 2 and "+1 near-copies" in rows[0].text  # the two water appeals are one row
    assert "1 near-copies folded" in browser.find_element(By.ID, "count").text
    header = browser.find_element(By.XPATH, "//table[@id='results']//th[text()='Message']")

    def messages():
      return [r.find_element(By.CLASS_NAME, "message").text for r in browser.find_elements(By.CSS_SELECTOR,
                                                                                            "#results tr.item")]
    header.click()  # columns sort, one way then the other
    assert messages() == ["thanks for the news", "We need water in Carrefour please"]
    assert header.get_attribute("aria-sort") == "ascending"
    header.click()
    assert messages() == ["We need water in Carrefour please", "thanks for the news"]
    rows = browser.find_elements(By.CSS_SELECTOR, "#results tr.item")
    rows[0].click()
    detail = browser.find_element(By.CSS_SELECTOR, "#results tr.detail")
    assert "Bar: score" in detail.find_element(By.CLASS_NAME, "legend").text
    assert "Your decision" in detail.find_element(By.CSS_SELECTOR, ".decide h4").text
    detail.find_element(By.CSS_SELECTOR, "input[data-category='fire']").click()
    detail.find_element(By.CSS_SELECTOR, "button.save").click()
    wait_for(browser, lambda: "with its 1 near-copies" in browser.find_element(By.ID, "status").text, "the save")
    standing = decisions.Store(str(tmp_path / "decisions.db")).standing()
    assert sorted(d.message for d in standing.values()) == ["We need water in Carrefour please",
                                                           "we need WATER in carrefour, please!"]
    assert all(d.labels[labels.CATEGORIES.index("fire")] == 1 for d in standing.values())
    # The row stays open and shows the decision (fire now, marked decided), not the model's answer.
    row = browser.find_element(By.CSS_SELECTOR, "#results tr.item")
    assert "decided by local" in row.text and "fire" in row.text
    assert browser.find_elements(By.CSS_SELECTOR, "#results tr.detail button.undo-all")
    browser.find_element(By.ID, "download").click()
    scored = tmp_path / "op-downloads" / "scored.csv"
    wait_for(browser, scored.exists, "the download")
    with open(scored, encoding="utf-8", newline="") as f:
      downloaded = {r["message"]: r for r in csv.DictReader(f)}
    water = downloaded["We need water in Carrefour please"]
    assert water["decided_by"] == "local" and "fire" in water["decided"].split(";") and "fire" not in water["predicted"]
    assert downloaded["thanks for the news"]["decided_by"] == ""
    browser.find_element(By.CSS_SELECTOR, "#results tr.detail button.undo-all").click()
    wait_for(browser, lambda: "with the decisions of its 1 near-copies" in browser.find_element(By.ID, "status").text,
             "the undo")
    assert decisions.Store(str(tmp_path / "decisions.db")).standing() == {}


def test_every_review_action_works_from_the_keyboard(tmp_path):
  from selenium.webdriver.common.by import By  # pylint: disable=import-outside-toplevel
  from selenium.webdriver.common.keys import Keys  # pylint: disable=import-outside-toplevel
  with review_page(tmp_path, queued=QUEUED) as (app, url, browsers):
    browser = browsers["op"]

    def press(*keys):
      browser.switch_to.active_element.send_keys(*keys)

    def status():
      return browser.find_element(By.ID, "status").text

    browser.get(url + "/")
    wait_for(browser, lambda: not browser.find_element(By.ID, "tab-review").get_attribute("hidden"), "the tab")
    browser.find_element(By.ID, "tab-review").click()
    wait_for(browser, lambda: len(browser.find_elements(By.CSS_SELECTOR, "#review-results tr.item")) == 3, "the queue")
    press("?")
    keys = browser.find_element(By.ID, "keys")
    assert keys.is_displayed() and "Next for me" in keys.text
    press(Keys.ESCAPE)
    assert not browser.find_element(By.ID, "keys").is_displayed()
    press("j")  # the first row has the focus, visibly
    first = browser.find_element(By.CSS_SELECTOR, "#review-results tr.item")
    assert browser.switch_to.active_element == first
    assert browser.execute_script("return getComputedStyle(arguments[0]).outlineStyle", first) != "none"
    press("j", "k", Keys.ENTER)  # down, up, open: the first one, claimed
    wait_for(browser, lambda: browser.find_elements(By.CSS_SELECTOR, "#review-results tr.detail"), "the opened row")
    assert [c.operator for c in app.decisions.claims.held().values()] == ["local"]
    press("c")  # to the categories; Space ticks the focused one
    box = browser.switch_to.active_element
    category, before = box.get_attribute("data-category"), box.is_selected()
    press(Keys.SPACE)
    assert category and box.is_selected() != before
    related = browser.find_element(By.CSS_SELECTOR, "tr.detail select.related")
    was = int(related.get_attribute("value"))
    press("r")  # related in turn
    assert int(related.get_attribute("value")) == (was + 1) % 3
    press("s")
    wait_for(browser, lambda: "Saved: decided by local" in status(), "the save")
    (saved,) = app.decisions.store.standing().values()
    assert saved.labels[labels.CATEGORIES.index(category)] == int(not before)
    assert browser.find_elements(By.CSS_SELECTOR, "#review-results tr.detail button.undo")  # still open, decided
    press("u")
    wait_for(browser, lambda: "Decision undone." in status(), "the undo")
    assert app.decisions.store.standing() == {}
    wait_for(browser, lambda: browser.find_elements(By.CSS_SELECTOR, "#review-results tr.detail"), "the row again")
    press("x")  # closed, and released
    wait_for(browser, lambda: not app.decisions.claims.held(), "the release")
    assert not browser.find_elements(By.CSS_SELECTOR, "#review-results tr.detail")
    press("n")
    wait_for(browser, lambda: "You are reading message" in status(), "Next for me")
    assert len(app.decisions.claims.held()) == 1


def test_a_surge_is_flagged_on_every_tab_and_drawn_on_the_team_tab(tmp_path, monkeypatch):
  from selenium.webdriver.common.by import By  # pylint: disable=import-outside-toplevel
  with review_page(tmp_path, store=test_surges.surging_store(str(tmp_path / "d.db"), monkeypatch)) as (
      _, url, browsers):
    browser = browsers["op"]
    browser.get(url + "/")
    banner = browser.find_element(By.ID, "surge-banner")
    wait_for(browser, banner.is_displayed, "the surge banner")
    assert banner.text.startswith("Surge: water 8 in the last 60 min (4x its baseline)")
    browser.find_element(By.ID, "tab-team").click()
    # Opening the tab loads the surges again and redraws their rows (so does the minute's poll): read the first row
    # and its chart in one script, not element by element.
    def first_row():
      return browser.execute_script(
          "const r = document.querySelector('#surges .surge-row'); if (!r) return null;"
          "const bars = r.querySelectorAll('svg.surge-chart rect');"
          "return {text: r.innerText, bars: bars.length, last: bars.length ? bars[bars.length - 1].getAttribute("
          "'fill') : null};")
    row = wait_for(browser, lambda: (r := first_row()) and "water" in r["text"] and r, "the team tab's surge row")
    assert "SURGE" in row["text"]
    assert row["bars"] == 25 and row["last"] == "#c01c28"  # the page's own chart, no library
    assert "at least 3x its baseline" in browser.find_element(By.ID, "surge-rule").text


def test_a_second_opinion_in_the_browser_and_the_agreement_on_the_team_tab(tmp_path, monkeypatch):
  from selenium.webdriver.common.by import By  # pylint: disable=import-outside-toplevel
  store = test_surges.surging_store(str(tmp_path / "decisions.db"), monkeypatch)
  values = [1 if c in ("related", "fire") else 0 for c in labels.CATEGORIES]  # ana said fire, not water
  store.record(decisions.Decision(keys.message_key(None, "we need water"), "we need water", tuple(values), "ana"))
  with review_page(tmp_path, store=store, second_share=1.0) as (_, url, browsers):
    browser = browsers["op"]
    browser.get(url + "/")
    wait_for(browser, lambda: not browser.find_element(By.ID, "tab-review").get_attribute("hidden"), "the tab")
    browser.find_element(By.ID, "operator-name").send_keys("ben")
    browser.find_element(By.ID, "tab-review").click()
    wait_for(browser, lambda: "second opinion" in browser.find_element(By.ID, "review-results").text, "the item")
    row = browser.find_element(By.CSS_SELECTOR, "#review-results tr.item")  # first: the second opinion
    assert "fire" not in row.text and "decided by ana" not in row.text  # blind: the model's answer only
    row.click()
    wait_for(browser, lambda: browser.find_elements(By.CSS_SELECTOR, "#review-results tr.detail button.save"), "form")
    assert browser.find_element(By.CSS_SELECTOR, "tr.detail input[data-category='water']").is_selected()
    assert not browser.find_element(By.CSS_SELECTOR, "tr.detail input[data-category='fire']").is_selected()
    browser.find_element(By.CSS_SELECTOR, "#review-results tr.detail button.save").click()
    wait_for(browser, lambda: "Saved: decided by ben" in browser.find_element(By.ID, "status").text, "the save")
    browser.find_element(By.ID, "tab-team").click()
    wait_for(browser, lambda: browser.find_elements(By.CSS_SELECTOR, "#agreement .agreement-table tr"), "the table")
    text = browser.find_element(By.ID, "agreement").text
    assert "1 decided by two so far; 1 disagreed" in text
    rows = {r.find_elements(By.TAG_NAME, "td")[0].text: r.text
            for r in browser.find_elements(By.CSS_SELECTOR, "#agreement .agreement-table tr")[1:]}
    assert "0%" in rows["water"] and "0%" in rows["fire"] and "food" not in rows  # both said no food: not listed
    assert "more categories: the two operators always gave the same one label" in text
    wait_for(browser, lambda: browser.find_elements(By.CSS_SELECTOR, "#surges .surge-row"), "the surges")
    take_screenshot(browser, TEAM_SCREENSHOT)


def take_screenshot(browser, path=SCREENSHOT):
  """README's pictures of the page, refreshed only when asked (UPDATE_SCREENSHOT=1), so runs leave the tree alone."""
  if os.environ.get("UPDATE_SCREENSHOT") == "1":
    os.makedirs(os.path.dirname(path), exist_ok=True)
    browser.save_screenshot(path)
