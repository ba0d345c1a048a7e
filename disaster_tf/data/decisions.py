"""Operators' decisions in SQLite: each one a label set that training can read.

An operator confirms or corrects a message's 36 labels; each save is one
`Decision` row, kept for good: the same message decided twice keeps both rows
and the latest that is not undone stands (`standing`). The store is a SQLite
file (stdlib `sqlite3`, the embedded default):

  - WAL journal: readers (the page, an export of the decisions, training) never
    block the writer, and a save is one transaction, durable once `record`
    returns (`synchronous=FULL`): a server killed at any point loses at most
    the save under way, never a finished one;
  - a schema version (`PRAGMA user_version`): an older file is migrated in
    place (MIGRATIONS, one transaction each), a newer one (written by a later
    disaster_tf) is refused with a sentence, never read wrongly;
  - one connection per call (`sqlite3` connections stay in their thread), with
    a busy timeout, so the page's threads and a training run can share a file.

`merged_data` writes the project's two-file CSV data with the decisions
applied (a decision overrides the data's labels of the same id and adds the
messages the data lacks): `train.py --decisions=PATH` trains on it, and
`export_csv` writes the decisions alone in the same format (they then join
any `--data` like a labelled file).
"""

import contextlib
import csv
import dataclasses
import datetime
import hashlib
import json
import os
import sqlite3
from typing import Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from disaster_tf import labels

SCHEMA_VERSION = 2
GENRE = "direct"  # a decided message the data lacks was sent to the operators: the data's `direct` genre
# The schema at each version, as the statements that reach it from the one before (index 0: from nothing),
# separated by semicolons (none inside a statement).
MIGRATIONS = (
    """
    CREATE TABLE decisions (
      decision_id INTEGER PRIMARY KEY AUTOINCREMENT,
      message_id TEXT NOT NULL,
      message TEXT NOT NULL,
      labels TEXT NOT NULL,          -- JSON: 36 labels in labels.CATEGORIES order
      operator TEXT NOT NULL,
      decided_at TEXT NOT NULL,      -- UTC, ISO 8601
      model_version TEXT,            -- the export the operator saw (its version directory)
      scores TEXT,                   -- JSON: the model's 36 scores at that moment
      undone_at TEXT                 -- set when the decision is undone: it then no longer stands
    );
    CREATE INDEX decisions_by_message ON decisions (message_id, decision_id);
    """,
    # 2: the review queue, messages waiting for a decision (pasted, uploaded, or scored by predict.py --db)
    """
    CREATE TABLE queue (
      message_id TEXT PRIMARY KEY,
      message TEXT NOT NULL,
      result TEXT NOT NULL,          -- JSON: the model's answer when it was queued (scores, labels, predicted)
      model_version TEXT,
      queued_at TEXT NOT NULL
    );
    """,
)
assert len(MIGRATIONS) == SCHEMA_VERSION


class StoreError(ValueError):
  """A decisions file that cannot be used: not SQLite, a newer schema, or a decision that is not valid."""


@dataclasses.dataclass(frozen=True)
class Decision:
  """One operator's labels for one message (what a page save stores, and what training reads)."""

  message_id: str
  message: str
  labels: Tuple[int, ...]  # [36] in labels.CATEGORIES order: related 0/1/2, the others 0/1
  operator: str
  decided_at: str = ""  # set by `record`
  model_version: Optional[str] = None
  scores: Optional[Tuple[float, ...]] = None  # [36]
  decision_id: Optional[int] = None  # set by `record`

  def check(self) -> None:
    """Raises StoreError naming the field that is not valid."""
    if len(self.labels) != labels.NUM_CATEGORIES:
      raise StoreError(f"labels: expected {labels.NUM_CATEGORIES} values, found {len(self.labels)}")
    for name, value in zip(labels.CATEGORIES, self.labels):
      if value not in (range(labels.RELATED_CLASSES) if name == "related" else (0, 1)):
        raise StoreError(f"labels.{name}: {value!r} is not a label of {name} (expected "
                         f"{'0, 1 or 2' if name == 'related' else '0 or 1'})")
    if not self.message_id or not self.operator:
      raise StoreError("message_id and operator: both are required")
    if self.scores is not None and len(self.scores) != labels.NUM_CATEGORIES:
      raise StoreError(f"scores: expected {labels.NUM_CATEGORIES} values, found {len(self.scores)}")


