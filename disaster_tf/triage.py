"""The triage page's server: the page, its script and style, and a small JSON API over a scorer.

Standard library only (`http.server.ThreadingHTTPServer`): one thread per
request, so several operators are served at once, and nothing to install on
a machine that already runs the model. Endpoints:

  GET  /                 the page (static/index.html); /static/... its script and style sheet
  GET  /api/model        categories, urgency order, thresholds and what the export was trained on
  POST /api/classify     {"messages": [str, ...]} -> {"results": [...]} (at most MAX_MESSAGES a request)
  POST /api/upload       a CSV file (the body) -> NDJSON lines, streamed as scored: {"columns": [...]},
                         then {"row": {...}, ...result} per row, then {"report": "..."}

Every answer to a bad request is a 4xx with {"error": "<what and where>"}. The
page shows messages as text (never as HTML) and the server forbids inline
scripts (Content-Security-Policy), so a message cannot run code in the page.
"""

import http.server
import json
import os
import threading
from typing import Dict, Optional, Sequence

from disaster_tf import labels
from disaster_tf import predict
from disaster_tf import records

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
MAX_MESSAGES = 500  # per /api/classify request; the page sends pasted lines in batches of 100
SECURITY_HEADERS = {
    # Scripts, styles and images from this server only: a message holding markup cannot load or run anything.
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class RequestError(Exception):
  """A request the server refuses: an HTTP status and a sentence naming the field."""

  def __init__(self, status: int, message: str):
    super().__init__(message)
    self.status = status


class TriageApp:
  """What the handler serves: a scorer, the urgency order, the export's description, the size limits."""

  def __init__(self, scorer: predict.Scorer, model: Optional[records.ExportMetadata] = None,
               order: Sequence[str] = predict.URGENCY, max_request_bytes: int = 1 << 20,
               max_upload_bytes: int = 20 << 20):
    self.scorer = scorer
    self.model = model  # None when scoring through TF Serving without the export
    self.order = tuple(order)
    self.max_request_bytes = max_request_bytes
    self.max_upload_bytes = max_upload_bytes
    self.lock = threading.Lock()  # one model call at a time: TF runs each on every core anyway

  def score(self, texts):
    """The scorer's answers for `texts`, one model call at a time."""
    with self.lock:
      return self.scorer(texts)

  def model_info(self) -> Dict:
    """/api/model: what the page's Model tab, its filter, its score bars and its CSV download read (app.js)."""
    m = self.model
    return {"categories": list(labels.CATEGORIES), "urgency": list(self.order),
            "scored_columns": list(predict.SCORED_COLUMNS),  # what the download appends to the input's columns
            "thresholds": m.thresholds_by_category() if m else {}, "config": m.config if m else {},
            "report": m.report.to_json() if m and m.report else None,
            "about": {k: getattr(m, k) if m else None for k in ("exported", "version", "precision", "checkpoint")},
            "max_messages": MAX_MESSAGES, "max_upload_bytes": self.max_upload_bytes}

  def result(self, row: Dict[str, str], result: Dict) -> Dict:
    """One message's answer for the page: its input row, `predict.ranked` in this app's urgency order, and the
    cells of `predict.SCORED_COLUMNS` (`scored`) that the page's CSV download writes."""
    answer = predict.ranked(result, self.order)
    return {"row": row, **answer, "scored": predict.scored_values(answer)}


class Handler(http.server.BaseHTTPRequestHandler):
  """Serves one request of a `TriageApp` (the server's `app` attribute)."""

  server_version = "disaster-triage"
  protocol_version = "HTTP/1.0"  # one request per connection: the upload's stream ends with the connection

  @property
  def app(self) -> TriageApp:
    return self.server.app  # type: ignore[attr-defined]

  def log_message(self, format, *args):  # pylint: disable=redefined-builtin
    pass  # requests are not logged: they carry the public's messages

  def do_GET(self):  # pylint: disable=invalid-name
    path = self.path.split("?", 1)[0]
    if path == "/api/model":
      return self._json(200, self.app.model_info())
    name = "index.html" if path in ("/", "/index.html") else ""
    if path.startswith("/static/"):
      name = path[len("/static/"):]
    full = os.path.join(STATIC_DIR, name)
    if not name or "/" in name or name.startswith(".") or not os.path.isfile(full):
      return self._json(404, {"error": f"{path}: no such page"})
    with open(full, "rb") as f:
      body = f.read()
    self._send(200, STATIC_TYPES.get(os.path.splitext(name)[1], "application/octet-stream"), body)

  def do_POST(self):  # pylint: disable=invalid-name
    try:
      if self.path == "/api/classify":
        return self._classify()
      if self.path == "/api/upload":
        return self._upload()
      raise RequestError(404, f"{self.path}: no such endpoint (POST /api/classify or /api/upload)")
    except RequestError as e:
      self._json(e.status, {"error": str(e)})

  def _body(self, limit: int, what: str) -> bytes:
    try:
      length = int(self.headers.get("Content-Length", ""))
    except ValueError:
      raise RequestError(411, f"{what}: a Content-Length header is required") from None
    if length > limit:
      self._drain(length)  # read what was sent, so that the client sees this answer, not a broken pipe
      raise RequestError(413, f"{what}: {length} bytes is over the limit of {limit} bytes; split it into "
                              "smaller files")
    return self.rfile.read(length)

  def _drain(self, length: int) -> None:
    """Reads and drops up to 4x the upload limit of a refused body (beyond that, the connection just closes)."""
    left = min(length, 4 * self.app.max_upload_bytes)
    while left > 0:
      chunk = self.rfile.read(min(left, 1 << 16))
      if not chunk:
        return
      left -= len(chunk)

  def _classify(self):
    body = self._body(self.app.max_request_bytes, "request")
    try:
      messages = json.loads(body.decode("utf-8"))["messages"]
    except (UnicodeDecodeError, ValueError, KeyError, TypeError):
      raise RequestError(400, 'request: expected JSON {"messages": ["...", ...]}') from None
    if not isinstance(messages, list) or not all(isinstance(m, str) for m in messages):
      raise RequestError(400, "messages: expected a list of strings")
    if len(messages) > MAX_MESSAGES:
      raise RequestError(413, f"messages: {len(messages)} is over the limit of {MAX_MESSAGES} a request")
    results = self.app.score(messages)
    self._json(200, {"results": [self.app.result({"message": m}, r) for m, r in zip(messages, results)]})

  def _upload(self):
    body = self._body(self.app.max_upload_bytes, "upload")
    if not body.strip():
      raise RequestError(400, "upload: the file is empty; expected a CSV file with a 'message' column")
    report = predict.ScoreReport()
    lines = predict.checked_lines(iter(body.splitlines(keepends=True)), "upload", report)
    try:
      header, rows = predict.read_rows(lines, "upload", report)
    except predict.InputError as e:
      raise RequestError(400, str(e)) from None
    self.send_response(200)
    self.send_header("Content-Type", "application/x-ndjson; charset=utf-8")
    self._security_headers()
    self.end_headers()
    self._line({"columns": header})
    for row, result in predict.score_rows(rows, self.app.score):
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
    self.wfile.write(body)

  def _security_headers(self) -> None:
    for name, value in SECURITY_HEADERS.items():
      self.send_header(name, value)
    self.send_header("Cache-Control", "no-store")


def make_server(app: TriageApp, host: str = "127.0.0.1", port: int = 8080) -> http.server.ThreadingHTTPServer:
  """A threaded server of `app` on host:port (port 0: any free port; `server.server_address` tells)."""
  server = http.server.ThreadingHTTPServer((host, port), Handler)
  server.daemon_threads = True
  server.app = app  # type: ignore[attr-defined]
  return server
