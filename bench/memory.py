"""Memory: peak RSS of train.py on the shared data and on it replicated 10x and 20x.

  python bench/memory.py [--data=../shared/data] [--copies=1,10,20] [--baseline=cee3f7c]

The replicated data is generated on the fly into a temporary directory (never
committed): the two-file format, each copy's ids made new (`<id>c<k>`) so that
deduplication keeps every copy. The vocabulary and the batch are the same at
every size; only the file grows. Each run is `train.py
--flagfile=configs/disaster_response.flags --epochs=1` in its own process,
whose peak RSS is read from `wait4` when it ends. Two sizes above 1x separate
what grows with the file (the slope between them) from fixed costs that ramp
up with the first few hundred thousand messages (tf.data's autotuned buffers).

The baseline is measured in the same run: the same commands with the code of
git revision `--baseline` (default: the last commit before loading streamed,
which held every message in Python lists and the vectorised data in RAM),
checked out into a temporary worktree.
"""

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Dict

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (bench/common.py)

FLAGFILE = "configs/disaster_response.flags"
MESSAGES, CATEGORIES = "disaster_messages.csv", "disaster_categories.csv"


def define_flags():
  flags.DEFINE_string("data", "../shared/data", "Two-file data to replicate.")
  flags.DEFINE_list("copies", ["1", "10", "20"], "Data sizes to run, as copies of --data (1: --data itself).")
  flags.DEFINE_integer("epochs", 1, "Epochs per run (memory peaks in the first).")
  flags.DEFINE_integer("repeats", 2, "Runs per code and size: peak RSS varies by tens of MB between runs.")
  flags.DEFINE_string("baseline", "cee3f7c", "Git revision whose code is the baseline; empty: no baseline.")


def replicate(source: str, target: str, copies: int) -> int:
  """Writes `copies` copies of a two-file data directory, streaming; returns the rows per file."""
  os.makedirs(target)
  csv.field_size_limit(2**26)
  rows = 0
  for name in (MESSAGES, CATEGORIES):
    with open(os.path.join(target, name), "w", newline="", encoding="utf-8") as out:
      writer = csv.writer(out)
      for copy in range(copies):
        with open(os.path.join(source, name), newline="", encoding="utf-8") as f:
          reader = csv.reader(f)
          header = next(reader)
          if copy == 0:
            writer.writerow(header)
          for row in reader:
            writer.writerow([row[0] if copy == 0 else f"{row[0]}c{copy}", *row[1:]])
            rows += name == MESSAGES
  return rows


def run(code_dir: str, data: str, model_dir: str, epochs: int, env: Dict[str, str]):
  """Runs train.py from `code_dir`; returns (peak RSS in MiB, wall seconds, its metrics.json)."""
  cmd = [sys.executable, "train.py", f"--flagfile={FLAGFILE}", f"--data={data}", f"--model_dir={model_dir}",
         f"--epochs={epochs}", "--patience=0", "--verbose=0"]
  print("$", " ".join(cmd[1:]), f"(in {code_dir})", flush=True)
  start = time.time()
  process = subprocess.Popen(cmd, cwd=code_dir, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **env))
  _, status, usage = os.wait4(process.pid, 0)
  process.returncode = os.waitstatus_to_exitcode(status)
  if process.returncode:
    raise SystemExit(f"train.py failed with exit code {process.returncode}")
  with open(os.path.join(model_dir, "metrics.json"), encoding="utf-8") as f:
    body = json.load(f)
  return usage.ru_maxrss / 1024, time.time() - start, body  # ru_maxrss is in KiB on Linux