HASHED = "sha256:"  # the prefix of an id made from a message's text


def message_id(text: str, given: Optional[str] = None) -> str:
  """A message's id: the one its CSV gave, else a hash of its text (the same text: the same id)."""
  return given if given else HASHED + hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:16]


def row_message_id(row: Mapping[str, str]) -> str:
  """`message_id` of a scored CSV row (its `message`, and its `id` column if it has one)."""
  return message_id(row.get("message", ""), row.get("id"))


def message_row(message_id_: str, text: str) -> Dict[str, str]:
  """The row `row_message_id` maps to `message_id_` (an `id` column only if the id was not made from the text)."""
  return {"message": text, **({} if message_id_.startswith(HASHED) else {"id": message_id_})}


class Store:
  """The decisions file at `path`, created (or migrated) on first use."""

  def __init__(self, path: str):
    self.path = path
    with self._connect() as connection:
      self._migrate(connection)

  @contextlib.contextmanager
  def _connect(self) -> Iterator[sqlite3.Connection]:
    try:
      connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
    except sqlite3.Error as e:
      raise StoreError(f"{self.path}: cannot open a decisions database there ({e})") from None
    try:
      connection.execute("PRAGMA synchronous=FULL")  # per connection (the WAL journal mode stays with the file)
      yield connection
    except sqlite3.DatabaseError as e:
      raise StoreError(f"{self.path}: not a decisions database ({e})") from None
    finally:
      connection.close()

  def _migrate(self, connection: sqlite3.Connection) -> None:
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
      raise StoreError(f"{self.path}: schema version {version} is newer than this disaster_tf's "
                       f"({SCHEMA_VERSION}); upgrade disaster_tf to read it (nothing was changed)")
    connection.execute("PRAGMA journal_mode=WAL")  # persistent: set once, every later connection uses it
    for step in range(version, SCHEMA_VERSION):  # each migration whole or not at all
      connection.execute("BEGIN IMMEDIATE")
      try:
        for statement in MIGRATIONS[step].split(";"):
          if statement.strip():
            connection.execute(statement)
        connection.execute(f"PRAGMA user_version = {step + 1}")
        connection.execute("COMMIT")
      except BaseException:
        connection.execute("ROLLBACK")
        raise

  def record(self, decision: Decision) -> Decision:
    """Saves `decision` in one transaction; returns it with its id and time.

    Raises:
      StoreError: a field that is not valid (named).
    """
    decision.check()
    decided_at = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    with self._connect() as connection:
      cursor = connection.execute(
          "INSERT INTO decisions (message_id, message, labels, operator, decided_at, model_version, scores) "
          "VALUES (?, ?, ?, ?, ?, ?, ?)",
          (decision.message_id, decision.message, json.dumps(list(decision.labels)), decision.operator, decided_at,
           decision.model_version, json.dumps(list(decision.scores)) if decision.scores is not None else None))
    return dataclasses.replace(decision, decided_at=decided_at, decision_id=cursor.lastrowid)

  def undo(self, decision_id: int) -> bool:
    """Undoes a decision (it stays in the file, no longer standing); False if there is none standing by that id."""
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    with self._connect() as connection:
      cursor = connection.execute("UPDATE decisions SET undone_at = ? WHERE decision_id = ? AND undone_at IS NULL",
                                  (now, decision_id))
    return cursor.rowcount == 1

  def enqueue(self, items: Sequence[Tuple[str, str, Dict]], model_version: Optional[str] = None) -> None:
    """Adds (message id, message, the scorer's result) to the review queue in one transaction (again: rescored)."""
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    with self._connect() as connection:
      connection.execute("BEGIN IMMEDIATE")
      connection.executemany(
          "INSERT INTO queue (message_id, message, result, model_version, queued_at) VALUES (?, ?, ?, ?, ?) "
          "ON CONFLICT (message_id) DO UPDATE SET message = excluded.message, result = excluded.result, "
          "model_version = excluded.model_version",
          [(i, text, json.dumps(result), model_version, now) for i, text, result in items])
      connection.execute("COMMIT")

  def undecided(self) -> List[Tuple[str, str, Dict]]:
    """The queued messages without a standing decision: (message id, message, the scorer's result), oldest first."""
    with self._connect() as connection:
      rows = connection.execute(
          "SELECT message_id, message, result FROM queue WHERE message_id NOT IN (SELECT message_id FROM "
          "decisions WHERE undone_at IS NULL) ORDER BY queued_at, message_id").fetchall()
    return [(i, text, json.loads(result)) for i, text, result in rows]

  def history(self, message_id_: str) -> List[Decision]:
    """Every decision of one message, undone ones included, oldest first."""
    with self._connect() as connection:
      rows = connection.execute(f"{_SELECT} WHERE message_id = ? ORDER BY decision_id", (message_id_,)).fetchall()
    return [_decision(row) for row in rows]

  def standing(self) -> Dict[str, Decision]:
    """{message id: its latest decision that is not undone}."""
    with self._connect() as connection:
      rows = connection.execute(
          f"{_SELECT} WHERE decision_id IN (SELECT MAX(decision_id) FROM decisions WHERE undone_at IS NULL "
          "GROUP BY message_id) ORDER BY decision_id").fetchall()
    return {row[1]: _decision(row) for row in rows}


