"""Reading labelled messages (two-file and wide CSV formats), the id split, tf.data.

Two formats, both of the public Figure Eight release:

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

Every label is validated (`related` in {0,1,2}, the rest in {0,1}); a bad one is a
`DataError` naming file, line and column. Repeated ids become one row with the
per-label maximum. Rows whose message is empty are dropped, counted and reported
in the `LoadReport`; nothing else is dropped.

Loading streams: one pass over the CSV keeps, per message, its id and 36 int8
labels (needed to merge repeats, split, weight and score), and writes the text
straight to a TFRecord spool on disk. Texts are read back from the spool by
tf.data, vectorised once into a file cache, and never held in Python, so memory
grows with the vocabulary and the batch, not with the file (BENCHMARKS.md).
"""

import array
import csv
import dataclasses
import functools
import hashlib
import math
import os
import tempfile
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf

from disaster_tf import config as config_lib
from disaster_tf import labels

MESSAGES_FILE = "disaster_messages.csv"
CATEGORIES_FILE = "disaster_categories.csv"
MAX_FIELD_CHARS = 64 * 2**20  # a field (a message) may hold up to 64 Mi characters
# Columns of the public wide release that are not categories (PII is 0 everywhere).
WIDE_METADATA_COLUMNS = ("original", "genre", "split", "PII", "event", "actionable_haiti", "date_haiti")
# The columns a text may come from; an example's `fields` entry is its index here.
TEXT_FIELDS = ("message", "original")
MESSAGE, ORIGINAL = 0, 1


_MASK_BATCH = 4096  # records read per step when a subset picks some of them (Examples.texts)


class DataError(ValueError):
  """Bad input data; the message names the file, line and field."""


@dataclasses.dataclass(frozen=True)
class Examples:
  """Labelled messages, one per id; the texts stay on disk.

  Attributes:
    ids: [N] str, the message ids.
    labels: [N, 36] int8, in `labels.CATEGORIES` order.
    text_file: the TFRecord spool written by `load`; record k is one raw
      message as UTF-8 (no cleaning: that happens in the graph).
    positions: [N] int64, increasing: the record of each example's text
      (a subset keeps the file and picks records).
    fields: [N] int8: MESSAGE, or ORIGINAL for the untranslated copy of a
      message (the same id and labels as its translation).
    genres: [N] str, the `genre` column (direct, news, social), "" without one.
  """

  ids: np.ndarray
  labels: np.ndarray
  text_file: str
  positions: np.ndarray
  fields: np.ndarray
  genres: np.ndarray

  def __len__(self) -> int:
    return len(self.ids)

  def subset(self, mask: Union[np.ndarray, slice]) -> "Examples":
    return Examples(self.ids[mask], self.labels[mask], self.text_file, self.positions[mask], self.fields[mask],
                    self.genres[mask])

  def field(self, field: int) -> "Examples":
    """The examples whose text comes from TEXT_FIELDS[field]."""
    return self.subset(self.fields == field)

  def texts(self) -> tf.data.Dataset:
    """The raw messages, in order, streamed from the spool: a dataset of scalar tf.string."""
    ds = tf.data.TFRecordDataset(self.text_file)
    if not len(self):
      return ds.take(0)
    first, end = int(self.positions[0]), int(self.positions[-1]) + 1
    ds = ds.skip(first).take(end - first)
    if len(self) == end - first:  # contiguous
      return ds
    # A mask over this subset's span only: the masks of all the blocks of a
    # split then add up to one byte a record, not one a record per block.
    wanted = np.zeros(end - first, dtype=bool)
    wanted[self.positions - first] = True
    wanted = tf.constant(wanted)
    # Masked a batch at a time: a per-record filter cost ~40 us a record.
    return (ds.batch(_MASK_BATCH).enumerate()
            .map(lambda i, t: tf.boolean_mask(t, wanted[i * _MASK_BATCH:i * _MASK_BATCH + tf.size(t, tf.int64)]))
            .unbatch())

  def blocks(self, size: int) -> List["Examples"]:
    """Splits into consecutive parts of (near) equal length, at most `size` each (see `batched`)."""
    count = max(1, math.ceil(len(self) / size))
    edges = np.linspace(0, len(self), count + 1).astype(int)
    return [self.subset(slice(a, b)) for a, b in zip(edges[:-1], edges[1:])]

  def labelled(self, batch_size: int) -> tf.data.Dataset:
    """Batches of (texts [B] tf.string, labels [B, 36] int32), streamed; the last batch may be smaller."""
    # Batched before anything else: per-record dataset functions cost more than vectorising.
    label_ds = tf.data.Dataset.from_tensor_slices(self.labels).batch(batch_size)
    return tf.data.Dataset.zip(self.texts().batch(batch_size), label_ds).map(lambda t, y: (t, tf.cast(y, tf.int32)))

  def read_texts(self) -> List[str]:
    """All texts as Python strings: for small data and tests only (memory grows with the file)."""
    return [t.decode("utf-8") for t in self.texts().as_numpy_iterator()]


