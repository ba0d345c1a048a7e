"""The standing decisions as labelled data: the export, a run's snapshot, and --data with them applied."""

import json
import sqlite3

import pytest

from disaster_tf import labels
from disaster_tf.data import csv_files
from disaster_tf.data import decided
from disaster_tf.data import decisions
from disaster_tf.data import keys
from tests import fixtures
from tests.data.test_decisions import decision


def snapshot_of(tmp_path, *saved):
  store = decisions.Store(str(tmp_path / "d.db"))
  for d in saved:
    store.record(d)
  decided.take_snapshot(store, str(tmp_path / "snapshot"))
  return store, str(tmp_path / "snapshot")


def by_id(directory, tmp_path):
  examples, _ = csv_files.load(directory, str(tmp_path))
  texts = [t.decode("utf-8") for t in examples.texts().as_numpy_iterator()]
  return {i: (texts[k], list(examples.labels[k])) for k, i in enumerate(examples.ids)}


def test_a_decision_overrides_its_message_adds_a_new_one_and_the_loader_reads_it(tmp_path):
  rows = fixtures.synthetic_rows(40)
  fixtures.write_two_file(tmp_path / "data", rows)
  first = rows[0]
  _, snapshot = snapshot_of(tmp_path, decision(first["message"], given=first["id"], **{c: 1 for c in labels.CATEGORIES
                                                                                      if c != "related"}),
                            decision("A new message about fire", fire=1))
  merged = decided.merged_data(str(tmp_path / "data"), snapshot, str(tmp_path / "merged"))
  assert merged.overridden == 1 and len(merged.ids) == 2 and merged.clashes == ()
  read = by_id(str(tmp_path / "merged"), tmp_path)
  assert len(read) == 41 and read[first["id"]][1] == [1] * 36  # the operator's labels, under the data's id
  assert read[keys.message_key(None, "A new message about fire")][1][labels.CATEGORIES.index("fire")] == 1
  with pytest.raises(decisions.StoreError, match="--decisions needs the two-file format"):
    decided.merged_data(str(tmp_path / "data" / labels.MESSAGES_FILE), snapshot, str(tmp_path / "m2"))


def test_the_same_id_on_another_text_is_another_message_and_both_are_kept(tmp_path):
  rows = fixtures.synthetic_rows(10)
  fixtures.write_two_file(tmp_path / "data", rows)
  # A new day's file numbers its messages from 1000 again: its 1000 is not the data's 1000.
  _, snapshot = snapshot_of(tmp_path, decision("Fire at the market", given=rows[0]["id"], fire=1))
  merged = decided.merged_data(str(tmp_path / "data"), snapshot, str(tmp_path / "merged"))
  assert merged.overridden == 0 and len(merged.clashes) == 1
  assert "'Fire at the market'" in merged.clashes[0] and repr(rows[0]["message"]) in merged.clashes[0]
  read = by_id(str(tmp_path / "merged"), tmp_path)
  assert read[rows[0]["id"]][0] == rows[0]["message"]  # the data's message keeps its labels
  assert read[merged.ids[0]][0] == "Fire at the market" and len(read) == 11


def test_decisions_apply_over_the_csv_variations_training_reads(tmp_path):
  (tmp_path / "data").mkdir()
  # Excel's "CSV UTF-8" (a byte-order mark), spaces after the commas of the header, id not the first column,
  # an id with spaces around it.
  (tmp_path / "data" / labels.MESSAGES_FILE).write_text(
      "\ufeffmessage, genre, id\nWe need water,direct, 7 \nFire in town,direct,8\n", encoding="utf-8")
  cell = labels.categories_cell([1] + [0] * 35)
  (tmp_path / "data" / labels.CATEGORIES_FILE).write_text(f"categories, id\n{cell}, 7\n{cell},8\n", encoding="utf-8")
  water = {c: 0 for c in labels.CATEGORIES if c != "related"}
  _, snapshot = snapshot_of(tmp_path, decision("We need water", given="7", **dict(water, water=1)))
  merged = decided.merged_data(str(tmp_path / "data"), snapshot, str(tmp_path / "merged"))
  assert merged.overridden == 1 and merged.ids == ("7",)
  read = by_id(str(tmp_path / "merged"), tmp_path)
  assert set(read) == {"7", "8"} and read["7"][1][labels.CATEGORIES.index("water")] == 1


def test_the_export_refuses_a_directory_that_holds_data_and_writes_whole(tmp_path):
  store, _ = snapshot_of(tmp_path, decision(water=1), decision("Fire in town", fire=1))
  assert decided.export_csv(store, str(tmp_path / "out")) == 2
  exported = by_id(str(tmp_path / "out"), tmp_path)
  assert sorted(exported) == sorted(store.standing())
  fixtures.write_two_file(tmp_path / "data", fixtures.synthetic_rows(600))
  before = (tmp_path / "data" / labels.MESSAGES_FILE).read_bytes()
  with pytest.raises(FileExistsError, match=r"data: holds disaster_messages.csv and disaster_categories.csv already; "
                                            r"name an empty directory \(nothing was written\)"):
    decided.export_csv(store, str(tmp_path / "data"))
  assert (tmp_path / "data" / labels.MESSAGES_FILE).read_bytes() == before  # 600 labelled messages, untouched
  assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [labels.CATEGORIES_FILE, labels.MESSAGES_FILE]


def test_a_snapshot_refuses_a_stored_decision_training_cannot_read_naming_it_and_its_undo(tmp_path):
  store, _ = snapshot_of(tmp_path, decision(water=1))
  connection = sqlite3.connect(str(tmp_path / "d.db"))  # what an older page stored: JSON true
  connection.execute("INSERT INTO decisions (message_id, message, labels, operator, decided_at) VALUES "
                     "('sha256:ab', 'help', ?, 'ana', '2026-01-01T00:00:00+00:00')", (json.dumps([True] * 36),))
  connection.commit()
  bad = connection.execute("SELECT MAX(decision_id) FROM decisions").fetchone()[0]
  connection.close()
  with pytest.raises(decisions.StoreError, match=rf"decision {bad} \('help', by ana\) has labels.related: true is "
                                                 rf"not a label .* undo it \(disaster-decisions --db=.*d.db "
                                                 rf"--undo={bad}\)"):
    decided.take_snapshot(store, str(tmp_path / "again"))
  assert not (tmp_path / "again" / labels.MESSAGES_FILE).exists()
  assert [(d.key, d.number) for d in decided.read_snapshot(str(tmp_path / "snapshot"))] == [
      (next(iter(store.standing())), "1")]


def test_an_export_with_hxl_hashtags_is_read_back_by_training_as_without(tmp_path):
  store = decisions.Store(str(tmp_path / "d.db"))
  store.record(decision("We need water", given="1", water=1))
  store.record(decision("trapped under the school", given="2", search_and_rescue=1))
  assert decided.export_csv(store, str(tmp_path / "plain")) == 2
  assert decided.export_csv(store, str(tmp_path / "hxl"), with_hxl=True) == 2
  with open(tmp_path / "hxl" / labels.MESSAGES_FILE, encoding="utf-8") as f:
    assert f.read().splitlines()[1] == "#meta+id,#description+message,#description+original+native,#meta+genre"
  (tmp_path / "a").mkdir()
  (tmp_path / "b").mkdir()
  assert by_id(str(tmp_path / "hxl"), tmp_path / "a") == by_id(str(tmp_path / "plain"), tmp_path / "b")
