"""Reading both formats, merging repeats, the id split, and every bad input."""

import os

import numpy as np
import pytest
import tensorflow as tf

from disaster_tf import config as config_lib
from disaster_tf import labels
from disaster_tf.data import csv_files
from disaster_tf.data import examples as examples_lib
from tests import fixtures

HEADER_M = "id,message,original,genre\n"
HEADER_C = "id,categories\n"
ZEROS = fixtures.categories_cell({c: 0 for c in labels.CATEGORIES})


def cell(**positives):
  return fixtures.categories_cell({c: positives.get(c, 0) for c in labels.CATEGORIES})


def write(directory, messages: str, categories: str):
  os.makedirs(directory, exist_ok=True)
  with open(os.path.join(directory, labels.MESSAGES_FILE), "w", encoding="utf-8") as f:
    f.write(messages)
  with open(os.path.join(directory, labels.CATEGORIES_FILE), "w", encoding="utf-8") as f:
    f.write(categories)
  return str(directory)


def test_two_file_loads_in_category_order(tmp_path):
  rows = fixtures.synthetic_rows(30)
  fixtures.write_two_file(tmp_path, rows)
  examples, report = csv_files.load(str(tmp_path), str(tmp_path))
  assert len(examples) == 30 and report.examples == 30 and report.format == "two-file"
  assert list(examples.ids) == [r["id"] for r in rows]
  assert examples.read_texts()[3] == rows[3]["message"]
  np.testing.assert_array_equal(examples.labels[5], [rows[5]["labels"][c] for c in labels.CATEGORIES])
  assert examples.labels.dtype == np.int8 and examples.labels.shape == (30, 36)


def test_wide_format_reads_columns_by_name(tmp_path):
  rows = fixtures.synthetic_rows(20, seed=3)
  fixtures.write_wide(tmp_path / "wide.csv", rows)
  examples, report = csv_files.load(str(tmp_path / "wide.csv"), str(tmp_path))
  assert report.format == "wide" and len(examples) == 20
  np.testing.assert_array_equal(examples.labels[7], [rows[7]["labels"][c] for c in labels.CATEGORIES])


def test_both_formats_give_the_same_examples(tmp_path):
  rows = fixtures.synthetic_rows(25, seed=5)
  fixtures.write_two_file(tmp_path / "two", rows)
  fixtures.write_wide(tmp_path / "wide.csv", rows)
  a, _ = csv_files.load(str(tmp_path / "two"), str(tmp_path))
  b, _ = csv_files.load(str(tmp_path / "wide.csv"), str(tmp_path))
  np.testing.assert_array_equal(a.labels, b.labels)
  assert a.read_texts() == b.read_texts()


def test_labels_follow_their_ids_when_the_two_files_disagree_on_order(tmp_path):
  d = write(tmp_path, HEADER_M + "1,need water,,direct\n2,fire here,,direct\n3,hello,,direct\n",
            HEADER_C + f"3,{ZEROS}\n2,{cell(fire=1)}\n1,{cell(water=1)}\n")
  examples, _ = csv_files.load(d, str(tmp_path))
  assert list(examples.ids) == ["1", "2", "3"]  # the messages file's order
  assert examples.read_texts() == ["need water", "fire here", "hello"]
  assert [tuple(np.flatnonzero(row)) for row in examples.labels] == [
      (labels.CATEGORIES.index("water"),), (labels.CATEGORIES.index("fire"),), ()]


def test_repeated_ids_merge_with_per_label_max_and_are_counted(tmp_path):
  d = write(tmp_path, HEADER_M + "1,need water,,direct\n1,need water,,direct\n2,fire here,,direct\n"
            "3,hello,,direct\n3,hello,,direct\n",
            HEADER_C + f"1,{cell(related=1, water=1)}\n1,{cell(related=2, food=1)}\n2,{cell(fire=1)}\n"
            f"3,{ZEROS}\n3,{ZEROS}\n")
  examples, report = csv_files.load(d, str(tmp_path))
  assert list(examples.ids) == ["1", "2", "3"]
  row = dict(zip(labels.CATEGORIES, examples.labels[0]))
  assert row["related"] == 2 and row["water"] == 1 and row["food"] == 1
  assert report.duplicate_rows == 2 and report.conflicting_duplicates == 1 and report.rows == 5


