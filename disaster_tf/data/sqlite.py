"""What every SQLite file of the project shares: one write transaction, and SQLite's failures in words."""

import contextlib
import sqlite3
from typing import Iterator


@contextlib.contextmanager
def transaction(connection: sqlite3.Connection) -> Iterator[None]:
  """One write transaction, taken at once (BEGIN IMMEDIATE: no deadlock between two writers); committed whole,
  or rolled back (unless SQLite ended it itself, as it does on a full disk)."""
  connection.execute("BEGIN IMMEDIATE")
  try:
    yield
    connection.execute("COMMIT")
  except BaseException:
    if connection.in_transaction:
      connection.execute("ROLLBACK")
    raise


def sqlite_reason(error: sqlite3.Error) -> str:
  """SQLite's failure in words a user can act on."""
  text = str(error)
  for needle, reason in (("disk is full", "the disk is full; free space, and nothing saved before is lost"),
                         ("readonly", "the file cannot be written (read-only media or permissions)"),
                         ("locked", "another process holds the file locked; try again when it is done"),
                         ("not a database", "not a decisions database"),
                         ("malformed", "the database file is damaged")):
    if needle in text:
      return f"{reason} ({text})"
  return f"SQLite failed ({text})"
