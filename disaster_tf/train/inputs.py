"""The first phase of a run: from a config to everything the epochs read.

`prepare` loads the data, splits it by id, refuses splits the loop cannot use,
learns the lexicon and adapts the vocabularies on the training split (or
takes a resumed run's),
derives the class and loss weights, and vectorises each split once into a
saved dataset. It reads no model dir and writes only below `scratch`, so a run
that it refuses has written nothing, and a benchmark can call it alone.
"""

import dataclasses
import os
import time
from typing import Callable, NamedTuple, Optional, Tuple

import numpy as np
import tensorflow as tf
from absl import logging

from disaster_tf import config as config_lib
from disaster_tf import records
from disaster_tf.data import csv_files
from disaster_tf.data import decided as decided_lib
from disaster_tf.data import examples as examples_lib
from disaster_tf.data import lexicon as lexicon_lib
from disaster_tf.model import features
from disaster_tf.model import losses

EVAL_BATCH = 256  # evaluation batches: no gradients, so larger than training's for speed


class LanguageSplit(NamedTuple):
  """Validation messages that have an original, scored in one language (see `prepare`)."""

  name: str  # "original" (as sent) or "translation" (the English `message` of the same ids)
  examples: examples_lib.Examples
  dataset: tf.data.Dataset  # batched (inputs, labels [B, 36]), cached


@dataclasses.dataclass(frozen=True)
class RunInputs:
  """What one run trains and evaluates on, prepared before its first epoch.

  Attributes:
    load_report: what loading read, merged and dropped.
    splits: the examples, split by id hash.
    vocabularies: each model input's (adapted on `splits.train`, or reloaded).
    featurizer: raw strings [batch] -> the model's inputs.
    class_weights: [36, 3] float32 from the training split's label counts.
    loss_weights: [36] float32, per head.
    train_blocks: the training split, vectorised and cached in blocks of at most
      the shuffle buffer (`examples_lib.batched` mixes them); unbatched (inputs, labels [36]).
    steps_per_epoch: training batches per epoch (the last partial one is dropped).
    selection_name: "tune", or "validation" when there is no tune split: the
      split that picks the best epoch.
    selection_ds, tune_ds, validation_ds: batched (inputs, labels [B, 36])
      of those splits, cached; tune_ds is None without a tune split.
    languages: with --text_fields=message,original, the validation messages
      that have an original, as sent and as translated (same ids, same
      order); () otherwise.
    decided: with --decisions, the ids of the decided messages (`with_decisions`).
  """

  load_report: records.LoadReport
  splits: examples_lib.Splits
  vocabularies: features.Vocabularies
  featurizer: features.Featurizer
  class_weights: np.ndarray
  loss_weights: np.ndarray
  train_blocks: Tuple[tf.data.Dataset, ...]
  steps_per_epoch: int
  selection_name: str
  selection_ds: tf.data.Dataset
  tune_ds: Optional[tf.data.Dataset]
  validation_ds: tf.data.Dataset
  languages: Tuple[LanguageSplit, ...] = ()
  decided: frozenset = frozenset()

  @property
  def selection(self) -> examples_lib.Examples:
    """The examples of `selection_ds`."""
    return getattr(self.splits, self.selection_name)


def with_decisions(train_config: config_lib.TrainConfig, scratch: str, snapshot: str) -> Tuple[str, frozenset]:
  """--data with the decisions of the run's `snapshot` applied, written in `scratch` (the run's fingerprint then
  counts them); returns (that directory, the decided messages' ids in it).

  A decision of a message in --data keeps that message's side of the split (a correction of a validation label
  corrects what is reported on); a new message is given an id on the training side: it trains.

  Raises:
    decisions.StoreError: --data that is not two-file.
  """
  tc = train_config
  merged = os.path.join(scratch, "data-with-decisions")
  applied = decided_lib.merged_data(tc.data, snapshot, merged, lambda i: examples_lib.training_id(
      i, tc.validation_fraction, tc.tune_fraction, tc.split_seed))
  side = examples_lib.split_ids(list(applied.ids), tc.validation_fraction, tc.tune_fraction, tc.split_seed)
  sides = (examples_lib.TRAIN, examples_lib.TUNE, examples_lib.VALIDATION)
  logging.info("decisions: %d from %s: %d new messages, all trained on; %d override --data's labels and keep "
               "their messages' side of the split; in all %d train, %d tune, %d validation", len(applied.ids),
               tc.decisions, applied.new, applied.overridden, *(int((side == s).sum()) for s in sides))
  for clash in applied.clashes:
    logging.warning("decisions: %s", clash)
  return merged, frozenset(applied.ids)


