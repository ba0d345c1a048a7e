"""The triage page's server: the page, its script and style, and a small JSON API over a scorer.

Standard library only (`http.server.ThreadingHTTPServer`): one thread per
request, so several operators are served at once, and nothing to install on
a machine that already runs the model. Endpoints:

  GET  /                 the page (static/index.html); /static/... its script and style sheet
  GET  /api/model        categories, urgency order, thresholds and what the export was trained on
  POST /api/classify     {"messages": [str, ...]} -> {"results": [...]} (at most app_lib.MAX_MESSAGES)
  POST /api/upload       a CSV file (the body) -> NDJSON lines, streamed as scored: {"columns": [...]},
                         then {"row": {...}, ...result} per row, then {"report": "..."}
  POST /api/explain      {"message": str} -> its result with `explanation`: for each predicted category, the
                         words that raised its score most (explain.py; the page asks when a row is opened)

Every answer to a bad request is a 4xx with {"error": "<what and where>"},
and a defect a 500 with its type: a connection is never closed without an
answer. The server trusts nothing a request says about itself: the Host must
name this server (`allowed_hosts`: a page on another site cannot read the API
through DNS rebinding), a body has exactly one well-formed Content-Length
within the limit, a silent connection is closed after app_lib.SOCKET_TIMEOUT, and in a
/api/classify batch a message that is not text fails alone (its `error`), the
others are scored. HEAD answers as GET without the body. The page shows
messages as text (never as HTML) and the server forbids inline scripts
(Content-Security-Policy), so a message cannot run code in the page.
"""

import http.server
import json
import re
import os
import socket
from typing import Callable, FrozenSet, Optional, Sequence

from absl import logging

