"""The triage page as one WSGI application (PEP 3333): every server the page runs under serves this code path.

`Application(app, allowed_hosts)` frames each request for the page's endpoints (endpoints.py): it checks the
Host, refuses a write from another website, reads the body under the endpoint's limit, and turns what the
endpoint returns (a `Json`, a `File`, a `Stream` of NDJSON lines) into the answer. server.py runs it under
waitress (the `app` extra) or, with nothing installed, under the standard library's threaded WSGI server.

Every answer to a bad request is a 4xx with {"error": "<what and where>"}, a defect a 500 with its type: a
connection is never closed without an answer. The server trusts nothing a request says about itself: the Host
must name this server (a page on another site cannot read the API through DNS rebinding), a body has exactly
one well-formed Content-Length within the limit. HEAD answers as GET without the body. The page shows messages
as text (never as HTML) and the answer forbids inline scripts (Content-Security-Policy), so a message cannot run
code in the page.
"""

import json
import re
from typing import Callable, Dict, FrozenSet, Iterable, Iterator, List, Tuple

from absl import logging

from disaster_tf.triage import app as app_lib
from disaster_tf.triage import endpoints

SECURITY_HEADERS = (
    # Scripts, styles and images from this server only: a message holding markup cannot load or run anything.
    ("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),  # answers carry the public's messages: no copy stays in a shared cache
)
JSON_TYPE = "application/json; charset=utf-8"
NDJSON_TYPE = "application/x-ndjson; charset=utf-8"
STATUS_TEXT = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
               405: "Method Not Allowed", 408: "Request Timeout", 409: "Conflict", 411: "Length Required",
               413: "Content Too Large", 415: "Unsupported Media Type", 423: "Locked", 431:
               "Request Header Fields Too Large", 500: "Internal Server Error", 501: "Not Implemented",
               503: "Service Unavailable"}
METHODS = ("GET", "HEAD", "POST")
Headers = List[Tuple[str, str]]
StartResponse = Callable[[str, Headers], object]


def status_line(status: int) -> str:
  return f"{status} {STATUS_TEXT.get(status, 'Error')}"


def json_answer(status: int, value) -> Tuple[str, Headers, bytes]:
  """(status line, headers, body) of one JSON value: what every refusal, of the app or of a server, sends."""
  body = json.dumps(value).encode("utf-8")
  return status_line(status), [("Content-Type", JSON_TYPE), ("Content-Length", str(len(body))),
                               *SECURITY_HEADERS], body


