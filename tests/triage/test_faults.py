"""Fault injection into the triage page's server: framing, hostile bodies, Host, defects, newer exports.

Each test sends what an adversary or a broken client would, and checks that the
answer is a status with a sentence and that the server goes on serving.
"""


import json
import shutil
import socket
import urllib.parse

import pytest

from disaster_tf.serve import predict
from disaster_tf.triage import app as app_lib
from disaster_tf.triage import server as server_lib
from tests import fixtures

pytestmark = pytest.mark.faults


# --- Reliability III: the page server ------------------------------------------------------------


@pytest.fixture
def page():
  """A triage server with a stand-in model and a one-second socket timeout: (app, url)."""
  app = app_lib.TriageApp(fixtures.keyword_scorer, max_request_bytes=4000, max_upload_bytes=3000, timeout=1.0)
  server, url = fixtures.serve(app)
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
  assert fixtures.call(url + "/api/model")[0] == 200  # the server goes on


@pytest.mark.parametrize("body", [b"[" * 100_000, b'{"messages": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
                                  b'{"messages": {"a": 1}}', b"\xff\xfe", b"1e999999", b'"messages"'])
def test_any_body_that_cannot_be_parsed_gets_a_400_and_a_sentence(body):
  app = app_lib.TriageApp(fixtures.keyword_scorer, max_request_bytes=1 << 20)
  server, url = fixtures.serve(app)
  try:
    status, _, answer = fixtures.call(url + "/api/classify", body)
  finally:
    server.shutdown()
    server.server_close()
  assert status == 400 and json.loads(answer)["error"].startswith(("request: expected JSON", "messages: expected"))


def test_one_bad_line_of_a_pasted_batch_fails_alone(page):
  _, url = page
  body = b'{"messages": ["we need water", "\\ud800 lone", 7, null, "trapped"]}'
  status, _, answer = fixtures.call(url + "/api/classify", body)
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
  assert server_lib.allowed_hosts("0.0.0.0", 8080, ["server_lib.example.org"]) >= {"server_lib.example.org:8080",
                                                                            "server_lib.example.org", "localhost:8080"}


def test_head_answers_with_the_headers_only(page):
  _, url = page
  port = urllib.parse.urlsplit(url).port
  status, body = raw(url, f"HEAD / HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
  assert status == 200 and body == b""


def test_a_defect_in_the_server_is_an_answer_not_a_closed_connection(page, monkeypatch):
  app, url = page
  monkeypatch.setattr(app, "scorer", lambda texts: 1 / 0)
  status, _, answer = fixtures.call(url + "/api/classify", b'{"messages": ["water"]}')
  assert status == 500 and "internal error (ZeroDivisionError" in json.loads(answer)["error"]
  status, _, answer = fixtures.call(url + "/api/upload", b"id,message\n1,water\n", "text/csv")
  assert status == 200 and "stopped early: ZeroDivisionError" in fixtures.ndjson(answer)[-1]["report"]


# --- Reliability III: what the page says of the model --------------------------------------------


def test_the_page_picks_up_a_newer_export_and_says_when(exported, tmp_path, monkeypatch):
  _, path = exported
  base = tmp_path / "models"
  shutil.copytree(path, base / "1")
  app = app_lib.TriageApp.for_export(str(base))
  assert app.model_info()["about"]["export_version"] == 1 and app.model_info()["about"]["history"] == []
  shutil.copytree(path, base / "2")  # a newer export, published whole (export.py renames it into place)
  monkeypatch.setattr(app_lib, "RELOAD_SECONDS", 0.0)
  server, url = fixtures.serve(app)
  try:
    about = json.loads(fixtures.call(url + "/api/model")[2])["about"]
    (base / "3").mkdir()  # a broken version: the page keeps the one it has, and says why
    broken = json.loads(fixtures.call(url + "/api/model")[2])["about"]
  finally:
    server.shutdown()
    server.server_close()
  assert about["export_version"] == 2 and about["path"] == str(base / "2") and about["history"][0]["version"] == 1
  assert broken["export_version"] == 2 and "FileNotFoundError" in broken["reload_error"]
