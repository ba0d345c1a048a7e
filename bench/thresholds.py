"""Which threshold objective serves the reported score: positive-class F1 or macro-F1, on the same models.

  python bench/thresholds.py [--runs=/tmp/disaster_tf_quality] [--names=default,default seed 43,...]

Takes the model dirs that bench/quality.py trained (the default with three
seeds, by default), and for each one re-tunes the best checkpoint's
thresholds on the tune split for each objective (`metrics.tune_thresholds`)
and scores the validation split, with the loop's own evaluation path. Same
model, same data: each difference is paired, so it is read per seed, and a
choice is made only if it holds for every seed.
"""

import os
import shutil
import sys
import tempfile

import numpy as np
from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (bench/common.py)

NAMES = ("default", "default seed 43", "default seed 44")


def define_flags():
  flags.DEFINE_string("runs", "/tmp/disaster_tf_quality", "bench/quality.py's --out: the trained model dirs.")
  flags.DEFINE_list("names", list(NAMES), "Model dirs below --runs to score.")
  flags.DEFINE_string("data", "../shared/data", "The data those runs trained on.")


def score(model_dir: str, data_path: str):
  """{objective: validation summary scores} for the best checkpoint of `model_dir`, thresholds re-tuned on tune."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from disaster_tf.model import metrics  # pylint: disable=import-outside-toplevel
  from disaster_tf.train import checkpoint  # pylint: disable=import-outside-toplevel
  from disaster_tf.train import inputs  # pylint: disable=import-outside-toplevel
  from disaster_tf.train import steps  # pylint: disable=import-outside-toplevel
  loaded = checkpoint.load_model(model_dir)
  config = loaded.config
  config = config.__class__(model=config.model, train=config.train.__class__(
      **{**config.train.__dict__, "data": data_path}))
  scratch = tempfile.mkdtemp(prefix="bench-thresholds-")
  try:
    run = inputs.prepare(config, scratch, vocabularies=loaded.vocabularies)
    weights = tf.constant(run.class_weights), tf.constant(run.loss_weights)
    eval_step = steps.make_eval_step(loaded.model, run.validation_ds.element_spec[0], *weights)
    tune = steps.evaluate_dataset(eval_step, run.tune_ds)
    validation = steps.evaluate_dataset(eval_step, run.validation_ds)
  finally:
    shutil.rmtree(scratch, ignore_errors=True)
  out = {}
  for objective in metrics.THRESHOLD_OBJECTIVES:
    thresholds = metrics.tune_thresholds(run.splits.tune.labels, tune.scores, config.train.min_tune_positives,
                                         objective)
    out[objective] = metrics.report(run.splits.validation.labels, validation.labels(thresholds)).summary()
  return out


def main(argv):
  del argv
  f = flags.FLAGS
  rows, deltas = [], []
  for name in f.names:
    reports = score(os.path.join(f.runs, name), f.data)
    p, m = reports["positive_f1"], reports["macro_f1"]
    deltas.append([m[k] - p[k] for k in ("total", "mean_positive_f1", "micro_f1")])
    rows.append(f"| {name} | {p['total']:.2f} | {m['total']:.2f} | {p['mean_positive_f1']:.3f} | "
                f"{m['mean_positive_f1']:.3f} | {p['micro_f1']:.3f} | {m['micro_f1']:.3f} |")
  deltas = np.array(deltas)
  lines = [f"Best checkpoints of `bench/quality.py`'s runs ({', '.join(f'`{n}`' for n in f.names)}), thresholds "
           "re-tuned on the tune split for each objective, scored on validation:", "",
           "| run | Total, positive_f1 | Total, macro_f1 | mean pos. F1, positive_f1 | mean pos. F1, macro_f1 | "
           "micro-F1, positive_f1 | micro-F1, macro_f1 |", "| --- | --- | --- | --- | --- | --- | --- |", *rows, "",
           f"macro_f1 - positive_f1, per run: Total {', '.join(f'{d:+.2f}' for d in deltas[:, 0])}; mean positive "
           f"F1 {', '.join(f'{d:+.3f}' for d in deltas[:, 1])}; micro-F1 "
           f"{', '.join(f'{d:+.3f}' for d in deltas[:, 2])}."]
  text = "\n".join(lines)
  print(text)
  common.write_section("thresholds", "Threshold objective", text)


if __name__ == "__main__":
  define_flags()
  app.run(main)
