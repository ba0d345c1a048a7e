"""The language gate's phase: fitted on the training split's messages against their originals, once per run.

The last phase of `loop.train_and_evaluate` (--language_gate, on by default). It reads --data with both text
fields (the network may read `message` only), splits it by the run's id hash, fits `language.train` on the
training split and scores it on the validation split (recall on originals, false flags on English messages),
then writes `language_gate.npy` and `language_gate.json` into the model dir (the chief only), which
`savedmodel.export` puts into every export. A model dir that holds them already keeps them: the same split
and data give the same gate. Data without originals (an `original` column, or none filled) gets no gate,
said in the log: such an export answers without `language`.
"""

import os
import time
from typing import Optional

from absl import logging

from disaster_tf import config as config_lib
from disaster_tf.data import csv_files
from disaster_tf.data import examples as examples_lib
from disaster_tf.model import language
from disaster_tf.train import distribute

# P(other) at which a message is "other": the lowest measured, since a Creole appeal read as English is the silent
# failure and a false flag only asks a person to read; 0.98 of the validation originals, at most 1.2% of English
# messages flagged on 3 seeds (0.7 would flag 0.6% and miss 2.5% of originals: BENCHMARKS.md "gate").
THRESHOLD = 0.5


def fit(config: config_lib.Config, dirs: distribute.RunDirs) -> Optional[language.GateRecord]:
  """Fits the gate of a run and writes it into the model dir, unless it holds one already; returns its record.

  Returns:
    The gate's record, or None when the data has no originals to learn the other side from.
  """
  existing = language.load(dirs.model_dir)
  if existing is not None:
    logging.info("language gate: kept (%s)", describe(existing[1]))
    return existing[1]
  tc = config.train
  start = time.time()
  scratch = os.path.join(dirs.scratch, "language-gate")
  os.makedirs(scratch, exist_ok=True)
  examples, _ = csv_files.load(tc.data, scratch, text_fields=examples_lib.TEXT_FIELDS)
  splits = examples_lib.split(examples, tc)
  train, validation = splits.train, splits.validation
  if not len(train.field(examples_lib.ORIGINAL)):
    logging.warning("language gate: %s has no originals (the `original` column) in its training split, so the "
                    "export cannot tell English from other languages; it answers without `language`", tc.data)
    return None
  weights = language.train(train.field(examples_lib.MESSAGE).texts(), train.field(examples_lib.ORIGINAL).texts(),
                           seed=tc.seed)
  scores = language.scores(weights, validation.field(examples_lib.MESSAGE).texts(),
                           validation.field(examples_lib.ORIGINAL).texts(), THRESHOLD)
  record = language.GateRecord(language.BUCKETS, language.WIDTHS, THRESHOLD, scores)
  if dirs.chief:
    language.save(weights, record, dirs.model_dir)
  logging.info("language gate: fitted on %d messages and %d originals in %.0fs (%s)",
               len(train.field(examples_lib.MESSAGE)), len(train.field(examples_lib.ORIGINAL)), time.time() - start,
               describe(record))
  return record


def describe(record: language.GateRecord) -> str:
  """The gate's validation scores in words."""
  s = record.scores
  return (f"on validation: {s['other_recall']:.1%} of {int(s['other_texts'])} originals flagged as not English, "
          f"{s['english_false_flags']:.1%} of {int(s['english_texts'])} English messages wrongly")
