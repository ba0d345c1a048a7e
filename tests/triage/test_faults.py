"""Fault injection into the triage page's server: framing, hostile bodies, Host, defects, newer exports.

Each test sends what an adversary or a broken client would, and checks that the
answer is a status with a sentence and that the server goes on serving.
"""


import json
import shutil
import socket
import sys
import urllib.parse

import pytest

from disaster_tf.serve import predict
from disaster_tf.triage import app as app_lib
from disaster_tf.triage import server as server_lib
from tests import fixtures

pytestmark = pytest.mark.faults


# --- Reliability III: the page server ------------------------------------------------------------


@pytest.fixture(params=server_lib.KINDS[1:])
def page(request):
  """A triage server (waitress, then the standard library's) with a stand-in model and a one-second socket
  timeout: (app, url); `request.param` says which."""
  app = app_lib.TriageApp(fixtures.keyword_scorer, max_request_bytes=4000, max_upload_bytes=3000, timeout=1.0)
  server, url = fixtures.serve(app, request.param)
  app.kind = request.param
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


def post(url, length_headers, body=b"", host=None, path="/api/classify"):
  netloc = host or urllib.parse.urlsplit(url).netloc
  return (f"POST {path} HTTP/1.0\r\nHost: {netloc}\r\nContent-Type: application/json\r\n{length_headers}\r\n"
          ).encode() + body


# (headers, status, the standard library's sentence, waitress's): waitress refuses a malformed length itself
@pytest.mark.parametrize("headers, status, error, waitress_error", [
    ("Content-Length: -1\r\n", 400, "Content-Length must be one non-negative integer, found '-1'", "is invalid"),
    ("Content-Length: 1_0\r\n", 400, "found '1_0'", "Content-Length is invalid"),
    ("Content-Length: 10\r\nContent-Length: 5000\r\n", 400, "found '10', '5000'", "Content-Length is invalid"),
    ("Transfer-Encoding: chunked\r\n", 411, "Transfer-Encoding is not accepted", "Transfer-Encoding is not accepted"),
    ("Content-Length: 10000\r\n", 413, "request: 10000 bytes is over the limit of 4000 bytes",
     "request: 10000 bytes is over the limit of 4000 bytes"),
])
def test_a_missing_negative_or_lying_length_is_refused_with_a_sentence(page, headers, status, error, waitress_error):
  app, url = page
  got, body = raw(url, post(url, headers, b'{"messages": []}\n' + b" " * (10_000 - 17) * ("10000" in headers)))
  assert got == status and (waitress_error if app.kind == "waitress" else error) in json.loads(body)["error"]


def test_a_body_shorter_than_its_length_is_never_scored(page):
  app, url = page
  address = urllib.parse.urlsplit(url)
  with socket.create_connection((address.hostname, address.port), timeout=30) as connection:
    connection.sendall(post(url, "Content-Length: 100\r\n", b'{"messages": ["water"]}'))
    connection.shutdown(socket.SHUT_WR)
    answer = b""
    while chunk := connection.recv(1 << 16):
      answer += chunk
  if app.kind == "stdlib":  # it reads the body itself, and says what was missing
    assert b"the body ended after 23 of the 100 bytes its Content-Length announced" in answer
  else:  # waitress waits for the whole body, and the client hung up before: nothing to answer, nothing scored
    assert answer == b""
  assert fixtures.call(url + "/api/model")[0] == 200


def test_a_client_that_stops_mid_body_holds_no_one_up(page):
  app, url = page
  address = urllib.parse.urlsplit(url)
  with socket.create_connection((address.hostname, address.port), timeout=30) as silent:
    silent.sendall(post(url, "Content-Length: 100\r\n", b'{"messa'))  # then silence
    assert fixtures.call(url + "/api/model")[0] == 200  # served while that client is silent
    answer = b""
    while chunk := silent.recv(1 << 16):  # the server closes the silent connection after app.timeout
      answer += chunk
  if app.kind == "stdlib":  # its thread was reading the body: it answers, and the thread is free
    assert b"408" in answer.split(b"\r\n", 1)[0] and b"nothing arrived for 1 seconds" in answer
  else:  # waitress's event loop was reading it: no thread was held, the connection just closes
    assert answer == b""


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
  assert server_lib.allowed_hosts("0.0.0.0", 8080, ["triage.example.org"]) >= {"triage.example.org:8080",
                                                                              "triage.example.org", "localhost:8080"}


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


# --- Reliability IV: another website, http.server's own refusals, IPv6, a long explanation ------------


