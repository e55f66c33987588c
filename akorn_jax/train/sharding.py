"""Device mesh, array shardings and multi-host start-up.

The mesh has two axes, ('data', 'fsdp'). The batch is split over both (every device sees a distinct
slice of the global batch); parameters, optimiser moments and EMA are replicated, or, when
fsdp > 1, split over 'fsdp' along their largest divisible dimension. The train state is created
directly in its sharding (`jax.jit(init, out_shardings=...)`), so no full copy lands on one device.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import ml_collections
import numpy as np
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P

DATA_AXES = ("data", "fsdp")

# Any of these in the environment means a launcher (SLURM, a cluster scheduler, a user) asked for a
# multi-process run; jax.distributed.initialize() reads the rest of the settings itself.
_DISTRIBUTED_ENV = ("JAX_COORDINATOR_ADDRESS", "COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES",
                    "SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE", "TPU_WORKER_HOSTNAMES")


def maybe_initialize_distributed(flag: bool = False) -> bool:
  """Calls `jax.distributed.initialize()` when `flag` is set or the environment asks for it.

  Must run before anything touches a JAX device. Cluster launchers (SLURM, MPI, TPU pods) are
  detected by JAX itself; elsewhere set JAX_COORDINATOR_ADDRESS=host:port, JAX_NUM_PROCESSES and
  JAX_PROCESS_ID on every process. Returns whether it initialised.
  """
  if not (flag or any(os.environ.get(k) for k in _DISTRIBUTED_ENV)):
    return False
  kwargs = {name: int(os.environ[var]) for name, var in
            (("num_processes", "JAX_NUM_PROCESSES"), ("process_id", "JAX_PROCESS_ID"))
            if var in os.environ}
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
