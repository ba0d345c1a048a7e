"""The page's decisions API: who may decide (operator tokens), and decide / undo / decided over a decisions.Store.

Bound to a loopback address the page needs no login: a decision records the
name the page sends (or "local"). On any other address the server requires
`--operators=FILE` (`Operators`): one `name<TAB>sha256(token)` line per
operator, tokens stored hashed, never in the clear; a request to decide or
undo without `Authorization: Bearer <token>` of a listed operator gets 401
and changes nothing, and the decision records the token's name. Put TLS in
front (a reverse proxy): a token sent over plain HTTP can be read on the way.

The page's endpoints (`endpoints.py`) parse the request and call `DecisionsApi`;
every refusal is a `Refused` with its HTTP status and a sentence naming the
field.
"""

import dataclasses
import hashlib
import hmac
import json
import os
import secrets
from typing import AbstractSet, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from disaster_tf.data import claims
from disaster_tf.data import decisions
from disaster_tf.data import opinions
from disaster_tf.data import keys
from disaster_tf import labels
from disaster_tf.serve import predict
from disaster_tf.triage import sampling

ORDERS = ("useful", "urgent")  # the Review tab's two orders: most useful to teach, most urgent (and "disputed")
MAX_COPIES = 500  # near-copies one decision covers (one model call scores them all)


class Refused(Exception):
  """A decisions request the server refuses: an HTTP status and a sentence naming the field."""

  def __init__(self, status: int, message: str):
    super().__init__(message)
    self.status = status


