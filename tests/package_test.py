"""The installed package: metadata, console commands, and (slow) a wheel used outside the repository.

The slow test builds the wheel, installs it with `pip install --no-deps --target=DIR` (dependencies
come from the test environment, no network), and runs the commands from a directory outside the
repository with PYTHONPATH=DIR alone, as a user who never cloned the repository would.
"""

import ast
import configparser
import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

import akorn_jax

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMANDS = ("akorn-train", "akorn-evaluate", "akorn-sudoku", "akorn-benchmark",
            "akorn-prepare-data", "akorn-demo")


def _entry_points() -> dict[str, str]:
  cfg = configparser.ConfigParser()
  cfg.read(os.path.join(ROOT, "setup.cfg"))
  lines = cfg["options.entry_points"]["console_scripts"].strip().splitlines()
  return dict(tuple(p.strip() for p in line.split("=")) for line in lines)


def test_every_command_points_at_a_cli_of_experiments():
  points = _entry_points()
  assert tuple(points) == COMMANDS
  for target in points.values():
    module, func = target.split(":")
    assert module.startswith("akorn_jax.experiments.") and func == "cli"
    # In a checkout the same module is experiments/<name>.py (`python -m experiments.<name>`).
    # Read, not imported: the drivers' absl flags would clash in one process.
    path = os.path.join(ROOT, "experiments", module.rsplit(".", 1)[1] + ".py")
    with open(path) as f:
      tree = ast.parse(f.read())
    assert func in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}, target


def test_metadata_matches_the_licence_and_version():
  cfg = configparser.ConfigParser()
  cfg.read(os.path.join(ROOT, "setup.cfg"))
  assert cfg["metadata"]["license"] == "Apache-2.0"
  with open(os.path.join(ROOT, "LICENSE")) as f:
    assert "Apache License" in f.read(200)
  assert cfg["metadata"]["version"] == "attr: akorn_jax.__version__"
  assert akorn_jax.__version__.count(".") == 2
  assert os.path.isfile(os.path.join(ROOT, "akorn_jax", "py.typed"))


def _run(args, *, env, cwd, timeout=900):
  proc = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
  assert proc.returncode == 0, f"{args}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
  return proc


@pytest.mark.slow
def test_wheel_commands_work_outside_the_repository(tmp_path):
  src, dist, site = tmp_path / "src", tmp_path / "dist", tmp_path / "site"
  outside = tmp_path / "elsewhere"
  outside.mkdir()
  # Build from a copy, so the build leaves nothing (build/, *.egg-info) in the checkout.
  shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
      ".git", ".venv", "runs", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache"))
  _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
        f"--wheel-dir={dist}", str(src)], env=dict(os.environ), cwd=tmp_path)
  wheel, = dist.glob("akorn_jax-*.whl")
  names = zipfile.ZipFile(wheel).namelist()
  for want in ("akorn_jax/configs/sudoku_akorn.py", "akorn_jax/configs/sudoku_base.py",
               "akorn_jax/experiments/train.py", "akorn_jax/assets/sudoku_akorn/weights.npz",
               "akorn_jax/assets/sudoku_hard.npz", "akorn_jax/py.typed"):
    assert want in names, want
  assert not any(n.startswith(("configs/", "experiments/", "tests/")) for n in names)
  _run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", f"--target={site}", str(wheel)],
       env=dict(os.environ), cwd=tmp_path)

  # A user's environment: the installed wheel only (no checkout on the path), data in tmp.
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  env.update(PYTHONPATH=str(site), AKORN_DATA_DIR=str(tmp_path / "data"), JAX_PLATFORMS="cpu")
  bin_dir = site / "bin"
  where = _run([sys.executable, "-c", "import akorn_jax.configs as c; print(c.__file__)"],
               env=env, cwd=outside).stdout
  assert where.startswith(str(site)), where

  # The shipped model solves a puzzle.
  solved = _run([bin_dir / "akorn-sudoku", "solve", "--json", "--K=8", "--steps=32",
                 "..3.2.6..9..3.5..1..18.64....81.29..7.......8..67.82....26.95..8..2.3..9..5.1.3.."],
                env=env, cwd=outside)
  assert json.loads(solved.stdout.splitlines()[-1])["solved"]

  # A named built-in config trains, and the run evaluates from its own config.json.
  work = outside / "run"
  small = ["--config.train.num_steps=2", "--config.checkpoint.every_steps=2",
           "--config.train.log_every=1", "--config.eval.train_eval_puzzles=4"]
  _run([bin_dir / "akorn-train", "--config=sudoku_akorn:tiny", f"--workdir={work}", *small],
       env=env, cwd=outside)
  assert (work / "config.json").is_file() and (work / "metrics.jsonl").is_file()
  _run([bin_dir / "akorn-evaluate", f"--workdir={work}", "--config.eval.num_puzzles=4",
        "--config.eval.num_starts=(1,)", f"--output={outside / 'eval.json'}"],
       env=env, cwd=outside)
  result = json.loads((outside / "eval.json").read_text())
  assert result["step"] == 2 and "sudoku_generated/hard:test" in result

  # A user's own config file, building on a built-in one.
  (outside / "mine.py").write_text(
      "from akorn_jax import config_loader\n"
      "def get_config(arg=None):\n"
      "  c = config_loader.load('sudoku_akorn:tiny')\n"
      "  c.model.ch = 32\n"
      "  return c\n")
  dry = _run([bin_dir / "akorn-train", "--config=mine.py", "--dry_run"], env=env, cwd=outside)
  mine = json.loads(dry.stdout.splitlines()[-1])
  tiny = json.loads(_run([bin_dir / "akorn-train", "--config=sudoku_akorn:tiny", "--dry_run"],
                         env=env, cwd=outside).stdout.splitlines()[-1])
  assert mine["config"] == "mine.py" and 0 < mine["params"] < tiny["params"]
