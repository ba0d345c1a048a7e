"""Learning from operators, simulated: does the review queue's sampler teach the model more than random choice?

  python bench/active.py                       # 3 seeds x 8 rounds of 500, linear config (~1 h on 2 cores)
  python bench/active.py --seeds=42 --rounds=2 --round_size=200 --no_write   # a quick look

On the shared data, with the id split of the default configuration (validation
and tune fixed and labelled), each seed starts from a random `--start_fraction`
of the training split as labelled; the rest is the pool, whose labels are
revealed only when a message is acquired. Each round acquires `--round_size`
messages from the pool by each method (random choice, and each sampler of
`disaster_tf.sampling` with its diversity step, scored by the method's own
previous model), writes the labelled messages as a two-file data dir, and
trains a new model on them from scratch (train.py, `configs/linear.flags`).
Recorded per round: validation Total (tuned thresholds) and the mean
positive-class F1 of the rare categories (the RARE binary categories with the
fewest training positives). Writes BENCHMARKS.md's "Learning from operators"
section (`--section`): the table, the targets line and an SVG plot (docs/<section>.svg).
"""

import csv
import json
import os
import shutil
import sys
from typing import Dict, List, Sequence

import numpy as np
from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench import common  # pylint: disable=wrong-import-position
from disaster_tf import labels  # pylint: disable=wrong-import-position
from disaster_tf import records  # pylint: disable=wrong-import-position
from disaster_tf.data import examples as examples_lib  # pylint: disable=wrong-import-position
from disaster_tf.triage import sampling  # pylint: disable=wrong-import-position

RARE = 12  # the categories whose headroom the issue names: tools, shops, aid_centers, security, hospitals, fire, ...
FLAGFILE = "configs/linear.flags"  # the fastest configuration within ~0.3 Total of the default


def define_flags() -> None:
  flags.DEFINE_string("data", os.path.join(common.ROOT, "..", "shared", "data"), "The two-file data directory.")
  flags.DEFINE_list("seeds", ["42", "43", "44"], "One simulation per seed (its start set and random choices).")
  flags.DEFINE_integer("rounds", 8, "Acquisition rounds.")
  flags.DEFINE_integer("round_size", 500, "Messages acquired per round.")
  flags.DEFINE_float("start_fraction", 0.1, "Share of the training split labelled at the start.")
  flags.DEFINE_list("methods", ["random", *sampling.METHODS], "random, and samplers of disaster_tf.sampling.")
  flags.DEFINE_string("out", "/tmp/disaster_active", "Scratch: data dirs and model dirs (removed as it goes).")
  flags.DEFINE_list("train_flags", ["--epochs=10"], "Flags added to every training (the same for every method); "
                    "10 of the flagfile's 30 cosine epochs keep ~100 trainings within an hour on 2 cores.")
  flags.DEFINE_bool("write", True, "Write BENCHMARKS.md's section and docs/active.svg.")
  flags.DEFINE_string("section", "active", "BENCHMARKS.md's section (and docs/<section>.svg) to write.")
  flags.DEFINE_string("title", "Learning from operators", "The section's title.")
  flags.DEFINE_list("from_results", [], "Instead of simulating, merge these results.json files (runs of other "
                    "methods with the same seeds: random's choices depend only on the seed) and report them.")


