"""The page's endpoints, one function each: a parsed request in, its answer out, over a `app.TriageApp`.

  GET  / and /static/NAME  the page (static/index.html) and its script and style sheet      `page`
  GET  /api/model          categories, urgency order, thresholds, what the export was trained on    `model`
  GET  /api/decided        the standing decisions (--db)                                             `decided`
  GET  /api/queue          the undecided messages, most useful or most urgent first (--db)           `queue`
  GET  /api/surges         counts per category per hour against their baseline (--db; surges.py)    `surges`
  GET  /api/agreement      second opinions: agreement and kappa per category (--db; opinions.py)    `agreement`
  POST /api/classify       {"messages": [str, ...]} -> {"results": [...]} (at most app.MAX_MESSAGES) `classify`
  POST /api/upload         a CSV file (the body) -> NDJSON lines, streamed as scored: {"columns"}, then one
                           {"row", ...result} per row, then {"report"}                              `upload`
  POST /api/explain        {"message": str} -> its result with `explanation` (explain.py)            `explain`
  POST /api/decide, /undo  a decision saved, or taken back (--db; review.answer_decision)           `decide`
  POST /api/claim, /release  a message claimed for its reader, or the next free one; released
                           (--db; queue_lib.answer_claim)                                             `claim`

What is HTTP stays in `wsgi.py`: it frames the request, checks the Host, and calls the endpoint ROUTES names
with a `Request` whose `body(limit, what)` reads the body under a limit; it writes what the endpoint returns
(a `Json`, a `File` or a `Stream`) and turns a `review.Refused` into its status and sentence. An endpoint
refuses a bad request with `review.Refused` naming the field; in a /api/classify batch a message that is not
text fails alone (its `error`), the others are scored.
"""

import dataclasses
import datetime
import json
import os
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

from disaster_tf.serve import predict
from disaster_tf.serve import scorefile
from disaster_tf.triage import app as app_lib
from disaster_tf.triage import queue as queue_lib
from disaster_tf.triage import review
from disaster_tf.triage import surges as surges_lib

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
Refused = review.Refused  # what an endpoint raises: a status and a sentence naming the field


MAX_EXPLAIN_CHARS = 5000  # explain scores a message once per distinct word: a bound on one request's model time


@dataclasses.dataclass(frozen=True)
class Request:
  """What an endpoint reads of a request: its path (with the query), Authorization and Content-Type, its body."""

  path: str
  authorization: Optional[str]
  body: Callable[[int, str], bytes]  # (limit in bytes, what it is, for the sentence) -> exactly the body
  content_type: str = ""


@dataclasses.dataclass(frozen=True)
class Json:
  """An answer of one JSON value."""

  value: Any
  status: int = 200


@dataclasses.dataclass(frozen=True)
class File:
  """An answer of one of the page's own files."""

  content_type: str
  body: bytes


@dataclasses.dataclass(frozen=True)
class Stream:
  """A 200 answer streamed as NDJSON, one line per value, as `lines` yields them."""

  lines: Iterator[Dict]


Endpoint = Callable[[app_lib.TriageApp, Request], Any]


def page(app: app_lib.TriageApp, request: Request) -> File:
  """GET / and /static/NAME: the page and its files, from static/ and nowhere else."""
  del app
  path = request.path.split("?", 1)[0]
  name = "index.html" if path in ("/", "/index.html") else ""
  if path.startswith("/static/"):
    name = path[len("/static/"):]
  full = os.path.join(STATIC_DIR, name)
  if not name or "/" in name or name.startswith(".") or not os.path.isfile(full):
    raise Refused(404, f"{path}: no such page")
  with open(full, "rb") as f:
    return File(STATIC_TYPES.get(os.path.splitext(name)[1], "application/octet-stream"), f.read())


def model(app: app_lib.TriageApp, request: Request) -> Json:
  """GET /api/model: what the Model tab, the filter, the score bars and the CSV download read."""
  del request
  return Json(app.model_info())


def decided(app: app_lib.TriageApp, request: Request) -> Json:
  """GET /api/decided: the standing decisions."""
  api = _decisions(app)
  api.reader(request.authorization)
  return Json({"decided": api.decided()})


