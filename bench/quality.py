"""Quality on held-out messages: the scikit-learn reference, the article's setup, the default and its parts, seeds.

  python bench/quality.py [--data=../shared/data] [--out=/tmp/disaster_tf_quality]   # needs .[bench]

Fits the classic scikit-learn pipeline (bench/reference.py: TF-IDF word
uni+bigrams, one logistic regression per category), then trains, one after
the other on the shared data, the runs of RUNS: the reference article's setup
(configs/seed_article.flags), the previous default, the in-graph TF-IDF
linear model (configs/linear.flags) and its variants, wide_deep, the default
and its variants, and the default again with other seeds; it times the
default's export too. It writes to BENCHMARKS.md: the summary scores at 0.5
and at tuned thresholds, the default's seed-to-seed spread, the F1 of the rare
categories, and the targets (tuned thresholds, validation split). Every run
uses the same id split: train 75%, tune 10% (best epoch, thresholds),
validation 15% (reported).
"""

import json
import os
import subprocess
import sys
import time

import numpy as np
from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (bench/common.py)
import members  # noqa: E402  (bench/members.py)

DEFAULT = "configs/disaster_response.flags"
LINEAR = "configs/linear.flags"
VECTORS = "vectors/glove.6B.50d.txt"  # the default flagfile's --pretrained_vectors, written by disaster-vectors
# The default before pretrained vectors and the linear member fitted apart: the ensemble trained jointly, 128 wide.
PREVIOUS = ["--pretrained_vectors=", "--embedding_dim=128", "--linear_epochs=0"]
ENCODER = "encoder (all-MiniLM-L6-v2)"
# The default (the ensemble of multi_cnn and TF-IDF logistic regression over word and character n-grams),
# its parts alone, and the choices it was made of, each against the same split.
RUNS = (
    ("article", "configs/seed_article.flags", []),
    ("multi_cnn (previous default)", "configs/multi_cnn.flags", []),
    ("linear", LINEAR, []),
    ("linear, no L2", LINEAR, ["--linear_l2=0"]),
    ("linear, constant rate", LINEAR, ["--lr_schedule=constant"]),
    ("linear + char 2-5", LINEAR, ["--char_ngrams=2,5"]),
    ("wide_deep", DEFAULT, ["--model=wide_deep"]),
    ("default", DEFAULT, []),
    ("default, no char n-grams", DEFAULT, ["--char_ngrams="]),
    ("default, constant rate", DEFAULT, ["--lr_schedule=constant", "--epochs=12"]),
    ("default, macro_f1 thresholds", DEFAULT, ["--threshold_objective=macro_f1"]),
    # The same default with other seeds (42 is the default's): the spread a difference must beat.
    ("default seed 43", DEFAULT, ["--seed=43"]),
    ("default seed 44", DEFAULT, ["--seed=44"]),
    # The default refit on train + tune for the epoch count it chose (its refit's report), over the same seeds.
    ("refit", DEFAULT, ["--refit"]),
    ("refit seed 43", DEFAULT, ["--refit", "--seed=43"]),
    ("refit seed 44", DEFAULT, ["--refit", "--seed=44"]),
    # Pretrained word vectors and a converged linear member (issue 27): the previous default, each part undone,
    # the CNN with vectors alone; the linear member alone is the default's own <model_dir>/linear run.
    ("previous default", DEFAULT, PREVIOUS),
    ("previous default seed 43", DEFAULT, PREVIOUS + ["--seed=43"]),
    ("previous default seed 44", DEFAULT, PREVIOUS + ["--seed=44"]),
    ("default with joint linear", DEFAULT, ["--linear_epochs=0"]),
    ("default without vectors", DEFAULT, ["--pretrained_vectors=", "--embedding_dim=128"]),
    ("default with frozen vectors", DEFAULT, ["--freeze_vectors"]),
    ("multi_cnn + GloVe", "configs/multi_cnn.flags", [f"--pretrained_vectors={VECTORS}", "--embedding_dim=50"]),
    # all-MiniLM-L6-v2 fine-tuned under the heads (configs/pretrained.flags); then averaged with the default.
    (ENCODER, "configs/encoder.flags", []),
)
LINEAR_MEMBER = "linear member (fitted apart, in the default)"
ENSEMBLED = "default + encoder (mean of the two exports)"  # a row read from the default's linear/ run
SEEDS = {"": [], " seed 43": ["--seed=43"], " seed 44": ["--seed=44"]}  # the default's 42, then two more
# Messages in two languages (configs/multilingual.flags: each message as translated and as sent, mostly
# Haitian Creole; each training original read twice an epoch, the lexicon) against the English-only model
# (configs/english.flags); and the multilingual model reading each message beside its original in one step
# with the consistency term (losses.consistency) instead of copies. Every group over the same seeds.
ENGLISH, MULTILINGUAL = "configs/english.flags", "configs/multilingual.flags"
LANGUAGE_GROUPS = {
    "multilingual": [],
    "multilingual pairs": ["--pairs", "--consistency=5"],
}
# Issue 40: the encoder as the default's third member, in one export (configs/pretrained.flags), over 3 seeds; each
# run also gives its ensemble alone (the default, its first two phases) and its encoder member alone.
RUNS += tuple((members.THREE + seed, "configs/pretrained.flags", seed_flags) for seed, seed_flags in SEEDS.items())
# bfloat16 against float32 (issue 40): the encoder member's own fine-tune (members.encoder_config, which has no
# language gate) in float32, beside the three-member run's encoder member of the same seed.
RUNS += ((members.FLOAT32, "configs/encoder.flags", ["--language_gate=false", "--precision=float32"]),)
RUNS += tuple(("english" + seed, ENGLISH, seed_flags) for seed, seed_flags in SEEDS.items())
RUNS += tuple((group + seed, MULTILINGUAL, extra + seed_flags)
              for group, extra in LANGUAGE_GROUPS.items() for seed, seed_flags in SEEDS.items())
