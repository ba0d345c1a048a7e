"""Operators' decisions in SQLite: saves, undo, the latest standing, the schema version, concurrent and killed
writers, and the data with the decisions applied (what training reads)."""

import sqlite3
import subprocess
import sys
import threading

import pytest

from disaster_tf import labels
from disaster_tf.data import decisions
from disaster_tf.data import sqlite
from disaster_tf.data import keys
from disaster_tf.data import schema
from tests import fixtures

ROOT = fixtures.ROOT


def decision(message="We need water", operator="ana", given=None, **changes):
  values = [1] + [0] * 35
  for name, value in changes.items():
    values[labels.CATEGORIES.index(name)] = value
  return decisions.Decision(keys.message_key(given, message), message, tuple(values), operator)


def test_a_decision_is_saved_and_the_latest_that_is_not_undone_stands(tmp_path):
  store = decisions.Store(str(tmp_path / "d.db"))
  first = store.record(decision(water=1))
  second = store.record(decision(operator="ben", food=1))
  assert first.decision_id < second.decision_id and first.decided_at
  standing = store.standing()
  assert list(standing) == [keys.message_key(None, "We need water")]
  assert standing[first.message_id].operator == "ben"
  with pytest.raises(decisions.Conflict, match=f"decision {second.decision_id} by ben .* stands for this message"):
    store.undo(first.decision_id, "ana")  # not the one standing: undoing it would change nothing
  assert store.undo(second.decision_id, "cli:root").operator == "ben"
  assert store.undone_by(second.decision_id) == "cli:root"  # who undid it is kept
  with pytest.raises(decisions.NoSuchDecision, match=f"no standing decision {second.decision_id}"):
    store.undo(second.decision_id, "ana")  # undone once
  assert store.standing()[first.message_id].labels[labels.CATEGORIES.index("water")] == 1  # the earlier again
  assert [d.operator for d in store.history(first.message_id)] == ["ana", "ben"]  # both rows kept
  store.undo(first.decision_id, "ana")
  assert store.standing() == {}
  for huge in (2 ** 63, 10 ** 30, 0, -1):
    with pytest.raises(decisions.NoSuchDecision):
      store.undo(huge, "ana")


def test_a_message_is_its_id_and_its_text():
  assert keys.message_key("7", "water") == keys.message_key(" 7 ", "water")  # spaces around an id
  assert keys.message_key("7", "water") != keys.message_key("7", "fire")  # a new day's file's id 7
  assert keys.message_key(None, "water") == keys.message_key("", "water")
  assert keys.message_key("", "water") != keys.message_key("7", "water")
  key = keys.message_key("7", "water")
  assert keys.id_of(key) == "7" and keys.id_of(keys.message_key(None, "x")) is None
  assert keys.message_key(key, "anything") == key  # a key is kept as it is
  assert keys.message_row(key, "water") == {"message": "water", "id": "7"}
  assert keys.row_message_id({"id": "7", "message": "water"}) == key


def test_a_save_names_the_decision_it_replaces_and_a_stale_one_is_refused(tmp_path):
  store = decisions.Store(str(tmp_path / "d.db"))
  ana = store.record(decision(water=1), replaces=None, check_replaces=True)
  with pytest.raises(decisions.Conflict, match=f"decision {ana.decision_id} by ana .* stands for this message, not "
                                               "the model"):
    store.record(decision(operator="ben", food=1), replaces=None, check_replaces=True)  # ben's page was stale
  ben = store.record(decision(operator="ben", food=1), replaces=ana.decision_id, check_replaces=True)
  assert store.standing()[ben.message_id].operator == "ben"
  store.undo(ben.decision_id, "ben")
  store.undo(ana.decision_id, "ana")
  with pytest.raises(decisions.Conflict, match=f"decision {ben.decision_id} no longer stands: it was undone"):
    store.record(decision(operator="cy"), replaces=ben.decision_id, check_replaces=True)


@pytest.mark.parametrize("bad, error", [
    (dict(labels=(1,) * 35), "labels: expected 36 values, found 35"),
    (dict(labels=(3,) + (0,) * 35), r"labels.related: 3 is not a label of related \(expected 0, 1 or 2\)"),
    (dict(labels=(1, 2) + (0,) * 34), r"labels.request: 2 is not a label of request \(expected 0 or 1\)"),
    (dict(labels=(1, True) + (0,) * 34), r"labels.request: true is not a label of request"),  # JSON true
    (dict(labels=(1, 1.0) + (0,) * 34), r"labels.request: 1.0 is not a label of request"),  # what training refuses
    (dict(operator=""), "operator: expected text"),
    (dict(message="water \udc80"), "message: character 7 is a lone surrogate"),
    (dict(scores=(0.5,)), "scores: expected 36 values, found 1"),
])
def test_a_decision_that_is_not_valid_is_refused_naming_the_field(tmp_path, bad, error):
  import dataclasses  # pylint: disable=import-outside-toplevel
  store = decisions.Store(str(tmp_path / "d.db"))
  with pytest.raises(decisions.StoreError, match=error):
    store.record(dataclasses.replace(decision(), **bad))
  assert store.standing() == {}