def test_empty_messages_are_dropped_and_counted(tmp_path):
  d = write(tmp_path, HEADER_M + '1,need water,,direct\n2,"   ",,direct\n3,,,direct\n',
            HEADER_C + f"1,{ZEROS}\n2,{ZEROS}\n3,{ZEROS}\n")
  examples, report = csv_files.load(d, str(tmp_path))
  assert list(examples.ids) == ["1"] and report.dropped_empty_text == 2
  assert "2 dropped for empty text" in report.summary()


def test_multiline_quoted_message_and_bom(tmp_path):
  d = write(tmp_path, "\ufeff" + HEADER_M + '1,"line one\nline two, still one",,direct\n',
            HEADER_C + f"1,{ZEROS}\n")
  examples, _ = csv_files.load(d, str(tmp_path))
  assert examples.read_texts()[0] == "line one\nline two, still one"


# --- bad input: every error names the file, the line and the field ---------------------


@pytest.mark.parametrize("messages, categories, expected", [
    (HEADER_M + "1,a,,direct\n", HEADER_C + "1," + ZEROS.replace("water-0", "water-2") + "\n",
     r"disaster_categories.csv:2: column 'categories': category 'water': label 2 is out of range; expected 0 or 1"),
    (HEADER_M + "1,a,,direct\n", HEADER_C + "1," + ZEROS.replace("related-0", "related-3") + "\n",
     r"category 'related': label 3 is out of range; expected 0, 1 or 2"),
    (HEADER_M + "1,a,,direct\n", HEADER_C + "1," + ZEROS.replace("fire-0", "fire-x") + "\n",
     r"disaster_categories.csv:2: column 'categories': category 'fire': label 'x' is not an integer"),
    (HEADER_M + "1,a,,direct\n", HEADER_C + "1," + ZEROS.replace("fire-0", "blaze-0") + "\n",
     r"disaster_categories.csv:2: column 'categories': unknown category 'blaze'"),
    (HEADER_M + "1,a,,direct\n", HEADER_C + "1," + ZEROS.replace(";fire-0", "") + "\n",
     r"disaster_categories.csv:2: column 'categories': missing category fire"),
    (HEADER_M + "1,a,,direct\n", HEADER_C + "1," + ZEROS.replace("fire-0", "storm-0") + "\n",
     r"category 'storm' appears twice"),
    (HEADER_M + "1,a,,direct\n", HEADER_C + "1," + ZEROS.replace("fire-0", "fire0") + "\n",
     r"'fire0' is not of the form name-value"),
    (HEADER_M + "1,a,,direct\n2,b,,direct\n", HEADER_C + f"1,{ZEROS}\n",
     r"disaster_messages.csv:3: id '2' has no row in .*disaster_categories.csv"),
    (HEADER_M + "1,a,,direct\n", HEADER_C + f"1,{ZEROS}\n9,{ZEROS}\n",
     r"disaster_categories.csv: 1 id\(s\) have no message in .*, e.g. 9"),
    (HEADER_M + "1,a,direct\n", HEADER_C + f"1,{ZEROS}\n",
     r"disaster_messages.csv:2: expected 4 fields \(id, message, original, genre\), found 3"),
    (HEADER_M + '1,"broken "quote,,direct\n', HEADER_C + f"1,{ZEROS}\n",
     r"disaster_messages.csv:2: malformed CSV .*quoting"),
    ("id,text\n1,a\n", HEADER_C + f"1,{ZEROS}\n",
     r"disaster_messages.csv:1: header lacks column\(s\) message; found id, text"),
    ("", HEADER_C + f"1,{ZEROS}\n", r"disaster_messages.csv: the file is empty"),
    (HEADER_M + " ,a,,direct\n", HEADER_C + f"1,{ZEROS}\n", r"disaster_messages.csv:2: column 'id' is empty"),
    (HEADER_M + '1,"  ",,direct\n', HEADER_C + f"1,{ZEROS}\n", r"no usable rows \(1 read, 1 with empty text\)"),
])
def test_bad_two_file_input_names_file_line_and_field(tmp_path, messages, categories, expected):
  d = write(tmp_path, messages, categories)
  with pytest.raises(csv_files.DataError, match=expected):
    csv_files.load(d, str(tmp_path))


