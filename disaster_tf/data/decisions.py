"""Operators' decisions in SQLite: each one a label set that training can read.

An operator confirms or corrects a message's 36 labels; each save is one
`Decision` row, kept for good: the same message decided twice keeps both rows
and the latest that is not undone stands (`standing`). A message is its text
as well as its id (`message_key`): a new day's file that numbers its messages
from 1 again brings new messages, not yesterday's decisions. The store is a
SQLite file (stdlib `sqlite3`, the embedded default):

  - WAL journal: readers (the page, an export of the decisions, training) never
    block the writer, and a save is one transaction, durable once `record`
    returns (`synchronous=FULL`): a server killed at any point loses at most
    the save under way, never a finished one;
  - a schema version (`PRAGMA user_version`): an older file is migrated in
    place (schema.MIGRATIONS, one transaction each, whoever opens it first), a newer
    one (written by a later disaster_tf) is refused with a sentence, never read
    wrongly, and a SQLite file of something else is refused, never changed;
  - one connection per call (`sqlite3` connections stay in their thread), with
    a busy timeout, so the page's threads and a training run can share a file;
    `Store(path, read_only=True)` lists a file on read-only media;
  - a save names the decision it replaces (`record(..., replaces=)`), and an
    undo only takes back a decision that stands, recording who undid it: two
    operators never silently overwrite each other.

`decided.py` turns the standing decisions into labelled data (the two-file
export, a training run's snapshot, --data with them applied).
"""

import contextlib
import dataclasses
import datetime
import json
import os
import sqlite3
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from disaster_tf import labels
from disaster_tf.data import keys
from disaster_tf.data import schema
from disaster_tf.data import sqlite



class StoreError(ValueError):
  """A decisions file that cannot be used (not SQLite, a newer schema, a full disk, ...), or a bad decision."""


class Conflict(StoreError):
  """A save or an undo that another operator's decision has overtaken; `status` 409 for the page."""

  status = 409


class NoSuchDecision(StoreError):
  """An undo of a decision id that no decision has; `status` 404 for the page."""

  status = 404


class NotYours(StoreError):
  """An operator's undo of another operator's decision; `status` 403 for the page."""

  status = 403


@dataclasses.dataclass(frozen=True)
class Decision:
  """One operator's labels for one message (what a page save stores, and what training reads)."""

  message_id: str  # the message's key (`message_key`): the id its file gave it, and its text's hash
  message: str
  labels: Tuple[int, ...]  # [36] in labels.CATEGORIES order: related 0/1/2, the others 0/1
  operator: str
  decided_at: str = ""  # set by `record`
  model_version: Optional[str] = None
  scores: Optional[Tuple[float, ...]] = None  # [36]
  decision_id: Optional[int] = None  # set by `record`
  reviewer: bool = False  # a reviewer's, settling a disagreement: it stands over the operators' decisions

  def check(self) -> None:
    """Raises StoreError naming the field that is not valid."""
    problem = labels_problem(self.labels)
    if problem:
      raise StoreError(problem)
    for field in ("message_id", "message", "operator"):
      value = getattr(self, field)
      if not isinstance(value, str) or not value.strip():
        raise StoreError(f"{field}: expected text, found {value!r}")
      try:
        value.encode("utf-8")
      except UnicodeEncodeError as e:
        raise StoreError(f"{field}: character {e.start + 1} is a lone surrogate, not text") from None
    if self.scores is not None and len(self.scores) != labels.NUM_CATEGORIES:
      raise StoreError(f"scores: expected {labels.NUM_CATEGORIES} values, found {len(self.scores)}")


def labels_problem(values: Sequence) -> Optional[str]:
  """Why `values` are not 36 labels training can read (integers, not true or 1.0), or None."""
  if len(values) != labels.NUM_CATEGORIES:
    return f"labels: expected {labels.NUM_CATEGORIES} values, found {len(values)}"
  for name, value in zip(labels.CATEGORIES, values):
    allowed = range(labels.RELATED_CLASSES) if name == "related" else (0, 1)
    if type(value) is not int or value not in allowed:  # pylint: disable=unidiomatic-typecheck  # True, 1.0 are not
      return (f"labels.{name}: {json.dumps(value) if _jsonable(value) else repr(value)} is not a label of {name} "
              f"(expected {'0, 1 or 2' if name == 'related' else '0 or 1'})")
  return None


