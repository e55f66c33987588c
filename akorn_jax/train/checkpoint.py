"""Checkpoints through orbax (the only module importing it).

One checkpoint holds the whole `TrainState` (params, rest, optimiser state, EMA, step, loop RNG)
and, as JSON, the data iterator's position, so a resumed run continues the same trajectory. orbax
writes into a temporary directory and renames it when complete, so a run killed mid-save leaves
the previous checkpoint intact; only the last `max_to_keep` are kept.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from typing import Any

import jax
import orbax.checkpoint as ocp

SUBDIR = "checkpoints"


def _manager(workdir: str, max_to_keep: int | None = None) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
  handlers = {"state": ocp.StandardCheckpointHandler(), "data": ocp.JsonCheckpointHandler()}
  return ocp.CheckpointManager(os.path.join(os.path.abspath(workdir), SUBDIR), options=options,
                               item_handlers=handlers)


class Checkpointer:
  """Checkpoints of one run directory; the loop saves when `due(step)` and at the end."""

  def __init__(self, workdir: str, *, every_steps: int, max_to_keep: int):
    self.every_steps = every_steps
    self._mngr = _manager(workdir, max_to_keep)

  def latest_step(self) -> int | None:
    return self._mngr.latest_step()

  def due(self, step: int) -> bool:
    return self.every_steps > 0 and step % self.every_steps == 0

  def save(self, step: int, state: Any, data_state: dict[str, Any]) -> None:
    """Saves `state` (at optimiser step `step`) and the data position; asynchronous, atomic."""
    if step in self._mngr.all_steps():
      return
    self._mngr.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                  data=ocp.args.JsonSave(data_state)))

  def restore(self, step: int, abstract_state: Any) -> tuple[Any, dict[str, Any]]:
    """Restores checkpoint `step` into `abstract_state` (ShapeDtypeStructs carrying shardings)."""
    out = self._mngr.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state), data=ocp.args.JsonRestore()))
    return out.state, out.data

  def restore_or_init(self, init_fn: Callable[[], Any],
                      abstract_state: Any) -> tuple[Any, dict[str, Any] | None]:
    """The latest checkpoint in the workdir, else `init_fn()` with no data state."""
    step = self.latest_step()
    if step is None:
      return init_fn(), None
    return self.restore(step, abstract_state)

  def close(self) -> None:
    """Waits for pending asynchronous saves and releases the manager."""
    self._mngr.wait_until_finished()
    self._mngr.close()


def load_latest(workdir: str) -> tuple[int, dict[str, Any]]:
  """(step, tree) of the latest checkpoint of `workdir` as saved (nested dicts of arrays), for
  evaluators and tests that have no model at hand.

  Raises:
    FileNotFoundError: when `workdir` holds no checkpoint.
  """
  mngr = _manager(workdir)
  step = mngr.latest_step()
  if step is None:
    raise FileNotFoundError(f"No checkpoint in {os.path.join(workdir, SUBDIR)}; train first or "
                            "pass the workdir of a finished run.")
  # Onto this process's first device, whatever the topology that saved it (another mesh, hosts).
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
                        mngr.item_metadata(step).state)
  out = mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target),
                                                   data=ocp.args.JsonRestore()))
  mngr.close()
  return step, {"state": out.state, "data": out.data}


def restore_subtree(workdir: str, target: Any) -> tuple[int, Any]:
  """(step, tree) of only the part of the latest checkpoint's state that `target` names.

  Args:
    workdir: the run directory.
    target: nested dicts of `jax.ShapeDtypeStruct`s (with shardings) along the saved state's
      paths, e.g. {"ema": {"params": ..., "rest": ...}}; nothing else (optimiser state, data
      position) is read.

  Raises:
    FileNotFoundError: when `workdir` holds no checkpoint.
  """
  mngr = ocp.CheckpointManager(os.path.join(os.path.abspath(workdir), SUBDIR),
                               item_handlers={"state": ocp.PyTreeCheckpointHandler()})
  try:
    step = mngr.latest_step()
    if step is None:
      raise FileNotFoundError(f"No checkpoint in {os.path.join(workdir, SUBDIR)}; train first or "
                              "pass the workdir of a finished run.")
    out = mngr.restore(step, args=ocp.args.Composite(state=ocp.args.PyTreeRestore(
        item=target, restore_args=ocp.checkpoint_utils.construct_restore_args(target),
        partial_restore=True)))
  finally:
    mngr.close()
  return step, out.state


class PreemptionFlag:
  """Set by SIGTERM (a scheduler's pre-emption notice); the loop polls it after each step, saves and
  exits 0. The previous handler comes back on `restore()`."""

  def __init__(self):
    self._event = threading.Event()
    self._previous = None
    if threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, lambda *_: self._event.set())

  def reached(self, step: int) -> bool:
    """Whether to stop after `step`. With several processes, all must stop at the same step:
    JAX's preemption sync point (which also listens for SIGTERM) picks it."""
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
      return multihost_utils.reached_preemption_sync_point(step)
    return self._event.is_set()

  def restore(self) -> None:
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
