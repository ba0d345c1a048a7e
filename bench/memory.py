"""Memory: peak RSS of train.py on the shared data and on it replicated 10x.

  python bench/memory.py [--data=../shared/data] [--copies=10] [--baseline=cee3f7c]

The replicated data is generated on the fly into a temporary directory (never
committed): the two-file format, each copy's ids made new (`<id>c<k>`) so that
deduplication keeps every copy. The vocabulary and the batch are the same at
1x and at 10x; only the file grows. Each run is `train.py
--flagfile=configs/disaster_response.flags --epochs=1` in its own process,
whose peak RSS is read from `wait4` when it ends.

The baseline is measured in the same run: the same commands with the code of
git revision `--baseline` (default: the last commit before loading streamed,
which held every message in Python lists and the vectorised data in RAM),
checked out into a temporary worktree.
"""

import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (bench/common.py)

FLAGFILE = "configs/disaster_response.flags"
MESSAGES, CATEGORIES = "disaster_messages.csv", "disaster_categories.csv"


def define_flags():
  flags.DEFINE_string("data", "../shared/data", "Two-file data to replicate.")
  flags.DEFINE_integer("copies", 10, "How many times the large input repeats the data.")
  flags.DEFINE_integer("epochs", 1, "Epochs per run (memory peaks in the first).")
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


def run(code_dir: str, data: str, model_dir: str, epochs: int):
  """Runs train.py from `code_dir`; returns (peak RSS in MiB, wall seconds, metrics.json data section)."""
  cmd = [sys.executable, "train.py", f"--flagfile={FLAGFILE}", f"--data={data}", f"--model_dir={model_dir}",
         f"--epochs={epochs}", "--patience=0", "--verbose=0"]
  print("$", " ".join(cmd[1:]), f"(in {code_dir})", flush=True)
  start = time.time()
  process = subprocess.Popen(cmd, cwd=code_dir, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
  _, status, usage = os.wait4(process.pid, 0)
  process.returncode = os.waitstatus_to_exitcode(status)
  if process.returncode:
    raise SystemExit(f"train.py failed with exit code {process.returncode}")
  import json  # pylint: disable=import-outside-toplevel
  with open(os.path.join(model_dir, "metrics.json"), encoding="utf-8") as f:
    loaded = json.load(f)["data"]
  return usage.ru_maxrss / 1024, time.time() - start, loaded  # ru_maxrss is in KiB on Linux


def main(argv):
  del argv
  f = flags.FLAGS
  work = tempfile.mkdtemp(prefix="bench-memory-")
  try:
    inputs = {"1x": os.path.abspath(f.data)}
    large = f"{f.copies}x"
    inputs[large] = os.path.join(work, large)
    print(f"writing {large} data to {inputs[large]}", flush=True)
    replicate(inputs["1x"], inputs[large], f.copies)
    sizes = {name: sum(os.path.getsize(os.path.join(path, n)) for n in (MESSAGES, CATEGORIES)) / 2**20
             for name, path in inputs.items()}
    codes = {"disaster_tf (streaming)": common.ROOT}
    if f.baseline:
      baseline_dir = os.path.join(work, "baseline")
      subprocess.run(["git", "worktree", "add", "--detach", baseline_dir, f.baseline], cwd=common.ROOT, check=True)
      codes[f"baseline ({f.baseline}, in memory)"] = baseline_dir
    results = {}
    try:
      for code, code_dir in codes.items():
        for name, path in inputs.items():
          results[code, name] = run(code_dir, path, os.path.join(work, "model", f"{len(results)}"), f.epochs)
    finally:
      if f.baseline:
        subprocess.run(["git", "worktree", "remove", "--force", baseline_dir], cwd=common.ROOT, check=False)
  finally:
    shutil.rmtree(work, ignore_errors=True)

  lines = ["| code | data | CSV MB | messages | peak RSS MiB | wall s |", "| --- | --- | --- | --- | --- | --- |"]
  for (code, name), (rss, wall, loaded) in results.items():
    lines.append(f"| {code} | {name} | {sizes[name]:.0f} | {loaded['examples']} | {rss:.0f} | {wall:.0f} |")
  growth = []
  for code in codes:
    (rss1, _, small), (rss_n, _, big) = results[code, "1x"], results[code, large]
    per_message = (rss_n - rss1) * 2**20 / (big["examples"] - small["examples"])
    growth.append((code, rss_n - rss1, per_message))
  lines += ["", f"| code | peak RSS growth 1x -> {large} MiB | per added message, bytes |", "| --- | --- | --- |"]
  lines += [f"| {code} | {mib:.0f} | {per:.0f} |" for code, mib, per in growth]
  if len(growth) == 2:
    lines += ["", f"Growth with the file, disaster_tf / baseline: {growth[0][1] / growth[1][1]:.2f}x."]
  body = (f"Each run: `train.py --flagfile={FLAGFILE} --epochs={f.epochs} --patience=0` in its own process "
          f"(peak RSS from wait4). `{large}` = the shared two-file data written {f.copies} times with new ids, "
          "generated for the run and deleted after it: the same vocabulary and batch, a file "
          f"{f.copies} times larger.\n\n" + "\n".join(lines))
  common.write_section("memory", "Memory on large inputs", body)
  print(body)


if __name__ == "__main__":
  define_flags()
  app.run(main)
