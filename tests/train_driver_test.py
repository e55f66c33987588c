"""experiments/train.py via subprocess: fast failure on a bad override, --dry_run, a short run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import train_test as toy

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
CONFIG = os.path.join(TESTS, "toy_train_config.py")

# The driver with `akorn_jax.tasks` stood in by a registry that knows the toy task (the owner's
# registry is tested with the real tasks).
RUN_DRIVER = f"""
import sys, types, runpy
sys.path[:0] = [{TESTS!r}, {ROOT!r}]
import train_test as toy
tasks = types.ModuleType("akorn_jax.tasks")
tasks.get_task = lambda config: toy.toy_task()
sys.modules["akorn_jax.tasks"] = tasks
sys.argv = ["train.py"] + sys.argv[1:]
runpy.run_module("experiments.train", run_name="__main__")
"""


def _driver(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, "-c", RUN_DRIVER, *args], cwd=ROOT, capture_output=True,
                        text=True, timeout=timeout)


def test_bad_override_fails_fast_naming_the_key():
  start = time.monotonic()
  proc = subprocess.run([sys.executable, "-m", "experiments.train", f"--config={CONFIG}",
                         "--config.optim.lrr=1", "--workdir=/nonexistent"], cwd=ROOT,
                        capture_output=True, text=True, timeout=60)
  assert time.monotonic() - start < 5
  assert proc.returncode != 0
  assert "lrr" in proc.stderr and "optim.lr" in proc.stderr, proc.stderr
  assert "Traceback" not in proc.stderr


def test_dry_run_prints_param_count_and_a_run_trains(tmp_path):
  proc = _driver(f"--config={CONFIG}:toy", "--dry_run")
  assert proc.returncode == 0, proc.stderr[-3000:]
  line = json.loads(proc.stdout.strip().splitlines()[-1])
  want = toy.DIM * toy.HIDDEN + 2 * toy.HIDDEN + toy.HIDDEN * toy.CLASSES + toy.CLASSES
  assert line == {"config": f"{CONFIG}:toy", "params": want}

  proc = _driver(f"--config={CONFIG}", f"--workdir={tmp_path}", "--config.optim.lr=0.01")
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert [m["step"] for m in toy.read_metrics(str(tmp_path))] == [1, 2, 2]  # 2 steps + eval
  assert all(abs(m["lr"] - 0.01) < 1e-8 for m in toy.read_metrics(str(tmp_path)) if "lr" in m)