# Issue 25's targets: on every seed, originals / translations micro-F1 and the Total gap; English against the default.
RATIO_TARGET, GAP_TARGET, ENGLISH_COST = 0.97, 1.0, 0.05
REFERENCE = "sklearn reference"
SEEDED = {"default": ("default", "default seed 43", "default seed 44"),
          members.THREE: tuple(members.THREE + seed for seed in SEEDS),
          f"{members.THREE}' ensembles (the default)": tuple(f"{members.THREE}{seed}: its ensemble (the default)"
                                                            for seed in SEEDS),
          f"{members.THREE}' encoder members": tuple(f"{members.THREE}{seed}: its encoder member" for seed in SEEDS),
          "previous default": ("previous default", "previous default seed 43", "previous default seed 44"),
          "refit": ("refit", "refit seed 43", "refit seed 44"),
          **{group: tuple(group + seed for seed in SEEDS) for group in ("english", *LANGUAGE_GROUPS)}}
RARE = ("offer", "security", "tools", "shops", "fire", "clothing", "missing_people", "hospitals", "aid_centers",
        "electricity", "money", "cold")


def define_flags():
  flags.DEFINE_string("data", "../shared/data", "Data to train on.")
  flags.DEFINE_string("out", "/tmp/disaster_tf_quality", "Parent of the runs' model dirs (emptied first).")
  flags.DEFINE_list("only", [], "Run only these names (default: all).")
  flags.DEFINE_bool("keep", False, "Resume the runs' model dirs in --out instead of emptying them: a finished "
                    "phase is kept (its epochs' seconds stay in its metrics.json; the wall is the resume's).")
  flags.DEFINE_string("section", "quality", "The BENCHMARKS.md section to (re)write: with --only, another name "
                      "keeps the full table of the last complete run.")


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
  """The validation scores (tuned) of the default, and of its refit, over seeds: what a difference must beat."""
  lines = []
  for label, names in SEEDED.items():
    finals = [b["final"] for n, b, _ in rows if n in names]
    if len(finals) < 2:
      continue
    parts = []
    for key, fmt in (("total", ".2f"), ("mean_positive_f1", ".3f"), ("micro_f1", ".3f")):
      values = np.array([f[key] for f in finals])
      parts.append(f"{key} {values.mean():{fmt}} ± {values.std(ddof=1):{fmt}} (range {values.min():{fmt}} to "
                   f"{values.max():{fmt}}, spread {values.max() - values.min():{fmt}})")
    lines.append(f"The {label} over {len(finals)} seeds (validation, tuned): " + "; ".join(parts) + ".")
  by_name = {n: b["final"]["total"] for n, b, _ in rows}
  for label in ("refit", "previous default", *LANGUAGE_GROUPS):
    base = "english" if label in LANGUAGE_GROUPS else "default"
    pairs = [(d, r) for d, r in zip(SEEDED[base], SEEDED[label]) if {d, r} <= set(by_name)]
    if pairs:
      lines.append(f"{label} - {base}, seed by seed (Total, tuned): " +
                   ", ".join(f"{by_name[r] - by_name[d]:+.2f}" for d, r in pairs) + ".")
  return "\n\n".join(lines)