def test_non_utf8_bytes_name_the_line(tmp_path):
  d = write(tmp_path, HEADER_M + "1,fine,,direct\n", HEADER_C + f"1,{ZEROS}\n")
  with open(os.path.join(d, labels.MESSAGES_FILE), "ab") as f:
    f.write(b"2,caf\xe9 latin-1,,direct\n")
  with pytest.raises(csv_files.DataError, match=r"disaster_messages.csv:3: byte 6 of the line is not valid UTF-8"):
    csv_files.load(d, str(tmp_path))


def test_missing_paths(tmp_path):
  with pytest.raises(csv_files.DataError, match=r"nope: no such file or directory; expected a directory with"):
    csv_files.load(str(tmp_path / "nope"), str(tmp_path))
  os.makedirs(tmp_path / "half")
  with open(tmp_path / "half" / labels.MESSAGES_FILE, "w") as f:
    f.write(HEADER_M)
  with pytest.raises(csv_files.DataError, match=r"half/disaster_categories.csv: no such file"):
    csv_files.load(str(tmp_path / "half"), str(tmp_path))


def test_bad_wide_input(tmp_path):
  rows = fixtures.synthetic_rows(3)
  fixtures.write_wide(tmp_path / "w.csv", rows, extra_columns=("split", "mood"))
  with pytest.raises(csv_files.DataError, match=r"w.csv:1: unknown column\(s\) mood"):
    csv_files.load(str(tmp_path / "w.csv"), str(tmp_path))
  with open(tmp_path / "h.csv", "w") as f:
    f.write("id,message," + ",".join(labels.CATEGORIES) + "\n")
  with pytest.raises(csv_files.DataError, match=r"h.csv: the header has no data rows"):
    csv_files.load(str(tmp_path / "h.csv"), str(tmp_path))
  with open(tmp_path / "m.csv", "w") as f:
    f.write("id,message," + ",".join(c for c in labels.CATEGORIES if c != "shops") + "\n")
  with pytest.raises(csv_files.DataError, match=r"m.csv:1: header lacks column\(s\) shops"):
    csv_files.load(str(tmp_path / "m.csv"), str(tmp_path))
  rows[1]["labels"]["offer"] = 5
  fixtures.write_wide(tmp_path / "r.csv", rows)
  with pytest.raises(csv_files.DataError, match=r"r.csv:3: category 'offer': label 5 is out of range"):
    csv_files.load(str(tmp_path / "r.csv"), str(tmp_path))


# --- split and tf.data -------------------------------------------------------------------


def test_validation_split_is_deterministic_and_stable_when_rows_are_added():
  ids = [str(i) for i in range(2000)]
  side_of = examples_lib.split_ids(ids, 0.2, 0.1, "s")
  assert 0.17 < (side_of == examples_lib.VALIDATION).mean() < 0.23
  np.testing.assert_array_equal(side_of, examples_lib.split_ids(ids, 0.2, 0.1, "s"))
  more = examples_lib.split_ids([str(i) for i in range(5000, 6000)] + ids, 0.2, 0.1, "s")
  np.testing.assert_array_equal(more[1000:], side_of)  # old ids keep their side
  assert (examples_lib.split_ids(ids, 0.2, 0.1, "other salt") != side_of).any()


