"""Reading labelled messages from both CSV formats of the public Figure Eight release into a text spool.

* two-file: a directory holding `disaster_messages.csv` (`id,message,...`) and
  `disaster_categories.csv` (`id,categories`, the latter `related-1;request-0;...`),
  joined on id;
* wide: one CSV file with `id,message` and one column per category (extra
  metadata columns of the public release are allowed and ignored).

Both may have an `original` column: the message as it was sent (mostly Haitian
Creole), before volunteers translated it into `message`. Asked for
(`text_fields=("message", "original")`), a non-empty original that differs
from its translation becomes a second example of the same id with the same
labels; the id split keeps both copies on the same side.

This reader refuses a file with any bad row (training on a silently shortened
file would report on other data than the user named); predict.py's reader of
unlabelled files skips and reports bad rows instead, since an operator's file
must be scored as far as it can be.

Every label is validated (`related` in {0,1,2}, the rest in {0,1}); a bad one is a
`DataError` naming file, line and column. Repeated ids become one row with the
per-label maximum. Rows whose message is empty are dropped, counted and reported
in the `LoadReport`; nothing else is dropped.

Loading streams: one pass over the CSV keeps, per message, its id and 36 int8
labels (needed to merge repeats, split, weight and score), and writes the text
straight to a TFRecord spool on disk (`examples_lib.Examples` reads it back), so memory
grows with the vocabulary and the batch, not with the file (BENCHMARKS.md).
"""

import array
import hashlib
import os
import tempfile
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from disaster_tf import labels
from disaster_tf import records
from disaster_tf.data import examples as examples_lib
from disaster_tf.data import textfiles

MAX_FIELD_CHARS = textfiles.MAX_FIELD_CHARS
# Columns of the public wide release that are not categories (PII is 0 everywhere).
WIDE_METADATA_COLUMNS = ("original", "genre", "split", "PII", "event", "actionable_haiti", "date_haiti")


DataError = textfiles.DataError  # bad input data: the message names the file, line and field


def load(path: str, spool_dir: str,
         text_fields: Sequence[str] = ("message",)) -> Tuple[examples_lib.Examples, records.LoadReport]:
  """Loads labelled messages from a two-file directory or a wide CSV file.

  Args:
    path: a directory holding `disaster_messages.csv` and
      `disaster_categories.csv`, or one wide-format CSV file.
    spool_dir: an existing directory for the text spool (a new file each
      call); it must outlive the returned examples. Training uses a scratch
      directory under the model dir.
    text_fields: ("message",), or ("message", "original") to add each usable
      original as a second example of its id (see the module docstring).

  Returns:
    The examples (one per id, in the order of the file holding the messages)
    and a report of what was merged or dropped.

  Raises:
    DataError: on any malformed input; the message names file, line and field.
  """
  if not os.path.exists(path):
    raise DataError(f"{path}: no such file or directory; expected a directory with {labels.MESSAGES_FILE} and "
                  f"{labels.CATEGORIES_FILE}, or one wide-format CSV file")
  fd, spool = tempfile.mkstemp(suffix=".tfrecord", prefix="messages-", dir=spool_dir)
  os.close(fd)
  try:
    with tf.io.TFRecordWriter(spool) as writer:
      collector = _ExampleCollector(
          records.LoadReport(source=path, format="two-file" if os.path.isdir(path) else "wide"), spool, writer,
          use_originals="original" in text_fields)
      examples, report = (_load_two_file if os.path.isdir(path) else _load_wide)(path, collector)
  except BaseException:
    os.remove(spool)  # a half-written spool is of no use to anyone
    raise
  return examples, report


def _label(value: str, category: str, where: str) -> int:
  value = value.strip()
  try:
    label = int(value)
  except ValueError:
    raise DataError(f"{where}: category {category!r}: label {value!r} is not an integer") from None
  maximum = labels.MAX_LABEL[labels.CATEGORIES.index(category)]
  if not 0 <= label <= maximum:
    expected = "0, 1 or 2" if maximum == 2 else "0 or 1"
    raise DataError(f"{where}: category {category!r}: label {label} is out of range; expected {expected}")
  return label