def queue(app: app_lib.TriageApp, request: Request) -> Json:
  """GET /api/queue?order=useful|urgent&limit=N: the undecided messages (queue_lib.answer_queue)."""
  api = _decisions(app)
  return Json(queue_lib.answer_queue(api, app, request.path, app_lib.MAX_MESSAGES, api.reader(request.authorization)))


def agreement(app: app_lib.TriageApp, request: Request) -> Json:
  """GET /api/agreement: the second opinions' agreement per category, and the disagreements left to settle."""
  api = _decisions(app)
  api.reader(request.authorization)
  return Json(queue_lib.answer_agreement(api))


def surges(app: app_lib.TriageApp, request: Request) -> Json:
  """GET /api/surges: each category's windows over the messages the page has seen, and which surge now."""
  api = _decisions(app)
  api.reader(request.authorization)
  now = datetime.datetime.now(datetime.timezone.utc)
  seen = [(datetime.datetime.fromisoformat(when), predicted) for when, predicted in
          api.store.seen_since(surges_lib.window_start(now).isoformat(timespec="seconds"))]
  counted = [c.to_json() for c in surges_lib.count(seen, now, app.order) if c.category != "related"]
  return Json({"now": now.isoformat(timespec="seconds"), "window_minutes": surges_lib.WINDOW_MINUTES,
               "rule": surges_lib.rule(), "categories": counted,
               "surges": [c["category"] for c in counted if c["surge"]]})


def classify(app: app_lib.TriageApp, request: Request) -> Json:
  """POST /api/classify: each message is answered, or fails alone with its reason."""
  _operator_only(app, request)
  messages = _json_field(app, request, "messages", '{"messages": ["...", ...]}')
  if not isinstance(messages, list):
    raise Refused(400, "messages: expected a list of strings")
  if len(messages) > app_lib.MAX_MESSAGES:
    raise Refused(413, f"messages: {len(messages)} is over the limit of {app_lib.MAX_MESSAGES} a request")
  errors = [message_error(f"messages[{i}]", m) for i, m in enumerate(messages)]
  good = [m for m, e in zip(messages, errors) if e is None]
  answers = app.score(good)
  warning = app.enqueue([({"message": m}, r) for m, r in zip(good, answers)])
  scored = iter(answers)
  return Json({"results": [app.result({"message": m}, next(scored)) if e is None
                           else app.failed({"message": m if isinstance(m, str) else json.dumps(m)}, e)
                           for m, e in zip(messages, errors)], **({"warning": warning} if warning else {})})


def explain(app: app_lib.TriageApp, request: Request) -> Json:
  """POST /api/explain: one message's answer with the words behind each of its categories."""
  _operator_only(app, request)
  message = _json_field(app, request, "message", '{"message": "..."}')
  error = message_error("message", message)
  if error:
    raise Refused(400, error)
  if len(message) > MAX_EXPLAIN_CHARS:  # one message's explanation holds the model for every other operator
    raise Refused(413, f"message: {len(message)} characters is over the limit of {MAX_EXPLAIN_CHARS} for an "
                       "explanation (only the first 256 words are explained); /api/classify scores it")
  answer = app.explain(message)
  if answer is None:
    raise Refused(404, "explanations are not offered by this page's scorer")
  return Json(answer)


def upload(app: app_lib.TriageApp, request: Request) -> Stream:
  """POST /api/upload: the file is checked whole before the stream starts, then each row is scored and sent."""
  _operator_only(app, request)
  body = request.body(app.max_upload_bytes, "upload")
  _content_type(request, "text/csv", "upload")
  if not body.strip():
    raise Refused(400, "upload: the file is empty; expected a CSV file with a 'message' column")
  report = scorefile.ScoreReport()
  try:
    lines = scorefile.checked_lines(iter(body.splitlines(keepends=True)), "upload", report)
    header, rows = scorefile.read_rows(lines, "upload", report)
  except scorefile.InputError as e:
    raise Refused(400, str(e)) from None

  def stream() -> Iterator[Dict]:
    yield {"columns": header}
    warnings = []
    for row, result in predict.score_rows(rows, app.score, on_batch=lambda pairs: warnings.append(app.enqueue(pairs))):
      answer = app.result(row, result)
      yield answer
      report.scored += 1
      report.not_english += answer["not_english"]
    warning = next((w for w in warnings if w), None)
    yield {"report": report.summary(), "unreadable": report.unreadable, **({"warning": warning} if warning else {})}
  return Stream(stream())


