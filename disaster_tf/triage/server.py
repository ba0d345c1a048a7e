"""The triage page's servers: the one WSGI application (wsgi.py) under waitress, or under the standard library.

`make_server(app, host, port, extra_hosts, kind)`:
  "waitress"  the `app` extra's production server (BUILD.md, "The page's server", says why this one):
              connections are read by one event loop, so a slow or silent client holds no worker thread, and
              a fixed pool of THREADS workers answers whole requests; its own refusals (a bad Content-Length,
              headers over the limit) are the same JSON sentences as the page's.
  "stdlib"    nothing to install: `wsgiref`'s server, one thread per connection (what the page had before),
              for a machine that has only the model. The same application, the same checks.
  "auto"      waitress where it is installed, else the standard library's (and the log says so).

Both return a `Server`: `serve_forever()`, `shutdown()` (from another thread), `server_close()`,
`server_address`. The page's tests run against both.
"""

import socket
import socketserver
import threading
from typing import FrozenSet, Sequence, Tuple
from wsgiref import simple_server

from absl import logging

from disaster_tf.triage import app as app_lib
from disaster_tf.triage import wsgi

LOOPBACK = ("127.0.0.1", "localhost", "::1")  # addresses that keep the page on this machine
KINDS = ("auto", "waitress", "stdlib")
THREADS = 8  # waitress's workers (its default is 4): the model runs one call at a time (app.lock) and SQLite
# writes one at a time, so more only queue there; a few more than 4 keep a poll from waiting behind an upload
LOOP_SECONDS = 0.05  # waitress's event loop polls this often: how soon shutdown() is seen
MAX_HEADER_BYTES = 65_536  # the request line and headers; what http.server refused beyond (431) before


class Server:
  """What triage.py and the tests hold of either server."""

  server_address: Tuple

  def serve_forever(self) -> None:
    raise NotImplementedError

  def shutdown(self) -> None:
    raise NotImplementedError

  def server_close(self) -> None:
    raise NotImplementedError


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
                extra_hosts: Sequence[str] = (), kind: str = "auto") -> Server:
  """A server of `app` on host:port (port 0: any free port; `server.server_address` tells).

  Raises:
    ValueError: an unknown `kind`, or "waitress" where it is not installed.
  """
  if kind not in KINDS:
    raise ValueError(f"--server={kind}: expected one of {', '.join(KINDS)}")
  if kind in ("auto", "waitress"):
    try:
      import waitress  # pylint: disable=import-outside-toplevel,unused-import
    except ImportError:
      if kind == "waitress":
        raise ValueError("--server=waitress: waitress is not installed (pip install 'disaster_tf[app]'), or "
                         "use --server=stdlib") from None
      logging.warning("waitress is not installed (pip install 'disaster_tf[app]'): serving with the standard "
                      "library's server, one thread per connection")
      kind = "stdlib"
    else:
      kind = "waitress"
  return (WaitressServer if kind == "waitress" else StdlibServer)(app, host, port, extra_hosts)


class _Handler(simple_server.WSGIRequestHandler):
  """wsgiref's handler with the page's rules: silence closes after app.timeout, its own refusals (a request
  line or headers too long) are JSON sentences, requests are not logged (they carry the public's messages)."""

  server_version = "disaster-triage"

  def log_message(self, format, *args):  # pylint: disable=redefined-builtin
    pass

  def get_environ(self):
    environ = super().get_environ()
    lengths = self.headers.get_all("Content-Length") or []
    if len(lengths) > 1:  # wsgiref keeps the first; the page refuses two (as waitress's joined value shows them)
      environ["CONTENT_LENGTH"] = ", ".join(lengths)
    return environ

  def send_error(self, code, message=None, explain=None):
    self.close_connection = True
    text = message or self.responses.get(code, ("error",))[0]
    status, headers, body = wsgi.json_answer(code, {"error": f"request: {text}" + (f" ({explain})" if explain else "")})
    try:
      self.wfile.write(f"HTTP/1.0 {status}\r\n".encode("latin-1") + "".join(f"{k}: {v}\r\n" for k, v in headers)
                       .encode("latin-1") + b"\r\n" + body)
    except OSError:
      pass  # the client has gone


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, simple_server.WSGIServer):
  daemon_threads = True