def _load(config: config_lib.Config, scratch: str, decisions: Optional[str]
          ) -> Tuple[examples_lib.Examples, records.LoadReport, frozenset]:
  """The run's examples, what loading said, and the ids of the decided messages among them."""
  tc = config.train
  if tc.decisions and not decisions:
    raise ValueError(f"--decisions={tc.decisions}: the run's snapshot of them is missing (rundir.DecisionsSnapshot "
                     "takes it); nothing trains on --data without them")
  path, decided = with_decisions(tc, scratch, decisions) if decisions else (tc.data, frozenset())
  examples, load_report = csv_files.load(path, scratch, tc.text_fields)
  if decisions:  # named as the user gave it, not as the copy in scratch/ (removed when the run ends)
    load_report = dataclasses.replace(load_report, source=f"{tc.data} with the decisions of {tc.decisions}")
  logging.info("data: %s", load_report.summary())
  return examples, load_report, decided


def prepare(config: config_lib.Config, scratch: str,
            vocabularies: Optional[features.Vocabularies] = None, decisions: Optional[str] = None) -> RunInputs:
  """Loads, splits, checks and vectorises a run's data.

  Args:
    config: the run's configuration.
    scratch: an existing directory, this process's alone, for the text spool
      and the vectorised caches (~0.7 KB a message); it must outlive the result.
    vocabularies: a resumed run's; None adapts new ones on the training split.
    decisions: with --decisions, the run's snapshot of them (`rundir.DecisionsSnapshot`), applied over --data.

  Raises:
    csv_files.DataError: bad input data.
    ValueError: a split the loop cannot use (too small, or empty).
  """
  tc = config.train
  splits, languages, load_report, decided = load_splits(config, scratch, decisions)
  how = "reloaded"
  if vocabularies is None:
    start = time.time()
    # The same on every worker: both are learnt from the same split in the same order.
    lexicon = (lexicon_lib.from_training(splits.train, config.model.lexicon_variants) if config.model.lexicon
               else None)
    vocabularies = features.adapt(config.model, splits.train.texts(), lexicon)
    how = (f"read from {config.model.pretrained_encoder}" if config.model.pretrained_encoder else
           f"adapted on the training split in {time.time() - start:.1f}s")
  featurizer = features.Featurizer(config.model, vocabularies)
  logging.info("vocabularies: %s, %s", ", ".join(f"{n} {size} tokens" for n, size in featurizer.sizes.items()), how)
  if featurizer.lexicon is not None:
    logging.info("lexicon: %d words of the originals paired with English words", len(featurizer.lexicon))
  # Derived from the training split's counts, so not in the config.
  class_weights = losses.class_weight_table(tc.class_weight, losses.label_counts(splits.train.labels),
                                            tc.class_weight_cap)

  # Vectorised once into saved datasets: every epoch then reads token ids from disk,
  # and memory holds the shuffle buffer and the batch, not the data.
  def cached(split: examples_lib.Examples, name: str) -> tf.data.Dataset:
    return examples_lib.vectorized_dataset(split, featurizer, cache=os.path.join(scratch, name))
  train_blocks, steps_per_epoch = (_paired_blocks(splits.train, tc, cached, scratch) if tc.pairs else
                                   _training_blocks(splits.train, tc, cached))
  batch = max(tc.batch_size, EVAL_BATCH)
  validation_ds = examples_lib.batched(cached(splits.validation, "validation"), batch)
  tune_ds = examples_lib.batched(cached(splits.tune, "tune"), batch) if len(splits.tune) else None
  # The best epoch is chosen on the tune split when there is one, so that the
  # validation split, which is reported, chooses nothing.
  selection_name = "tune" if tune_ds is not None else "validation"
  languages = tuple(LanguageSplit(name, split, examples_lib.batched(cached(split, name), batch))
                    for name, split in languages)
  return RunInputs(load_report=load_report, splits=splits, vocabularies=vocabularies, featurizer=featurizer,
                   class_weights=class_weights, loss_weights=losses.loss_weight_vector(tc.loss_weights),
                   train_blocks=train_blocks, steps_per_epoch=steps_per_epoch,
                   selection_name=selection_name, selection_ds=tune_ds if tune_ds is not None else validation_ds,
                   tune_ds=tune_ds, validation_ds=validation_ds, languages=languages, decided=decided)