def main(argv):
  del argv
  f = flags.FLAGS
  work = tempfile.mkdtemp(prefix="bench-memory-")
  try:
    inputs = {}
    for copies in map(int, f.copies):
      name = f"{copies}x"
      inputs[name] = os.path.abspath(f.data) if copies == 1 else os.path.join(work, name)
      if copies > 1:
        print(f"writing {name} data to {inputs[name]}", flush=True)
        replicate(f.data, inputs[name], copies)
    sizes = {name: sum(os.path.getsize(os.path.join(path, n)) for n in (MESSAGES, CATEGORIES)) / 2**20
             for name, path in inputs.items()}
    # name -> (code directory, extra environment); the baseline, if any, comes last.
    codes = {"disaster_tf (streaming)": (common.ROOT, {}),
             # glibc keeps up to 8 malloc arenas per core, one per busy thread, and holds freed memory in
             # them: tf.data's threads make RSS ratchet up. Two arenas show how much of a peak that is.
             "disaster_tf, MALLOC_ARENA_MAX=2": (common.ROOT, {"MALLOC_ARENA_MAX": "2"})}
    if f.baseline:
      baseline_dir = os.path.join(work, "baseline")
      subprocess.run(["git", "worktree", "add", "--detach", baseline_dir, f.baseline], cwd=common.ROOT, check=True)
      codes[f"baseline ({f.baseline}, in memory)"] = (baseline_dir, {})
    results = {}
    try:
      for code, (code_dir, env) in codes.items():
        for name, path in inputs.items():
          for _ in range(f.repeats):
            model_dir = os.path.join(work, "model")
            results.setdefault((code, name), []).append(run(code_dir, path, model_dir, f.epochs, env))
            shutil.rmtree(model_dir)  # its scratch is gone already; keep the disk for the next run
    finally:
      if f.baseline:
        subprocess.run(["git", "worktree", "remove", "--force", baseline_dir], cwd=common.ROOT, check=False)
  finally:
    shutil.rmtree(work, ignore_errors=True)

  def mean(values):
    return sum(values) / len(values)
  lines = ["| code | data | CSV MB | messages | peak RSS MiB, each run | epoch 1 s | wall s | validation Total |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
  for (code, name), runs in results.items():
    peaks = ", ".join(f"{rss:.0f}" for rss, _, _ in runs)
    totals = ", ".join(sorted({f"{body['final']['total']:.4f}" for _, _, body in runs}))
    epoch = mean([body["epochs"][0]["train_seconds"] for _, _, body in runs])
    lines.append(f"| {code} | {name} | {sizes[name]:.0f} | {runs[0][2]['data']['examples']} | {peaks} | "
                 f"{epoch:.0f} | {mean([wall for _, wall, _ in runs]):.0f} | {totals} |")
  names = list(inputs)
  steps = list(zip(names[:-1], names[1:]))
  lines += ["", "Peak RSS added per added message, bytes (slope between two sizes, mean of the runs):", "",
            "| code | " + " | ".join(f"{a} -> {b}" for a, b in steps) + " |",
            "| --- |" + " --- |" * len(steps)]
  slopes = {}
  for code in codes:
    row = []
    for a, b in steps:
      rss_a, rss_b = (mean([rss for rss, _, _ in results[code, n]]) for n in (a, b))
      added = results[code, b][0][2]["data"]["examples"] - results[code, a][0][2]["data"]["examples"]
      row.append((rss_b - rss_a) * 2**20 / added)
    slopes[code] = row
    lines.append(f"| {code} | " + " | ".join(f"{x:.0f}" for x in row) + " |")
  if f.baseline and steps:
    *ours, base = slopes
    for code in ours:
      lines += ["", f"{code} / baseline, bytes per added message: " + ", ".join(
          f"{a} -> {b}: {o / x:.2f}x" for (a, b), o, x in zip(steps, slopes[code], slopes[base])) + "."]
  body = (f"Each run: `train.py --flagfile={FLAGFILE} --epochs={f.epochs} --patience=0` in its own process "
          "(peak RSS from wait4). `Nx` = the shared two-file data written N times with new ids, generated "
          "for the run and deleted after it: the same vocabulary and batch, a file N times larger. "
          f"{f.repeats} run(s) each; `epoch 1 s` and `wall s` are means. `epoch 1 s` includes vectorising "
          "for the baseline, which cached in memory during the first epoch; disaster_tf vectorises into its "
          "file cache before it. The validation Total (tuned thresholds) says whether both codes trained the "
          "same model (at 1x, one shuffle block, they should; above it, disaster_tf mixes blocks, the "
          "baseline shuffles one window). Above 1x the copies of a message fall on both sides of the id "
          "split, so that Total is no quality figure.\n\n"
          + "\n".join(lines))
  common.write_section("memory", "Memory on large inputs", body)
  print(body)


if __name__ == "__main__":
  define_flags()
  app.run(main)