@dataclasses.dataclass
class LoadReport:
  """What loading did, so that nothing is dropped silently."""

  source: str
  format: str
  rows: int = 0  # labelled rows read (the categories file's, for two-file)
  duplicate_rows: int = 0  # rows whose id was seen before; merged by per-label max
  conflicting_duplicates: int = 0  # ids whose repeats disagree on some label
  dropped_empty_text: int = 0  # ids whose message is empty or whitespace only
  examples: int = 0  # examples kept (an id whose original is used counts twice)
  fingerprint: str = ""  # a hash of the bytes read: another file's content gives another one
  # The `original` column, counted over the ids kept (all 0 without that column):
  originals_used: int = 0  # became a second example of their id (only when asked for)
  originals_empty: int = 0  # empty or whitespace only
  originals_identical: int = 0  # the same as the translation but for case and spacing: not a second example

  def summary(self) -> str:
    text = (f"{self.source} ({self.format}): {self.rows} rows -> {self.examples} examples; "
            f"{self.duplicate_rows} repeated-id rows merged ({self.conflicting_duplicates} ids with "
            f"conflicting labels, per-label max kept); {self.dropped_empty_text} dropped for empty text")
    if self.originals_used:
      text += (f"; originals: {self.originals_used} used as examples, {self.originals_empty} empty, "
               f"{self.originals_identical} identical to the translation")
    return text


def load(path: str, spool_dir: str, text_fields: Sequence[str] = ("message",)) -> Tuple[Examples, LoadReport]:
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
    raise DataError(f"{path}: no such file or directory; expected a directory with {MESSAGES_FILE} and "
                  f"{CATEGORIES_FILE}, or one wide-format CSV file")
  fd, spool = tempfile.mkstemp(suffix=".tfrecord", prefix="messages-", dir=spool_dir)
  os.close(fd)
  try:
    with tf.io.TFRecordWriter(spool) as writer:
      collector = _ExampleCollector(LoadReport(source=path, format="two-file" if os.path.isdir(path) else "wide"),
                                    spool, writer, use_originals="original" in text_fields)
      examples, report = (_load_two_file if os.path.isdir(path) else _load_wide)(path, collector)
  except BaseException:
    os.remove(spool)  # a half-written spool is of no use to anyone
    raise
  return examples, report


TRAIN, TUNE, VALIDATION = 0, 1, 2
SPLIT_NAMES = ("train", "tune", "validation")  # indexed by TRAIN, TUNE, VALIDATION


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
  side_of = np.full(len(buckets), TRAIN, dtype=np.int8)
  side_of[buckets < validation_fraction + tune_fraction] = TUNE
  side_of[buckets < validation_fraction] = VALIDATION
  return side_of


class Splits(NamedTuple):
  """The three sides of one id split (see `split_ids`); `getattr(splits, name)` by SPLIT_NAMES."""

  train: Examples
  tune: Examples
  validation: Examples


