"""What the benchmarks share: running train.py, and writing BENCHMARKS.md.

Each benchmark's section of BENCHMARKS.md sits between `<!-- NAME:begin -->` and `<!-- NAME:end -->` and is
replaced whole by the next run of the same benchmark, with the command, the
machine and the date, so no number in BENCHMARKS.md is typed by hand.
"""

import datetime
import json
import os
import platform
import re
import subprocess
import sys
import time
from typing import Dict, Sequence, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHMARKS = os.path.join(ROOT, "BENCHMARKS.md")


def machine() -> str:
  cpu = platform.processor() or platform.machine()
  try:
    with open("/proc/cpuinfo") as f:
      cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
  except (OSError, StopIteration):
    pass
  return f"{cpu}, {os.cpu_count()} cores, no GPU used, {platform.system()}, Python {platform.python_version()}"


def write_section(name: str, title: str, body: str, command: str = None) -> None:
  """Replaces (or appends) section `name` of BENCHMARKS.md."""
  command = command or "python " + " ".join(sys.argv)
  text = (f"<!-- {name}:begin -->\n## {title}\n\n"
          f"- command: `{command}`\n- machine: {machine()}\n"
          f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC\n\n{body.strip()}\n"
          f"<!-- {name}:end -->\n")
  old = open(BENCHMARKS, encoding="utf-8").read() if os.path.exists(BENCHMARKS) else "# Benchmarks\n\n"
  pattern = re.compile(rf"<!-- {name}:begin -->.*?<!-- {name}:end -->\n", re.S)
  new = pattern.sub(lambda _: text, old) if pattern.search(old) else old.rstrip("\n") + "\n\n" + text
  with open(BENCHMARKS, "w", encoding="utf-8") as f:
    f.write(new)


def run_train(name: str, flagfile: str, extra: Sequence[str], data: str, out: str,
              keep: bool = False) -> Tuple[Dict, float]:
  """Runs train.py on a fresh model dir (`keep`: on the one there, which the run resumes, its finished phases
  kept); returns (its metrics.json, or its refit's, and wall seconds)."""
  model_dir = os.path.join(out, name)
  if not keep:
    subprocess.run(["rm", "-rf", model_dir], check=True)
  cmd = [sys.executable, "train.py", f"--flagfile={flagfile}", f"--data={data}", f"--model_dir={model_dir}",
         "--verbose=0", *extra]
  print("$", " ".join(cmd[1:]), flush=True)
  start = time.time()
  subprocess.run(cmd, cwd=ROOT, check=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
  wall = time.time() - start
  # A --refit run's release is its refit (what export.py exports): its report is the row. train.py exited 0, so
  # a refit there has finished (checkpoint.release_dir's check, which would import TensorFlow into this parent).
  refit = os.path.join(model_dir, "refit")
  with open(os.path.join(refit if os.path.isdir(refit) else model_dir, "metrics.json"), encoding="utf-8") as f:
    return json.load(f), wall


def run_export(model_dir: str, export_base: str) -> float:
  """Runs export.py on `model_dir` into a fresh `export_base`; returns the wall seconds of the whole process."""
  subprocess.run(["rm", "-rf", export_base], check=True)
  start = time.time()
  subprocess.run([sys.executable, "export.py", f"--model_dir={model_dir}", f"--export_base={export_base}"], cwd=ROOT,
                 check=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), stdout=subprocess.DEVNULL)
  return time.time() - start


def summary_table(rows) -> str:
  """Markdown: one row per run (name, metrics.json body, wall seconds); scores at 0.5 and at tuned thresholds."""
  lines = ["| run | Total @0.5 | Total tuned | mean pos. F1 @0.5 | mean pos. F1 tuned | micro-F1 @0.5 | "
           "micro-F1 tuned | best epoch / run | s / epoch | wall s |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
  from disaster_tf import records  # pylint: disable=import-outside-toplevel  # no TensorFlow in this process
  for name, body, wall in rows:
    final, half = records.Scores.from_json(body["final"]), records.Scores.from_json(body["final"]["at_0.5"])
    epochs = body["epochs"]
    # A model fit without epochs (the scikit-learn reference) shows "-" there.
    per_epoch = f"{sum(e['train_seconds'] for e in epochs) / len(epochs):.1f}" if epochs else "-"
    best = f"{body['final']['best_epoch']} / {len(epochs)}" if epochs else "-"
    lines.append(f"| {name} | {half.total:.2f} | {final.total:.2f} | {half.mean_positive_f1:.3f} | "
                 f"{final.mean_positive_f1:.3f} | {half.micro_f1:.3f} | {final.micro_f1:.3f} | "
                 f"{best} | {per_epoch} | {'-' if wall != wall else f'{wall:.0f}'} |")  # NaN: not timed alone
  return "\n".join(lines)


def config_from_flagfile(path: str, **train_overrides):
  """The Config that `train.py --flagfile=path --key=value ...` builds; `path` relative to the repository."""
  from disaster_tf.cli import train  # pylint: disable=import-outside-toplevel
  return train.config_from_flagfile(os.path.join(ROOT, path), *(f"--{k}={v}" for k, v in train_overrides.items()))
