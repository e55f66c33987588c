"""Two JAX processes on localhost (CPU collectives over gloo) train like one process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

import toy
from akorn_jax.train import loop, sharding

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)

CHILD = f"""
import sys
sys.path[:0] = [{TESTS!r}, {ROOT!r}]
import jax
jax.config.update("jax_cpu_collectives_implementation", "gloo")
from akorn_jax.train import loop, sharding
assert sharding.maybe_initialize_distributed()
assert jax.process_count() == 2 and jax.device_count() == 4, (jax.process_count(), jax.devices())
import toy
# The toy evaluator is sharded (evaluate/common.sharded_call): it runs at step 2 and at the end on
# both processes, each giving the rows of its own devices.
out = loop.train_and_evaluate(toy.toy_config(**{{"train.eval_every": 2}}), sys.argv[1],
                              task=toy.toy_task())
print("child done", jax.process_index(), out["eval_accuracy"])
"""


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def test_two_processes_match_one(tmp_path):
  workdir = str(tmp_path / "two")
  port = _free_port()
  procs = []
  for pid in range(2):
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "JAX_PLATFORMS": "cpu", "JAX_COORDINATOR_ADDRESS": f"localhost:{port}",
           "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": str(pid)}
    procs.append(subprocess.Popen([sys.executable, "-c", CHILD, workdir], cwd=ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
  try:  # a timeout, not a hang, if the pair never meets (e.g. a blocked port)
    outs = [p.communicate(timeout=200)[0].decode() for p in procs]
  finally:
    for p in procs:  # never leave a half of the pair waiting on its peer
      if p.poll() is None:
        p.kill()
  for p, out in zip(procs, outs):
    assert p.returncode == 0, out[-4000:]

  # One process, one device, the same global batches (the pipeline splits each global batch).
  loop.train_and_evaluate(toy.toy_config(**{"mesh.data": 1, "train.eval_every": 2}),
                          str(tmp_path / "one"), task=toy.toy_task())
  two, one = toy.final_params(workdir), toy.final_params(str(tmp_path / "one"))
  assert two.keys() == one.keys() and len(one) == 13
  for k in one:
    np.testing.assert_allclose(two[k], one[k], atol=1e-5, err_msg=k)
  # Process 0 logs alone: a line per step, and the evaluation after steps 2 and 3.
  metrics = toy.read_metrics(workdir)
  assert [m["step"] for m in metrics if "loss" in m] == [1, 2, 3]
  evals = [(m["step"], m["eval_accuracy"]) for m in metrics if "eval_accuracy" in m]
  evals_one = [(m["step"], m["eval_accuracy"]) for m in toy.read_metrics(str(tmp_path / "one"))
               if "eval_accuracy" in m]
  assert [s for s, _ in evals] == [2, 3] and evals == evals_one
  # Both processes evaluated, to the same number as process 0 wrote.
  done = [line.split() for out in outs for line in out.splitlines()
          if line.startswith("child done")]
  assert sorted(int(d[2]) for d in done) == [0, 1]
  assert {float(d[3]) for d in done} == {evals[-1][1]}


@pytest.mark.parametrize("env,want", [
    ({}, False),
    ({"SLURM_JOB_ID": "7", "SLURM_NTASKS": "1", "SLURM_STEP_NUM_TASKS": "1"}, False),
    ({"SLURM_JOB_ID": "7", "SLURM_NTASKS": "4"}, False),  # sbatch script, python without srun
    ({"SLURM_JOB_ID": "7", "SLURM_NTASKS": "4", "SLURM_STEP_NUM_TASKS": "4"}, True),  # srun
    ({"JAX_NUM_PROCESSES": "1", "JAX_COORDINATOR_ADDRESS": "h:1"}, False),
    ({"JAX_NUM_PROCESSES": "2", "JAX_COORDINATOR_ADDRESS": "h:1", "JAX_PROCESS_ID": "1"}, True),
    ({"JAX_COORDINATOR_ADDRESS": "h:1"}, True),  # count left to JAX
    ({"OMPI_COMM_WORLD_SIZE": "1"}, False),
    ({"OMPI_COMM_WORLD_SIZE": "8"}, True),
    ({"TPU_WORKER_HOSTNAMES": "localhost"}, False),
    ({"TPU_WORKER_HOSTNAMES": "10.0.0.2,10.0.0.3"}, True),
])
def test_distributed_starts_only_for_several_processes(env, want, monkeypatch):
  calls = []
  monkeypatch.setattr(jax.distributed, "initialize", lambda **kw: calls.append(kw))
  assert sharding.maybe_initialize_distributed(env=env) is want
  assert len(calls) == int(want)
  if env.get("JAX_PROCESS_ID"):
    assert calls == [{"num_processes": 2, "process_id": 1}]
  # --distributed forces it, whatever the environment says.
  assert sharding.maybe_initialize_distributed(True, env=env)


def test_bad_process_count_is_named():
  with pytest.raises(ValueError, match="SLURM_STEP_NUM_TASKS='x'"):
    sharding.launched_processes({"SLURM_STEP_NUM_TASKS": "x"})