def _parse_categories(cell: str, where: str) -> List[int]:
  """Parses `related-1;request-0;...` into 36 labels in CATEGORIES order."""
  found: Dict[str, int] = {}
  for pair in cell.strip().split(";"):
    name, dash, value = pair.strip().rpartition("-")
    if not dash or not name:
      raise DataError(f"{where}: column 'categories': {pair!r} is not of the form name-value")
    if name not in labels.CATEGORIES:
      raise DataError(f"{where}: column 'categories': unknown category {name!r}")
    if name in found:
      raise DataError(f"{where}: column 'categories': category {name!r} appears twice")
    found[name] = _label(value, name, f"{where}: column 'categories'")
  missing = [c for c in labels.CATEGORIES if c not in found]
  if missing:
    raise DataError(f"{where}: column 'categories': missing categor{'y' if len(missing) == 1 else 'ies'} "
                    f"{', '.join(missing)}")
  return [found[c] for c in labels.CATEGORIES]


_NO_TEXT, _EMPTY_TEXT = -1, -2  # a row's record_of until its message is seen / if it is blank
# A row's original_of: no such column (or not seen yet), blank, the translation again, or present but not asked for.
_NO_ORIGINAL, _ORIGINAL_EMPTY, _ORIGINAL_IDENTICAL, _ORIGINAL_UNUSED = -1, -2, -3, -4


class _ExampleCollector:
  """Collects labelled rows into one example per id (labels: per-label max).

  Per id it keeps 36 int8 labels and where its text went; the text itself goes
  to the TFRecord spool as soon as it is seen (the first one, for repeats).
  """

  def __init__(self, report: records.LoadReport, spool: str, writer: tf.io.TFRecordWriter,
               use_originals: bool = False):
    self.report = report
    self.spool = spool
    self.writer = writer
    self.use_originals = use_originals
    self.row_of: Dict[str, int] = {}  # id -> row; insertion-ordered
    self.label_rows = bytearray()  # NUM_CATEGORIES int8 labels per row
    self.record_of = array.array("q")  # per row: its text's record, or _NO_TEXT / _EMPTY_TEXT
    self.original_of = array.array("q")  # per row: its original's record, or one of _ORIGINAL_*
    self.conflicting = bytearray()  # per row: 1 if its repeats disagree
    self.genre_of: List[str] = []  # per row: its genre column, "" without one
    self.digest = hashlib.sha256()  # of every byte read: the data's fingerprint
    self.records = 0

  def add_labels(self, id_: str, row_labels: List[int]) -> None:
    self.report.rows += 1
    row = self.row_of.get(id_)
    new = bytes(row_labels)
    if row is None:
      self.row_of[id_] = len(self.record_of)
      self.label_rows += new
      self.record_of.append(_NO_TEXT)
      self.original_of.append(_NO_ORIGINAL)
      self.conflicting.append(0)
      self.genre_of.append("")
      return
    self.report.duplicate_rows += 1
    span = slice(row * labels.NUM_CATEGORIES, (row + 1) * labels.NUM_CATEGORIES)
    old = self.label_rows[span]
    if old != new:
      self.conflicting[row] = 1
      self.label_rows[span] = bytes(map(max, old, new))

  def add_text(self, id_: str, text: str, original: Optional[str] = None, genre: Optional[str] = None) -> None:
    """Records an id's message and, if its file has those columns, its original and genre (None: no column)."""
    row = self.row_of[id_]
    if self.record_of[row] != _NO_TEXT:
      return  # repeats carry the same message; keep the first
    self.genre_of[row] = (genre or "").strip()
    if not text.strip():
      self.record_of[row] = _EMPTY_TEXT
      return
    self.record_of[row] = self._write(text)
    if original is None:
      return
    if not original.strip():
      self.original_of[row] = _ORIGINAL_EMPTY
    elif " ".join(original.split()).casefold() == " ".join(text.split()).casefold():
      self.original_of[row] = _ORIGINAL_IDENTICAL
    elif self.use_originals:  # written right after its translation: positions stay increasing
      self.original_of[row] = self._write(original)
    else:
      self.original_of[row] = _ORIGINAL_UNUSED

  def _write(self, text: str) -> int:
    self.writer.write(text.encode("utf-8"))
    self.records += 1
    return self.records - 1

  def ids_without_text(self) -> List[str]:
    return [i for i, row in self.row_of.items() if self.record_of[row] == _NO_TEXT]

  def finish(self) -> Tuple[examples_lib.Examples, records.LoadReport]:
    record_of = np.frombuffer(self.record_of, dtype=np.int64)
    original_of = np.frombuffer(self.original_of, dtype=np.int64)
    keep = record_of >= 0
    used = keep & (original_of >= 0)
    self.report.conflicting_duplicates = int(sum(self.conflicting))
    self.report.dropped_empty_text = int((record_of == _EMPTY_TEXT).sum())
    self.report.originals_used = int(used.sum())
    self.report.originals_empty = int((keep & (original_of == _ORIGINAL_EMPTY)).sum())
    self.report.originals_identical = int((keep & (original_of == _ORIGINAL_IDENTICAL)).sum())
    self.report.examples = int(keep.sum()) + self.report.originals_used
    self.report.fingerprint = self.digest.hexdigest()[:16]
    if not keep.any():
      raise DataError(f"{self.report.source}: no usable rows ({self.report.rows} read, "
                      f"{self.report.dropped_empty_text} with empty text)")
    all_ids = np.array(list(self.row_of), dtype=object)
    genres = np.array(self.genre_of, dtype=object)
    label_matrix = np.frombuffer(self.label_rows, dtype=np.int8).reshape(-1, labels.NUM_CATEGORIES)
    positions = np.concatenate([record_of[keep], original_of[used]])
    order = np.argsort(positions, kind="stable")  # the order the texts were written in
    fields = np.concatenate([np.full(keep.sum(), examples_lib.MESSAGE, np.int8),
                             np.full(used.sum(), examples_lib.ORIGINAL, np.int8)])
    return examples_lib.Examples(np.concatenate([all_ids[keep], all_ids[used]])[order],
                    np.concatenate([label_matrix[keep], label_matrix[used]])[order], self.spool, positions[order],
                    fields[order], np.concatenate([genres[keep], genres[used]])[order]), self.report