class Raw:
  """The two CSV files' rows by id, as read (written back for any subset of ids)."""

  def __init__(self, data_dir: str):
    self.headers, self.rows = {}, {}
    for name in (labels.MESSAGES_FILE, labels.CATEGORIES_FILE):
      with open(os.path.join(data_dir, name), encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        self.headers[name] = next(reader)
        by_id: Dict[str, List[List[str]]] = {}
        for row in reader:
          by_id.setdefault(row[0], []).append(row)
        self.rows[name] = by_id
    self.ids = sorted(self.rows[labels.MESSAGES_FILE])
    self.texts = {i: rows[0][1] for i, rows in self.rows[labels.MESSAGES_FILE].items()}
    self.labels = {i: _labels(rows) for i, rows in self.rows[labels.CATEGORIES_FILE].items()}

  def write(self, ids: Sequence[str], directory: str) -> None:
    os.makedirs(directory, exist_ok=True)
    for name, by_id in self.rows.items():
      with open(os.path.join(directory, name), "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(self.headers[name])
        for i in ids:
          writer.writerows(by_id.get(i, []))


def _labels(rows: List[List[str]]) -> np.ndarray:
  """[36] the per-label maximum over an id's rows (the loader's rule for repeated ids); related > 0 counts."""
  values = np.array([[int(p.rsplit("-", 1)[1]) for p in row[1].split(";")] for row in rows]).max(axis=0)
  return (values > 0).astype(np.int64)


def score_pool(model_dir: str, texts: Sequence[str]):
  """([N, 36] the trained model's scores for `texts`, [36] its tuned thresholds)."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from disaster_tf.serve import module as module_lib  # pylint: disable=import-outside-toplevel
  from disaster_tf.train import checkpoint  # pylint: disable=import-outside-toplevel
  loaded = checkpoint.load_model(model_dir)
  thresholds = checkpoint.read_thresholds(model_dir)
  module = module_lib.ServingModule(module_lib.Member(loaded.model, loaded.featurizer, thresholds))
  scores = [module.predict(tf.constant(list(texts[i:i + 2048])))["scores"].numpy()
            for i in range(0, len(texts), 2048)]
  return np.concatenate(scores), thresholds


def train(raw: Raw, ids: Sequence[str], fixed: Sequence[str], name: str, out: str) -> Dict:
  """Trains on `ids` (labelled training messages) plus `fixed` (tune and validation); returns metrics.json."""
  data_dir = os.path.join(out, name + "-data")
  raw.write(list(ids) + list(fixed), data_dir)
  body, _ = common.run_train(name, FLAGFILE, flags.FLAGS.train_flags, data_dir, out)
  shutil.rmtree(data_dir)
  return body


def measure(body: Dict, rare: Sequence[str]) -> Dict[str, float]:
  final = records.Scores.from_json(body["final"])
  return {"total": final.total, "rare_f1": float(np.mean([final.categories[c].f1 for c in rare]))}


def simulate(raw: Raw, seed: int, side_of: Dict[str, int], rare: Sequence[str]) -> Dict:
  """One seed: {method: [{"labels", "total", "rare_f1"} per round, round 0 first]}."""
  f = flags.FLAGS
  rng = np.random.default_rng(seed)
  train_ids = [i for i in raw.ids if side_of[i] == examples_lib.TRAIN]
  fixed = [i for i in raw.ids if side_of[i] != examples_lib.TRAIN]
  start = sorted(rng.choice(train_ids, int(f.start_fraction * len(train_ids)), replace=False).tolist())
  name0 = f"s{seed}-start"
  first = measure(train(raw, start, fixed, name0, f.out), rare)
  curves = {}
  for method in f.methods:
    labelled, model_dir = list(start), os.path.join(f.out, name0)
    curve = [dict(first, labels=len(labelled))]
    for r in range(1, f.rounds + 1):
      chosen = set(labelled)
      pool = [i for i in train_ids if i not in chosen]
      if method == "random":
        picked = rng.choice(pool, f.round_size, replace=False).tolist()
      else:
        scores, thresholds = score_pool(model_dir, [raw.texts[i] for i in pool])
        positives = np.sum([raw.labels[i] for i in labelled], axis=0)  # what the operators have taught so far
        picked = [pool[k] for k in sampling.rank(scores, thresholds, [raw.texts[i] for i in pool],
                                                 [f"{seed}:{r}:{i}" for i in pool], f.round_size, method, positives)]
      labelled += picked
      name = f"s{seed}-{method}-{r}"
      curve.append(dict(measure(train(raw, labelled, fixed, name, f.out), rare), labels=len(labelled)))
      if model_dir != os.path.join(f.out, name0):
        shutil.rmtree(model_dir, ignore_errors=True)
      model_dir = os.path.join(f.out, name)
      print(json.dumps({"seed": seed, "method": method, **curve[-1]}), flush=True)
    shutil.rmtree(model_dir, ignore_errors=True)
    curves[method] = curve
  return curves


def main(argv):
  del argv
  f = flags.FLAGS
  if f.from_results:
    return finish(*merged(f.from_results), write=f.write)
  raw = Raw(f.data)
  tc = common.config_from_flagfile(FLAGFILE).train
  side = examples_lib.split_ids(raw.ids, tc.validation_fraction, tc.tune_fraction, tc.split_seed)
  side_of = dict(zip(raw.ids, side.tolist()))
  positives = np.sum([raw.labels[i] for i in raw.ids if side_of[i] == examples_lib.TRAIN], axis=0)
  binary = [(positives[k], c) for k, c in enumerate(labels.CATEGORIES) if k and positives[k] > 0]
  rare = [c for _, c in sorted(binary)[:RARE]]
  results = {int(s): simulate(raw, int(s), side_of, rare) for s in f.seeds}
  with open(os.path.join(f.out, "results.json"), "w", encoding="utf-8") as out:
    json.dump({"rare": rare, "results": results}, out)
  if "random" in f.methods:
    finish(results, rare, "", f.write)


def merged(paths: Sequence[str]):
  """(results, rare, a note naming the runs) of several results.json files, their methods side by side."""
  results, rare, runs = {}, None, []
  for path in paths:
    with open(path, encoding="utf-8") as f:
      body = json.load(f)
    rare = rare or body["rare"]
    for seed, curves in body["results"].items():
      results.setdefault(int(seed), {}).update(curves)
    runs.append(",".join(next(iter(body["results"].values()))))
  note = (f"Merged from {len(paths)} runs of this script with the same seeds and settings ("
          + "; ".join(f"`--methods={r}`" for r in runs) + "); each seed starts from the same labelled set in "
          "every run.")
  return results, rare, note


def finish(results: Dict, rare: Sequence[str], note: str = "", write: bool = True) -> None:
  section = flags.FLAGS.section
  text = (note + "\n\n" if note else "") + report(results, rare, f"docs/{section}.svg")
  print(text)
  if write:
    write_plot(results, os.path.join(common.ROOT, "docs", f"{section}.svg"))
    common.write_section(section, flags.FLAGS.title, text)


def report(results: Dict, rare: Sequence[str], plot: str) -> str:
  """The table (mean over seeds per method and round), each seed's difference to random, the targets line."""
  methods = list(next(iter(results.values())))
  rounds = len(results[next(iter(results))][methods[0]])
  lines = [f"Rare categories (the {len(rare)} with the fewest training positives): {', '.join(rare)}.", "",
           "| labels | " + " | ".join(f"{m} Total | {m} rare F1" for m in methods) + " |",
           "| --- |" + " --- | --- |" * len(methods)]
  for r in range(rounds):
    cells = []
    for m in methods:
      total = np.mean([results[s][m][r]["total"] for s in results])
      rare_f1 = np.mean([results[s][m][r]["rare_f1"] for s in results])
      cells += [f"{total:.2f}", f"{rare_f1:.3f}"]
    lines.append(f"| {results[next(iter(results))][methods[0]][r]['labels']} | " + " | ".join(cells) + " |")
  lines.append("")
  for m in methods[1:]:
    dt = [results[s][m][-1]["total"] - results[s]["random"][-1]["total"] for s in results]
    dr = [results[s][m][-1]["rare_f1"] - results[s]["random"][-1]["rare_f1"] for s in results]
    reach = [next((c["labels"] - results[s][m][0]["labels"] for c in results[s][m]
                   if c["total"] >= results[s]["random"][-1]["total"]), None) for s in results]
    lines.append(f"- `{m}` - random after the last round, seed by seed: Total {', '.join(f'{d:+.2f}' for d in dt)}; "
                 f"rare F1 {', '.join(f'{d:+.3f}' for d in dr)}; acquired labels to reach random's final Total: "
                 f"{', '.join('not reached' if x is None else str(x) for x in reach)}.")
  spread = [np.ptp([results[s]["random"][-1]["total"] for s in results])]
  lines.append(f"- random's final Total across seeds: spread {spread[0]:.2f}.")
  lines.append("- Targets (issue 24): after 8 rounds (4,000 acquired labels) the sampler >= +0.5 Total and >= +0.03 "
               "rare-category mean "
               "positive F1 above random at the same budget, or random's final Total with <= 2,400 acquired labels; "
               "each seed's difference above the seed spread.")
  lines.append("")
  lines.append(f"![Validation Total and rare-category F1 against labels]({plot})")
  return "\n".join(lines)


def write_plot(results: Dict, path: str) -> None:
  """An SVG: mean validation Total (left) and rare F1 (right) against labels, one line per method."""
  methods = list(next(iter(results.values())))
  colours = dict(zip(methods, ("#888888", "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf",
                               "#8c564b")))
  panels = []
  for p, (key, title) in enumerate((("total", "validation Total"), ("rare_f1", "rare-category F1"))):
    curves = {m: [(c["labels"], np.mean([results[s][m][r][key] for s in results]))
                  for r, c in enumerate(results[next(iter(results))][m])] for m in methods}
    xs = [x for pts in curves.values() for x, _ in pts]
    ys = [y for pts in curves.values() for _, y in pts]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    ox = 60 + p * 340

    def at(x, y, ox=ox, x0=x0, x1=x1, y0=y0, y1=y1):
      return ox + 260 * (x - x0) / max(x1 - x0, 1), 230 - 190 * (y - y0) / max(y1 - y0, 1e-9)
    parts = [f'<text x="{ox}" y="20">{title} (mean of {len(results)} seeds)</text>',
             f'<line x1="{ox}" y1="230" x2="{ox + 260}" y2="230" stroke="black"/>',
             f'<line x1="{ox}" y1="40" x2="{ox}" y2="230" stroke="black"/>',
             f'<text x="{ox}" y="248">{x0}</text><text x="{ox + 230}" y="248">{x1} labels</text>',
             f'<text x="{ox - 55}" y="234">{y0:.2f}</text><text x="{ox - 55}" y="44">{y1:.2f}</text>']
    for m, pts in curves.items():
      points = " ".join(f"{a:.1f},{b:.1f}" for a, b in (at(x, y) for x, y in pts))
      parts.append(f'<polyline fill="none" stroke="{colours[m]}" stroke-width="2" points="{points}"/>')
    panels.append("".join(parts))
  legend = "".join(f'<text x="{10 + 100 * i}" y="275" fill="{colours[m]}">{m}</text>' for i, m in enumerate(methods))
  with open(path, "w", encoding="utf-8") as f:
    f.write(f'<svg xmlns="http://www.w3.org/2000/svg" width="720" height="290" font-family="sans-serif" '
            f'font-size="12">{"".join(panels)}{legend}</svg>\n')


if __name__ == "__main__":
  define_flags()
  app.run(main)