def hash_token(token: str) -> str:
  return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Operators:
  """The operators file: name -> sha256 of the name's token."""

  def __init__(self, path: str):
    self.path, self.hashes = path, {}
    if not os.path.isfile(path):
      raise FileNotFoundError(f"--operators={path}: no such file")
    with open(path, encoding="utf-8") as f:
      for number, line in enumerate(f, 1):
        name, _, digest = line.rstrip("\n").partition("\t")
        if not name or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
          raise ValueError(f"{path}, line {number}: expected a name, a tab and the sha256 of its token "
                           "(disaster-decisions --operators=FILE --add_operator=NAME writes one)")
        self.hashes[name] = digest

  @staticmethod
  def add(path: str, name: str) -> str:
    """Appends `name` with a new random token (stored hashed); returns the token, shown once.

    Raises:
      ValueError: a name with a tab or line break, or one the file lists already (its token would stop working).
    """
    if not name or "\t" in name or "\n" in name:
      raise ValueError(f"--add_operator={name!r}: expected a name without tabs or line breaks")
    if os.path.isfile(path) and name in Operators(path).hashes:
      raise ValueError(f"--add_operator={name}: {path} lists {name} already; choose another name, or remove "
                       f"{name}'s line first to give {name} a new token")
    token = secrets.token_urlsafe(24)
    with open(path, "a", encoding="utf-8") as f:
      f.write(f"{name}\t{hash_token(token)}\n")
    return token

  def name_of(self, authorization: Optional[str]) -> Optional[str]:
    """The operator whose token `Authorization: Bearer <token>` carries, or None."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
      return None
    digest = hash_token(token.strip())
    return next((name for name, known in self.hashes.items() if hmac.compare_digest(known, digest)), None)


class DecisionsApi:
  """decide / undo / decided for the page, over `store`; `operators` None means the page is local only."""

  def __init__(self, store: decisions.Store, operators: Optional[Operators] = None,
               claim_seconds: float = claims.CLAIM_SECONDS, second_share: float = 0.0,
               reviewers: AbstractSet[str] = frozenset()):
    if not 0.0 <= second_share <= 1.0:
      raise ValueError(f"--second_opinion={second_share}: expected a share from 0 to 1")
    self.store, self.operators = store, operators
    self.second_share = second_share  # the share of decided messages a second operator decides again
    self.reviewers = frozenset(reviewers)  # who settles disagreements (their decision stands)
    self.claims = claims.Claims(store, claim_seconds)  # who is reading which message (a shift shares the queue)
    self._answers: Dict[str, Tuple] = {}  # message key -> (its result object, (urgency, english_only), ranked)

  def who(self, authorization: Optional[str], body: Mapping) -> str:
    """The deciding operator's name: the token's (with operators), else the page's `operator` field or "local".

    Raises:
      Refused: 401 without a valid token when operators are required.
    """
    if self.operators is None:
      name = body.get("operator") or "local"
      error = text_error("operator", name)
      if error:
        raise Refused(400, error)
      return name
    return self.reader(authorization)

  def reader(self, authorization: Optional[str]) -> Optional[str]:
    """The operator a request comes from (with operators: its token's name, or a 401; without: None).

    Off loopback, the page's answers carry the public's messages and who decided what: only operators read them.
    """
    if self.operators is None:
      return None
    name = self.operators.name_of(authorization)
    if name is None:
      raise Refused(401, "Authorization: a valid operator token is required (Bearer TOKEN; "
                         "disaster-decisions --operators=FILE --add_operator=NAME gives one)")
    return name

  def decide(self, body: Mapping, operator: str, score: Callable, model_version: Optional[str]) -> Dict:
    """Saves one decision: {"message", "labels": {category: label}, "id"?, "replaces"}.

    `replaces` is the decision the page showed standing (null: the model's answer): if another stands now, the
    save is refused (409), naming it, so a page opened before another operator decided never overwrites that
    decision. The model's scores are taken now.
    """
    message, given = body.get("message"), body.get("id")
    error = text_error("message", message) or (text_error("id", given, blank=True) if given is not None else None)
    if error:
      raise Refused(400, error)
    values = body.get("labels")
    if not isinstance(values, dict) or set(values) != set(labels.CATEGORIES):
      raise Refused(400, f"labels: expected one label for each of the {labels.NUM_CATEGORIES} categories")
    problem = decisions.labels_problem([values[c] for c in labels.CATEGORIES])
    if problem:
      raise Refused(400, problem)
    if "replaces" not in body or not (body["replaces"] is None or _is_number(body["replaces"])):
      raise Refused(400, "replaces: expected the number of the decision the page showed, or null for none")
    copies = _copies(body)
    scored = score([message] + [c["message"] for c in copies])
    made = [decisions.Decision(keys.message_key(i, text), text, tuple(values[c] for c in labels.CATEGORIES), operator,
                               model_version=model_version, scores=tuple(s["scores"][c] for c in labels.CATEGORIES))
            for (i, text), s in zip([(given, message)] + [(c.get("id"), c["message"]) for c in copies], scored)]
    if operator in self.reviewers and made[0].message_id in opinions.disputed(self.store.live()):
      made[0] = dataclasses.replace(made[0], reviewer=True)  # it settles the disagreement: it stands
    try:
      decision, saved = self.store.record_group(made[0], body["replaces"], True, made[1:])
    except decisions.StoreError as e:
      raise Refused(getattr(e, "status", 400), str(e)) from None
    return dict(as_json(decision), copies=[as_json(d) for d in saved])

  def undo(self, body: Mapping, operator: str) -> Dict:
    """Undoes a standing decision: {"decision_id"}, and {"copies": [decision_id, ...]} decided with it (those
    still standing); with operators' tokens, only its own operator may."""
    decision_id, copies = body.get("decision_id"), body.get("copies", [])
    if not _is_number(decision_id):
      raise Refused(400, "decision_id: expected the decision's number")
    if not isinstance(copies, list) or not all(_is_number(c) for c in copies):
      raise Refused(400, "copies: expected a list of decision numbers")
    try:
      self.store.undo(decision_id, operator, own_only=self.operators is not None)
      undone = [c for c in copies if self._undo_copy(c, operator)]
    except decisions.StoreError as e:
      raise Refused(getattr(e, "status", 400), str(e)) from None
    return {"undone": decision_id, "undone_by": operator, "copies_undone": undone}

  def _undo_copy(self, decision_id: int, operator: str) -> bool:
    """Undoes one copy's decision; False where it no longer stands (another decision replaced it)."""
    try:
      self.store.undo(decision_id, operator, own_only=self.operators is not None)
      return True
    except (decisions.Conflict, decisions.NoSuchDecision):
      return False

  def enqueue(self, pairs: Sequence[Tuple[Dict[str, str], Dict]], model_version: Optional[str]) -> None:
    """Queues scored rows (row, the scorer's result) for review, by their message id."""
    self.store.enqueue([(keys.row_message_id(row), row.get("message", ""), result) for row, result in pairs
                        if text_error("message", row.get("message", ""), blank=True) is None], model_version)

  def queue(self, order: str, limit: int, urgency: Sequence[str],
            positives: Optional[Mapping[str, int]] = None, english_only: bool = False,
            skip: AbstractSet[str] = frozenset(),
            pending: Optional[Sequence[Tuple[str, str, Dict]]] = None) -> List[Tuple[str, str, Dict]]:
    """The undecided queued messages, `limit` at most: (message id, message, result), in `order`.

    "useful": `sampling.DEFAULT_METHOD` over the heads, their margins at `sampling.SAMPLE_AT` (not the tuned
    thresholds: the ablation chose 0.5), weighted by the training `positives`, then
    `sampling.diverse_top` (no near-copies); "urgent": by priority (`predict.ranked`), oldest first within one.
    Either way, the messages the model cannot read come first (the gate calls them another language and the
    model reads English only: `english_only`, or the stored result's own `reads_language`): an operator must.
    The message keys in `skip` (claimed by another operator) are left out before the ranking. `pending` is
    `store.undecided()` where the caller has read it already.

    Raises:
      Refused: an unknown order.
    """
    if order not in ORDERS:
      raise Refused(400, f"order: expected one of {', '.join(ORDERS)}, found {order!r}")
    # Each message ranked once: what the model cannot read (the metadata's `english_only`, or the result's own
    # word) comes first, the rest by priority.
    answers = [(p, self._answer(p, tuple(urgency), english_only))
               for p in (self.store.undecided() if pending is None else pending) if p[0] not in skip]
    first = [p for p, a in answers if a["not_english"]]
    rest = [(p, a) for p, a in answers if not a["not_english"]]
    if order == "urgent" or not rest:
      return (first + [p for p, _ in sorted(rest, key=lambda pa: pa[1]["priority"])])[:limit]
    pending = [p for p, _ in rest]  # the ones the model reads, in the queue's order
    scores = np.array([[p[2]["scores"][c] for c in labels.CATEGORIES] for p in pending])
    cut = np.full(labels.NUM_CATEGORIES, sampling.SAMPLE_AT)
    counts = np.array([positives[c] for c in labels.CATEGORIES]) if positives else None
    top = sampling.rank(scores, cut, [p[1] for p in pending], [p[0] for p in pending], limit, positives=counts)
    return (first + [pending[i] for i in top])[:limit]

  def second_opinions(self, operator: str, limit: int) -> List[Tuple[str, str, decisions.Decision]]:
    """Decided messages drawn for a second opinion (`opinions.wants_second`) that only another operator has
    decided and no reviewer settled: (message key, message, the decision standing), oldest first."""
    if not self.second_share:
      return []
    live = self.store.live()
    settled = opinions.settled(live)
    out = []
    for key, ops in opinions.by_message(live).items():
      if (len(ops) == 1 and ops[0].operator != operator and key not in settled
          and opinions.wants_second(key, self.second_share)):
        out.append((key, ops[0].message, ops[0]))
    return out[:limit]

  def _answer(self, pending: Tuple[str, str, Dict], urgency: Tuple[str, ...], english_only: bool) -> Dict:
    """predict.ranked of one queued message, kept while the store hands back the same result object."""
    key, text, result = pending
    kept = self._answers.get(key)
    if kept is None or kept[0] is not result or kept[1] != (urgency, english_only):
      kept = (result, (urgency, english_only), predict.ranked(result, urgency, text, english_only))
      self._answers[key] = kept
    return kept[2]

  def decided(self) -> Dict[str, Dict]:
    """{message id: its standing decision} for the page."""
    return {i: as_json(d) for i, d in self.store.standing().items()}


def text_error(field: str, value, blank: bool = False) -> Optional[str]:
  """Why `value` (the request's `field`) is not text SQLite and the model can take, or None."""
  if not isinstance(value, str) or (not blank and not value.strip()):
    return f"{field}: expected text, found {json.dumps(value) if not isinstance(value, str) else 'nothing'}"
  try:
    value.encode("utf-8")
  except UnicodeEncodeError as e:
    return f"{field}: character {e.start + 1} is a lone surrogate ({value[e.start]!r}), not text"
  return None


def _is_number(value) -> bool:
  return isinstance(value, int) and not isinstance(value, bool)


def as_json(d: decisions.Decision) -> Dict:
  return {"decision_id": d.decision_id, "message_id": d.message_id, "operator": d.operator,
          "decided_at": d.decided_at, "labels": dict(zip(labels.CATEGORIES, d.labels))}


def _copies(body: Mapping) -> List[Dict]:
  """The near-copies a decision also covers: {"copies": [{"message", "id"?}, ...]} (none if absent)."""
  copies = body.get("copies", [])
  if not isinstance(copies, list) or len(copies) > MAX_COPIES:
    raise Refused(400, f"copies: expected a list of at most {MAX_COPIES} messages")
  for n, copy in enumerate(copies):
    error = (f"copies[{n}]: expected an object with a message" if not isinstance(copy, dict)
             else text_error(f"copies[{n}].message", copy.get("message"))
             or (text_error(f"copies[{n}].id", copy["id"], blank=True) if copy.get("id") is not None else None))
    if error:
      raise Refused(400, error)
  return copies


def message_id(body: Mapping) -> str:
  error = text_error("message_id", body.get("message_id"))
  if error:
    raise Refused(400, error)
  return body["message_id"]


def json_object(body: bytes) -> Dict:
  try:
    parsed = json.loads(body.decode("utf-8"))
  except (UnicodeDecodeError, ValueError, RecursionError):
    parsed = None
  if not isinstance(parsed, dict):
    raise Refused(400, "request: expected a JSON object")
  return parsed


def answer_decision(api: DecisionsApi, app, path: str, authorization: Optional[str], body: bytes) -> Dict:
  """POST /api/decide or /api/undo: the operator is checked before the body becomes a decision."""
  parsed = json_object(body)
  operator = api.who(authorization, parsed)
  if path == "/api/undo":
    return api.undo(parsed, operator)
  version = str(app.loaded.version) if app.loaded else None
  return {"decision": api.decide(parsed, operator, app.score, version)}
