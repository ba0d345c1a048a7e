"""Quality on held-out messages: the scikit-learn reference, the article's setup, baselines, backbones, seeds.

  python bench/quality.py [--data=../shared/data] [--out=/tmp/disaster_tf_quality]   # needs .[bench]

Fits the classic scikit-learn pipeline (bench/reference.py: TF-IDF word
uni+bigrams, one logistic regression per category), then trains, one after
the other on the shared data, the reference article's setup
(configs/seed_article.flags), the linear baseline (configs/linear.flags), each
candidate backbone for the default, and the default again with other seeds,
then writes to BENCHMARKS.md: the summary scores at 0.5 and at tuned
thresholds, the default's seed-to-seed spread, the F1 of the rare categories,
and the targets (default vs. the reference, the article and linear, tuned,
validation split). Every run uses the same id split: train 75%, tune 10%
(best epoch, thresholds), validation 15% (reported).
"""

import os
import sys
import time

import numpy as np
from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (bench/common.py)

DEFAULT = "configs/disaster_response.flags"
# The default (multi_cnn, 128 wide) and the other backbones and settings it was chosen against.
RUNS = (
    ("article", "configs/seed_article.flags", []),
    ("linear", "configs/linear.flags", []),
    ("default", DEFAULT, []),
    ("cnn_rnn", DEFAULT, ["--model=cnn_rnn", "--embedding_dim=64", "--conv_filters=64"]),
    ("bigru", DEFAULT, ["--model=bigru", "--embedding_dim=64"]),
    ("multi_cnn 64", DEFAULT, ["--conv_filters=64", "--embedding_dim=64"]),
    ("default, effective_number", DEFAULT, ["--class_weight=effective_number"]),
    ("default, dropout 0.5", DEFAULT, ["--dropout=0.5"]),
    # The same default with other seeds (42 is the default's): the spread a difference must beat.
    ("default, seed 43", DEFAULT, ["--seed=43"]),
    ("default, seed 44", DEFAULT, ["--seed=44"]),
)
REFERENCE = "sklearn reference"
SEEDED = ("default", "default, seed 43", "default, seed 44")
RARE = ("offer", "security", "tools", "shops", "fire", "clothing", "missing_people", "hospitals", "aid_centers",
        "electricity", "money", "cold")


def define_flags():
  flags.DEFINE_string("data", "../shared/data", "Data to train on.")
  flags.DEFINE_string("out", "/tmp/disaster_tf_quality", "Parent of the runs' model dirs (emptied first).")
  flags.DEFINE_list("only", [], "Run only these names (default: all).")


def rare_table(rows) -> str:
  head = "| category | validation support | " + " | ".join(f"{n} @0.5 | {n} tuned" for n, _, _ in rows) + " |"
  lines = [head, "| --- | --- | " + " | ".join("--- | ---" for _ in rows) + " |"]
  for c in RARE:
    support = rows[0][1]["final"]["categories"][c]["support"]
    cells = " | ".join(f"{b['final']['at_0.5']['categories'][c]['f1']:.2f} | {b['final']['categories'][c]['f1']:.2f}"
                       for _, b, _ in rows)
    lines.append(f"| {c} | {support} | {cells} |")
  return "\n".join(lines)


def seed_spread(rows) -> str:
  """The default's validation scores (tuned) over its seeds: what a difference must exceed to be a result."""
  finals = [b["final"] for n, b, _ in rows if n in SEEDED]
  if len(finals) < 2:
    return ""
  parts = []
  for key, fmt in (("total", ".2f"), ("mean_positive_f1", ".3f"), ("micro_f1", ".3f")):
    values = np.array([f[key] for f in finals])
    parts.append(f"{key} {values.mean():{fmt}} ± {values.std(ddof=1):{fmt}} (range {values.min():{fmt}} to "
                 f"{values.max():{fmt}}, spread {values.max() - values.min():{fmt}})")
  return f"The default over {len(finals)} seeds (validation, tuned): " + "; ".join(parts) + "."


def _verdict(gain: float, target: float) -> str:
  return f"{gain:+.3f} (target >= {target:+g}: {'met' if gain >= target else 'NOT met'})"


def targets(rows) -> str:
  by_name = {n: b["final"] for n, b, _ in rows}
  lines = []
  if {"default", REFERENCE} <= set(by_name):
    d, r = by_name["default"], by_name[REFERENCE]
    lines.append(f"default - {REFERENCE}: Total {_verdict(d['total'] - r['total'], 1.0)}; mean positive F1 "
                 f"{_verdict(d['mean_positive_f1'] - r['mean_positive_f1'], 0.03)}.")
  if {"default", "article", "linear"} <= set(by_name):
    d, a, l = by_name["default"], by_name["article"], by_name["linear"]
    lines.append(f"default - article Total = {_verdict(d['total'] - a['total'], 3)}; default - linear mean "
                 f"positive F1 = {_verdict(d['mean_positive_f1'] - l['mean_positive_f1'], 0.03)}.")
  return ("Targets (validation split, tuned thresholds):\n\n" + "\n".join(f"- {x}" for x in lines)) if lines else ""


def main(argv):
  del argv
  f = flags.FLAGS
  rows = []
  if not f.only or REFERENCE in f.only:
    import reference  # pylint: disable=import-outside-toplevel  # bench/reference.py; needs .[bench]
    start = time.time()
    body = reference.fit_and_score(f.data, common.config_from_flagfile(DEFAULT, data=f.data).train)
    rows.append((REFERENCE, body, time.time() - start))
    print(f"{REFERENCE}: fit {body['fit_seconds']:.0f} s", flush=True)
  for name, flagfile, extra in RUNS:
    if f.only and name not in f.only:
      continue
    body, wall = common.run_train(name, flagfile, extra, f.data, f.out)
    rows.append((name, body, wall))
  text = "\n\n".join(x for x in (
      f"Runs: `{REFERENCE}` = bench/reference.py (TF-IDF word uni+bigrams, sublinear tf, min_df 2, accents "
      "stripped; one LogisticRegression per category, class_weight balanced, C 4; wall s = fit and scoring; "
      "thresholds tuned on tune like the others); " +
      "; ".join(f"`{n}` = `{ff}{(' ' + ' '.join(e)) if e else ''}`" for n, ff, e in RUNS
                if not f.only or n in f.only),
      common.summary_table(rows), seed_spread(rows), targets(rows),
      "F1 of the positive class of rare categories on the validation split:", rare_table(rows)) if x)
  print(text)
  common.write_section("quality", "Quality on held-out messages", text)


if __name__ == "__main__":
  define_flags()
  app.run(main)