def test_the_file_is_wal_with_a_schema_version_and_a_newer_one_is_refused(tmp_path):
  path = str(tmp_path / "d.db")
  decisions.Store(path)
  connection = sqlite3.connect(path)
  assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
  assert connection.execute("PRAGMA user_version").fetchone()[0] == schema.VERSION
  connection.execute(f"PRAGMA user_version = {schema.VERSION + 1}")
  connection.close()
  with pytest.raises(decisions.StoreError, match=rf"d.db: schema version {schema.VERSION + 1} is newer than "
                                                rf"this disaster_tf's \({schema.VERSION}\)"):
    decisions.Store(path)
  (tmp_path / "text.db").write_text("not a database" * 100)
  with pytest.raises(decisions.StoreError, match="text.db: not a decisions database"):
    decisions.Store(str(tmp_path / "text.db"))
  foreign = sqlite3.connect(str(tmp_path / "other.db"))
  foreign.execute("CREATE TABLE invoices (n INTEGER)")
  foreign.commit()
  foreign.close()
  before = (tmp_path / "other.db").read_bytes()
  with pytest.raises(decisions.StoreError, match=r"other.db: not a decisions database \(it holds the table\(s\) "
                                                r"invoices\); nothing was changed"):
    decisions.Store(str(tmp_path / "other.db"))
  assert (tmp_path / "other.db").read_bytes() == before
  with pytest.raises(decisions.StoreError, match="cannot open a decisions database there"):
    decisions.Store(str(tmp_path / "missing" / "d.db"))


def test_saves_from_two_threads_all_land(tmp_path):
  store = decisions.Store(str(tmp_path / "d.db"))
  errors = []

  def save(operator):
    try:
      for i in range(25):
        store.record(decision(f"message {operator} {i}", operator))
    except Exception as e:  # pylint: disable=broad-except
      errors.append(e)
  threads = [threading.Thread(target=save, args=(name,)) for name in ("ana", "ben")]
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  assert not errors and len(store.standing()) == 50


def test_a_process_killed_after_a_save_keeps_it(tmp_path):
  path = str(tmp_path / "d.db")
  script = ("import os, signal\nfrom disaster_tf.data import decisions\n"
            "from tests.data.test_decisions import decision\n"
            f"decisions.Store({path!r}).record(decision(water=1))\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n")
  result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, timeout=60)
  assert result.returncode == -9
  standing = decisions.Store(path).standing()
  assert [d.labels[labels.CATEGORIES.index("water")] for d in standing.values()] == [1]