def split(examples: Examples, train_config: config_lib.TrainConfig) -> Splits:
  """Splits examples by id hash with the run's fractions and salt: the one split every caller uses."""
  side_of = split_ids(examples.ids, train_config.validation_fraction, train_config.tune_fraction,
                      train_config.split_seed)
  return Splits(*(examples.subset(side_of == side) for side in (TRAIN, TUNE, VALIDATION)))


def vectorized_dataset(examples: Examples, vectorize: Callable[[tf.Tensor], Any],
                       cache: Optional[str] = "") -> tf.data.Dataset:
  """Vectorises the examples' texts in the graph and caches (token ids, labels) pairs.

  Args:
    examples: what to vectorise; the texts stream from its spool.
    vectorize: maps a [batch] string tensor to the model's inputs (a dict of
      [batch, ...] tensors): the featurizer, the same one the export uses.
    cache: a file prefix for tf.data's cache (vectorising is deterministic, so
      it then runs once: see `fill_cache`), "" for an in-memory cache, or None
      to re-vectorise on every pass (bench/speed.py measures the difference).

  Returns:
    A dataset of unbatched (inputs, labels [36] int32).
  """
  # Vectorising a batch at a time is ~50x faster than one string at a time.
  ds = examples.labelled(1024).map(lambda t, y: (vectorize(t), y), num_parallel_calls=tf.data.AUTOTUNE)
  ds = ds.unbatch()
  return ds if cache is None else ds.cache(cache)


def fill_cache(ds: tf.data.Dataset) -> int:
  """Runs once through a cached dataset so that the cache is complete; returns its length.

  tf.data discards a cache whose first pass stops early, and a training epoch
  does stop early (its last partial batch is dropped, and a shuffle buffer
  smaller than the data is never drained): unfilled, the cache would be
  rebuilt, i.e. everything re-vectorised, every epoch.
  """
  return int(ds.batch(4096).reduce(np.int64(0), lambda n, batch: n + tf.shape(batch[1], out_type=tf.int64)[0]))


_MAX_RUN = 32  # consecutive examples taken from a block at one random draw (data.batched)


