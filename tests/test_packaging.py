"""The wheel a user installs: the package, its flagfiles and its console scripts, without the checkout."""

import glob
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from tests import fixtures

ROOT = fixtures.ROOT
SCRIPTS = ("disaster-train", "disaster-export", "disaster-evaluate", "disaster-vectors")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
  """The wheel built from this checkout (offline) and installed, without dependencies, into a directory."""
  root = tmp_path_factory.mktemp("wheel")
  # Built from a copy of what the wheel is made of: setuptools writes build/ into the tree it builds.
  source = root / "source"
  shutil.copytree(os.path.join(ROOT, "disaster_tf"), source / "disaster_tf",
                  ignore=shutil.ignore_patterns("__pycache__"))
  for name in ("setup.cfg", "pyproject.toml", "README.md"):
    shutil.copy(os.path.join(ROOT, name), source / name)
  subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                  "--wheel-dir", str(root / "dist"), str(source)], check=True, capture_output=True, timeout=300)
  wheel = glob.glob(str(root / "dist" / "disaster_tf-*.whl"))[0]
  subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(root / "site"),
                  wheel], check=True, capture_output=True, timeout=300)
  return wheel, root / "site"


def run_installed(site, *argv, path=()):
  """Runs an installed console script from an empty directory, with the installed package first on the path."""
  env = dict(os.environ, PYTHONPATH=os.pathsep.join([*map(str, path), str(site)]), TF_CPP_MIN_LOG_LEVEL="2")
  cwd = site.parent / "elsewhere"
  cwd.mkdir(exist_ok=True)
  return subprocess.run([sys.executable, str(site / "bin" / argv[0]), *argv[1:]], capture_output=True, text=True,
                        env=env, cwd=str(cwd), timeout=300)


def test_the_wheel_ships_the_package_and_its_flagfiles_only(installed):
  wheel, _ = installed
  names = zipfile.ZipFile(wheel).namelist()
  assert {"disaster_tf/configs/disaster_response.flags", "disaster_tf/configs/seed_article.flags",
          "disaster_tf/configs/linear.flags", "disaster_tf/cli/train.py", "disaster_tf/train/loop.py",
          "disaster_tf/triage/static/index.html", "disaster_tf/triage/static/app.js"} <= set(names)
  # Every wing is a package of the wheel (setup.cfg's find: takes a folder only with its __init__.py).
  assert {f"disaster_tf/{wing}/__init__.py" for wing in ("data", "model", "train", "serve", "triage")} <= set(names)
  assert not [n for n in names if n.startswith(("tests/", "bench/", "train.py", "configs/"))]
  entry_points = next(n for n in names if n.endswith("entry_points.txt"))
  text = zipfile.ZipFile(wheel).read(entry_points).decode()
  assert all(f"{script} = disaster_tf.cli." in text for script in SCRIPTS)


def test_the_installed_package_is_the_one_imported(installed):
  _, site = installed
  env = dict(os.environ, PYTHONPATH=str(site))
  out = subprocess.run([sys.executable, "-c", "import disaster_tf; print(disaster_tf.__file__)"], capture_output=True,
                       text=True, env=env, cwd=str(site.parent), timeout=60, check=True)
  assert out.stdout.strip().startswith(str(site))  # not the checkout (which the test venv has installed too)


@pytest.mark.parametrize("script", SCRIPTS)
def test_each_console_script_runs_from_the_installed_package(installed, script, tmp_path):
  _, site = installed
  # --help answers without TensorFlow: a `tensorflow` that refuses to be imported comes first on the path.
  (tmp_path / "tensorflow").mkdir()
  (tmp_path / "tensorflow" / "__init__.py").write_text("raise ImportError('--help imported tensorflow')\n")
  result = run_installed(site, script, "--helpfull", path=[tmp_path])
  assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]  # absl's help exits 1
  own = next(flag for flag in ("--model_dir", "--export_dir", "--out") if flag in result.stdout)
  assert result.stdout.index(own) < result.stdout.index("absl.app:")  # the command's flags before absl's


def test_disaster_train_reads_a_shipped_flagfile_by_name(installed):
  _, site = installed
  result = run_installed(site, "disaster-train", "--flagfile=linear", "--model_dir=m", "--data=no/such/data")
  # The flagfile parsed (its flags are known), then the data path was checked: a sentence, not a traceback.
  assert result.returncode == 1, result.stderr[-2000:]
  assert result.stderr.strip().endswith("disaster-train: no/such/data: no such file or directory; expected a "
                                        "directory with disaster_messages.csv and disaster_categories.csv, or "
                                        "one wide-format CSV file")
  assert not (site.parent / "elsewhere" / "m").exists()  # a refused run writes nothing
  result = run_installed(site, "disaster-train", "--flagfile=bert", "--model_dir=m")
  assert result.returncode == 1 and "disaster-train: --flagfile: 'bert': no such shipped flagfile" in result.stderr
