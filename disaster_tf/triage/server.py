"""The triage page's server: HTTP over the page's endpoints (endpoints.py), with the standard library only.

`http.server.ThreadingHTTPServer`: one thread per request, so several operators are served at once, and
nothing to install on a machine that already runs the model. Each request is framed here, then answered by
the endpoint `endpoints.route` names for its method and path.

Every answer to a bad request is a 4xx with {"error": "<what and where>"}, and a defect a 500 with its type:
a connection is never closed without an answer. The server trusts nothing a request says about itself: the
Host must name this server (`allowed_hosts`: a page on another site cannot read the API through DNS
rebinding), a body has exactly one well-formed Content-Length within the limit, and a silent connection is
closed after app.SOCKET_TIMEOUT. HEAD answers as GET without the body. The page shows messages as text
(never as HTML) and the server forbids inline scripts (Content-Security-Policy), so a message cannot run code
in the page.
"""

import http.server
import json
import re
import socket
from typing import FrozenSet, Sequence

from absl import logging

from disaster_tf.triage import app as app_lib
from disaster_tf.triage import endpoints

LOOPBACK = ("127.0.0.1", "localhost", "::1")  # addresses that keep the page on this machine
SECURITY_HEADERS = {
    # Scripts, styles and images from this server only: a message holding markup cannot load or run anything.
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class Handler(http.server.BaseHTTPRequestHandler):
  """Serves one request of a `app.TriageApp` (the server's `app` attribute); `timeout` comes from the app."""

  server_version = "disaster-triage"
  protocol_version = "HTTP/1.0"  # one request per connection: the upload's stream ends with the connection

  @property
  def app(self) -> app_lib.TriageApp:
    return self.server.app  # type: ignore[attr-defined]

  def log_message(self, format, *args):  # pylint: disable=redefined-builtin
    pass  # requests are not logged: they carry the public's messages

  def do_HEAD(self):  # pylint: disable=invalid-name
    self._answer("GET", head=True)

  def do_GET(self):  # pylint: disable=invalid-name
    self._answer("GET")

  def do_POST(self):  # pylint: disable=invalid-name
    self._answer("POST")

  def _answer(self, method: str, head: bool = False) -> None:
    """Routes the request behind the Host check; every failure is an answer with a sentence, never a silent close."""
    self._head, self._started = head, False
    try:
      self._check_host()
      if method == "POST":
        self._check_site()
      self.app.refresh()
      endpoint = endpoints.route(method, self.path)
      self._write(endpoint(self.app, endpoints.Request(self.path, self.headers.get("Authorization"), self._body,
                                                       self.headers.get("Content-Type") or "")))
    except endpoints.Refused as e:
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

  def _write(self, answer) -> None:
    """Sends an endpoint's answer: a Json, one of the page's Files, or a Stream of NDJSON lines."""
    if isinstance(answer, endpoints.Json):
      return self._json(answer.status, answer.value)
    if isinstance(answer, endpoints.File):
      return self._send(200, answer.content_type, answer.body)
    self.send_response(200)
    self.send_header("Content-Type", "application/x-ndjson; charset=utf-8")
    self._security_headers()
    self.end_headers()
    self._started = True
    for line in answer.lines:
      self._line(line)
    return None

  def _check_host(self) -> None:
    """Refuses a Host that is not this server's: a page on another site cannot reach it by DNS rebinding."""
    host = (self.headers.get("Host") or "").strip().lower()
    if host not in self.server.allowed_hosts:  # type: ignore[attr-defined]
      raise endpoints.Refused(403, f"Host: {host or '(none)'!r} is not an address of this server (expected one "
                                   f"of {', '.join(sorted(self.server.allowed_hosts))}; "  # type: ignore[attr-defined]
                                   "start it with --allowed_hosts to add a name)")

  def _check_site(self) -> None:
    """Refuses a write sent by a page of another website (cross-site request forgery): browsers say where a
    request comes from (`Sec-Fetch-Site`, `Origin`), and a page on another site cannot make them lie."""
    site = (self.headers.get("Sec-Fetch-Site") or "").strip().lower()
    if site and site not in ("same-origin", "none"):
      raise endpoints.Refused(403, f"Sec-Fetch-Site: {site!r}: this server takes writes from its own page only")
    origin = (self.headers.get("Origin") or "").strip().lower()
    if origin:
      scheme, _, netloc = origin.partition("://")
      if scheme not in ("http", "https") or netloc not in self.server.allowed_hosts:  # type: ignore[attr-defined]
        raise endpoints.Refused(403, f"Origin: {origin!r} is not this server's page; this server takes writes "
                                     "from its own page only")

  def send_error(self, code, message=None, explain=None):
    """http.server's own refusals (a request line or headers too long, a bad request line) as JSON sentences,
    with the same security headers, instead of its HTML page."""
    self.close_connection = True
    text = message or self.responses.get(code, ("error",))[0]
    try:
      self._json(code, {"error": f"request: {text}" + (f" ({explain})" if explain else "")})
    except OSError:
      pass  # the client has gone

  def _body(self, limit: int, what: str) -> bytes:
    """The request's body, of exactly the length its one well-formed Content-Length header announces."""
    if self.headers.get("Transfer-Encoding"):
      raise endpoints.Refused(411, f"{what}: Transfer-Encoding is not accepted; send a Content-Length header")
    values = self.headers.get_all("Content-Length") or []
    if not values:
      raise endpoints.Refused(411, f"{what}: a Content-Length header is required")
    if len(values) > 1 or not re.fullmatch(r"[0-9]{1,15}", values[0].strip()):
      raise endpoints.Refused(400, f"{what}: Content-Length must be one non-negative integer, found "
                                   f"{', '.join(map(repr, values))}")
    length = int(values[0])
    if length > limit:
      self._drain(length)  # read what was sent, so that the client sees this answer, not a broken pipe
      raise endpoints.Refused(413, f"{what}: {length} bytes is over the limit of {limit} bytes; split it into "
                                   "smaller files")
    body = self.rfile.read(length)
    if len(body) < length:
      raise endpoints.Refused(400, f"{what}: the body ended after {len(body)} of the {length} bytes its "
                                   "Content-Length announced")
    return body

  def _drain(self, length: int) -> None:
    """Reads and drops up to 4x the upload limit of a refused body (beyond that, the connection just closes)."""
    left = min(length, 4 * self.app.max_upload_bytes)
    while left > 0:
      chunk = self.rfile.read(min(left, 1 << 16))
      if not chunk:
        return
      left -= len(chunk)

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
  family = socket.AF_INET6 if ":" in host else socket.AF_INET  # --host=::1 listens on IPv6, as it says
  server = type("TriageServer", (http.server.ThreadingHTTPServer,), {"address_family": family})((host, port), handler)
  server.daemon_threads = True
  server.app = app  # type: ignore[attr-defined]
  server.allowed_hosts = allowed_hosts(host, server.server_address[1], extra_hosts)  # type: ignore[attr-defined]
  return server