def batched(ds: Union[tf.data.Dataset, Sequence[tf.data.Dataset]], batch_size: int, *,
            shuffle_seed: Optional[int] = None, shuffle_buffer: int = 0) -> tf.data.Dataset:
  """Shuffles (when a seed is given) and batches cached data.

  Args:
    ds: a dataset; or, to train, the blocks of one (`Examples.blocks` of at
      most `shuffle_buffer` examples, each vectorised and cached). Each block
      is read in order, the next run of up to 32 examples coming from a block
      drawn at random, and then passes the shuffle buffer: an epoch mixes the
      whole split, not one buffer-sized window of the file, while memory
      holds one buffer. Data that fits the buffer is one block, shuffled fully.
    batch_size: examples per batch.
    shuffle_seed: fixes the epoch's order (a resumed run skips what it did);
      None for evaluation: in order, every example kept.
    shuffle_buffer: examples held for shuffling.

  Training batches drop the remainder, so every step has the same static shape
  (one trace) and no replica of a distributed step ever sees an empty batch.
  """
  if not isinstance(ds, tf.data.Dataset):
    if shuffle_seed is None or len(ds) == 1:
      ds = functools.reduce(tf.data.Dataset.concatenate, ds)
    else:
      # A run of consecutive examples per draw: drawing each example alone cost 10x the rest of the
      # pipeline. Runs are short next to the buffer (16 fit in it at least), which mixes them.
      run = min(_MAX_RUN, max(1, shuffle_buffer // 16))
      ds = tf.data.Dataset.sample_from_datasets([b.batch(run) for b in ds], seed=shuffle_seed).unbatch()
  if shuffle_seed is not None:
    ds = ds.shuffle(shuffle_buffer, seed=shuffle_seed, reshuffle_each_iteration=False)
  return ds.batch(batch_size, drop_remainder=shuffle_seed is not None).prefetch(tf.data.AUTOTUNE)


# --- CSV reading -----------------------------------------------------------------


def _decoded_lines(path: str, digest) -> Iterator[str]:
  """Yields the lines of `path` as str, naming the line of any invalid UTF-8; feeds each line's bytes to `digest`."""
  with open(path, "rb") as f:
    for number, raw in enumerate(f, start=1):
      digest.update(raw)
      try:
        line = raw.decode("utf-8")
      except UnicodeDecodeError as e:
        raise DataError(f"{path}:{number}: byte {e.start + 1} of the line is not valid UTF-8 "
                        f"({raw[e.start:e.start + 4]!r}); save the file as UTF-8") from None
      yield line.lstrip("\ufeff") if number == 1 else line


def _rows(path: str, required: Sequence[str], digest) -> Iterator[Tuple[int, Dict[str, str]]]:
  """Yields (line number, row) for each data row of a CSV file, strictly parsed.

  Raises:
    DataError: empty file, missing columns, a row with the wrong number of
      fields, or broken quoting.
  """
  # The csv module refuses fields over 128 KiB by default; a pasted document can be
  # longer, and the vectorizer truncates it anyway. Unclosed quotes still fail (strict).
  csv.field_size_limit(max(csv.field_size_limit(), MAX_FIELD_CHARS))
  reader = csv.reader(_decoded_lines(path, digest), strict=True)
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


_NO_TEXT, _EMPTY_TEXT = -1, -2  # a row's record_of until its message is seen / if it is blank
# A row's original_of: no such column (or not seen yet), blank, the translation again, or present but not asked for.
_NO_ORIGINAL, _ORIGINAL_EMPTY, _ORIGINAL_IDENTICAL, _ORIGINAL_UNUSED = -1, -2, -3, -4


class _ExampleCollector:
  """Collects labelled rows into one example per id (labels: per-label max).

  Per id it keeps 36 int8 labels and where its text went; the text itself goes
  to the TFRecord spool as soon as it is seen (the first one, for repeats).
  """

  def __init__(self, report: LoadReport, spool: str, writer: tf.io.TFRecordWriter, use_originals: bool = False):
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

  def finish(self) -> Tuple[Examples, LoadReport]:
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
    fields = np.concatenate([np.full(keep.sum(), MESSAGE, np.int8), np.full(used.sum(), ORIGINAL, np.int8)])
    return Examples(np.concatenate([all_ids[keep], all_ids[used]])[order],
                    np.concatenate([label_matrix[keep], label_matrix[used]])[order], self.spool, positions[order],
                    fields[order], np.concatenate([genres[keep], genres[used]])[order]), self.report


def _id(row: Dict[str, str], where: str) -> str:
  id_ = row["id"].strip()
  if not id_:
    raise DataError(f"{where}: column 'id' is empty")
  return id_


def _load_two_file(directory: str, collector: _ExampleCollector) -> Tuple[Examples, LoadReport]:
  messages_path = os.path.join(directory, MESSAGES_FILE)
  categories_path = os.path.join(directory, CATEGORIES_FILE)
  for p in (messages_path, categories_path):
    if not os.path.isfile(p):
      raise DataError(f"{p}: no such file; a two-file data directory holds {MESSAGES_FILE} and "
                      f"{CATEGORIES_FILE}")
  for line, row in _rows(categories_path, ("id", "categories"), collector.digest):
    where = f"{categories_path}:{line}"
    collector.add_labels(_id(row, where), _parse_categories(row["categories"], where))
  for line, row in _rows(messages_path, ("id", "message"), collector.digest):
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


def _load_wide(path: str, collector: _ExampleCollector) -> Tuple[Examples, LoadReport]:
  required = ("id", "message") + labels.CATEGORIES
  first = True
  for line, row in _rows(path, required, collector.digest):
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