class StdlibServer(Server):
  """The application under `wsgiref`: one thread per connection, the standard library only."""

  def __init__(self, app: app_lib.TriageApp, host: str, port: int, extra_hosts: Sequence[str] = ()):
    handler = type("TriageHandler", (_Handler,), {"timeout": app.timeout})  # each connection's socket timeout
    family = socket.AF_INET6 if ":" in host else socket.AF_INET  # --host=::1 listens on IPv6, as it says
    self._server = type("TriageServer", (_ThreadingWSGIServer,), {"address_family": family})((host, port), handler)
    self.server_address = self._server.server_address
    self._server.set_app(wsgi.Application(app, allowed_hosts(host, self.server_address[1], extra_hosts)))

  def serve_forever(self) -> None:
    self._server.serve_forever(poll_interval=0.05)

  def shutdown(self) -> None:
    self._server.shutdown()

  def server_close(self) -> None:
    self._server.server_close()


class WaitressServer(Server):
  """The application under waitress, with serve_forever / shutdown as socketserver's servers have them.

  Waitress reads every connection in one event loop and hands a worker (THREADS of them) a request only once it
  has arrived whole, so a client that stops mid-body holds no thread; a connection silent for app.timeout is
  closed. Its own refusals, before the application sees a request (a Content-Length that is not a number,
  headers over MAX_HEADER_BYTES, a body over the upload limit), are the page's JSON sentences (`_json_channel`).
  """

  def __init__(self, app: app_lib.TriageApp, host: str, port: int, extra_hosts: Sequence[str] = ()):
    import waitress  # pylint: disable=import-outside-toplevel  # the `app` extra
    application = wsgi.Application(app, frozenset())  # the Host names are known once the port is
    seconds = max(1, int(round(app.timeout)))  # waitress counts whole seconds
    self._server = waitress.create_server(
        application, host=host, port=port, threads=THREADS, ident="disaster-triage",
        channel_timeout=seconds, cleanup_interval=seconds, max_request_header_size=MAX_HEADER_BYTES,
        # Headers over the limit are read in one go before the refusal, so the client gets it, not a reset.
        recv_bytes=2 * MAX_HEADER_BYTES,
        # Above the largest body an endpoint takes (each refuses beyond its own limit, naming it), as the
        # standard library's server drains 4x the upload limit before its refusal; beyond, waitress's own 413.
        max_request_body_size=4 * max(app.max_upload_bytes, app.max_request_bytes),
        # A shift's operators, each with a page open: waitress's default of 100 open connections is too few.
        connection_limit=1000, expose_tracebacks=False, clear_untrusted_proxy_headers=True)
    self._server.channel_class = _json_channel()
    self.server_address = (self._server.effective_host, self._server.effective_port)
    application.allowed_hosts = allowed_hosts(host, self.server_address[1], extra_hosts)
    self._stop, self._stopped = threading.Event(), threading.Event()

  def serve_forever(self) -> None:
    """Runs the event loop until shutdown(); then closes every connection and stops the workers."""
    from waitress import wasyncore  # pylint: disable=import-outside-toplevel,protected-access
    try:
      while not self._stop.is_set():
        wasyncore.loop(timeout=LOOP_SECONDS, map=self._server._map, count=1)
    finally:
      self._close()

  def shutdown(self) -> None:
    """Stops serve_forever (running in another thread) and waits until it has."""
    self._stop.set()
    self._stopped.wait()

  def server_close(self) -> None:
    if not self._stopped.is_set():  # never served: the listening socket is closed here
      self._close()

  def _close(self) -> None:
    from waitress import wasyncore  # pylint: disable=import-outside-toplevel,protected-access
    self._server.task_dispatcher.shutdown()
    wasyncore.close_all(self._server._map, ignore_all=True)
    self._stopped.set()


def _json_channel():
  """Waitress's connection class, its refusals of a malformed request sent as {"error": "request: <what>"}."""
  from waitress import channel, task  # pylint: disable=import-outside-toplevel

  class JsonErrorTask(task.ErrorTask):

    def execute(self):
      error = self.request.error
      status, headers, body = wsgi.json_answer(error.code, {"error": f"request: {error.reason}: {error.body}"})
      self.status = status
      self.response_headers.extend(h for h in headers if h[0] != "Content-Length")
      self.set_close_on_finish()
      self.content_length = len(body)
      self.write(body)

  return type("JsonChannel", (channel.HTTPChannel,), {"error_task_class": JsonErrorTask})


def serve_in_thread(server: Server) -> threading.Thread:
  """Starts `server.serve_forever` in a daemon thread (the tests' and the load bench's way)."""
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  return thread