_SELECT = ("SELECT decision_id, message_id, message, labels, operator, decided_at, model_version, scores "
           "FROM decisions")


def _decision(row) -> Decision:
  return Decision(row[1], row[2], tuple(json.loads(row[3])), row[4], row[5], row[6],
                  tuple(json.loads(row[7])) if row[7] else None, row[0])


def export_csv(store: Store, directory: str) -> int:
  """Writes the standing decisions as a two-file data directory; returns how many."""
  standing = store.standing()
  os.makedirs(directory, exist_ok=True)
  with open(os.path.join(directory, labels.MESSAGES_FILE), "w", encoding="utf-8", newline="") as m, \
       open(os.path.join(directory, labels.CATEGORIES_FILE), "w", encoding="utf-8", newline="") as c:
    messages, categories = csv.writer(m), csv.writer(c)
    messages.writerow(["id", "message", "original", "genre"])
    categories.writerow(["id", "categories"])
    for d in standing.values():
      messages.writerow([d.message_id, d.message, "", GENRE])
      categories.writerow([d.message_id, labels.categories_cell(d.labels)])
  return len(standing)


def merged_data(data_dir: str, store: Store, out_dir: str) -> Tuple[List[str], int]:
  """Writes `data_dir` (two-file) with the standing decisions applied into `out_dir`.

  A decision replaces every row of its id (labels and text: what the operator read); a decided message the
  data lacks is added. Returns (the ids of the decisions applied, how many of them override the data's rows).

  Raises:
    StoreError: `data_dir` is not a two-file data directory.
  """
  if not os.path.isdir(data_dir):
    raise StoreError(f"--data={data_dir}: --decisions needs the two-file format (a directory with "
                     f"{labels.MESSAGES_FILE} and {labels.CATEGORIES_FILE}); export a wide file's decisions with "
                     "disaster-decisions instead")
  standing = store.standing()
  overridden = set()
  os.makedirs(out_dir, exist_ok=True)
  for name in (labels.MESSAGES_FILE, labels.CATEGORIES_FILE):
    with open(os.path.join(data_dir, name), encoding="utf-8", newline="") as src, \
         open(os.path.join(out_dir, name), "w", encoding="utf-8", newline="") as dst:
      reader, writer = csv.reader(src), csv.writer(dst)
      header = next(reader)
      writer.writerow(header)
      for row in reader:
        if row and row[0] in standing:
          overridden.add(row[0])
        else:
          writer.writerow(row)
      for d in standing.values():
        writer.writerow(_row(header, d) if name == labels.MESSAGES_FILE
                        else [d.message_id, labels.categories_cell(d.labels)])
  return list(standing), len(overridden)


def _row(header: Sequence[str], d: Decision) -> List[str]:
  values = {"id": d.message_id, "message": d.message, "original": "", "genre": GENRE}
  return [values.get(column, "") for column in header]