def languages_table(rows) -> str:
  """Validation messages that have an original: scored as sent and as translated, by the same model."""
  lines = ["| run | messages | Total original | Total translation | micro-F1 original | micro-F1 translation "
           f"| micro-F1 ratio | targets (ratio >= {RATIO_TARGET}, Total gap <= {GAP_TARGET}) |", "| --- " * 8 + "|"]
  for name, body, _ in rows:
    languages = body["final"].get("languages")
    if not languages:
      continue
    o, t = languages["original"], languages["translation"]
    ratio, gap = o["micro_f1"] / t["micro_f1"], t["total"] - o["total"]
    verdict = f"{'met' if ratio >= RATIO_TARGET else 'NOT met'}, {'met' if gap <= GAP_TARGET else 'NOT met'}"
    lines.append(f"| {name} | {o['examples']} | {o['total']:.2f} | {t['total']:.2f} | {o['micro_f1']:.3f} | "
                 f"{t['micro_f1']:.3f} | {ratio:.3f} | {verdict} |")
  if len(lines) <= 2:
    return ""
  for label in LANGUAGE_GROUPS:
    ratios, gaps, originals, translations = [], [], [], []
    for name, body, _ in rows:
      if name in SEEDED[label] and body["final"].get("languages"):
        o, t = body["final"]["languages"]["original"], body["final"]["languages"]["translation"]
        ratios.append(o["micro_f1"] / t["micro_f1"])
        gaps.append(t["total"] - o["total"])
        originals.append(o["micro_f1"])
        translations.append(t["micro_f1"])
    if len(ratios) > 1:
      met = all(r >= RATIO_TARGET for r in ratios) and all(g <= GAP_TARGET for g in gaps)
      lines += ["", f"{label} over {len(ratios)} seeds: micro-F1 ratio {np.mean(ratios):.3f} (range "
                f"{min(ratios):.3f} to {max(ratios):.3f}), Total gap {np.mean(gaps):.2f} (range {min(gaps):.2f} "
                f"to {max(gaps):.2f}); micro-F1 of the originals {np.mean(originals):.3f} (range "
                f"{min(originals):.3f} to {max(originals):.3f}), of their translations {np.mean(translations):.3f} "
                f"(range {min(translations):.3f} to {max(translations):.3f}). Targets on every seed: "
                f"{'met' if met else 'NOT met'}."]
  return "\n".join(lines + english_cost(rows))


def english_cost(rows) -> list:
  """Each multilingual group's English validation Total against the English-only model's, mean of the seeds."""
  by_name = {n: b["final"]["total"] for n, b, _ in rows}
  english = [by_name[n] for n in SEEDED["english"] if n in by_name]
  lines = []
  for label in LANGUAGE_GROUPS:
    totals = [by_name[n] for n in SEEDED[label] if n in by_name]
    if len(totals) > 1 and len(english) > 1:
      cost = np.mean(totals) - np.mean(english)
      lines += ["", f"{label}, English validation Total: {np.mean(totals):.2f} against the English-only model's "
                f"{np.mean(english):.2f} (means of {len(totals)} and {len(english)} seeds): {cost:+.2f} (target "
                f">= -{ENGLISH_COST}: {'met' if cost >= -ENGLISH_COST else 'NOT met'})."]
  return lines


def _verdict(gain: float, target: float) -> str:
  return f"{gain:+.3f} (target >= {target:+g}: {'met' if gain >= target else 'NOT met'})"


def targets(rows) -> str:
  by_name = {n: b["final"] for n, b, _ in rows}
  lines = []
  if {"default", REFERENCE} <= set(by_name):
    d, r = by_name["default"], by_name[REFERENCE]
    lines.append(f"default - {REFERENCE}: Total {_verdict(d['total'] - r['total'], 1.0)}; mean positive F1 "
                 f"{_verdict(d['mean_positive_f1'] - r['mean_positive_f1'], 0.03)}.")
  if {"previous default", REFERENCE} <= set(by_name):
    d, r = by_name["previous default"], by_name[REFERENCE]
    lines.append(f"previous default - {REFERENCE}: Total {d['total'] - r['total']:+.3f}; mean positive F1 "
                 f"{d['mean_positive_f1'] - r['mean_positive_f1']:+.3f}.")
  seeds = [n for n in SEEDED["default"] if n in by_name]
  if len(seeds) > 1 and REFERENCE in by_name:
    r = by_name[REFERENCE]
    lines.append(f"default - {REFERENCE}, seed by seed: Total " + ", ".join(
        f"{by_name[n]['total'] - r['total']:+.2f}" for n in seeds) + "; mean positive F1 " + ", ".join(
            f"{by_name[n]['mean_positive_f1'] - r['mean_positive_f1']:+.3f}" for n in seeds) + " (targets +1.0, "
                 "+0.03 on every seed).")
  if {"refit", REFERENCE} <= set(by_name):
    d, r = by_name["refit"], by_name[REFERENCE]
    lines.append(f"refit - {REFERENCE}: Total {_verdict(d['total'] - r['total'], 1.0)}; mean positive F1 "
                 f"{_verdict(d['mean_positive_f1'] - r['mean_positive_f1'], 0.03)}.")
  if {"linear", REFERENCE} <= set(by_name):
    gap = by_name["linear"]["total"] - by_name[REFERENCE]["total"]
    verdict = "met" if abs(gap) <= 0.3 else "NOT met"
    lines.append(f"linear - {REFERENCE}: Total {gap:+.3f} (target: within 0.3: {verdict}).")
  if {"default", "article"} <= set(by_name):
    lines.append(f"default - article: Total {_verdict(by_name['default']['total'] - by_name['article']['total'], 3)}.")
  return ("Targets (validation split, tuned thresholds):\n\n" + "\n".join(f"- {x}" for x in lines)) if lines else ""


