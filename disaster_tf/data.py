"""Reading labelled messages (two-file and wide CSV formats), the id split, tf.data.

Two formats, both of the public Figure Eight release:

* two-file: a directory holding `disaster_messages.csv` (`id,message,...`) and
  `disaster_categories.csv` (`id,categories`, the latter `related-1;request-0;...`),
  joined on id;
* wide: one CSV file with `id,message` and one column per category (extra
  metadata columns of the public release are allowed and ignored).

Every label is validated (`related` in {0,1,2}, the rest in {0,1}); a bad one is a
`DataError` naming file, line and column. Repeated ids become one row with the
per-label maximum. Rows whose message is empty are dropped, counted and reported
in the `LoadReport`; nothing else is dropped.
"""

import csv
import dataclasses
import hashlib
import os
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from disaster_tf import labels

MESSAGES_FILE = "disaster_messages.csv"
CATEGORIES_FILE = "disaster_categories.csv"
# Columns of the public wide release that are not categories (PII is 0 everywhere).
MAX_FIELD_CHARS = 64 * 2**20  # a field (a message) may hold up to 64 Mi characters
WIDE_METADATA_COLUMNS = ("original", "genre", "split", "PII", "event", "actionable_haiti", "date_haiti")


class DataError(ValueError):
  """Bad input data; the message names the file, line and field."""


@dataclasses.dataclass(frozen=True)
class Examples:
  """Labelled messages, one per id.

  Attributes:
    ids: [N] str, the message ids.
    texts: [N] str, the raw messages (no cleaning: that happens in the graph).
    labels: [N, 36] int32, in `labels.CATEGORIES` order.
  """

  ids: np.ndarray
  texts: np.ndarray
  labels: np.ndarray

  def __len__(self) -> int:
    return len(self.ids)

  def subset(self, mask: np.ndarray) -> "Examples":
    return Examples(self.ids[mask], self.texts[mask], self.labels[mask])


@dataclasses.dataclass
class LoadReport:
  """What loading did, so that nothing is dropped silently."""

  source: str
  format: str
  rows: int = 0  # labelled rows read (the categories file's, for two-file)
  duplicate_rows: int = 0  # rows whose id was seen before; merged by per-label max
  conflicting_duplicates: int = 0  # ids whose repeats disagree on some label
  dropped_empty_text: int = 0  # ids whose message is empty or whitespace only
  examples: int = 0  # rows kept

  def summary(self) -> str:
    return (f"{self.source} ({self.format}): {self.rows} rows -> {self.examples} examples; "
            f"{self.duplicate_rows} repeated-id rows merged ({self.conflicting_duplicates} ids with "
            f"conflicting labels, per-label max kept); {self.dropped_empty_text} dropped for empty text")


def load(path: str) -> Tuple[Examples, LoadReport]:
  """Loads labelled messages from a two-file directory or a wide CSV file.

  Args:
    path: a directory holding `disaster_messages.csv` and
      `disaster_categories.csv`, or one wide-format CSV file.

  Returns:
    The examples (one per id, in first-seen order) and a report of what was
    merged or dropped.

  Raises:
    DataError: on any malformed input; the message names file, line and field.
  """
  if os.path.isdir(path):
    return _load_two_file(path)
  if os.path.isfile(path):
    return _load_wide(path)
  raise DataError(f"{path}: no such file or directory; expected a directory with {MESSAGES_FILE} and "
                  f"{CATEGORIES_FILE}, or one wide-format CSV file")


TRAIN, TUNE, VALIDATION = 0, 1, 2


