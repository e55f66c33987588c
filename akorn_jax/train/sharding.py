"""Device mesh, array shardings and multi-host start-up.

The mesh has two axes, ('data', 'fsdp'). The batch is split over both (every device sees a distinct
slice of the global batch); parameters, optimiser moments and EMA are replicated, or, when
fsdp > 1, split over 'fsdp' along their largest divisible dimension. The train state is created
directly in its sharding (`jax.jit(init, out_shardings=...)`), so no full copy lands on one device.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import jax
import ml_collections
import numpy as np
from absl import logging
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P

DATA_AXES = ("data", "fsdp")


def launched_processes(env: Mapping[str, str] | None = None) -> int | None:
  """How many processes the launcher says this run has; None when only a coordinator is named.

  Read, in order: JAX_NUM_PROCESSES (set by hand with JAX_COORDINATOR_ADDRESS and JAX_PROCESS_ID);
  SLURM_STEP_NUM_TASKS (set by `srun` for its job step; an `sbatch` script itself runs as one
  process even when SLURM_NTASKS says more); OMPI_COMM_WORLD_SIZE (`mpirun`); the hosts of
  TPU_WORKER_HOSTNAMES (a TPU pod slice, one process per host). Returns 1 when none is set.
  """
  env = os.environ if env is None else env
  for var in ("JAX_NUM_PROCESSES", "SLURM_STEP_NUM_TASKS", "OMPI_COMM_WORLD_SIZE"):
    if env.get(var):
      try:
        return int(env[var])
      except ValueError:
        raise ValueError(f"{var}={env[var]!r} is not a process count; unset it or set an "
                         "integer.") from None
  if env.get("TPU_WORKER_HOSTNAMES"):
    return len([h for h in env["TPU_WORKER_HOSTNAMES"].split(",") if h.strip()])
  if env.get("JAX_COORDINATOR_ADDRESS") or env.get("COORDINATOR_ADDRESS"):
    return None  # a coordinator named by hand: several processes, counted by JAX
  return 1


def maybe_initialize_distributed(flag: bool = False,
                                 env: Mapping[str, str] | None = None) -> bool:
  """Calls `jax.distributed.initialize()` when `flag` is set or there are several processes.

  Must run before anything touches a JAX device. "Several processes" is `launched_processes() > 1`
  (or a coordinator address without a count); a single-task job, e.g. `sbatch --ntasks=4` running
  python without `srun`, stays one process instead of waiting for peers that never come. Cluster
  launchers (srun, mpirun, TPU pods) give JAX the rest; elsewhere set JAX_COORDINATOR_ADDRESS=
  host:port, JAX_NUM_PROCESSES and JAX_PROCESS_ID on every process. Returns whether it initialised.
  """
  env = os.environ if env is None else env
  count = launched_processes(env)
  if not flag and count is not None and count <= 1:
    tasks = env.get("SLURM_NTASKS", "")
    if tasks.isdigit() and int(tasks) > 1:
      logging.warning("SLURM_NTASKS=%s but this process was not started by srun: running as one "
                      "process. Launch with `srun` to use every task.", tasks)
    return False
  kwargs = {name: int(env[var]) for name, var in
            (("num_processes", "JAX_NUM_PROCESSES"), ("process_id", "JAX_PROCESS_ID"))
            if env.get(var)}
  jax.distributed.initialize(**kwargs)
  return True


def make_mesh(mesh_config: ml_collections.ConfigDict) -> jax.sharding.Mesh:
  """A ('data', 'fsdp') mesh from `config.mesh` (data = -1: all devices left after fsdp)."""
  n = jax.device_count()
  fsdp, data = int(mesh_config.fsdp), int(mesh_config.data)
  if data == -1:
    if fsdp < 1 or n % fsdp:
      raise ValueError(f"config.mesh.fsdp={fsdp} must be >= 1 and divide the {n} devices; "
                       "set it to a divisor of the device count.")
    data = n // fsdp
  if data < 1 or fsdp < 1 or data * fsdp > n:
    raise ValueError(f"config.mesh data={data} x fsdp={fsdp} needs {data * fsdp} devices but "
                     f"{n} exist; use data=-1 to take all devices.")
  devices = jax.devices()[:data * fsdp]
  return jax.make_mesh((data, fsdp), DATA_AXES, devices=devices,
                       axis_types=(AxisType.Auto, AxisType.Auto))


def batch_sharding(mesh: jax.sharding.Mesh) -> NamedSharding:
  """Leading (batch) axis over every device of the mesh, the rest replicated."""
  return NamedSharding(mesh, P(DATA_AXES))


def replicated(mesh: jax.sharding.Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def param_sharding(leaf: Any, mesh: jax.sharding.Mesh) -> NamedSharding:
  """Replicated, or over 'fsdp' along the largest dimension that the fsdp size divides."""
  fsdp = mesh.shape["fsdp"]
  shape = getattr(leaf, "shape", ())
  if fsdp == 1 or not shape:
    return replicated(mesh)
  dims = [d for d in np.argsort(shape, kind="stable")[::-1] if shape[d] % fsdp == 0]
  if not dims:
    return replicated(mesh)
  spec = [None] * len(shape)
  spec[dims[0]] = "fsdp"
  return NamedSharding(mesh, P(*spec))


def state_shardings(abstract_state: Any, mesh: jax.sharding.Mesh) -> Any:
  """Shardings for every leaf of a (abstract) train state; moments follow their parameters."""
  return jax.tree.map(lambda x: param_sharding(x, mesh), abstract_state)


def global_batch(host_batch: dict[str, np.ndarray],
                 mesh: jax.sharding.Mesh) -> dict[str, jax.Array]:
  """Assembles the global batch from this process's slice of it.

  Args:
    host_batch: per-process arrays [B / process_count, ...]; process p holds rows
      [p B/P, (p+1) B/P) of the global batch (see `akorn_jax.data.pipeline`).
    mesh: the training mesh.

  Returns:
    The global arrays [B, ...] sharded on the batch axis.
  """
  sharding = batch_sharding(mesh)
  p = jax.process_count()

  def one(x: np.ndarray) -> jax.Array:
    x = np.asarray(x)
    return jax.make_array_from_process_local_data(sharding, x, (x.shape[0] * p, *x.shape[1:]))

  return jax.tree.map(one, host_batch)
