"""Labelled messages on disk (`Examples`), the id split, and the tf.data pipeline that vectorises them.

`csv_files.load` reads either CSV format into `Examples`: ids and labels in
memory, the texts in a TFRecord spool. Texts are read back from the spool by
tf.data, vectorised once into a saved dataset, and never held in Python, so memory
grows with the vocabulary and the batch, not with the file (BENCHMARKS.md).
"""

import dataclasses
import functools
import hashlib
import math
from typing import Any, Callable, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf

from disaster_tf import config as config_lib

# The columns a text may come from; an example's `fields` entry is its index here.
TEXT_FIELDS = ("message", "original")
MESSAGE, ORIGINAL = 0, 1


_MASK_BATCH = 4096  # records read per step when a subset picks some of them (Examples.texts)


@dataclasses.dataclass(frozen=True)
class Examples:
  """Labelled messages, one per id; the texts stay on disk.

  Attributes:
    ids: [N] str, the message ids.
    labels: [N, 36] int8, in `labels.CATEGORIES` order.
    text_file: the TFRecord spool written by `csv_files.load`; record k is one raw
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


def aligned_originals(examples: Examples, spool: str) -> Tuple[Examples, Examples, np.ndarray]:
  """Each message beside its original, for --pairs: the messages, their originals row by row, and which exist.

  Args:
    examples: messages and originals as `csv_files.load` writes them (an original right after its message).
    spool: a new TFRecord file: record k is message k's original, or "" where it has none.

  Returns:
    (the messages [N]; the same ids and labels reading `spool`; present [N] float32, 1 where there is one).
  """
  messages, originals = examples.field(MESSAGE), examples.field(ORIGINAL)
  present = np.isin(messages.ids, originals.ids)
  # Both streams are in spool order, so the k-th original belongs to the k-th message that has one.
  texts = originals.texts().as_numpy_iterator()
  with tf.io.TFRecordWriter(spool) as writer:
    for has in present:
      writer.write(next(texts) if has else b"")
  aligned = Examples(messages.ids, messages.labels, spool, np.arange(len(messages), dtype=np.int64),
                     np.full(len(messages), ORIGINAL, np.int8), messages.genres)
  return messages, aligned, present.astype(np.float32)


def paired(translations: tf.data.Dataset, originals: tf.data.Dataset, present: np.ndarray) -> tf.data.Dataset:
  """Zips two vectorised datasets of the same rows into (inputs, labels [36], original inputs, present)."""
  return tf.data.Dataset.zip(translations, originals, tf.data.Dataset.from_tensor_slices(present)).map(
      lambda t, o, p: (t[0], t[1], o[0], p))


TRAIN, TUNE, VALIDATION = 0, 1, 2
SPLIT_NAMES = config_lib.SPLIT_NAMES  # indexed by TRAIN, TUNE, VALIDATION


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


def training_id(given: str, validation_fraction: float, tune_fraction: float, salt: str) -> str:
  """`given` if `split_ids` puts it in TRAIN, else the first of given~1, given~2, ... that it puts there.

  A new message an operator decided is written under this id, so that it trains (deterministic: a resumed run
  places it alike).
  """
  candidate, k = given, 0
  while split_ids([candidate], validation_fraction, tune_fraction, salt)[0] != TRAIN:
    k += 1
    candidate = f"{given}~{k}"
  return candidate


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
  """Vectorises the examples' texts in the graph and keeps (inputs, labels) pairs.

  Args:
    examples: what to vectorise; the texts stream from its spool.
    vectorize: maps a [batch] string tensor to the model's inputs (a dict of
      [batch, ...] tensors): the featurizer, the same one the export uses.
    cache: a directory to save the vectorised examples in, now, with
      `tf.data.Dataset.save` (vectorising is deterministic, so it runs once),
      "" for tf.data's in-memory cache, or None to re-vectorise on every pass
      (bench/speed.py measures the difference). Not `cache(filename)`, whose
      complete files TF 2.21 reports as truncated on every first pass
      ("did not fully read the dataset being cached", tensorflow#60174, fixed
      upstream by tensorflow#122904): a false warning a user reads as a fault.

  Returns:
    A dataset of unbatched (inputs, labels [36] int32), in the examples' order.
  """
  # Vectorising a batch at a time is ~50x faster than one string at a time.
  ds = examples.labelled(1024).map(lambda t, y: (vectorize(t), y), num_parallel_calls=tf.data.AUTOTUNE)
  ds = ds.unbatch()
  if cache is None:
    return ds
  if not cache:
    return ds.cache()
  save(ds, cache)
  return tf.data.Dataset.load(cache, ds.element_spec)


def save(ds: tf.data.Dataset, directory: str) -> None:
  """Writes `ds` to `directory` in one shard, so that it is read back in its order."""
  ds.save(directory, shard_func=lambda *_: np.int64(0))


def length(ds: tf.data.Dataset) -> int:
  """The number of elements of a finite dataset (read through once when tf.data does not know it)."""
  known = int(ds.cardinality())
  if known >= 0:
    return known
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