def test_split_subsets_examples_by_the_runs_fractions_and_salt(tmp_path):
  rows = fixtures.synthetic_rows(90)
  fixtures.write_two_file(tmp_path / "d", rows)
  examples, _ = csv_files.load(str(tmp_path / "d"), str(tmp_path))
  splits = examples_lib.split(examples, config_lib.TrainConfig(validation_fraction=0.3, tune_fraction=0.2,
                                                                split_seed="s"))
  side_of = examples_lib.split_ids([r["id"] for r in rows], 0.3, 0.2, "s")
  by_id = {r["id"]: r["message"] for r in rows}
  for name, side in zip(examples_lib.SPLIT_NAMES, (examples_lib.TRAIN, examples_lib.TUNE, examples_lib.VALIDATION)):
    part = getattr(splits, name)
    assert list(part.ids) == [r["id"] for r, s in zip(rows, side_of) if s == side] and len(part) > 5
    assert part.read_texts() == [by_id[i] for i in part.ids]  # each text stays with its id
    np.testing.assert_array_equal(part.labels, examples.labels[side_of == side])


def spooled(tmp_path, n):
  """n examples whose texts are "w0".."w{n-1}" and whose `request` label is i % 2."""
  rows = fixtures.synthetic_rows(n)
  for i, r in enumerate(rows):
    r["message"], r["labels"]["request"] = f"w{i}", i % 2
  fixtures.write_two_file(tmp_path / "d", rows)
  return csv_files.load(str(tmp_path / "d"), str(tmp_path))[0]


def hash_words(t):
  return tf.strings.to_hash_bucket_fast(tf.strings.split(t).to_tensor(shape=[None, 2]), 100)


def test_training_batches_are_full_and_shuffled_by_seed(tmp_path):
  examples = spooled(tmp_path, 50)
  cached = examples_lib.vectorized_dataset(examples, hash_words, cache=str(tmp_path / "cache"))
  assert examples_lib.length(cached) == 50
  assert os.listdir(tmp_path / "cache")  # saved now, so never vectorised again
  batches = list(examples_lib.batched(cached, 16, shuffle_seed=1, shuffle_buffer=100))
  assert [b[0].shape[0] for b in batches] == [16, 16, 16]  # remainder dropped
  again = list(examples_lib.batched(cached, 16, shuffle_seed=1, shuffle_buffer=100))
  other = list(examples_lib.batched(cached, 16, shuffle_seed=2, shuffle_buffer=100))
  np.testing.assert_array_equal(batches[0][0], again[0][0])
  assert not np.array_equal(batches[0][0], other[0][0])
  evaluation = list(examples_lib.batched(cached, 16))
  assert [b[0].shape[0] for b in evaluation] == [16, 16, 16, 2]  # evaluation keeps every example
  token_ids = np.concatenate([b[0] for b in evaluation])
  label_matrix = np.concatenate([b[1] for b in evaluation])
  np.testing.assert_array_equal(token_ids, hash_words(tf.constant([f"w{i}" for i in range(50)])))
  np.testing.assert_array_equal(label_matrix[:, labels.CATEGORIES.index("request")], np.arange(50) % 2)
  assert label_matrix.dtype == np.int32


def test_a_subset_streams_its_own_texts_with_their_labels(tmp_path):
  examples = spooled(tmp_path, 20)
  odd = examples.subset(np.arange(20) % 2 == 1)
  assert odd.read_texts() == [f"w{i}" for i in range(1, 20, 2)]
  pairs = list(odd.labelled(4).unbatch().as_numpy_iterator())
  assert [t for t, _ in pairs] == [f"w{i}".encode() for i in range(1, 20, 2)]
  assert all(y[labels.CATEGORIES.index("request")] == 1 for _, y in pairs)


def number_of(t):
  """"w12" -> [12, 12]: a vectorizer whose ids say which example they came from."""
  n = tf.strings.to_number(tf.strings.substr(t, 1, 9), tf.int64)
  return tf.stack([n, n], axis=1)