def decide(app: app_lib.TriageApp, request: Request) -> Json:
  """POST /api/decide and /api/undo (review.answer_decision): the operator is checked first."""
  api = _decisions(app)
  answer = review.answer_decision(api, app, request.path, request.authorization, _json_body(app, request))
  if app.retrainer is not None:
    app.retrainer.poke()  # it counts the decisions in its own thread, never on this one
  return Json(answer)


def claim(app: app_lib.TriageApp, request: Request) -> Json:
  """POST /api/claim and /api/release (queue_lib.answer_claim): who reads which message now."""
  api = _decisions(app)
  return Json(queue_lib.answer_claim(api, app, request.path, request.authorization, _json_body(app, request)))


ROUTES: Dict[Tuple[str, str], Endpoint] = {
    ("GET", "/api/model"): model, ("GET", "/api/decided"): decided, ("GET", "/api/queue"): queue,
    ("GET", "/api/surges"): surges, ("GET", "/api/agreement"): agreement,
    ("POST", "/api/classify"): classify, ("POST", "/api/upload"): upload, ("POST", "/api/explain"): explain,
    ("POST", "/api/decide"): decide, ("POST", "/api/undo"): decide,
    ("POST", "/api/claim"): claim, ("POST", "/api/release"): claim,
}


def route(method: str, path: str) -> Endpoint:
  """The endpoint for a request; any other GET is one of the page's files (or a 404), any other POST a 404."""
  endpoint = ROUTES.get((method, path.split("?", 1)[0] if method == "GET" else path))  # a GET's query is its own
  if endpoint is not None:
    return endpoint
  if method == "GET":
    return page
  raise Refused(404, f"{path}: no such endpoint (POST /api/classify, /api/upload, /api/explain, /api/decide, "
                     "/api/undo, /api/claim or /api/release)")


def message_error(field: str, message) -> Optional[str]:
  """Why `message` (the request's `field`: `message`, or `messages[3]` of a list) cannot be scored, or None."""
  if not isinstance(message, str):
    return f"{field}: expected a string, found {type(message).__name__}"
  try:
    message.encode("utf-8")
  except UnicodeEncodeError as e:
    return f"{field}: character {e.start + 1} is a lone surrogate ({message[e.start]!r}), not text"
  return None


def _decisions(app: app_lib.TriageApp) -> review.DecisionsApi:
  if app.decisions is None:
    raise Refused(404, "decisions are not kept by this page: start it with --db=FILE")
  return app.decisions


def _operator_only(app: app_lib.TriageApp, request: Request) -> None:
  """With operators' tokens (the page off loopback), answers that carry messages are for operators only."""
  if app.decisions is not None:
    app.decisions.reader(request.authorization)


def _content_type(request: Request, expected: str, what: str) -> None:
  """Refuses another Content-Type: a form or a text/plain POST from another website cannot send this one
  without the browser asking the server first (a CORS preflight, which this server never grants)."""
  given = request.content_type.split(";", 1)[0].strip().lower()
  if given != expected:
    raise Refused(415, f"{what}: Content-Type must be {expected}, found {given or '(none)'!r}")


def _json_body(app: app_lib.TriageApp, request: Request) -> bytes:
  """A JSON request's body, within app.max_request_bytes and sent as application/json."""
  body = request.body(app.max_request_bytes, "request")
  _content_type(request, "application/json", "request")
  return body


def _json_field(app: app_lib.TriageApp, request: Request, field: str, shape: str):
  """`field` of the request's JSON body; a 400 saying the expected `shape` when there is none."""
  body = _json_body(app, request)
  try:
    return json.loads(body.decode("utf-8"))[field]
  except (UnicodeDecodeError, ValueError, KeyError, TypeError, IndexError, RecursionError):
    raise Refused(400, f"request: expected JSON {shape}") from None
