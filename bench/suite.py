"""The test suite's wall time: this checkout's README test command against an older commit's, in one run.

  python bench/suite.py [--baseline=fcb2a33] [--current=HEAD] [--repeats=1] [--at_most=0.5]

Each commit is checked out into a temporary git worktree (the working tree's
own changes are not in it: commit first) and its README test command runs
there with this venv's Python, one after the other on an otherwise idle
machine: the baseline's, then the current commit's, `--repeats` times each.
The suites read no data of `../shared`, so a worktree anywhere will do.
Writes the section "suite" of BENCHMARKS.md.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (bench/common.py)

flags.DEFINE_string("baseline", "fcb2a33", "The commit to compare with (default: the last one before Shape II).")
flags.DEFINE_string("current", "HEAD", "The commit measured against the baseline (default: this checkout's).")
flags.DEFINE_integer("repeats", 1, "Runs of each suite.", lower_bound=1)
flags.DEFINE_float("at_most", 0.5, "The target: the current suite's wall time at most this share of the baseline's "
                   "(0.5: Shape II's halving; 1.0: a change that must not make the suite slower).")


def test_command(tree: str) -> list:
  """The README's test command of the checkout at `tree`, run with this venv's Python."""
  with open(os.path.join(tree, "README.md"), encoding="utf-8") as f:
    command = next(line for line in f if "pytest" in line and line.startswith("python3 -m venv"))
  pytest_args = command.strip().split("-m pytest", 1)[1].split()
  return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *pytest_args]


def timed_suite(commit: str) -> tuple:
  """(wall seconds, the pytest summary line, the command) of `commit`'s suite in a fresh worktree."""
  tree = tempfile.mkdtemp(prefix="suite-")
  shutil.rmtree(tree)
  subprocess.run(["git", "worktree", "add", "--detach", tree, commit], cwd=common.ROOT, check=True,
                 capture_output=True)
  try:
    command = test_command(tree)
    start = time.time()
    result = subprocess.run(command, cwd=tree, capture_output=True, text=True,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    wall = time.time() - start
    summary = [line for line in result.stdout.splitlines() if re.search(r"\d+ (passed|failed)", line)]
    if result.returncode:
      raise SystemExit(f"{commit}: the suite failed:\n{result.stdout[-3000:]}")
    return wall, summary[-1].strip("= ") if summary else "?", " ".join(command[3:])
  finally:
    subprocess.run(["git", "worktree", "remove", "--force", tree], cwd=common.ROOT, check=False,
                   capture_output=True)


def main(argv):
  del argv
  head = subprocess.run(["git", "rev-parse", "--short", flags.FLAGS.current], cwd=common.ROOT, check=True,
                        capture_output=True, text=True).stdout.strip()
  rows, walls = [], {}
  for _ in range(flags.FLAGS.repeats):
    for label, commit in (("baseline", flags.FLAGS.baseline), ("current", head)):
      wall, summary, command = timed_suite(commit)
      print(f"{label} {commit}: {wall:.0f} s ({summary})", flush=True)
      walls.setdefault(label, []).append(wall)
      rows.append(f"| {label} | `{commit}` | `pytest {command}` | {summary} | {wall:.0f} |")
  ratio, at_most = min(walls["current"]) / min(walls["baseline"]), flags.FLAGS.at_most
  body = "\n".join([
      "Each commit's README test command in a fresh worktree, one after the other (target: the current suite in "
      f"at most {at_most:.0%} of the baseline's wall time).", "",
      "| suite | commit | command | pytest's summary | wall s |", "| --- | --- | --- | --- | --- |", *rows, "",
      f"current / baseline (fastest run of each): {ratio:.2f} "
      f"(target <= {at_most:.2f}: {'met' if ratio <= at_most else 'NOT met'})."])
  print(body)
  common.write_section("suite", "Test suite wall time", body)


if __name__ == "__main__":
  app.run(main)