def _id(row: Dict[str, str], where: str) -> str:
  id_ = row["id"].strip()
  if not id_:
    raise DataError(f"{where}: column 'id' is empty")
  return id_


def _load_two_file(directory: str, collector: _ExampleCollector) -> Tuple[examples_lib.Examples, records.LoadReport]:
  messages_path = os.path.join(directory, labels.MESSAGES_FILE)
  categories_path = os.path.join(directory, labels.CATEGORIES_FILE)
  for p in (messages_path, categories_path):
    if not os.path.isfile(p):
      raise DataError(f"{p}: no such file; a two-file data directory holds {labels.MESSAGES_FILE} and "
                      f"{labels.CATEGORIES_FILE}")
  for line, row in textfiles.csv_rows(categories_path, ("id", "categories"), collector.digest):
    where = f"{categories_path}:{line}"
    collector.add_labels(_id(row, where), _parse_categories(row["categories"], where))
  for line, row in textfiles.csv_rows(messages_path, ("id", "message"), collector.digest):
    where = f"{messages_path}:{line}"
    id_ = _id(row, where)
    if id_ not in collector.row_of:
      raise DataError(f"{where}: id {id_!r} has no row in {categories_path}")
    collector.add_text(id_, row["message"], row.get("original"), row.get("genre"))
  unmatched = collector.ids_without_text()
  if unmatched:
    raise DataError(f"{categories_path}: {len(unmatched)} id(s) have no message in {messages_path}, "
                    f"e.g. {', '.join(unmatched[:5])}")
  return collector.finish()


def _load_wide(path: str, collector: _ExampleCollector) -> Tuple[examples_lib.Examples, records.LoadReport]:
  required = ("id", "message") + labels.CATEGORIES
  first = True
  for line, row in textfiles.csv_rows(path, required, collector.digest):
    if first:
      unknown = [c for c in row if c not in required and c not in WIDE_METADATA_COLUMNS]
      if unknown:
        raise DataError(f"{path}:1: unknown column(s) {', '.join(unknown)}; a wide file has id, message, "
                        f"the 36 categories and optionally {', '.join(WIDE_METADATA_COLUMNS)}")
      first = False
    where = f"{path}:{line}"
    id_ = _id(row, where)
    collector.add_labels(id_, [_label(row[c], c, where) for c in labels.CATEGORIES])
    collector.add_text(id_, row["message"], row.get("original"), row.get("genre"))
  if first:
    raise DataError(f"{path}: the header has no data rows below it")
  return collector.finish()
