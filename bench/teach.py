"""Do the messages the queue chose also teach the default ensemble more than random ones do?

  python bench/teach.py --results=/tmp/disaster_active --methods=random,rare_summed   # 3 seeds x 2 (~20 min)

Reads the final labelled sets a run of bench/active.py left in its --out (`s<seed>-<method>.ids`: the start set
and every message acquired), trains the default configuration (`configs/disaster_response.flags`) on each, with
the same fixed tune and validation messages, and reports validation Total, mean positive F1 and the rare
categories' F1 per seed and method. Writes BENCHMARKS.md's "active_default" section.
"""

import json
import os
import shutil
import sys
from typing import Dict, List

import numpy as np
from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench import active  # pylint: disable=wrong-import-position
from bench import common  # pylint: disable=wrong-import-position
from disaster_tf import records  # pylint: disable=wrong-import-position
from disaster_tf.data import examples as examples_lib  # pylint: disable=wrong-import-position

DEFAULT = "configs/disaster_response.flags"


def define_flags() -> None:
  flags.DEFINE_string("data", os.path.join(common.ROOT, "..", "shared", "data"), "The two-file data directory.")
  flags.DEFINE_list("results", ["/tmp/disaster_active"], "bench/active.py --out dirs (their results.json and "
                    ".ids files; several: runs of other seeds with the same settings).")
  flags.DEFINE_list("methods", ["random", "rare_summed"], "The labelled sets to train on (random first).")
  flags.DEFINE_string("out", "/tmp/disaster_teach", "Scratch: data dirs and model dirs.")
  flags.DEFINE_list("train_flags", [], "Flags added to every training.")
  flags.DEFINE_list("merge", [], "Instead of training, report these runs' --out dirs together (their rows.json: "
                    "runs of other seeds with the same settings).")
  flags.DEFINE_bool("write", True, "Write BENCHMARKS.md's section.")


def main(argv):
  del argv
  f = flags.FLAGS
  if f.merge:
    rows = {}
    for out in f.merge:
      with open(os.path.join(out, "rows.json"), encoding="utf-8") as fh:
        rows.update(json.load(fh))
    return finish(dict(sorted(rows.items())))
  raw = active.Raw(f.data)
  tc = common.config_from_flagfile(DEFAULT).train
  side = examples_lib.split_ids(raw.ids, tc.validation_fraction, tc.tune_fraction, tc.split_seed)
  fixed = [i for i, s in zip(raw.ids, side) if s != examples_lib.TRAIN]
  where, rare = {}, None
  for results in f.results:
    with open(os.path.join(results, "results.json"), encoding="utf-8") as fh:
      body = json.load(fh)
    rare = body["rare"]
    where.update({seed: results for seed in body["results"]})
  rows: Dict[str, Dict[str, Dict]] = {}
  for seed in sorted(where):
    for method in f.methods:
      with open(os.path.join(where[seed], f"s{seed}-{method}.ids"), encoding="utf-8") as fh:
        ids = [line.strip() for line in fh if line.strip()]
      name = f"s{seed}-{method}"
      data_dir = os.path.join(f.out, name + "-data")
      raw.write(ids + fixed, data_dir)
      metrics, _ = common.run_train(name, DEFAULT, f.train_flags, data_dir, f.out)
      shutil.rmtree(data_dir)
      final = records.Scores.from_json(metrics["final"])
      rows.setdefault(seed, {})[method] = {"labels": len(ids), "total": final.total,
                                           "mean_positive_f1": final.mean_positive_f1,
                                           "rare_f1": float(np.mean([final.categories[c].f1 for c in rare]))}
      print(json.dumps({"seed": seed, "method": method, **rows[seed][method]}), flush=True)
  with open(os.path.join(f.out, "rows.json"), "w", encoding="utf-8") as fh:
    json.dump(rows, fh)
  finish(rows)


def finish(rows: Dict[str, Dict[str, Dict]]) -> None:
  f = flags.FLAGS
  text = report(rows, f.methods)
  print(text)
  if f.write:
    common.write_section("active_default", "Learning from operators: the default trained on the chosen messages",
                         text)


def report(rows: Dict[str, Dict[str, Dict]], methods: List[str]) -> str:
  lines = [f"The final labelled sets of `{','.join(flags.FLAGS.results)}` (bench/active.py), each trained with "
           f"`{DEFAULT}` "
           "beside the same fixed tune and validation messages; validation, tuned thresholds.", "",
           "| seed | method | labels | Total | mean pos. F1 | rare F1 |", "| --- | --- | --- | --- | --- | --- |"]
  for seed, by_method in rows.items():
    for m in methods:
      r = by_method[m]
      lines.append(f"| {seed} | {m} | {r['labels']:,} | {r['total']:.2f} | {r['mean_positive_f1']:.3f} | "
                   f"{r['rare_f1']:.3f} |")
  lines.append("")
  base = methods[0]
  for m in methods[1:]:
    dt = [rows[s][m]["total"] - rows[s][base]["total"] for s in rows]
    dr = [rows[s][m]["rare_f1"] - rows[s][base]["rare_f1"] for s in rows]
    lines.append(f"- `{m}` - `{base}`, seed by seed: Total {', '.join(f'{d:+.2f}' for d in dt)}; rare F1 "
                 f"{', '.join(f'{d:+.3f}' for d in dr)}.")
  return "\n".join(lines)


if __name__ == "__main__":
  define_flags()
  app.run(main)