def split_ids(ids: Sequence[str], validation_fraction: float, tune_fraction: float, salt: str) -> np.ndarray:
  """Assigns each id to TRAIN, TUNE or VALIDATION by a hash of the id.

  An id's side depends only on the id, `salt` and the fractions, so adding
  rows never moves old ones; and the validation side does not depend on
  `tune_fraction`, so turning tuning on or off never changes what is reported on.

  Args:
    ids: [N] message ids.
    validation_fraction: the expected share of ids in VALIDATION.
    tune_fraction: the expected share of ids in TUNE (may be 0).
    salt: mixed into the hash; another salt draws another split.

  Returns:
    [N] int8 of TRAIN (0), TUNE (1) or VALIDATION (2).
  """
  def bucket(i: str) -> float:
    digest = hashlib.sha256(f"{salt}:{i}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64
  buckets = np.array([bucket(str(i)) for i in ids], dtype=np.float64)
  sides = np.full(len(buckets), TRAIN, dtype=np.int8)
  sides[buckets < validation_fraction + tune_fraction] = TUNE
  sides[buckets < validation_fraction] = VALIDATION
  return sides


def vectorized_dataset(texts: np.ndarray, label_matrix: np.ndarray,
                       vectorize: Callable[[tf.Tensor], tf.Tensor], cache: bool = True) -> tf.data.Dataset:
  """Vectorises raw texts once, in the graph, and caches (ids, labels) pairs.

  Args:
    texts: [N] str.
    label_matrix: [N, 36] int.
    vectorize: maps a [batch] string tensor to [batch, sequence_length] ids;
      the TextVectorization layer, the same one the export uses.
    cache: keep the vectorised examples in memory (vectorising is
      deterministic, so it then runs once per run); False re-vectorises on
      every pass (bench/speed.py measures the difference).

  Returns:
    A dataset of unbatched (token_ids [sequence_length] int64, labels [36] int32).
  """
  ds = tf.data.Dataset.from_tensor_slices((texts.astype(object), label_matrix.astype(np.int32)))
  # Vectorising a batch at a time is ~50x faster than one string at a time.
  ds = ds.batch(1024).map(lambda t, y: (vectorize(t), y), num_parallel_calls=tf.data.AUTOTUNE)
  ds = ds.unbatch()
  return ds.cache() if cache else ds


def batched(ds: tf.data.Dataset, batch_size: int, *, shuffle_seed: Optional[int] = None,
            shuffle_buffer: int = 0) -> tf.data.Dataset:
  """Shuffles (when a seed is given) and batches a cached dataset.

  Training batches drop the remainder, so every step has the same static shape
  (one trace) and no replica of a distributed step ever sees an empty batch.
  """
  if shuffle_seed is not None:
    ds = ds.shuffle(shuffle_buffer, seed=shuffle_seed, reshuffle_each_iteration=False)
  return ds.batch(batch_size, drop_remainder=shuffle_seed is not None).prefetch(tf.data.AUTOTUNE)


# --- CSV reading -----------------------------------------------------------------


def _decoded_lines(path: str) -> Iterator[str]:
  """Yields the lines of `path` as str, naming the line of any invalid UTF-8."""
  with open(path, "rb") as f:
    for number, raw in enumerate(f, start=1):
      try:
        line = raw.decode("utf-8")
      except UnicodeDecodeError as e:
        raise DataError(f"{path}:{number}: byte {e.start + 1} of the line is not valid UTF-8 "
                        f"({raw[e.start:e.start + 4]!r}); save the file as UTF-8") from None
      yield line.lstrip("\ufeff") if number == 1 else line


def _rows(path: str, required: Sequence[str]) -> Iterator[Tuple[int, Dict[str, str]]]:
  """Yields (line number, row) for each data row of a CSV file, strictly parsed.

  Raises:
    DataError: empty file, missing columns, a row with the wrong number of
      fields, or broken quoting.
  """
  # The csv module refuses fields over 128 KiB by default; a pasted document can be
  # longer, and the vectorizer truncates it anyway. Unclosed quotes still fail (strict).
  csv.field_size_limit(max(csv.field_size_limit(), MAX_FIELD_CHARS))
  reader = csv.reader(_decoded_lines(path), strict=True)
  try:
    header = next(reader, None)
    if header is None:
      raise DataError(f"{path}: the file is empty; expected a header line with {', '.join(required)}")
    header = [h.strip() for h in header]
    missing = [c for c in required if c not in header]
    if missing:
      raise DataError(f"{path}:1: header lacks column(s) {', '.join(missing)}; found {', '.join(header)}")
    for row in reader:
      if not row:
        continue  # a blank line carries no record
      if len(row) != len(header):
        raise DataError(f"{path}:{reader.line_num}: expected {len(header)} fields "
                        f"({', '.join(header)}), found {len(row)}")
      yield reader.line_num, dict(zip(header, row))
  except csv.Error as e:
    raise DataError(f"{path}:{reader.line_num}: malformed CSV ({e}); check the quoting") from None


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


class _Merger:
  """Collects labelled rows into one example per id (labels: per-label max)."""

  def __init__(self, report: LoadReport):
    self.report = report
    self.labels: Dict[str, List[int]] = {}  # insertion-ordered: first-seen order
    self.texts: Dict[str, str] = {}
    self.conflicting = set()

  def add_labels(self, id_: str, row_labels: List[int]) -> None:
    self.report.rows += 1
    old = self.labels.get(id_)
    if old is None:
      self.labels[id_] = row_labels
      return
    self.report.duplicate_rows += 1
    if old != row_labels:
      self.conflicting.add(id_)
      old[:] = [max(a, b) for a, b in zip(old, row_labels)]

  def add_text(self, id_: str, text: str) -> None:
    self.texts.setdefault(id_, text)  # repeats carry the same message; keep the first

  def finish(self) -> Tuple[Examples, LoadReport]:
    ids = list(self.labels)
    texts = [self.texts[i] for i in ids]
    keep = np.array([bool(t.strip()) for t in texts], dtype=bool)
    self.report.conflicting_duplicates = len(self.conflicting)
    self.report.dropped_empty_text = int((~keep).sum())
    self.report.examples = int(keep.sum())
    if not self.report.examples:
      raise DataError(f"{self.report.source}: no usable rows ({self.report.rows} read, "
                      f"{self.report.dropped_empty_text} with empty text)")
    label_matrix = np.array([self.labels[i] for i in ids], dtype=np.int32).reshape(-1, labels.NUM_CATEGORIES)
    examples = Examples(np.array(ids, dtype=object), np.array(texts, dtype=object), label_matrix)
    return examples.subset(keep), self.report


def _id(row: Dict[str, str], where: str) -> str:
  id_ = row["id"].strip()
  if not id_:
    raise DataError(f"{where}: column 'id' is empty")
  return id_


def _load_two_file(directory: str) -> Tuple[Examples, LoadReport]:
  messages_path = os.path.join(directory, MESSAGES_FILE)
  categories_path = os.path.join(directory, CATEGORIES_FILE)
  for p in (messages_path, categories_path):
    if not os.path.isfile(p):
      raise DataError(f"{p}: no such file; a two-file data directory holds {MESSAGES_FILE} and "
                      f"{CATEGORIES_FILE}")
  report = LoadReport(source=directory, format="two-file")
  merger = _Merger(report)
  for line, row in _rows(categories_path, ("id", "categories")):
    where = f"{categories_path}:{line}"
    merger.add_labels(_id(row, where), _parse_categories(row["categories"], where))
  for line, row in _rows(messages_path, ("id", "message")):
    where = f"{messages_path}:{line}"
    id_ = _id(row, where)
    if id_ not in merger.labels:
      raise DataError(f"{where}: id {id_!r} has no row in {categories_path}")
    merger.add_text(id_, row["message"])
  unmatched = [i for i in merger.labels if i not in merger.texts]
  if unmatched:
    raise DataError(f"{categories_path}: {len(unmatched)} id(s) have no message in {messages_path}, "
                    f"e.g. {', '.join(unmatched[:5])}")
  return merger.finish()


def _load_wide(path: str) -> Tuple[Examples, LoadReport]:
  required = ("id", "message") + labels.CATEGORIES
  rows = _rows(path, required)
  report = LoadReport(source=path, format="wide")
  merger = _Merger(report)
  first = True
  for line, row in rows:
    if first:
      unknown = [c for c in row if c not in required and c not in WIDE_METADATA_COLUMNS]
      if unknown:
        raise DataError(f"{path}:1: unknown column(s) {', '.join(unknown)}; a wide file has id, message, "
                        f"the 36 categories and optionally {', '.join(WIDE_METADATA_COLUMNS)}")
      first = False
    where = f"{path}:{line}"
    id_ = _id(row, where)
    merger.add_labels(id_, [_label(row[c], c, where) for c in labels.CATEGORIES])
    merger.add_text(id_, row["message"])
  if first:
    raise DataError(f"{path}: the header has no data rows below it")
  return merger.finish()
