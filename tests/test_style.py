"""The house style recorded in setup.cfg (2-space indents, 120-character lines), checked by pylint."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = ("disaster_tf", "tests", "bench", "train.py", "export.py", "evaluate.py")


def pylint(*paths):
  return subprocess.run([sys.executable, "-m", "pylint", f"--rcfile={os.path.join(ROOT, 'setup.cfg')}",
                         "--persistent=n", "--score=n", *paths], capture_output=True, text=True, cwd=ROOT,
                        timeout=300)


def test_the_code_keeps_the_house_layout():
  result = pylint(*PYTHON)
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def test_the_check_catches_four_space_indents_and_long_lines(tmp_path):
  bad = tmp_path / "bad.py"
  bad.write_text('"""A module."""\n\n\ndef f():\n    """Four spaces."""\n    return "' + "x" * 120 + '"\n')
  result = pylint(str(bad))
  assert result.returncode != 0
  assert "bad-indentation" in result.stdout and "line-too-long" in result.stdout