def test_the_command_lists_exports_and_undoes(tmp_path):
  store = decisions.Store(str(tmp_path / "d.db"))
  saved = store.record(decision(water=1))

  def command(*args):
    return subprocess.run([sys.executable, "-m", "disaster_tf.cli.decisions", f"--db={tmp_path / 'd.db'}", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
  listed = command()
  assert listed.returncode == 0 and f"{saved.decision_id}\t" in listed.stdout and "\tana\t" in listed.stdout
  assert "water" in listed.stdout
  exported = command(f"--export_dir={tmp_path / 'out'}")
  assert "1 decision(s) written" in exported.stdout and (tmp_path / "out" / labels.CATEGORIES_FILE).exists()
  undone = command(f"--undo={saved.decision_id}", "--operator=lead")
  assert undone.returncode == 0 and store.standing() == {} and store.undone_by(saved.decision_id) == "lead"
  again = command(f"--undo={saved.decision_id}")
  assert again.returncode == 1
  assert f"--undo={saved.decision_id}: no standing decision {saved.decision_id}" in again.stderr
  huge = command(f"--undo={10 ** 30}")
  assert huge.returncode == 1 and "no standing decision" in huge.stderr and "Traceback" not in huge.stderr
  refused = command(f"--export_dir={tmp_path / 'out'}")  # the directory holds the files already
  assert refused.returncode == 1 and "holds disaster_messages.csv and disaster_categories.csv already" in refused.stderr
  nameless = subprocess.run([sys.executable, "-m", "disaster_tf.cli.decisions"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
  assert nameless.returncode == 1 and "--db: required" in nameless.stderr and "None" not in nameless.stderr
  missing = subprocess.run([sys.executable, "-m", "disaster_tf.cli.decisions", f"--db={tmp_path / 'no.db'}"],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
  assert missing.returncode == 1 and "no.db: no such file" in missing.stderr and not (tmp_path / "no.db").exists()


def test_a_file_of_the_first_schema_is_migrated_and_keeps_its_decisions(tmp_path):
  path = str(tmp_path / "d.db")
  connection = sqlite3.connect(path)
  connection.executescript(schema.MIGRATIONS[0] + "; PRAGMA user_version = 1;")
  connection.execute("INSERT INTO decisions (message_id, message, labels, operator, decided_at) VALUES "
                     "('7', 'help', ?, 'ana', '2026-01-01T00:00:00+00:00')", (str([1] + [0] * 35),))
  connection.commit()
  connection.close()
  store = decisions.Store(path)
  assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == schema.VERSION
  key = keys.message_key("7", "help")  # version 3: the message's id and text
  assert store.standing()[key].operator == "ana"
  store.enqueue([("8", "water please", {"scores": {}})])
  assert [i for i, _, _ in store.undecided()] == ["8"]
  store.undo(store.standing()[key].decision_id, "ben")
  assert store.undone_by(store.history(key)[0].decision_id) == "ben"


def test_two_processes_opening_a_new_file_at_once_both_get_it(tmp_path):
  path = str(tmp_path / "new.db")
  script = f"from disaster_tf.data import decisions\ndecisions.Store({path!r})\n"
  both = [subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stderr=subprocess.PIPE, text=True)
          for _ in range(2)]
  assert [p.wait(timeout=60) for p in both] == [0, 0], [p.stderr.read() for p in both]
  assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == schema.VERSION


def test_a_file_is_listed_read_only_also_where_nothing_can_be_written_beside_it(tmp_path, monkeypatch):
  path = tmp_path / "d.db"
  decisions.Store(str(path)).record(decision(water=1))
  before = (path.read_bytes(), path.stat().st_mtime_ns)
  assert len(decisions.Store(str(path), read_only=True).standing()) == 1
  real, tried = sqlite3.connect, []
  def media(database, **kwargs):  # read-only media: SQLite cannot make the -shm file a WAL reader needs
    tried.append(database)
    if "immutable" not in database:
      raise sqlite3.OperationalError("unable to open database file")
    return real(database, **kwargs)
  monkeypatch.setattr(decisions.sqlite3, "connect", media)
  assert len(decisions.Store(str(path), read_only=True).standing()) == 1 and any("immutable=1" in u for u in tried)
  monkeypatch.undo()
  assert (path.read_bytes(), path.stat().st_mtime_ns) == before
  with pytest.raises(decisions.StoreError, match="cannot open a decisions database there"):
    decisions.Store(str(tmp_path / "none.db"), read_only=True)
  old = sqlite3.connect(str(tmp_path / "old.db"))
  old.executescript(schema.MIGRATIONS[0] + "; PRAGMA user_version = 1;")
  old.close()
  with pytest.raises(decisions.StoreError, match=r"old.db: schema version 1, older than this disaster_tf's \(4\); "
                                                 "open it once where it can be written, to migrate it"):
    decisions.Store(str(tmp_path / "old.db"), read_only=True)
  assert not (tmp_path / "none.db").exists()


def test_sqlite_failures_are_said_as_what_to_do(tmp_path, monkeypatch):
  store = decisions.Store(str(tmp_path / "d.db"))
  store.record(decision("first"))
  real = decisions.Store._open  # pylint: disable=protected-access
  def full(self):
    connection = real(self)
    pages = connection.execute("PRAGMA page_count").fetchone()[0]
    connection.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own "database or disk is full"
    return connection
  monkeypatch.setattr(decisions.Store, "_open", full)
  with pytest.raises(decisions.StoreError, match=r"d.db: the disk is full; free space, and nothing saved before is "
                                                r"lost \(database or disk is full\)"):
    store.record(decision("x" * 20000))
  assert len(store.standing()) == 1
  for text, reason in (("attempt to write a readonly database", "read-only media or permissions"),
                       ("database is locked", "another process holds the file locked")):
    assert reason in sqlite.sqlite_reason(sqlite3.OperationalError(text))


def test_a_process_killed_mid_save_leaves_the_earlier_decisions_and_a_readable_file(tmp_path):
  path = str(tmp_path / "d.db")
  decisions.Store(path).record(decision("first", water=1))
  script = ("import os, signal, sqlite3\n"
            f"c = sqlite3.connect({path!r}, isolation_level=None)\nc.execute('BEGIN IMMEDIATE')\n"
            "c.execute(\"INSERT INTO decisions (message_id, message, labels, operator, decided_at) VALUES "
            "('x', 'half', '[]', 'ana', 'now')\")\nos.kill(os.getpid(), signal.SIGKILL)\n")
  result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, timeout=60)
  assert result.returncode == -9
  standing = decisions.Store(path).standing()
  assert [d.message for d in standing.values()] == ["first"]  # the killed save is not there, the earlier one is
  decisions.Store(path).record(decision("after"))  # and the file takes new saves (no lock left behind)