def load_splits(config: config_lib.Config, scratch: str, decisions: Optional[str] = None):
  """The run's examples split by id (validation on `message`: `_split_languages`), checked, with what loading
  said: (splits, language splits, load report, decided ids). `prepare` starts here; so does the members' phase
  (members.py), which scores the same tune and validation messages.

  Raises:
    csv_files.DataError: bad input data. ValueError: a split the loop cannot use (too small, or empty).
  """
  examples, load_report, decided = _load(config, scratch, decisions)
  splits, languages = _split_languages(examples_lib.split(examples, config.train))
  logging.info("split by id hash: %d train, %d tune, %d validation", *map(len, splits))
  check_splits(splits, config.train, total=len(examples))
  return splits, languages, load_report, decided


def _training_blocks(train: examples_lib.Examples, train_config: config_lib.TrainConfig,
                     cached: Callable[[examples_lib.Examples, str], tf.data.Dataset]
                     ) -> Tuple[Tuple[tf.data.Dataset, ...], int]:
  """The training split vectorised and saved, in blocks of at most the shuffle buffer; steps per epoch.

  With --original_copies=N, the originals follow N - 1 more times, as blocks of their own.
  """
  tc = train_config
  start = time.time()
  blocks = tuple(cached(block, f"train-{i}") for i, block in enumerate(train.blocks(tc.shuffle_buffer)))
  originals = train.field(examples_lib.ORIGINAL)
  if tc.original_copies > 1 and len(originals):  # the originals again, as blocks of their own
    blocks += tuple(cached(block, f"originals-{i}").repeat(tc.original_copies - 1)
                    for i, block in enumerate(originals.blocks(tc.shuffle_buffer)))
  logging.info("vectorised the training split in %.1fs (%d block(s) of up to %d: the shuffle buffer)",
               time.time() - start, len(blocks), tc.shuffle_buffer)
  return blocks, (len(train) + (tc.original_copies - 1) * len(originals)) // tc.batch_size


def _paired_blocks(train: examples_lib.Examples, train_config: config_lib.TrainConfig,
                   cached: Callable[[examples_lib.Examples, str], tf.data.Dataset], scratch: str
                   ) -> Tuple[Tuple[tf.data.Dataset, ...], int]:
  """--pairs: the training messages, each row carrying its original (`examples_lib.paired`), in blocks; steps per
  epoch."""
  tc = train_config
  start = time.time()
  messages, originals, present = examples_lib.aligned_originals(train, os.path.join(scratch, "originals-aligned"))
  blocks, first = [], 0
  for i, (m, o) in enumerate(zip(messages.blocks(tc.shuffle_buffer), originals.blocks(tc.shuffle_buffer))):
    translated, sent = cached(m, f"train-{i}"), cached(o, f"originals-{i}")
    blocks.append(examples_lib.paired(translated, sent, present[first:first + len(m)]))
    first += len(m)
  logging.info("vectorised the training split in %.1fs: %d messages, %d with their original beside them, "
               "%d block(s)", time.time() - start, len(messages), int(present.sum()), len(blocks))
  return tuple(blocks), len(messages) // tc.batch_size


def _split_languages(splits: examples_lib.Splits):
  """Keeps validation to the `message` texts, and sets apart the messages that have an original.

  Training and tune read both copies of a message (the served model meets both
  languages); the validation report stays on `message`, so that it compares
  with a run that read no originals, and the originals get a report of their
  own beside their translations'.

  Returns:
    (splits, (("original", examples), ("translation", examples))), or
    (splits, ()) when validation holds no original.
  """
  validation = splits.validation
  originals, messages = validation.field(examples_lib.ORIGINAL), validation.field(examples_lib.MESSAGE)
  if not len(originals):
    return splits._replace(validation=messages), ()
  translations = messages.subset(np.isin(messages.ids, originals.ids))
  return splits._replace(validation=messages), (("original", originals), ("translation", translations))


def check_splits(splits: examples_lib.Splits, train_config: config_lib.TrainConfig, total: int) -> None:
  """Raises ValueError, naming the flag to change, for splits a run cannot train or report on."""
  tc = train_config
  if len(splits.train) < tc.batch_size:
    raise ValueError(f"batch_size={tc.batch_size} is larger than the training split ({len(splits.train)} "
                     "examples); lower --batch_size or add data")
  if not len(splits.validation):
    raise ValueError(f"the validation split is empty ({total} examples, validation_fraction="
                     f"{tc.validation_fraction}); add data or raise --validation_fraction")
  if tc.tune_fraction and not len(splits.tune):
    raise ValueError(f"the tune split is empty ({total} examples, tune_fraction={tc.tune_fraction}); "
                     "add data, raise --tune_fraction, or set it to 0")
