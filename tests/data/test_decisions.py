"""Operators' decisions in SQLite: saves, undo, the latest standing, the schema version, concurrent and killed
writers, and the data with the decisions applied (what training reads)."""

import csv
import sqlite3
import subprocess
import sys
import threading

import pytest

from disaster_tf import labels
from disaster_tf.data import csv_files
from disaster_tf.data import decisions
from tests import fixtures

ROOT = fixtures.ROOT


def decision(message="We need water", operator="ana", **changes):
  values = [1] + [0] * 35
  for name, value in changes.items():
    values[labels.CATEGORIES.index(name)] = value
  return decisions.Decision(decisions.message_id(message), message, tuple(values), operator)


def test_a_decision_is_saved_and_the_latest_that_is_not_undone_stands(tmp_path):
  store = decisions.Store(str(tmp_path / "d.db"))
  first = store.record(decision(water=1))
  second = store.record(decision(operator="ben", food=1))
  assert first.decision_id < second.decision_id and first.decided_at
  standing = store.standing()
  assert list(standing) == [decisions.message_id("We need water")] and standing[first.message_id].operator == "ben"
  assert store.undo(second.decision_id) and not store.undo(second.decision_id)  # undone once
  assert store.standing()[first.message_id].labels[labels.CATEGORIES.index("water")] == 1  # the earlier again
  assert [d.operator for d in store.history(first.message_id)] == ["ana", "ben"]  # both rows kept
  assert store.undo(first.decision_id) and store.standing() == {}
  assert decisions.message_id("x", "csv-7") == "csv-7" and decisions.message_id("x") == decisions.message_id("x")


@pytest.mark.parametrize("bad, error", [
    (dict(labels=(1,) * 35), "labels: expected 36 values, found 35"),
    (dict(labels=(3,) + (0,) * 35), r"labels.related: 3 is not a label of related \(expected 0, 1 or 2\)"),
    (dict(labels=(1, 2) + (0,) * 34), r"labels.request: 2 is not a label of request \(expected 0 or 1\)"),
    (dict(operator=""), "message_id and operator: both are required"),
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
  assert connection.execute("PRAGMA user_version").fetchone()[0] == decisions.SCHEMA_VERSION
  connection.execute(f"PRAGMA user_version = {decisions.SCHEMA_VERSION + 1}")
  connection.close()
  with pytest.raises(decisions.StoreError, match=rf"d.db: schema version {decisions.SCHEMA_VERSION + 1} is newer than "
                                                rf"this disaster_tf's \({decisions.SCHEMA_VERSION}\)"):
    decisions.Store(path)
  (tmp_path / "text.db").write_text("not a database" * 100)
  with pytest.raises(decisions.StoreError, match="text.db: not a decisions database"):
    decisions.Store(str(tmp_path / "text.db"))
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


def test_the_data_with_decisions_applied_overrides_and_adds_and_the_loader_reads_it(tmp_path):
  rows = fixtures.synthetic_rows(40)
  fixtures.write_two_file(tmp_path / "data", rows)
  with open(tmp_path / "data" / "disaster_messages.csv", encoding="utf-8") as f:
    first = next(csv.DictReader(f))
  store = decisions.Store(str(tmp_path / "d.db"))
  store.record(decisions.Decision(first["id"], first["message"], (1,) + (1,) * 35, "ana"))  # overrides
  store.record(decision("A new message about fire", fire=1))  # adds
  applied = decisions.merged_data(str(tmp_path / "data"), store, str(tmp_path / "merged"))
  assert applied == (list(store.standing()), 1) and len(applied[0]) == 2
  examples, report = csv_files.load(str(tmp_path / "merged"), str(tmp_path))
  assert len(examples) == 41 and report.rows == 41
  by_id = dict(zip(examples.ids, examples.labels.tolist()))
  assert by_id[first["id"]] == [1] * 36 and by_id[decisions.message_id("A new message about fire")][
      labels.CATEGORIES.index("fire")] == 1
  assert decisions.export_csv(store, str(tmp_path / "exported")) == 2
  exported, _ = csv_files.load(str(tmp_path / "exported"), str(tmp_path))
  assert sorted(exported.ids) == sorted(store.standing())
  with pytest.raises(decisions.StoreError, match="--decisions needs the two-file format"):
    decisions.merged_data(str(tmp_path / "data" / "disaster_messages.csv"), store, str(tmp_path / "m2"))


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
  assert command(f"--undo={saved.decision_id}").returncode == 0 and store.standing() == {}
  again = command(f"--undo={saved.decision_id}")
  assert again.returncode == 1 and f"--undo={saved.decision_id}: no standing decision has that id" in again.stderr
  missing = subprocess.run([sys.executable, "-m", "disaster_tf.cli.decisions", f"--db={tmp_path / 'no.db'}"],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
  assert missing.returncode == 1 and "no.db: no such file" in missing.stderr and not (tmp_path / "no.db").exists()


def test_a_file_of_the_first_schema_is_migrated_and_keeps_its_decisions(tmp_path):
  path = str(tmp_path / "d.db")
  connection = sqlite3.connect(path)
  connection.executescript(decisions.MIGRATIONS[0] + "; PRAGMA user_version = 1;")
  connection.execute("INSERT INTO decisions (message_id, message, labels, operator, decided_at) VALUES "
                     "('7', 'help', ?, 'ana', '2026-01-01T00:00:00+00:00')", (str([1] + [0] * 35),))
  connection.commit()
  connection.close()
  store = decisions.Store(path)
  assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == decisions.SCHEMA_VERSION
  assert store.standing()["7"].operator == "ana"
  store.enqueue([("8", "water please", {"scores": {}})])
  assert [i for i, _, _ in store.undecided()] == ["8"]


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
