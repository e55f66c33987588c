"""experiments/train.py via subprocess: a bad override fails naming the key, --dry_run, a short run.

The driver resolves the task from the config (`akorn_jax.tasks.get_task`); the toy config names its
task as "toy:from_config", found because tests/ is on the child's PYTHONPATH.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import toy

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
CONFIG = os.path.join(TESTS, "toy.py")


def _driver(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
  env = {**os.environ, "PYTHONPATH": os.pathsep.join([TESTS, ROOT])}
  return subprocess.run([sys.executable, "-m", "experiments.train", *args], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=timeout)


def test_bad_override_fails_naming_the_key():
  proc = _driver(f"--config={CONFIG}", "--config.optim.lrr=1", "--workdir=/nonexistent",
                 timeout=60)
  assert proc.returncode != 0
  assert "lrr" in proc.stderr and "optim.lr" in proc.stderr, proc.stderr
  assert "Traceback" not in proc.stderr


def test_dry_run_prints_param_count_and_a_run_trains(tmp_path):
  proc = _driver(f"--config={CONFIG}", "--dry_run")
  assert proc.returncode == 0, proc.stderr[-3000:]
  line = json.loads(proc.stdout.strip().splitlines()[-1])
  want = toy.DIM * toy.HIDDEN + 2 * toy.HIDDEN + toy.HIDDEN * toy.CLASSES + toy.CLASSES
  assert line == {"config": CONFIG, "params": want}

  proc = _driver(f"--config={CONFIG}", f"--workdir={tmp_path}", "--config.optim.lr=0.01")
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert [m["step"] for m in toy.read_metrics(str(tmp_path))] == [1, 2, 3, 3]  # 3 steps + eval
  assert all(abs(m["lr"] - 0.01) < 1e-8 for m in toy.read_metrics(str(tmp_path)) if "lr" in m)