def _jsonable(value) -> bool:
  try:
    json.dumps(value)
    return True
  except (TypeError, ValueError):
    return False


def now() -> str:
  return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


class Store:
  """The decisions file at `path`, created (or migrated) on first use; `read_only` never writes to it."""

  def __init__(self, path: str, read_only: bool = False):
    self.path, self.read_only = path, read_only
    self._parsed: Dict[str, Tuple[int, Dict]] = {}  # message key -> (revision, its parsed result): undecided()
    with self.connect() as connection:
      self._check_or_migrate(connection)

  @contextlib.contextmanager
  def connect(self) -> Iterator[sqlite3.Connection]:
    """A connection to the file for one call (claims.py shares the file); sqlite3's errors become StoreError."""
    try:
      connection = self._open()
      connection.create_function("message_key", 2, keys.message_key, deterministic=True)
    except sqlite3.Error as e:
      raise StoreError(f"{self.path}: cannot open a decisions database there ({e})") from None
    try:
      if not self.read_only:
        connection.execute("PRAGMA synchronous=FULL")  # per connection (the WAL journal mode stays with the file)
      yield connection
    except sqlite3.Error as e:
      raise StoreError(f"{self.path}: {sqlite.sqlite_reason(e)}") from None
    finally:
      connection.close()

  def _open(self) -> sqlite3.Connection:
    if not self.read_only:
      return sqlite3.connect(self.path, timeout=30, isolation_level=None)
    if not os.path.isfile(self.path):
      raise sqlite3.OperationalError("no such file")
    try:
      connection = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30, isolation_level=None)
      try:
        connection.execute("PRAGMA user_version").fetchone()
      except sqlite3.OperationalError:
        connection.close()
        raise
      return connection
    except sqlite3.OperationalError:  # read-only media: no -shm can be made beside a WAL file; read it as it is
      return sqlite3.connect(f"file:{self.path}?mode=ro&immutable=1", uri=True, timeout=30, isolation_level=None)

  def _check_or_migrate(self, connection: sqlite3.Connection) -> None:
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    if version > schema.VERSION:
      raise StoreError(f"{self.path}: schema version {version} is newer than this disaster_tf's "
                       f"({schema.VERSION}); upgrade disaster_tf to read it (nothing was changed)")
    if version == 0:
      tables = [r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
      if tables:
        raise StoreError(f"{self.path}: not a decisions database (it holds the table(s) {', '.join(tables)}); "
                         "nothing was changed: name a new file")
    if self.read_only:
      if version < schema.VERSION:
        raise StoreError(f"{self.path}: schema version {version}, older than this disaster_tf's "
                         f"({schema.VERSION}); open it once where it can be written, to migrate it")
      return
    if version < schema.VERSION:
      self._migrate(connection)

  def _migrate(self, connection: sqlite3.Connection) -> None:
    connection.execute("PRAGMA journal_mode=WAL")  # persistent: set once, every later connection uses it
    while True:  # each migration whole or not at all, and read again under the lock: another may be first
      with sqlite.transaction(connection):
        step = connection.execute("PRAGMA user_version").fetchone()[0]
        if step >= schema.VERSION:
          return
        for statement in schema.MIGRATIONS[step].split(";"):
          if statement.strip():
            connection.execute(statement)
        connection.execute(f"PRAGMA user_version = {step + 1}")

  def record(self, decision: Decision, replaces: Optional[int] = None, check_replaces: bool = False) -> Decision:
    """Saves `decision` in one transaction; returns it with its id and time.

    Args:
      decision: what to save.
      replaces: the decision the operator saw standing (None: none, the model's answer).
      check_replaces: refuse the save if another decision stands now (an operator saving from a page opened
        before someone else decided the message).

    Raises:
      StoreError: a field that is not valid (named); Conflict: `check_replaces` and another decision stands.
    """
    return self.record_group(decision, replaces, check_replaces)[0]

  def record_group(self, decision: Decision, replaces: Optional[int] = None, check_replaces: bool = False,
                   copies: Sequence[Decision] = ()) -> Tuple[Decision, List[Decision]]:
    """`record`, and in the same transaction each of `copies` (near-copies decided with it) that no decision
    stands for: (the decision, the copies saved). A copy someone decided meanwhile keeps that decision."""
    for d in (decision, *copies):
      d.check()
    decided_at = now()
    with self.connect() as connection, sqlite.transaction(connection):
      if check_replaces:
        _check_standing(connection, decision.message_id, replaces)
      saved = [_insert(connection, decision, decided_at)]
      saved += [_insert(connection, copy, decided_at) for copy in copies if not stands(connection, copy.message_id)]
    return saved[0], saved[1:]

  def undo(self, decision_id: int, operator: str, own_only: bool = False) -> Decision:
    """Undoes the decision `decision_id` if it stands (it stays in the file, with who undid it and when).

    Args:
      decision_id: the decision's number.
      operator: who undoes it (recorded).
      own_only: refuse another operator's decision (the page with operators' tokens).

    Raises:
      NoSuchDecision: no decision has that id, or it is undone already; Conflict: a later decision of the
        same message stands instead (named); NotYours: `own_only` and another operator's decision.
    """
    if not isinstance(decision_id, int) or not 0 < decision_id < 2 ** 63:
      raise NoSuchDecision(f"decision_id: no standing decision {decision_id}")
    with self.connect() as connection, sqlite.transaction(connection):
      row = connection.execute(f"{_SELECT} WHERE decision_id = ? AND undone_at IS NULL", (decision_id,)).fetchone()
      if row is None:
        raise NoSuchDecision(f"decision_id: no standing decision {decision_id}")
      _check_standing(connection, row[1], decision_id)
      if own_only and row[4] != operator:
        raise NotYours(f"decision_id: decision {decision_id} is {row[4]}'s, and only {row[4]} undoes it here "
                       f"(disaster-decisions --undo={decision_id} undoes any, recording who)")
      connection.execute("UPDATE decisions SET undone_at = ?, undone_by = ? WHERE decision_id = ?",
                         (now(), operator, decision_id))
    return _decision(row)

  def enqueue(self, items: Sequence[Tuple[str, str, Dict]], model_version: Optional[str] = None) -> None:
    """Adds (message key, message, the scorer's result) to the review queue in one transaction (again: rescored)."""
    with self.connect() as connection, sqlite.transaction(connection):
      connection.executemany(
          "INSERT INTO queue (message_id, message, result, model_version, queued_at) VALUES (?, ?, ?, ?, ?) "
          "ON CONFLICT (message_id) DO UPDATE SET message = excluded.message, result = excluded.result, "
          "model_version = excluded.model_version, revision = queue.revision + 1",
          [(i, text, json.dumps(result), model_version, now()) for i, text, result in items])

  def undecided(self) -> List[Tuple[str, str, Dict]]:
    """The queued messages without a standing decision: (message key, message, the scorer's result), oldest first.

    A shift polls the queue all the time: each result is parsed once per revision and kept (`_parsed`), so a
    poll reads the keys and revisions only, and the same result object while it is unchanged.
    """
    with self.connect() as connection:
      rows = connection.execute(f"SELECT message_id, message, revision FROM queue WHERE {_UNDECIDED}").fetchall()
      new = [i for i, _, revision in rows if self._parsed.get(i, (None,))[0] != revision]
      for start in range(0, len(new), 500):  # SQLite's limit on the parameters of one statement
        chunk = new[start:start + 500]
        for i, revision, result in connection.execute(
            f"SELECT message_id, revision, result FROM queue WHERE message_id IN ({','.join('?' * len(chunk))})",
            chunk):
          self._parsed[i] = (revision, json.loads(result))
    return [(i, text, self._parsed[i][1]) for i, text, _ in rows]

  def seen_since(self, since: str) -> List[Tuple[str, List[str]]]:
    """(when it was queued, the model's predicted categories) of every queued message since `since` (ISO UTC),
    decided or not: what the page has seen (surges.py)."""
    with self.connect() as connection:
      rows = connection.execute("SELECT queued_at, json_extract(result, '$.predicted') FROM queue "
                                "WHERE queued_at >= ?", (since,)).fetchall()
    return [(when, json.loads(predicted) if predicted else []) for when, predicted in rows]

  def history(self, key: str) -> List[Decision]:
    """Every decision of one message, undone ones included, oldest first."""
    with self.connect() as connection:
      rows = connection.execute(f"{_SELECT} WHERE message_id = ? ORDER BY decision_id", (key,)).fetchall()
    return [_decision(row) for row in rows]

  def undone_by(self, decision_id: int) -> Optional[str]:
    """Who undid decision `decision_id` (None: it stands, or no such decision)."""
    with self.connect() as connection:
      row = connection.execute("SELECT undone_by FROM decisions WHERE decision_id = ?", (decision_id,)).fetchone()
    return row[0] if row else None

  def standing(self) -> Dict[str, Decision]:
    """{message key: the decision that stands}: a reviewer's latest not undone, else the latest not undone."""
    with self.connect() as connection:
      rows = connection.execute(
          f"{_SELECT} WHERE decision_id IN (SELECT COALESCE(MAX(CASE WHEN reviewer = 1 THEN decision_id END), "
          "MAX(decision_id)) FROM decisions WHERE undone_at IS NULL GROUP BY message_id) ORDER BY decision_id"
      ).fetchall()
    return {row[1]: _decision(row) for row in rows}

  def live(self) -> List[Decision]:
    """Every decision not undone, oldest first (opinions.py compares operators' decisions of one message)."""
    with self.connect() as connection:
      return [_decision(row) for row in connection.execute(
          f"{_SELECT} WHERE undone_at IS NULL ORDER BY decision_id").fetchall()]

  def count_standing(self) -> int:
    """How many messages have a standing decision (what `train.py --decisions` would train on)."""
    with self.connect() as connection:
      return connection.execute("SELECT COUNT(DISTINCT message_id) FROM decisions WHERE undone_at IS NULL"
                                ).fetchone()[0]

  def stale(self, model_version: str) -> List[Tuple[str, str]]:
    """The undecided queue's (message key, message) that another model version scored (or an unknown one)."""
    with self.connect() as connection:
      return connection.execute(f"SELECT message_id, message FROM queue WHERE model_version IS NOT ? AND {_UNDECIDED}",
                                (model_version,)).fetchall()


# The queue's messages without a standing decision, oldest first (the end of a WHERE clause).
_UNDECIDED = ("message_id NOT IN (SELECT message_id FROM decisions WHERE undone_at IS NULL) "
              "ORDER BY queued_at, message_id")
_SELECT = ("SELECT decision_id, message_id, message, labels, operator, decided_at, model_version, scores, "
           "reviewer FROM decisions")


def stands(connection: sqlite3.Connection, key: str) -> bool:
  """Whether a decision not undone stands for message `key` (inside the caller's transaction; claims.py too)."""
  return connection.execute("SELECT 1 FROM decisions WHERE message_id = ? AND undone_at IS NULL",
                            (key,)).fetchone() is not None


def _insert(connection: sqlite3.Connection, decision: Decision, decided_at: str) -> Decision:
  """One decision row, inside the caller's transaction; a decided message's claim ends with it."""
  cursor = connection.execute(
      "INSERT INTO decisions (message_id, message, labels, operator, decided_at, model_version, scores, reviewer) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      (decision.message_id, decision.message, json.dumps(list(decision.labels)), decision.operator, decided_at,
       decision.model_version, json.dumps(list(decision.scores)) if decision.scores is not None else None,
       int(decision.reviewer)))
  connection.execute("DELETE FROM claims WHERE message_id = ?", (decision.message_id,))
  return dataclasses.replace(decision, decided_at=decided_at, decision_id=cursor.lastrowid)


def _decision(row) -> Decision:
  return Decision(row[1], row[2], tuple(json.loads(row[3])), row[4], row[5], row[6],
                  tuple(json.loads(row[7])) if row[7] else None, row[0], bool(row[8]))


def _check_standing(connection: sqlite3.Connection, key: str, expected: Optional[int]) -> None:
  """Raises Conflict unless the decision standing for `key` is `expected` (None: none stands)."""
  row = connection.execute(f"{_SELECT} WHERE message_id = ? AND undone_at IS NULL ORDER BY reviewer DESC, "
                           "decision_id DESC LIMIT 1", (key,)).fetchone()
  standing = row[0] if row else None
  if standing != expected:
    if standing is None:
      raise Conflict(f"decision {expected} no longer stands: it was undone; reload the message")
    raise Conflict(f"decision {standing} by {row[4]} ({row[5]}) stands for this message, not "
                   f"{'the model' if expected is None else f'decision {expected}'}: reload it and decide again")