def write_vectors() -> float:
  """Writes the default's vectors file as README's main job does (`disaster-vectors`); returns its wall seconds."""
  start = time.time()
  subprocess.run([sys.executable, "-m", "disaster_tf.cli.vectors", f"--out={VECTORS}"], cwd=common.ROOT, check=True)
  return time.time() - start


def main_job_lines(rows, out: str, vectors_wall: float) -> list:
  """The default's main job (vectors file, train, export: whole processes) against the previous default's, and the
  three-member runs' main jobs against the default's (in a fresh --out: with --keep a wall is the resume's)."""
  walls = {n: w for n, _, w in rows}
  if "default" not in walls:
    return []
  export_wall = common.run_export(os.path.join(out, "default"), os.path.join(out, "default-export"))
  job = vectors_wall + walls["default"] + export_wall
  line = (f"The default's main job: vectors file {vectors_wall:.0f} s + train {walls['default']:.0f} s + export "
          f"{export_wall:.0f} s = {job:.0f} s wall, each a whole process")
  if "previous default" in walls:
    before = walls["previous default"] + common.run_export(os.path.join(out, "previous default"),
                                                           os.path.join(out, "previous-export"))
    line += (f"; the previous default's train + export {before:.0f} s: {job / before:.2f}x (bound: 3x, "
             f"{'met' if job <= 3 * before else 'NOT met'})")
  jobs = {"default": job}
  for name in members.blend_names(walls):
    export_dir = os.path.join(out, name.replace(" ", "-") + "-export")
    jobs[name] = vectors_wall + walls[name] + common.run_export(os.path.join(out, name), export_dir)
  return [line + ".", members.main_job_line(jobs)]


def main(argv):
  del argv
  f = flags.FLAGS
  vectors_wall = write_vectors()
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
    body, wall = common.run_train(name, flagfile, extra, f.data, f.out, keep=f.keep)
    if name.startswith(members.THREE):
      rows += members.three_member_rows(name, os.path.join(f.out, name), wall)
      continue
    rows.append((name, body, wall))
    member = os.path.join(f.out, name, "linear", "metrics.json")
    if name == "default" and os.path.exists(member):
      with open(member, encoding="utf-8") as fh:
        rows.append((LINEAR_MEMBER, json.load(fh), float("nan")))
  export_lines = main_job_lines(rows, f.out, vectors_wall)
  # The default's export of this --out (this run's, or the run before when --only picks the encoder alone).
  if ENCODER in {n for n, _, _ in rows} and os.path.isdir(os.path.join(f.out, "default-export")):
    exports = [os.path.join(f.out, "default-export"), os.path.join(f.out, "encoder-export")]
    start = time.time()
    common.run_export(os.path.join(f.out, ENCODER), exports[1])
    body = members.mean_of_exports(exports, f.data, common.config_from_flagfile(DEFAULT, data=f.data).train)
    rows.append((ENSEMBLED, body, time.time() - start))
  text = "\n\n".join(x for x in (
      f"Runs: `{REFERENCE}` = bench/reference.py (TF-IDF word uni+bigrams, sublinear tf, min_df 2, accents "
      "stripped; one LogisticRegression per category, class_weight balanced, C 4; wall s = fit and scoring; "
      "thresholds tuned on tune like the others); " +
      "; ".join(f"`{n}` = `{ff}{(' ' + ' '.join(e)) if e else ''}`" for n, ff, e in RUNS
                if not f.only or n in f.only),
      common.summary_table(rows), seed_spread(rows), targets(rows), "\n".join(
          f"- {line}" for line in members.three_member_lines(rows, REFERENCE)), *export_lines,
      members.precision_line(rows),
      "F1 of the positive class of rare categories on the validation split:", rare_table(rows),
      languages_table(rows) and "Messages in other languages (validation messages that have an original, the "
                                "same model, tuned thresholds):",
      languages_table(rows)) if x)
  print(text)
  title = "Quality on held-out messages" + ("" if f.section == "quality" else f" ({f.section})")
  common.write_section(f.section, title, text)


if __name__ == "__main__":
  define_flags()
  app.run(main)