from disaster_tf.serve import predict
from disaster_tf.serve import scorefile
from disaster_tf.triage import app as app_lib
from disaster_tf.triage import review

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
LOOPBACK = ("127.0.0.1", "localhost", "::1")  # addresses that keep the page on this machine
SECURITY_HEADERS = {
    # Scripts, styles and images from this server only: a message holding markup cannot load or run anything.
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _message_error(field: str, message) -> Optional[str]:
  """Why `message` (the request's `field`: `message`, or `messages[3]` of a list) cannot be scored, or None."""
  if not isinstance(message, str):
    return f"{field}: expected a string, found {type(message).__name__}"
  try:
    message.encode("utf-8")
  except UnicodeEncodeError as e:
    return f"{field}: character {e.start + 1} is a lone surrogate ({message[e.start]!r}), not text"
  return None


class RequestError(Exception):
  """A request the server refuses: an HTTP status and a sentence naming the field."""

  def __init__(self, status: int, message: str):
    super().__init__(message)
    self.status = status


class Handler(http.server.BaseHTTPRequestHandler):
  """Serves one request of a `app_lib.TriageApp` (the server's `app` attribute); `timeout` comes from the app."""

  server_version = "disaster-triage"
  protocol_version = "HTTP/1.0"  # one request per connection: the upload's stream ends with the connection

  @property
  def app(self) -> app_lib.TriageApp:
    return self.server.app  # type: ignore[attr-defined]

  def log_message(self, format, *args):  # pylint: disable=redefined-builtin
    pass  # requests are not logged: they carry the public's messages

  def do_HEAD(self):  # pylint: disable=invalid-name
    self._answer(self._get, head=True)

  def do_GET(self):  # pylint: disable=invalid-name
    self._answer(self._get)

  def do_POST(self):  # pylint: disable=invalid-name
    self._answer(self._post)

  def _answer(self, serve: Callable[[], None], head: bool = False) -> None:
    """Runs `serve` behind the Host check; every failure is an answer with a sentence, never a silent close."""
    self._head, self._started = head, False
    try:
      self._check_host()
      self.app.refresh()
      serve()
    except (RequestError, review.Refused) as e:
      self._json(e.status, {"error": str(e)})
    except TimeoutError:
      if not self._started:  # a stream under way: its reader has gone quiet, the connection just closes
        self._json(408, {"error": f"request: nothing arrived for {self.app.timeout:g} seconds; send it again"})
    except Exception as e:  # pylint: disable=broad-except  # a defect: say so, and keep serving the others
      logging.exception("request %s failed", self.path)
      if self._started:  # an upload's stream has begun: its last line says what happened
        self._line({"report": f"stopped early: {type(e).__name__}: {e}", "unreadable": None})
      else:
        self._json(500, {"error": f"internal error ({type(e).__name__}: {e}); the server goes on"})

  def _check_host(self) -> None:
    """Refuses a Host that is not this server's: a page on another site cannot reach it by DNS rebinding."""
    host = (self.headers.get("Host") or "").strip().lower()
    if host not in self.server.allowed_hosts:  # type: ignore[attr-defined]
      raise RequestError(403, f"Host: {host or '(none)'!r} is not an address of this server (expected one of "
                              f"{', '.join(sorted(self.server.allowed_hosts))}; "  # type: ignore[attr-defined]
                              "start it with --allowed_hosts to add a name)")

  def _get(self) -> None:
    path = self.path.split("?", 1)[0]
    if path == "/api/model":
      return self._json(200, self.app.model_info())
    if path == "/api/decided":
      return self._json(200, {"decided": self._decisions().decided()})
    if path == "/api/queue":
      return self._json(200, review.answer_queue(self._decisions(), self.app, self.path, app_lib.MAX_MESSAGES))
    name = "index.html" if path in ("/", "/index.html") else ""
    if path.startswith("/static/"):
      name = path[len("/static/"):]
    full = os.path.join(STATIC_DIR, name)
    if not name or "/" in name or name.startswith(".") or not os.path.isfile(full):
      raise RequestError(404, f"{path}: no such page")
    with open(full, "rb") as f:
      body = f.read()
    self._send(200, STATIC_TYPES.get(os.path.splitext(name)[1], "application/octet-stream"), body)

  def _post(self) -> None:
    if self.path == "/api/classify":
      return self._classify()
    if self.path == "/api/upload":
      return self._upload()
    if self.path == "/api/explain":
      return self._explain()
    if self.path in ("/api/decide", "/api/undo"):
      return self._decide()
    raise RequestError(404, f"{self.path}: no such endpoint (POST /api/classify, /api/upload, /api/explain, "
                            "/api/decide or /api/undo)")

  def _decisions(self) -> review.DecisionsApi:
    if self.app.decisions is None:
      raise RequestError(404, "decisions are not kept by this page: start it with --db=FILE")
    return self.app.decisions

  def _decide(self) -> None:
    """/api/decide and /api/undo (review.answer_decision)."""
    api = self._decisions()
    body = self._body(self.app.max_request_bytes, "request")
    self._json(200, review.answer_decision(api, self.app, self.path, self.headers.get("Authorization"), body))

  def _body(self, limit: int, what: str) -> bytes:
    """The request's body, of exactly the length its one well-formed Content-Length header announces."""
    if self.headers.get("Transfer-Encoding"):
      raise RequestError(411, f"{what}: Transfer-Encoding is not accepted; send a Content-Length header")
    values = self.headers.get_all("Content-Length") or []
    if not values:
      raise RequestError(411, f"{what}: a Content-Length header is required")
    if len(values) > 1 or not re.fullmatch(r"[0-9]{1,15}", values[0].strip()):
      raise RequestError(400, f"{what}: Content-Length must be one non-negative integer, found "
                              f"{', '.join(map(repr, values))}")
    length = int(values[0])
    if length > limit:
      self._drain(length)  # read what was sent, so that the client sees this answer, not a broken pipe
      raise RequestError(413, f"{what}: {length} bytes is over the limit of {limit} bytes; split it into "
                              "smaller files")
    body = self.rfile.read(length)
    if len(body) < length:
      raise RequestError(400, f"{what}: the body ended after {len(body)} of the {length} bytes its "
                              "Content-Length announced")
    return body

  def _json_field(self, field: str, shape: str):
    """`field` of the request's JSON body; a 400 saying the expected `shape` when there is none."""
    body = self._body(self.app.max_request_bytes, "request")
    try:
      return json.loads(body.decode("utf-8"))[field]
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, IndexError, RecursionError):
      raise RequestError(400, f"request: expected JSON {shape}") from None

  def _drain(self, length: int) -> None:
    """Reads and drops up to 4x the upload limit of a refused body (beyond that, the connection just closes)."""
    left = min(length, 4 * self.app.max_upload_bytes)
    while left > 0:
      chunk = self.rfile.read(min(left, 1 << 16))
      if not chunk:
        return
      left -= len(chunk)

  def _classify(self) -> None:
    """Each message is answered, or fails alone with its reason: one bad line never fails the batch."""
    messages = self._json_field("messages", '{"messages": ["...", ...]}')
    if not isinstance(messages, list):
      raise RequestError(400, "messages: expected a list of strings")
    if len(messages) > app_lib.MAX_MESSAGES:
      raise RequestError(413, f"messages: {len(messages)} is over the limit of {app_lib.MAX_MESSAGES} a "
                              "request")
    errors = [_message_error(f"messages[{i}]", m) for i, m in enumerate(messages)]
    good = [m for m, e in zip(messages, errors) if e is None]
    answers = self.app.score(good)
    self.app.enqueue([({"message": m}, r) for m, r in zip(good, answers)])
    scored = iter(answers)
    self._json(200, {"results": [self.app.result({"message": m}, next(scored)) if e is None
                                 else self.app.failed({"message": m if isinstance(m, str) else json.dumps(m)}, e)
                                 for m, e in zip(messages, errors)]})

  def _explain(self) -> None:
    message = self._json_field("message", '{"message": "..."}')
    error = _message_error("message", message)
    if error:
      raise RequestError(400, error)
    answer = self.app.explain(message)
    if answer is None:
      raise RequestError(404, "explanations are not offered by this page's scorer")
    self._json(200, answer)

  def _upload(self) -> None:
    body = self._body(self.app.max_upload_bytes, "upload")
    if not body.strip():
      raise RequestError(400, "upload: the file is empty; expected a CSV file with a 'message' column")
    report = scorefile.ScoreReport()
    try:
      lines = scorefile.checked_lines(iter(body.splitlines(keepends=True)), "upload", report)
      header, rows = scorefile.read_rows(lines, "upload", report)
    except scorefile.InputError as e:
      raise RequestError(400, str(e)) from None
    self.send_response(200)
    self.send_header("Content-Type", "application/x-ndjson; charset=utf-8")
    self._security_headers()
    self.end_headers()
    self._started = True
    self._line({"columns": header})
    for row, result in predict.score_rows(rows, self.app.score, on_batch=self.app.enqueue):
      self._line(self.app.result(row, result))
      report.scored += 1
    self._line({"report": report.summary(), "unreadable": report.unreadable})

  def _line(self, value) -> None:
    self.wfile.write(json.dumps(value).encode("utf-8") + b"\n")
    self.wfile.flush()

  def _json(self, status: int, value) -> None:
    self._send(status, "application/json; charset=utf-8", json.dumps(value).encode("utf-8"))

  def _send(self, status: int, content_type: str, body: bytes) -> None:
    self.send_response(status)
    self.send_header("Content-Type", content_type)
    self.send_header("Content-Length", str(len(body)))
    self._security_headers()
    self.end_headers()
    if not getattr(self, "_head", False):
      self.wfile.write(body)

  def _security_headers(self) -> None:
    for name, value in SECURITY_HEADERS.items():
      self.send_header(name, value)
    self.send_header("Cache-Control", "no-store")


