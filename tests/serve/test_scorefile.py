"""Operators' CSV files: every readable row scored with the input's columns kept, files that cannot be used at all
refused before anything is written (the faults an adversarial user causes: tests/test_faults.py)."""

import csv
import os

import pytest

from disaster_tf import labels
from disaster_tf.data import hxl
from disaster_tf.data import textfiles
from disaster_tf.serve import scorefile
from tests import fixtures


def test_score_csv_keeps_the_input_columns_adds_the_answers_and_names_unreadable_rows(tmp_path):
  source = fixtures.write_csv(tmp_path / "in.csv", 'id,message,genre\n1,"We need water, fast",direct\n2,oops\n'
                     '3,"People trapped under the school",direct\n'.encode() + b"4,caf\xe9,direct\n5,,direct\n")
  seen = []
  report = scorefile.score_csv(source, str(tmp_path / "out.csv"), fixtures.keyword_scorer, batch_size=2,
                               progress=seen.append)
  assert (report.rows, report.scored, report.unreadable) == (5, 3, 2)
  assert report.problems == [f"{source}:3: expected 3 fields, found 2; that row is skipped",
                             f"{source}:5: byte 6 is not valid UTF-8; that row is skipped"]
  assert "5 rows read, 3 scored, 2 not readable" in report.summary() and seen == [2]
  rows = fixtures.read_csv(tmp_path / "out.csv")
  assert list(rows[0])[:7] == ["id", "message", "genre", "priority", "predicted", "related", "language"]
  assert len(rows[0]) == 7 + labels.NUM_CATEGORIES  # id, message, genre; priority, predicted, related, language
  assert [r["id"] for r in rows] == ["1", "3", "5"] and rows[0]["message"] == "We need water, fast"
  assert rows[0]["predicted"] == "water;aid_related" and rows[1]["predicted"] == "search_and_rescue;aid_related"
  assert rows[1]["priority"] == "1" and float(rows[0]["score_water"]) == pytest.approx(0.9)
  assert rows[2]["message"] == ""  # an empty message gets the model's answer too (the export's rule)
  assert not [p for p in os.listdir(tmp_path) if p.startswith(".scored-")]  # no temporary left


@pytest.mark.parametrize("content, error", [
    (b"", "the file is empty; expected a header line with a 'message' column"),
    (b"id,text\n1,hello\n", r"in.csv:1: no 'message' column; found id, text"),
    (b'id,"mess"age\n', r"in.csv:1: malformed CSV header"),
    (b'\xff\xfei\x00d\x00', r"in.csv: the file is UTF-16 LE \(its byte-order mark says so\), not UTF-8; save it as "),
    (b"id,message,message\n1,a,b\n", r"in.csv:1: column\(s\) 'message' named more than once"),
    (b"id,message,priority,score_water\n1,a,2,0.1\n", r"in.csv:1: column\(s\) priority, score_water have the "
                                                     r"names of the answer columns"),
])
def test_a_file_that_cannot_be_scored_at_all_is_refused_and_nothing_is_written(tmp_path, content, error):
  source = fixtures.write_csv(tmp_path / "in.csv", content)
  with pytest.raises(scorefile.InputError, match=error):
    scorefile.score_csv(source, str(tmp_path / "out.csv"), fixtures.keyword_scorer)
  assert sorted(os.listdir(tmp_path)) == ["in.csv"]




def test_the_header_is_checked_whole_and_a_blank_line_is_no_row():
  report = scorefile.ScoreReport()
  header, rows = scorefile.read_rows(["\ufeffid, message \n", "\n", "1,water\n"], "in.csv", report)
  assert header == ["id", "message"] and list(rows) == [{"id": "1", "message": "water"}] and report.rows == 1
  with pytest.raises(scorefile.InputError, match="in.csv: the file is empty"):
    scorefile.read_rows(["\n"], "in.csv", report)


def test_a_report_names_the_first_problems_and_counts_them_all():
  report = scorefile.ScoreReport()
  for line in range(scorefile.MAX_PROBLEMS + 5):
    report.add_problem(f"in.csv:{line}: bad")
  assert report.unreadable == 25 and report.summary().endswith("\n  ... and 5 more")


def test_utf8_passes_and_other_encodings_are_named():
  assert textfiles.encoding_problem("id,méssage\n".encode("utf-8")) is None
  assert "UTF-32 LE" in textfiles.encoding_problem("id\n".encode("utf-32"))


def test_a_file_scored_by_an_english_only_model_flags_and_counts_what_it_cannot_read(tmp_path):
  source = fixtures.write_csv(tmp_path / "in.csv", "id,message\n1,We need water\n2,Nou bezwen dlo\n3,thanks\n")
  report = scorefile.score_csv(source, str(tmp_path / "out.csv"), fixtures.keyword_scorer, english_only=True)
  rows = fixtures.read_csv(tmp_path / "out.csv")
  assert [r["language"].split(" ")[0] for r in rows] == ["english", "other", "english"]
  assert rows[1]["priority"] == "1" and "read it yourself" in rows[1]["language"]
  assert report.not_english == 1 and "1 not English (this model reads English only" in report.summary()


def test_hxl_hashtags_are_written_when_asked_and_an_inputs_hashtag_row_is_no_message(tmp_path):
  source = fixtures.write_csv(tmp_path / "in.csv", "id,message,note\n#meta+id,#description +message,\n"
                                                   "1,We need water,x\n2,#help,y\n")
  report = scorefile.score_csv(source, str(tmp_path / "out.csv"), fixtures.keyword_scorer, with_hxl=True)
  assert (report.rows, report.scored) == (2, 2)  # the hashtag row was not read as a message; "#help" was
  with open(tmp_path / "out.csv", encoding="utf-8", newline="") as f:
    header, tags, *rows = list(csv.reader(f))
  assert tags[:4] == ["#meta+id", "#description+message", "", "#meta+priority"] and len(tags) == len(header)
  assert tags[header.index("score_water")] == "#indicator+score+water" and [r[0] for r in rows] == ["1", "2"]
  assert hxl.is_hashtag_row(tags) and not hxl.is_hashtag_row(["1", "#help"]) and not hxl.is_hashtag_row(["", ""])
  plain = scorefile.score_csv(source, str(tmp_path / "plain.csv"), fixtures.keyword_scorer)  # off by default
  assert plain.scored == 2 and [r["id"] for r in fixtures.read_csv(tmp_path / "plain.csv")] == ["1", "2"]
