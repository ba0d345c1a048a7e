"""Writes a benchmark's results into its own section of BENCHMARKS.md.

Each section sits between `<!-- NAME:begin -->` and `<!-- NAME:end -->` and is
replaced whole by the next run of the same benchmark, with the command, the
machine and the date, so no number in BENCHMARKS.md is typed by hand.
"""

import datetime
import os
import platform
import re
import sys

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
