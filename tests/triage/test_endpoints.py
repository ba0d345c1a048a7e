"""The page's endpoints without HTTP: routing, and an endpoint called on a request the test builds."""

import json

import pytest

from disaster_tf.triage import app as app_lib
from disaster_tf.triage import endpoints
from tests import fixtures


def request(path, body=b"", authorization=None, content_type="application/json"):
  """A parsed request whose body is `body` (its limit checked as the server checks it)."""
  def read(limit, what):
    if len(body) > limit:
      raise endpoints.Refused(413, f"{what}: over the limit")
    return body
  return endpoints.Request(path, authorization, read, content_type)


def test_each_method_and_path_has_its_endpoint_and_any_other_get_is_a_page_file():
  assert endpoints.route("POST", "/api/classify") is endpoints.classify
  assert endpoints.route("POST", "/api/undo") is endpoints.route("POST", "/api/decide") is endpoints.decide
  assert endpoints.route("GET", "/api/queue?order=urgent&limit=5") is endpoints.queue  # a GET's query is its own
  assert endpoints.route("GET", "/static/app.js") is endpoints.route("GET", "/api/nothing") is endpoints.page
  with pytest.raises(endpoints.Refused, match=r"/api/model: no such endpoint \(POST /api/classify") as refused:
    endpoints.route("POST", "/api/model")
  assert refused.value.status == 404
  with pytest.raises(endpoints.Refused, match="no such endpoint"):
    endpoints.route("POST", "/api/classify?x=1")  # a POST names its endpoint exactly


def test_classify_answers_good_messages_and_fails_the_others_alone():
  app = app_lib.TriageApp(fixtures.keyword_scorer)
  answer = endpoints.classify(app, request("/api/classify", json.dumps({"messages": ["need water", 7]}).encode()))
  first, second = answer.value["results"]
  assert answer.status == 200 and first["predicted"] == ["water", "aid_related"] and first["error"] is None
  assert second["error"] == "messages[1]: expected a string, found int" and second["row"]["message"] == "7"
  with pytest.raises(endpoints.Refused, match=r'request: expected JSON \{"messages"'):
    endpoints.classify(app, request("/api/classify", b'{"text": []}'))


def test_an_upload_is_checked_whole_before_its_stream_starts():
  app = app_lib.TriageApp(fixtures.keyword_scorer)
  with pytest.raises(endpoints.Refused, match="upload: the file is empty"):
    endpoints.upload(app, request("/api/upload", b"  \n", content_type="text/csv"))
  with pytest.raises(endpoints.Refused, match="upload: Content-Type must be text/csv, found 'application/json'"):
    endpoints.upload(app, request("/api/upload", b"id,message\n1,We need water\n"))
  stream = endpoints.upload(app, request("/api/upload", b"id,message\n1,We need water\n", content_type="text/csv"))
  lines = list(stream.lines)
  assert lines[0] == {"columns": ["id", "message"]} and lines[1]["predicted"][0] == "water"
  assert lines[-1]["report"] and lines[-1]["unreadable"] == 0


def test_the_page_serves_its_own_files_only():
  page = endpoints.page(None, request("/"))
  assert page.content_type.startswith("text/html") and b"/static/app.js" in page.body
  for path in ("/static/../server.py", "/static/.hidden", "/static/", "/favicon.ico"):
    with pytest.raises(endpoints.Refused, match="no such page"):
      endpoints.page(None, request(path))


def test_decisions_endpoints_need_the_db_and_explain_needs_an_explainer():
  app = app_lib.TriageApp(fixtures.keyword_scorer)
  for endpoint in (endpoints.decided, endpoints.queue, endpoints.decide):
    with pytest.raises(endpoints.Refused, match="decisions are not kept by this page: start it with --db=FILE"):
      endpoint(app, request("/api/queue", b"{}"))
  with pytest.raises(endpoints.Refused, match="explanations are not offered by this page's scorer"):
    endpoints.explain(app, request("/api/explain", b'{"message": "water"}'))
  with pytest.raises(endpoints.Refused, match=r"message: character 3 is a lone surrogate"):
    endpoints.explain(app, request("/api/explain", b'{"message": "ab\\udc80"}'))
