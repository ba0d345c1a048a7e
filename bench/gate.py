"""The language gate alone, over 3 seeds and a range of thresholds (issue 37's targets).

  python bench/gate.py [--data=../shared/data] [--thresholds=0.5,0.6,0.7,0.8,0.9]

For each seed, fits the gate as a run's last phase does (`language.train` on
the training split's messages against their originals, the split of
configs/english.flags) and scores the validation split at each threshold:
recall on the originals (the messages as sent), false flags on the English
messages (every validation `message`) and, among them, on the translations
of the messages that have an original (the English nearest Creole: place
names and words left untranslated), and how many validation messages without
an original it sends to the other side. Writes the section "gate" of
BENCHMARKS.md.
"""

import os
import sys
import tempfile
import time

import numpy as np
from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (bench/common.py)

SEEDS = (42, 43, 44)
RECALL_TARGET, FALSE_FLAG_TARGET = 0.97, 0.02  # issue 37
flags.DEFINE_string("data", "../shared/data", "Data to fit and score the gate on.")
flags.DEFINE_list("thresholds", ["0.5", "0.6", "0.7", "0.8", "0.9"], "P(other) thresholds to score.")


def gate_scores(seed: int, data: str, spool: str) -> tuple:
  """(seconds to fit, {group: [n] P(other)}) of the gate of `seed` on the validation split."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from disaster_tf.data import csv_files  # pylint: disable=import-outside-toplevel
  from disaster_tf.data import examples as examples_lib  # pylint: disable=import-outside-toplevel
  from disaster_tf.model import language  # pylint: disable=import-outside-toplevel
  config = common.config_from_flagfile("configs/english.flags", data=data, seed=seed)
  examples, _ = csv_files.load(data, spool, text_fields=examples_lib.TEXT_FIELDS)
  splits = examples_lib.split(examples, config.train)
  train, validation = splits.train, splits.validation
  start = time.time()
  weights = language.train(train.field(examples_lib.MESSAGE).texts(), train.field(examples_lib.ORIGINAL).texts(),
                           seed=seed)
  seconds = time.time() - start
  messages, originals = validation.field(examples_lib.MESSAGE), validation.field(examples_lib.ORIGINAL)
  translated = np.isin(messages.ids, originals.ids)

  def p(texts):
    return np.concatenate([language.probability(tf.constant(weights), t).numpy() for t in texts.batch(1024)])
  english = p(messages.texts())
  return seconds, {"original": p(originals.texts()), "message": english, "translation": english[translated],
                   "no_original": english[~translated]}


def main(argv):
  del argv
  f = flags.FLAGS
  thresholds = [float(t) for t in f.thresholds]
  lines = ["| seed | threshold | recall on originals | false flags on English messages | on translations | "
           "messages without an original sent to the other side |", "| --- " * 6 + "|"]
  by_threshold = {t: [] for t in thresholds}
  fit_seconds = []
  for seed in SEEDS:
    with tempfile.TemporaryDirectory() as spool:
      seconds, scores = gate_scores(seed, f.data, spool)
    fit_seconds.append(seconds)
    for t in thresholds:
      flagged = {group: p >= t for group, p in scores.items()}
      row = (flagged["original"].mean(), flagged["message"].mean(), flagged["translation"].mean())
      by_threshold[t].append(row)
      lines.append(f"| {seed} | {t:g} | {row[0]:.3f} ({flagged['original'].sum()} of {len(flagged['original'])}) | "
                   f"{row[1]:.3f} ({flagged['message'].sum()} of {len(flagged['message'])}) | {row[2]:.3f} "
                   f"({flagged['translation'].sum()} of {len(flagged['translation'])}) | "
                   f"{flagged['no_original'].sum()} of {len(flagged['no_original'])} |")
  summary = [f"Fitting the gate: {np.mean(fit_seconds):.0f} s a seed (the training split, {len(SEEDS)} seeds)."]
  for t, rows in by_threshold.items():
    recall, english, translations = (min(r[0] for r in rows), max(r[1] for r in rows), max(r[2] for r in rows))
    met = ("met" if recall >= RECALL_TARGET else "NOT met", "met" if english <= FALSE_FLAG_TARGET else "NOT met")
    summary.append(f"At {t:g}, on every seed: recall on originals >= {recall:.3f} (target >= {RECALL_TARGET}: "
                   f"{met[0]}); false flags on English messages <= {english:.3f} (target <= {FALSE_FLAG_TARGET}: "
                   f"{met[1]}); on the translations alone <= {translations:.3f}.")
  text = "\n".join(lines) + "\n\n" + "\n\n".join(summary)
  print(text)
  common.write_section("gate", "The language gate", text)


if __name__ == "__main__":
  app.run(main)
