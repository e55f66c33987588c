"""The scripts under tools/: shell syntax of the device scripts, and the Sudoku sweep tool."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load(rel_path: str):
  spec = importlib.util.spec_from_file_location(os.path.basename(rel_path)[:-3],
                                                os.path.join(ROOT, rel_path))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.mark.parametrize("script", ["env.sh", "device_wheels.sh", "h200_bench.sh", "h200_run.sh",
                                    "sudoku_solver.sh"])
def test_device_scripts_parse(script):
  subprocess.run(["bash", "-n", os.path.join(ROOT, "tools", "gpu", script)], check=True)


def test_no_script_installs_wheels_but_env_sh():
  """One copy of the wheel install: the run scripts source env.sh instead of calling pip."""
  for script in ("h200_bench.sh", "h200_run.sh", "sudoku_solver.sh"):
    with open(os.path.join(ROOT, "tools", "gpu", script)) as f:
      text = f.read()
    assert "pip install" not in text and 'source "$(dirname "$0")/env.sh"' in text, script


@pytest.mark.slow  # loads the tool's absl flags in-process: they clash with experiments.benchmark's
def test_sudoku_sweep_shipped_model_solves_most_in_distribution_boards():
  sweep = _load("tools/sudoku_sweep.py").sweep
  recs = list(sweep(None, ["sudoku_generated/satnet_like:test"], 8, (1, 16), (1, 2),
                    ("last", "confidence")))
  assert [(r["T_eval"], r["boards"]) for r in recs] == [(1, 8), (16, 8)]
  for r in recs:
    json.dumps(r)  # every value is JSON-able
    assert {"acc/K=1", "acc/K=2/last", "acc/K=2/confidence", "oracle/K=2"} <= set(r)
    assert r["acc/K=1"] <= r["oracle/K=2"]
  # Trained with T = 16, the shipped model solves 84% of these boards there (results/sudoku.md),
  # and (almost) none after a single step.
  assert recs[1]["acc/K=1"] >= 0.5 > recs[0]["acc/K=1"]


def test_sudoku_sweep_rejects_bad_steps():
  env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
  proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "sudoku_sweep.py"),
                         "--steps=16,x"], capture_output=True, text=True, env=env, cwd=ROOT)
  assert proc.returncode != 0 and "--steps=16,x" in proc.stderr + proc.stdout
