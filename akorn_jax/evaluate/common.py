"""Sharded evaluation shared by every evaluator: chunks of rows split over all devices of a mesh.

`sharded_map(fn, rows, mesh=..., chunk=...)` runs a jitted, row-wise function over a host dataset
of N rows in equal chunks. Each chunk is one global array whose leading axis is split over every
device of the mesh (so N devices compute N different slices, not the same batch N times), the last
chunk is padded to the same shape (one compilation) and the results are gathered back to host
numpy arrays on every process. With several processes, every process passes the same full rows
(evaluators read the whole eval set everywhere) and gets the same full results.

`sharded_call(fn, *args, batch_argnums=...)` is the one-batch form used by the evaluators that
already cut their data into batches (objects, classification, attacks, corruptions): the batch
arguments are padded to a multiple of the mesh size and split over it, the rest replicated, and
the padding is dropped from the host results.

`auto_chunk` picks the chunk from the backend and its free memory, given the bytes one row needs
(`row_bytes` estimates them from the traced program).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import jax
import ml_collections
import numpy as np
from jax.experimental import multihost_utils

from akorn_jax import progress as progress_lib
from akorn_jax.train import sharding as shard_lib

# Share of the free memory one chunk may take: on CPU the host RAM is also the program's, the
# dataset's and other processes' (the estimate of `row_bytes` is already an upper bound).
_CPU_SHARE, _ACCELERATOR_SHARE = 0.25, 0.5


def default_mesh() -> jax.sharding.Mesh:
  """The ('data', 'fsdp') mesh over every device (a run's own mesh is `train.loop.setup().mesh`)."""
  return shard_lib.make_mesh(ml_collections.ConfigDict({"data": -1, "fsdp": 1}))


def _avals(jaxpr: Any) -> list[Any]:
  """Every value a jaxpr creates, nested jaxprs (loop bodies, calls) counted once each."""
  out = []
  for eqn in jaxpr.eqns:
    out += [v.aval for v in eqn.outvars]
    for value in eqn.params.values():
      for sub in value if isinstance(value, (tuple, list)) else (value,):
        inner = sub if hasattr(sub, "eqns") else getattr(sub, "jaxpr", None)
        if hasattr(inner, "eqns"):
          out += _avals(inner)
  return out


def row_bytes(fn: Callable[..., Any], *args: Any) -> int:
  """An upper bound of the device bytes one call needs: the sum of every value its traced program
  creates (as if XLA reused no buffer; a loop body counts once, as its buffers are reused).

  Call it with a one-row batch to get the bytes per row; it traces, nothing runs.
  """
  avals = _avals(jax.make_jaxpr(fn)(*args).jaxpr)
  return int(sum(math.prod(a.shape) * a.dtype.itemsize for a in avals if hasattr(a, "shape")))


def free_bytes(devices: list[jax.Device]) -> int:
  """Memory a chunk may use on `devices` together: a share of the host's available RAM on CPU, of
  each accelerator's free memory elsewhere."""
  stats = [d.memory_stats() for d in devices]
  if devices[0].platform == "cpu" or not all(s and "bytes_limit" in s for s in stats):
    import psutil  # pylint: disable=g-import-not-at-top
    return int(psutil.virtual_memory().available * _CPU_SHARE)
  free = min(s["bytes_limit"] - s.get("bytes_in_use", 0) for s in stats)
  return int(free * _ACCELERATOR_SHARE) * len(devices)


def auto_chunk(bytes_per_row: int, mesh: jax.sharding.Mesh, *, cap: int = 8192) -> int:
  """Rows per chunk that fit the free memory of the mesh's devices, a multiple of its size.

  Args:
    bytes_per_row: device bytes one row needs (see `row_bytes`).
    mesh: the devices the chunk is split over.
    cap: never more rows than this (beyond a few thousand rows a chunk gains no throughput).
  """
  devices = list(mesh.devices.flat)
  rows = free_bytes(devices) // max(bytes_per_row, 1)
  rows = min(int(rows), cap) // len(devices) * len(devices)
  return max(rows, 2 * len(devices))


def rows_per_call(rows: int, devices: int) -> int:
  """`rows` rounded up to a multiple of `devices`, at least 2 rows per device: XLA:CPU multiplies
  a single row by a matrix with another kernel (matrix-vector), whose rounding differs from the
  matrix-matrix one by an ulp, so one row per device would make results depend on the chunk."""
  return max(-(-rows // devices), 2) * devices


def replicate(tree: Any, mesh: jax.sharding.Mesh) -> Any:
  """Every array of `tree` replicated on `mesh` (already-placed arrays are left where they are
  when their sharding spans the mesh's devices)."""
  target = shard_lib.replicated(mesh)

  def one(x):
    if isinstance(x, jax.Array) and set(x.sharding.device_set) == set(mesh.devices.flat):
      return x
    return jax.device_put(x, target)

  return jax.tree.map(one, tree)


def to_host(out: Any) -> Any:
  """Host numpy copies of (possibly multi-process) global outputs, on every process."""
  if jax.process_count() == 1:
    return jax.tree.map(np.asarray, out)
  return multihost_utils.process_allgather(out, tiled=True)


def shard_rows(rows: Any, mesh: jax.sharding.Mesh) -> Any:
  """Host arrays [R, ...] (R a multiple of the mesh size, equal on every process) as global
  arrays split over the mesh's devices on the leading axis."""
  sharding = shard_lib.batch_sharding(mesh)

  def one(x):
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

  return jax.tree.map(one, rows)


def sharded_call(fn: Callable[..., Any], *args: Any, batch_argnums: tuple[int, ...] = (1,),
                 mesh: jax.sharding.Mesh | None = None) -> Any:
  """`fn(*args)` with the batch arguments split over the devices of `mesh`.

  Args:
    fn: a jitted function whose outputs are row-wise in the batch (output row r depends on batch
      row r only; randomness drawn for the whole batch from one key is fine, as JAX draws row r's
      numbers independently of the rows after it).
    *args: its arguments; those at `batch_argnums` are host arrays (or pytrees of them) with a
      common leading batch size B, the others are replicated (model state, keys).
    batch_argnums: positions of the batch arguments.
    mesh: devices to split the batch over (default: all, `default_mesh`).

  Returns:
    `fn`'s outputs as host numpy arrays with leading axis B (the padding rows dropped).
  """
  mesh = mesh or default_mesh()
  sizes = {len(x) for i in batch_argnums for x in jax.tree.leaves(args[i])}
  if len(sizes) != 1:
    raise ValueError(f"sharded_call needs one leading batch size over batch_argnums="
                     f"{batch_argnums}; got sizes {sorted(sizes)}.")
  num = sizes.pop()
  padded = rows_per_call(num, mesh.size)
  idx = np.minimum(np.arange(padded), num - 1)  # padding rows repeat the last row
  call_args = [
      shard_rows(jax.tree.map(lambda x: np.asarray(x)[idx], a), mesh) if i in batch_argnums
      else replicate(a, mesh) for i, a in enumerate(args)]
  return _take(to_host(fn(*call_args)), num)


def sharded_map(fn: Callable[..., Any], rows: Any, *, chunk: int,
                mesh: jax.sharding.Mesh | None = None, args: tuple = (),
                chunk_times: list[float] | None = None, progress: str | None = None) -> Any:
  """`fn(*args, rows)` over all rows, as chunks split over the devices of `mesh`.

  Args:
    fn: a jitted function of (*args, chunk of rows) whose outputs are row-wise: output row r
      depends only on input row r (padding rows are computed and dropped).
    rows: a pytree of host arrays with a common leading axis N (the same on every process).
    chunk: rows per call, rounded up to a multiple of the mesh size (at least 2 rows per device);
      the last chunk is padded by repeating the first row, so every call has one shape. Results
      do not depend on the chunk or the device count (for row-wise `fn`; bit for bit on CPU,
      tests/evaluate_common_test.py).
    mesh: devices to split each chunk over (default: all, `default_mesh`).
    args: further arguments of `fn` (model state, keys), replicated on the mesh.
    chunk_times: if given, the wall seconds of each chunk are appended (the first includes
      compilation).
    progress: a label for `akorn_jax.progress` (a bar on a terminal, lines otherwise), or None.

  Returns:
    The pytree of `fn`'s outputs as host numpy arrays with leading axis N.
  """
  mesh = mesh or default_mesh()
  leaves = jax.tree.leaves(rows)
  num = len(leaves[0])
  if num == 0 or any(len(x) != num for x in leaves):
    raise ValueError(f"sharded_map needs rows with one common, non-zero leading size; got "
                     f"{[np.shape(x) for x in leaves]}.")
  if chunk < 1:
    raise ValueError(f"chunk={chunk}; expected a positive number of rows.")
  chunk = rows_per_call(min(chunk, num), mesh.size)
  args = replicate(args, mesh)

  starts = range(0, num, chunk)
  if progress:
    starts = progress_lib.track(starts, desc=progress, unit="chunk")
  results, pending = [], None
  for lo in starts:
    t0 = time.perf_counter()
    idx = np.arange(lo, lo + chunk)
    idx[idx >= num] = 0  # padding rows repeat row 0; their results are dropped
    out = fn(*args, shard_rows(jax.tree.map(lambda x: np.asarray(x)[idx], rows), mesh))
    # Keep one chunk in flight: fetch the previous one while this one runs.
    if pending is not None:
      results.append(_take(to_host(pending[0]), pending[1]))
    pending = (out, min(chunk, num - lo))
    if chunk_times is not None:
      jax.block_until_ready(out)
      chunk_times.append(time.perf_counter() - t0)
  results.append(_take(to_host(pending[0]), pending[1]))
  return jax.tree.map(lambda *parts: np.concatenate(parts, axis=0), *results)


def _take(tree: Any, n: int) -> Any:
  return jax.tree.map(lambda x: np.asarray(x)[:n], tree)