@pytest.mark.parametrize("headers, status, error", [
    ("Origin: http://evil.example\r\n", 403, "Origin: 'http://evil.example' is not this server's page"),
    ("Sec-Fetch-Site: cross-site\r\n", 403, "Sec-Fetch-Site: 'cross-site': this server takes writes from its own"),
    ("Origin: null\r\n", 403, "Origin: 'null' is not this server's page"),
])
def test_a_page_of_another_website_cannot_write(page, headers, status, error):
  _, url = page
  body = b'{"messages": ["water"]}'
  got, answer = raw(url, post(url, f"Content-Length: {len(body)}\r\n{headers}", body))
  assert got == status and error in json.loads(answer)["error"]
  netloc = urllib.parse.urlsplit(url).netloc
  own = f"Content-Length: {len(body)}\r\nOrigin: http://{netloc}\r\nSec-Fetch-Site: same-origin\r\n"
  assert raw(url, post(url, own, body))[0] == 200  # the page itself


def test_a_form_or_text_plain_post_is_refused_for_its_content_type(page):
  _, url = page  # what a page of another site can send without asking the server first (no CORS preflight)
  for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
    status, _, answer = fixtures.call(url + "/api/classify", b'{"messages": ["water"]}', kind)
    assert status == 415 and "Content-Type must be application/json" in json.loads(answer)["error"]
  status, _, answer = fixtures.call(url + "/api/upload", b"message\nwater\n", "text/plain")
  assert status == 415 and "upload: Content-Type must be text/csv" in json.loads(answer)["error"]


def test_http_servers_own_refusals_are_json_sentences_too(page):
  _, url = page
  netloc = urllib.parse.urlsplit(url).netloc
  long = f"GET / HTTP/1.0\r\nHost: {netloc}\r\nX-Long: {'a' * 70_000}\r\n\r\n".encode()
  status, body = raw(url, long)  # waitress reads it whole before refusing: the answer arrives, not a reset
  assert status == 431 and json.loads(body)["error"].startswith("request: ")
  status, body = raw(url, b"BREW /pot HTTP/1.0\r\n\r\n")
  assert status == 501 and "BREW" in json.loads(body)["error"]


@pytest.mark.parametrize("kind", server_lib.KINDS[1:])
def test_a_page_on_ipv6_loopback_listens_there(kind):
  try:
    server = server_lib.make_server(app_lib.TriageApp(fixtures.keyword_scorer), host="::1", port=0, kind=kind)
  except OSError as e:  # a machine without IPv6 at all
    pytest.skip(f"no IPv6 loopback here ({e})")
  server_lib.serve_in_thread(server)
  try:
    assert fixtures.call(f"http://[::1]:{server.server_address[1]}/api/model")[0] == 200
  finally:
    server.shutdown()
    server.server_close()


def test_a_server_kind_must_be_known_and_installed(monkeypatch):
  page_app = app_lib.TriageApp(fixtures.keyword_scorer)
  with pytest.raises(ValueError, match="--server=gunicorn: expected one of auto, waitress, stdlib"):
    server_lib.make_server(page_app, port=0, kind="gunicorn")
  monkeypatch.setitem(sys.modules, "waitress", None)  # as on a machine without the `app` extra
  with pytest.raises(ValueError, match="waitress is not installed"):
    server_lib.make_server(page_app, port=0, kind="waitress")
  server = server_lib.make_server(page_app, port=0)  # "auto" falls back to the standard library's
  try:
    assert isinstance(server, server_lib.StdlibServer)
  finally:
    server.server_close()


@pytest.mark.parametrize("kind", server_lib.KINDS[1:])
def test_one_long_explanation_cannot_hold_the_model_for_everyone(kind):
  app = app_lib.TriageApp(fixtures.keyword_scorer, explainer=fixtures.keyword_scorer, max_request_bytes=1 << 20)
  server, url = fixtures.serve(app, kind)
  long = json.dumps({"message": "water " * 20_000}).encode()
  try:
    status, _, answer = fixtures.call(url + "/api/explain", long)
  finally:
    server.shutdown()
    server.server_close()
  assert status == 413 and "characters is over the limit of 5000 for an explanation" in json.loads(answer)["error"]


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
  loads = []
  real = predict.load_export
  monkeypatch.setattr(predict, "load_export", lambda path: loads.append(path) or real(path))
  try:
    about = json.loads(fixtures.call(url + "/api/model")[2])["about"]
    (base / "3").mkdir()  # a broken version: the page keeps the one it has, and says why
    broken = json.loads(fixtures.call(url + "/api/model")[2])["about"]
    for _ in range(3):  # a broken version is not loaded again at every request (each try held one up)
      fixtures.call(url + "/api/model")
    assert loads == [str(base / "2"), str(base / "3")]
    (base / "3" / "saved_model.pb").write_bytes(b"")  # changed: tried once more
    assert "disaster_tf.json: no such file" in json.loads(fixtures.call(url + "/api/model")[2])["about"]["reload_error"]
    assert loads[-1] == str(base / "3") and len(loads) == 3
  finally:
    server.shutdown()
    server.server_close()
  assert about["export_version"] == 2 and about["path"] == str(base / "2") and about["history"][0]["version"] == 1
  assert broken["export_version"] == 2 and "FileNotFoundError" in broken["reload_error"]
