"""Checkpoints: exact resume after SIGKILL, exit 0 on SIGTERM, restore into a sharded target."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np

import toy
from akorn_jax.train import checkpoint as ckpt_lib
from akorn_jax.train import loop

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
OVERRIDES = {"train.num_steps": 10, "checkpoint.every_steps": 2, "checkpoint.max_to_keep": 3}

# A training run in a fresh interpreter whose data loading is slowed from the 2nd step on, so the
# test can signal it between checkpoints.
CHILD = f"""
import sys, time
sys.path[:0] = [{TESTS!r}, {ROOT!r}]
import toy
from akorn_jax.train import loop

class Slow(toy.ToySource):
  calls = 0
  def __getitem__(self, i):
    Slow.calls += 1
    if Slow.calls > 8:
      time.sleep(0.06)
    return super().__getitem__(i)

task = toy.toy_task()
task = type(task)(**{{**task.__dict__, "source": lambda config, split: Slow()}})
loop.train_and_evaluate(toy.toy_config(**{OVERRIDES!r}), sys.argv[1], task=task)
"""


def _start(workdir: str) -> subprocess.Popen:
  return subprocess.Popen([sys.executable, "-c", CHILD, workdir], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _wait_for_checkpoint(proc: subprocess.Popen, workdir: str, step: int, timeout: float = 120):
  """Until checkpoint `step` is finalised (orbax renames its tmp dir only when complete)."""
  path = os.path.join(workdir, ckpt_lib.SUBDIR, str(step))
  deadline = time.monotonic() + timeout
  while not os.path.isdir(path):
    assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
    assert time.monotonic() < deadline, "no checkpoint appeared"
    time.sleep(0.05)


def test_sigkill_and_restart_continues_the_same_trajectory(tmp_path):
  killed, straight = str(tmp_path / "killed"), str(tmp_path / "straight")
  proc = _start(killed)
  _wait_for_checkpoint(proc, killed, 4)
  proc.send_signal(signal.SIGKILL)
  proc.wait(timeout=30)
  _, state, _ = toy.restore_latest(killed)
  assert int(state.step) < 10  # really interrupted
  proc = _start(killed)
  out = proc.communicate(timeout=300)[0].decode()
  assert proc.returncode == 0, out[-3000:]

  loop.train_and_evaluate(toy.toy_config(**OVERRIDES), straight, task=toy.toy_task())
  a, b = toy.final_params(killed), toy.final_params(straight)
  for k in b:
    np.testing.assert_allclose(a[k], b[k], rtol=1e-6, atol=1e-6, err_msg=k)
  ma, mb = toy.read_metrics(killed), toy.read_metrics(straight)
  assert [m["step"] for m in ma] == [m["step"] for m in mb]
  for x, y in zip(ma, mb):
    # Rates (steps/s, examples/s, MFU) are wall-clock, and absent right after a (re)start.
    same = sorted(k for k in x if not (k.endswith("per_s") or k == "mfu"))
    assert same == sorted(k for k in y if not (k.endswith("per_s") or k == "mfu"))
    np.testing.assert_allclose([x[k] for k in same], [y[k] for k in same], rtol=1e-6)
  assert sorted(int(d) for d in os.listdir(os.path.join(killed, ckpt_lib.SUBDIR))) == [6, 8, 10]


def test_sigterm_saves_and_exits_zero(tmp_path):
  workdir = str(tmp_path)
  proc = _start(workdir)
  _wait_for_checkpoint(proc, workdir, 2)
  proc.send_signal(signal.SIGTERM)
  out = proc.communicate(timeout=120)[0].decode()
  assert proc.returncode == 0, out[-3000:]
  step, state, data_state = toy.restore_latest(workdir)
  assert 2 < step < 10 and int(state.step) == step  # saved where it stopped
  assert data_state  # with the data position


def test_restore_into_sharded_target(tmp_path):
  cfg = toy.toy_config(**{"mesh.fsdp": 2})
  s = loop.setup(cfg, toy.toy_task())
  state = s.init_fn()
  ckpt = ckpt_lib.Checkpointer(str(tmp_path), every_steps=1, max_to_keep=1)
  assert ckpt.latest_step() is None and ckpt.due(3)
  ckpt.save(0, state, {"next_index": 7})
  ckpt.close()
  ckpt = ckpt_lib.Checkpointer(str(tmp_path), every_steps=1, max_to_keep=1)
  restored, data = ckpt.restore_or_init(lambda: None, s.abstract_state)
  ckpt.close()
  assert data == {"next_index": 7}
  assert jax.tree.structure(restored) == jax.tree.structure(state)
  for x, y in zip(jax.tree.leaves(restored), jax.tree.leaves(state)):
    assert x.sharding == y.sharding
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
      x, y = jax.random.key_data(x), jax.random.key_data(y)
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
