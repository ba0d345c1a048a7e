"""Learning from operators, simulated: does the review queue's sampler teach the model more than random choice?

  python bench/active.py                       # 3 seeds x 8 rounds of 500, linear config (~1 h on 2 cores)
  python bench/active.py --seeds=42 --rounds=2 --round_size=200 --nowrite   # a quick look

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
from typing import Dict, List, Optional, Sequence

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
  flags.DEFINE_enum("sample_at", "tuned", ["tuned", "0.5"], "The samplers' margins: against each head's tuned "
                    "threshold (what the page does), or against 0.5 for every head (the ablation's other arm).")
  flags.DEFINE_bool("diverse", True, "The samplers' diversity step (sampling.diverse_top: no two near-copies); "
                    "--nodiverse takes the top of the usefulness order as it is (the ablation's other arm).")
  flags.DEFINE_enum("decisions_rule", "train", ["train", "id_hash"], "Where acquired labels go: all to training "
                    "(the tune and validation sets stay fixed), or by a hash of the message, as decisions went before "
                    "issue 38 (~15% to validation, unused here, ~10% to tune, the rest to training).")
  flags.DEFINE_float("l2_examples", 0, "If > 0: each training's --linear_l2 is the flagfile's times this over the "
                     "labelled training messages, so that the penalty weighs on the data as scikit-learn's C does "
                     "(fixed C on fewer messages is a stronger prior); 0 keeps the flagfile's (tuned on ~17.9k).")
  flags.DEFINE_enum("learner", "project", ["project", "sklearn"], "Who learns each round: train.py with "
                    "--flagfile's configuration (and --train_flags), or bench/reference.py's scikit-learn pipeline "
                    "(TF-IDF + one LogisticRegression per head, balanced, C=4, lbfgs to convergence: the issue's).")
  flags.DEFINE_bool("write", True, "Write BENCHMARKS.md's section and docs/active.svg.")
  flags.DEFINE_string("section", "active", "BENCHMARKS.md's section (and docs/<section>.svg) to write.")
  flags.DEFINE_string("title", "Learning from operators", "The section's title.")
  flags.DEFINE_string("note", "", "With --from_results: the settings the runs were made with, said first.")
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

  def write(self, ids: Sequence[str], directory: str, rename: Optional[Dict[str, str]] = None) -> None:
    """The rows of `ids` as a two-file data dir; `rename` gives some of them another id."""
    rename = rename or {}
    os.makedirs(directory, exist_ok=True)
    for name, by_id in self.rows.items():
      with open(os.path.join(directory, name), "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(self.headers[name])
        for i in ids:
          writer.writerows([rename.get(i, i), *row[1:]] for row in by_id.get(i, []))


def label_values(rows: List[List[str]]) -> np.ndarray:
  """[36] the per-label maximum over an id's rows of the categories file (the loader's rule for repeated ids)."""
  return np.array([[int(p.rsplit("-", 1)[1]) for p in row[1].split(";")] for row in rows]).max(axis=0)


def _labels(rows: List[List[str]]) -> np.ndarray:
  """[36] `label_values`, binary: related > 0 counts."""
  return (label_values(rows) > 0).astype(np.int64)


_FITTED: Dict[str, tuple] = {}  # --learner=sklearn: model dir name -> (the fitted reference, its thresholds)


def score_pool(model_dir: str, texts: Sequence[str]):
  """([N, 36] the trained model's scores for `texts`, [36] its tuned thresholds)."""
  if model_dir in _FITTED:
    from bench import reference  # pylint: disable=import-outside-toplevel  # needs .[bench]
    fitted, thresholds = _FITTED[model_dir]
    return reference.probabilities(fitted, texts), thresholds
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from disaster_tf.serve import module as module_lib  # pylint: disable=import-outside-toplevel
  from disaster_tf.train import checkpoint  # pylint: disable=import-outside-toplevel
  loaded = checkpoint.load_model(model_dir)
  thresholds = checkpoint.read_thresholds(model_dir)
  module = module_lib.ServingModule(module_lib.Member(loaded.model, loaded.featurizer, thresholds))
  scores = [module.predict(tf.constant(list(texts[i:i + 2048])))["scores"].numpy()
            for i in range(0, len(texts), 2048)]
  return np.concatenate(scores), thresholds


def train(raw: Raw, ids: Sequence[str], fixed: Sequence[str], name: str, out: str,
          acquired: Sequence[str] = ()) -> Dict:
  """Trains on `ids` (labelled training messages) plus `fixed` (tune and validation); returns metrics.json.

  `acquired` (a subset of `ids`) follows --decisions_rule: with id_hash, a hash of each (as a new message's id)
  sends ~15% to validation (not trained on; left out here so that every method is scored on one set) and ~10%
  to tune (given an id the data's split puts there).
  """
  data_dir = os.path.join(out, name + "-data")
  rename = {}
  if flags.FLAGS.decisions_rule == "id_hash":
    tc = common.config_from_flagfile(FLAGFILE).train
    side = dict(zip(acquired, examples_lib.split_ids([f"decision:{i}" for i in acquired], tc.validation_fraction,
                                                     tc.tune_fraction, tc.split_seed).tolist()))
    ids = [i for i in ids if side.get(i) != examples_lib.VALIDATION]
    rename = {i: _tune_id(i, tc) for i, s in side.items() if s == examples_lib.TUNE}
  raw.write(list(ids) + list(fixed), data_dir, rename)
  if flags.FLAGS.learner == "sklearn":
    from bench import reference  # pylint: disable=import-outside-toplevel  # needs .[bench]
    body = reference.fit_and_score(data_dir, common.config_from_flagfile(FLAGFILE, data=data_dir).train, keep=True)
    shutil.rmtree(data_dir)
    _FITTED[os.path.join(out, name)] = (body.pop("fitted"), np.array(
        [body["final"]["thresholds"][c] for c in labels.CATEGORIES]))
    return body
  extra = list(flags.FLAGS.train_flags)
  if flags.FLAGS.l2_examples:
    l2 = common.config_from_flagfile(FLAGFILE).model.linear_l2 * flags.FLAGS.l2_examples / len(ids)
    extra.append(f"--linear_l2={l2:.3g}")
  body, _ = common.run_train(name, FLAGFILE, extra, data_dir, out)
  shutil.rmtree(data_dir)
  return body


def _tune_id(i: str, tc) -> str:
  """An id like `i` that the data's split puts in tune (the first of i-t1, i-t2, ... that it does)."""
  k = 1
  while examples_lib.split_ids([f"{i}-t{k}"], tc.validation_fraction, tc.tune_fraction,
                               tc.split_seed)[0] != examples_lib.TUNE:
    k += 1
  return f"{i}-t{k}"


def measure(body: Dict, rare: Sequence[str]) -> Dict[str, float]:
  """Validation Total and rare F1 at the tuned thresholds, and both at 0.5 (the learner's other arm)."""
  final, half = records.Scores.from_json(body["final"]), records.Scores.from_json(body["final"]["at_0.5"])
  return {"total": final.total, "rare_f1": float(np.mean([final.categories[c].f1 for c in rare])),
          "total_at_0.5": half.total, "rare_f1_at_0.5": float(np.mean([half.categories[c].f1 for c in rare]))}


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
        picked = acquire(model_dir, [raw.texts[i] for i in pool], [f"{seed}:{r}:{i}" for i in pool], method,
                         np.sum([raw.labels[i] for i in labelled], axis=0))  # what the operators taught so far
        picked = [pool[k] for k in picked]
      labelled += picked
      name = f"s{seed}-{method}-{r}"
      body = train(raw, labelled, fixed, name, f.out, acquired=labelled[len(start):])
      curve.append(dict(measure(body, rare), labels=len(labelled)))
      if model_dir != os.path.join(f.out, name0):
        shutil.rmtree(model_dir, ignore_errors=True)
        _FITTED.pop(model_dir, None)
      model_dir = os.path.join(f.out, name)
      print(json.dumps({"seed": seed, "method": method, **curve[-1]}), flush=True)
    shutil.rmtree(model_dir, ignore_errors=True)
    curves[method] = curve
    with open(os.path.join(f.out, f"s{seed}-{method}.ids"), "w", encoding="utf-8") as out:
      out.write("\n".join(labelled) + "\n")  # the final labelled set, for training the default on it (--teach)
  return curves


def acquire(model_dir: str, texts: Sequence[str], keys: Sequence[str], method: str, positives: np.ndarray
            ) -> List[int]:
  """The indices of the --round_size pool messages `method` takes, scored by the model in `model_dir`."""
  f = flags.FLAGS
  scores, thresholds = score_pool(model_dir, texts)
  if f.sample_at == "0.5":
    thresholds = np.full_like(thresholds, 0.5)
  if f.diverse or "+" in method:
    return sampling.rank(scores, thresholds, texts, keys, f.round_size, method, positives)
  useful = sampling.usefulness(scores, thresholds, method, positives)
  return np.argsort(-useful, kind="stable")[:f.round_size].tolist()


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
  note = " ".join(n for n in (flags.FLAGS.note, note) if n)
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
    if all("total_at_0.5" in results[s][m][-1] for s in results):
      half = [results[s][m][-1]["total_at_0.5"] - results[s]["random"][-1]["total_at_0.5"] for s in results]
      rare_half = [results[s][m][-1]["rare_f1_at_0.5"] - results[s]["random"][-1]["rare_f1_at_0.5"] for s in results]
      lines.append(f"  At 0.5 for every head: Total {', '.join(f'{d:+.2f}' for d in half)}; rare F1 "
                   f"{', '.join(f'{d:+.3f}' for d in rare_half)}.")
  spread = [np.ptp([results[s]["random"][-1]["total"] for s in results])]
  lines.append(f"- random's final Total across seeds: spread {spread[0]:.2f}.")
  for m in methods[1:]:
    met = all(results[s][m][-1]["total"] - results[s]["random"][-1]["total"] >= 0.5 and
              results[s][m][-1]["rare_f1"] - results[s]["random"][-1]["rare_f1"] >= 0.03 for s in results)
    lines.append(f"- Targets (issue 38): after the last round the sampler >= +0.5 Total and >= +0.03 rare-category "
                 f"mean positive F1 over random on every seed (tuned thresholds, as the export decides): `{m}` "
                 f"{'met' if met else 'missed'}.")
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