def test_blocks_bound_the_shuffle_yet_mix_the_whole_split(tmp_path):
  examples = spooled(tmp_path, 60)
  train = examples.subset(np.arange(60) % 3 != 0)  # 40 examples, not contiguous on disk
  blocks = train.blocks(15)
  assert [len(b) for b in blocks] == [13, 13, 14] and len(train.blocks(40)) == 1
  assert sum((b.read_texts() for b in blocks), []) == train.read_texts()
  cached = [examples_lib.vectorized_dataset(b, number_of, cache=str(tmp_path / f"b{i}")) for i, b in enumerate(blocks)]
  assert [examples_lib.length(c) for c in cached] == [13, 13, 14]
  rank = {n: i for i, n in enumerate(i for i in range(60) if i % 3)}  # example number -> place in the split
  def order(seed):
    batches = examples_lib.batched(cached, 4, shuffle_seed=seed, shuffle_buffer=5)
    return [rank[n] for n in np.concatenate([x for x, _ in batches.as_numpy_iterator()])[:, 0]]
  first = order(7)
  assert first == order(7)  # an epoch's order is fixed by its seed (exact resume)
  assert sorted(first) == list(range(40))  # every example once
  # The first batches draw on every block, far beyond one 5-example buffer of the file's order.
  assert {r // 13 for r in first[:8]} == {0, 1, 2} and max(first[:8]) >= 26
  in_order = np.concatenate([x for x, _ in examples_lib.batched(cached, 4).as_numpy_iterator()])[:, 0]
  assert [rank[n] for n in in_order] == list(range(40))  # no seed: all blocks, in order


def test_texts_are_spooled_to_disk_and_read_back_unchanged(tmp_path):
  rows = fixtures.synthetic_rows(4)
  rows[2]["message"] = "Aide: l'eau \u00e0 Jacmel\nligne deux \U0001F30A"
  fixtures.write_wide(tmp_path / "w.csv", rows)
  examples, _ = csv_files.load(str(tmp_path / "w.csv"), str(tmp_path))
  assert os.path.dirname(examples.text_file) == str(tmp_path)
  assert sum(1 for _ in tf.data.TFRecordDataset(examples.text_file)) == 4  # one record a message
  assert examples.read_texts() == [r["message"] for r in rows]


def test_a_failed_load_leaves_no_spool(tmp_path):
  os.makedirs(tmp_path / "spool")
  rows = fixtures.synthetic_rows(5)
  rows[4]["labels"]["fire"] = 3
  fixtures.write_wide(tmp_path / "w.csv", rows)
  with pytest.raises(csv_files.DataError, match=r"w.csv:6: category 'fire': label 3 is out of range"):
    csv_files.load(str(tmp_path / "w.csv"), str(tmp_path / "spool"))
  assert os.listdir(tmp_path / "spool") == []


def test_three_way_split_keeps_validation_fixed_whatever_the_tune_fraction():
  ids = [str(i) for i in range(3000)]
  side_of = examples_lib.split_ids(ids, 0.15, 0.1, "s")
  assert set(np.unique(side_of)) == {examples_lib.TRAIN, examples_lib.TUNE, examples_lib.VALIDATION}
  assert 0.13 < (side_of == examples_lib.VALIDATION).mean() < 0.17
  assert 0.08 < (side_of == examples_lib.TUNE).mean() < 0.12
  np.testing.assert_array_equal(side_of == examples_lib.VALIDATION,
                                examples_lib.split_ids(ids, 0.15, 0.0, "s") == examples_lib.VALIDATION)


def test_a_1mb_message_loads_whole(tmp_path):
  rows = fixtures.synthetic_rows(3)
  rows[1]["message"] = "help " * 200_000  # 1 MB: over the csv module's default field limit
  fixtures.write_two_file(tmp_path, rows)
  examples, _ = csv_files.load(str(tmp_path), str(tmp_path))
  assert examples.read_texts()[1] == rows[1]["message"]


def test_an_unclosed_quote_is_still_an_error(tmp_path):
  d = write(tmp_path, HEADER_M + '1,"never closed,,direct\n2,b,,direct\n', HEADER_C + f"1,{ZEROS}\n2,{ZEROS}\n")
  with pytest.raises(csv_files.DataError, match=r"disaster_messages.csv:\d+: malformed CSV"):
    csv_files.load(d, str(tmp_path))


BOTH = ("message", "original")


@pytest.mark.parametrize("layout", ["two-file", "wide"])
def test_originals_become_second_examples_of_their_id_in_both_formats(tmp_path, layout):
  messages = [("1", "We need water", "Nou bezwen dlo"), ("2", "Fire here", ""), ("3", "Merci", " merci "),
              ("4", "Food please", "Manje tanpri"), ("5", "   ", "Anyen")]
  if layout == "two-file":
    path = write(tmp_path, HEADER_M + "".join(f'{i},"{m}","{o}",direct\n' for i, m, o in messages),
                 HEADER_C + "".join(f"{i},{cell(water=int(i == '1'))}\n" for i, _, _ in messages))
  else:
    rows = [{"id": i, "message": m, "original": o, "labels": {c: int(c == "water" and i == "1")
                                                              for c in labels.CATEGORIES}} for i, m, o in messages]
    path = str(tmp_path / "wide.csv")
    fixtures.write_wide(path, rows, extra_columns=("split", "original", "PII", "genre"))
  plain, report = csv_files.load(path, str(tmp_path))
  assert list(plain.ids) == ["1", "2", "3", "4"] and (plain.fields == examples_lib.MESSAGE).all()
  assert (report.originals_used, report.originals_empty, report.originals_identical) == (0, 1, 1)
  both, report = csv_files.load(path, str(tmp_path), BOTH)
  # Each original right after its translation, with the same id and labels; the blank and the identical one not.
  assert list(both.ids) == ["1", "1", "2", "3", "4", "4"]
  assert list(both.fields) == [0, 1, 0, 0, 0, 1]
  assert both.read_texts() == ["We need water", "Nou bezwen dlo", "Fire here", "Merci", "Food please", "Manje tanpri"]
  np.testing.assert_array_equal(both.labels[0], both.labels[1])
  assert both.field(examples_lib.ORIGINAL).read_texts() == ["Nou bezwen dlo", "Manje tanpri"]
  assert (report.examples, report.originals_used, report.originals_empty, report.originals_identical) == (6, 2, 1, 1)
  assert report.dropped_empty_text == 1  # id 5: no message, so its original goes too
  assert "originals: 2 used as examples, 1 empty, 1 identical to the translation" in report.summary()


def test_a_file_without_an_original_column_still_loads_with_both_fields(tmp_path):
  rows = fixtures.synthetic_rows(6)
  fixtures.write_wide(tmp_path / "wide.csv", rows)  # no original column
  examples, report = csv_files.load(str(tmp_path / "wide.csv"), str(tmp_path), BOTH)
  assert len(examples) == 6 and report.originals_used == 0 and (examples.fields == examples_lib.MESSAGE).all()


def test_both_copies_of_a_message_are_always_on_the_same_side_of_the_split(tmp_path):
  fixtures.write_two_file(tmp_path / "d", fixtures.synthetic_rows(300), originals=True)
  examples, _ = csv_files.load(str(tmp_path / "d"), str(tmp_path), BOTH)
  assert len(examples) == 600
  splits = examples_lib.split(examples, config_lib.TrainConfig(validation_fraction=0.2, tune_fraction=0.1))
  sides = [set(s.ids) for s in splits]
  assert not (sides[0] & sides[1]) and not (sides[0] & sides[2]) and not (sides[1] & sides[2])
  for s in splits:
    # both copies, together
    assert (s.fields == examples_lib.ORIGINAL).sum() == (s.fields == examples_lib.MESSAGE).sum() > 0


def test_each_example_keeps_its_genre(tmp_path):
  d = write(tmp_path, HEADER_M + "1,need water,,direct\n2,storm hits coast,,news\n3,hello,,\n",
            HEADER_C + f"1,{ZEROS}\n2,{ZEROS}\n3,{ZEROS}\n")
  examples, _ = csv_files.load(d, str(tmp_path))
  assert list(examples.genres) == ["direct", "news", ""]
  assert list(examples.subset(examples.ids != "2").genres) == ["direct", ""]