class Application:
  """The page's WSGI callable: `Application(app, allowed_hosts)(environ, start_response)`."""

  def __init__(self, app: app_lib.TriageApp, allowed_hosts: FrozenSet[str]):
    self.app, self.allowed_hosts = app, allowed_hosts

  def __call__(self, environ: Dict, start_response: StartResponse) -> Iterable[bytes]:
    method = environ.get("REQUEST_METHOD", "GET").upper()
    path = environ.get("PATH_INFO", "/") + (f"?{environ['QUERY_STRING']}" if environ.get("QUERY_STRING") else "")
    head = method == "HEAD"
    try:
      if method not in METHODS:
        raise endpoints.Refused(501, f"{method}: not a method of this server (GET, HEAD or POST)")
      self._check_host(environ)
      if method == "POST":
        self._check_site(environ)
      self.app.refresh()
      endpoint = endpoints.route("GET" if head else method, path)
      answer = endpoint(self.app, endpoints.Request(path, environ.get("HTTP_AUTHORIZATION"),
                                                    lambda limit, what: self._body(environ, limit, what),
                                                    environ.get("CONTENT_TYPE") or ""))
    except endpoints.Refused as e:
      return self._send(start_response, *json_answer(e.status, {"error": str(e)}), head)
    except TimeoutError:  # the stdlib server's socket timeout while reading the body
      return self._send(start_response, *json_answer(408, {"error": f"request: nothing arrived for "
                                                                    f"{self.app.timeout:g} seconds; send it again"}),
                        head)
    except Exception as e:  # pylint: disable=broad-except  # a defect: say so, and keep serving the others
      logging.exception("request %s failed", path)
      return self._send(start_response, *json_answer(500, {"error": f"internal error ({type(e).__name__}: {e}); "
                                                                    "the server goes on"}), head)
    return self._write(start_response, answer, head)

  def _write(self, start_response: StartResponse, answer, head: bool) -> Iterable[bytes]:
    """Sends an endpoint's answer: a Json, one of the page's Files, or a Stream of NDJSON lines."""
    if isinstance(answer, endpoints.Json):
      return self._send(start_response, *json_answer(answer.status, answer.value), head)
    if isinstance(answer, endpoints.File):
      return self._send(start_response, "200 OK", [("Content-Type", answer.content_type),
                                                   ("Content-Length", str(len(answer.body))), *SECURITY_HEADERS],
                        answer.body, head)
    start_response("200 OK", [("Content-Type", NDJSON_TYPE), *SECURITY_HEADERS])
    return [] if head else _lines(answer.lines)

  @staticmethod
  def _send(start_response: StartResponse, status: str, headers: Headers, body: bytes,
            head: bool) -> Iterable[bytes]:
    start_response(status, headers)
    return [] if head else [body]

  def _check_host(self, environ: Dict) -> None:
    """Refuses a Host that is not this server's: a page on another site cannot reach it by DNS rebinding."""
    host = (environ.get("HTTP_HOST") or "").strip().lower()
    if host not in self.allowed_hosts:
      raise endpoints.Refused(403, f"Host: {host or '(none)'!r} is not an address of this server (expected one "
                                   f"of {', '.join(sorted(self.allowed_hosts))}; start it with --allowed_hosts "
                                   "to add a name)")

  def _check_site(self, environ: Dict) -> None:
    """Refuses a write sent by a page of another website (cross-site request forgery): browsers say where a
    request comes from (`Sec-Fetch-Site`, `Origin`), and a page on another site cannot make them lie."""
    site = (environ.get("HTTP_SEC_FETCH_SITE") or "").strip().lower()
    if site and site not in ("same-origin", "none"):
      raise endpoints.Refused(403, f"Sec-Fetch-Site: {site!r}: this server takes writes from its own page only")
    origin = (environ.get("HTTP_ORIGIN") or "").strip().lower()
    if origin:
      scheme, _, netloc = origin.partition("://")
      if scheme not in ("http", "https") or netloc not in self.allowed_hosts:
        raise endpoints.Refused(403, f"Origin: {origin!r} is not this server's page; this server takes writes "
                                     "from its own page only")

  def _body(self, environ: Dict, limit: int, what: str) -> bytes:
    """The request's body, of exactly the length its one well-formed Content-Length header announces.

    A server that joins repeated headers with ", " (both of server.py's do) shows two lengths as one value.
    """
    if environ.get("HTTP_TRANSFER_ENCODING"):
      raise endpoints.Refused(411, f"{what}: Transfer-Encoding is not accepted; send a Content-Length header")
    value = environ.get("CONTENT_LENGTH")
    if value is None or value == "":
      raise endpoints.Refused(411, f"{what}: a Content-Length header is required")
    if not re.fullmatch(r"[0-9]{1,15}", value.strip()):
      found = ", ".join(repr(v.strip()) for v in value.split(","))
      raise endpoints.Refused(400, f"{what}: Content-Length must be one non-negative integer, found {found}")
    length = int(value)
    if length > limit:
      _drain(environ["wsgi.input"], length, 4 * self.app.max_upload_bytes)
      raise endpoints.Refused(413, f"{what}: {length} bytes is over the limit of {limit} bytes; split it into "
                                   "smaller files")
    body = environ["wsgi.input"].read(length)
    if len(body) < length:
      raise endpoints.Refused(400, f"{what}: the body ended after {len(body)} of the {length} bytes its "
                                   "Content-Length announced")
    return body


def _lines(values: Iterator[Dict]) -> Iterator[bytes]:
  """A Stream's NDJSON lines; a defect once the stream has begun ends it with a line that says what happened."""
  try:
    for value in values:
      yield json.dumps(value).encode("utf-8") + b"\n"
  except Exception as e:  # pylint: disable=broad-except  # the 200 is sent: the last line must say why it stopped
    logging.exception("stream failed")
    yield json.dumps({"report": f"stopped early: {type(e).__name__}: {e}", "unreadable": None}).encode() + b"\n"


def _drain(stream, length: int, most: int) -> None:
  """Reads and drops up to `most` bytes of a refused body, so that the client sees the answer, not a broken pipe."""
  left = min(length, most)
  while left > 0:
    chunk = stream.read(min(left, 1 << 16))
    if not chunk:
      return
    left -= len(chunk)