def allowed_hosts(host: str, port: int, extra: Sequence[str] = ()) -> FrozenSet[str]:
  """The Host header values that name this server: its address (and loopback names, or this machine's names
  when it listens on every address), with and without the port, and `extra` (names behind a proxy)."""
  names = {host.lower(), *(name.lower() for name in extra)}
  if host in LOOPBACK:
    names |= set(LOOPBACK)
  if host in ("", "0.0.0.0", "::"):
    names |= set(LOOPBACK) | {socket.gethostname().lower(), socket.getfqdn().lower()}
  names = {f"[{n}]" if ":" in n and not n.startswith("[") else n for n in names}
  return frozenset(names | {f"{n}:{port}" for n in names})


def make_server(app: app_lib.TriageApp, host: str = "127.0.0.1", port: int = 8080,
                extra_hosts: Sequence[str] = ()) -> http.server.ThreadingHTTPServer:
  """A threaded server of `app` on host:port (port 0: any free port; `server.server_address` tells)."""
  handler = type("TriageHandler", (Handler,), {"timeout": app.timeout})  # the socket timeout of each connection
  server = http.server.ThreadingHTTPServer((host, port), handler)
  server.daemon_threads = True
  server.app = app  # type: ignore[attr-defined]
  server.allowed_hosts = allowed_hosts(host, server.server_address[1], extra_hosts)  # type: ignore[attr-defined]
  return server
