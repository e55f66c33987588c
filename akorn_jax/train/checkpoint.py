"""Checkpoints through orbax (the only module importing it), with checksums and a fallback.

One checkpoint holds the whole `TrainState` (params, rest, optimiser state, EMA, step, loop RNG)
and, as JSON, the data iterator's position, so a resumed run continues the same trajectory. orbax
writes into a temporary directory and renames it when complete, so a run killed mid-save leaves
the previous checkpoint intact; only the last `max_to_keep` are kept.

What we add to orbax, so that one bad checkpoint never blocks or silently spoils a run:

* Checksums. Once a step is complete on disk, `checkpoints/<step>/SHA256SUMS` records the SHA-256
  of every file of the step (the `sha256sum` format: `cd checkpoints/<step> && sha256sum -c
  SHA256SUMS` checks it by hand). Restoring verifies them first, so a flipped byte is caught
  rather than trained on. A step without the file (the run died between the save and the sums)
  is restored unverified, with a warning.
* Fallback. Restoring tries the newest step first and, when it does not verify or restore (a
  truncated or flipped blob, an empty manifest, bad JSON, a missing `state/`, a stray empty step
  folder), the next older one, with a warning naming the step skipped and why. The trainer then
  moves the bad steps aside to `<workdir>/checkpoints_bad/<step>` (never deleted; the reason is
  in `WHY.txt` there) so that it can save that step again. Steps are moved only once an older one
  restored cleanly: when none restores (e.g. a model of another shape), nothing moves and the
  error lists every step's reason. Read-only users (evaluation, the Sudoku CLI) fall back the
  same way but move nothing and create no folder.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

import jax
import orbax.checkpoint as ocp

SUBDIR = "checkpoints"
BAD_SUBDIR = "checkpoints_bad"
SUMS_FILE = "SHA256SUMS"
# orbax's own bookkeeping, written after the sums (commit timestamp, commit marker): not covered.
_UNSUMMED = ("_CHECKPOINT_METADATA", "commit_success.txt")
_ORBAX_TMP_SUFFIX = ".orbax-checkpoint-tmp"  # orbax writes a step here, then renames it


class CheckpointError(ValueError):
  """No checkpoint of a workdir restores; the message names every step and why."""


# ------------------------------------------------------------------------------------------------
# Checksums of a finished step
# ------------------------------------------------------------------------------------------------


def sha256(path: str) -> str:
  """Hex SHA-256 of the file at `path` (read in 1 MiB blocks); also signs exported weights."""
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def _files(step_dir: str) -> list[str]:
  """Every file under `step_dir` but the sums and orbax's bookkeeping, as sorted '/'-separated
  relative paths."""
  out = []
  for root, _, names in os.walk(step_dir):
    for name in names:
      rel = os.path.relpath(os.path.join(root, name), step_dir).replace(os.sep, "/")
      if rel != SUMS_FILE and name not in _UNSUMMED:
        out.append(rel)
  return sorted(out)


def write_checksums(step_dir: str) -> None:
  """Writes `step_dir/SHA256SUMS` (atomically) over every file of the finished step."""
  lines = "".join(f"{sha256(os.path.join(step_dir, rel))}  {rel}\n" for rel in _files(step_dir))
  tmp = os.path.join(step_dir, SUMS_FILE + ".tmp")
  with open(tmp, "w", encoding="utf-8") as f:
    f.write(lines)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, os.path.join(step_dir, SUMS_FILE))


def verify_checksums(step_dir: str) -> bool:
  """Checks a step against its SHA256SUMS.

  Returns:
    True when verified, False when the step has no SHA256SUMS (saved before it was written).

  Raises:
    ValueError: naming the first file that is missing, extra, or differs from its recorded digest.
  """
  path = os.path.join(step_dir, SUMS_FILE)
  if not os.path.isfile(path):
    return False
  recorded = {}
  with open(path, encoding="utf-8", errors="replace") as f:
    for line_no, line in enumerate(f, 1):
      if not line.strip():
        continue
      parts = line.strip().split(maxsplit=1)
      digest = parts[0].lower()
      if len(parts) != 2 or len(digest) != 64 or set(digest) - set("0123456789abcdef"):
        raise ValueError(f"{path}:{line_no}: malformed line {line.strip()[:120]!r}; expected "
                         "'<64 hex digits>  <file>' as `sha256sum` writes it. Write the sums "
                         "again (or restore the file).")
      recorded[parts[1].lstrip("*")] = digest  # '*' marks sha256sum's binary mode
  present = _files(step_dir)
  for rel in sorted(set(recorded) | set(present)):
    if rel not in present:
      raise ValueError(f"file {rel} is missing (listed in {SUMS_FILE})")
    if rel not in recorded:
      raise ValueError(f"file {rel} is not listed in {SUMS_FILE} (added after the save)")
    actual = sha256(os.path.join(step_dir, rel))
    if actual != recorded[rel]:
      raise ValueError(f"SHA-256 mismatch for {rel}: {actual}, recorded {recorded[rel]}")
  return True


# ------------------------------------------------------------------------------------------------
# Restoring the newest step that restores cleanly
# ------------------------------------------------------------------------------------------------


def _reason(e: BaseException) -> str:
  """One line for a log: the exception type and the start of its message."""
  text = " ".join(str(e).split())
  return f"{type(e).__name__}: {text[:300]}{'...' if len(text) > 300 else ''}"


def _move_aside(workdir: str, step: int, reason: str) -> str:
  """Moves checkpoints/<step> to checkpoints_bad/<step>[.N] with a WHY.txt; returns the new path."""
  bad_root = os.path.join(workdir, BAD_SUBDIR)
  os.makedirs(bad_root, exist_ok=True)
  dest, n = os.path.join(bad_root, str(step)), 0
  while os.path.exists(dest):
    n += 1
    dest = os.path.join(bad_root, f"{step}.{n}")
  os.rename(os.path.join(workdir, SUBDIR, str(step)), dest)
  with open(os.path.join(dest, "WHY.txt"), "w", encoding="utf-8") as f:
    f.write(f"Checkpoint step {step} did not restore, so training resumed from an older step.\n"
            f"{reason}\n")
  return dest


def _restore_newest(mngr: ocp.CheckpointManager, workdir: str,
                    restore_args: Callable[[int], ocp.args.Composite], *,
                    move_aside: bool) -> tuple[int, Any] | None:
  """(step, orbax result) of the newest step that verifies and restores, None with no steps.

  Raises:
    CheckpointError: there are steps but none restores (each step's reason is named).
  """
  steps = sorted(mngr.all_steps(), reverse=True)
  if not steps:
    return None
  root = os.path.join(workdir, SUBDIR)
  skipped: list[tuple[int, str]] = []
  for step in steps:
    step_dir = os.path.join(root, str(step))
    try:
      verified = verify_checksums(step_dir)
      out = mngr.restore(step, args=restore_args(step))
    except Exception as e:  # pylint: disable=broad-except  (orbax/TensorStore/JSON all differ)
      skipped.append((step, _reason(e)))
      logging.warning("Checkpoint step %d in %s does not restore (%s); %s.", step, root,
                      skipped[-1][1], "trying the next older step" if step != steps[-1] else
                      "no older step left")
      continue
    if not verified:
      logging.warning("Checkpoint step %d in %s has no %s (saved by an older version, or the run "
                      "died right after saving it): restored without verifying.", step, root,
                      SUMS_FILE)
    if skipped:
      where = "moved to " + os.path.join(workdir, BAD_SUBDIR) if move_aside else "left in place"
      logging.warning("Restored checkpoint step %d of %s; skipped newer step(s) %s (%s).", step,
                      workdir, ", ".join(str(s) for s, _ in skipped), where)
      if move_aside and jax.process_index() == 0:
        if jax.process_count() > 1:
          from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
          multihost_utils.sync_global_devices("akorn_checkpoint_fallback")
        for bad_step, reason in skipped:
          _move_aside(workdir, bad_step, reason)
        mngr.reload()
    return step, out
  raise CheckpointError(
      f"No checkpoint in {root} restores; nothing was moved or deleted:\n" +
      "\n".join(f"  step {s}: {r}" for s, r in skipped) +
      "\nIf every step fails the same way, the model or mesh probably differs from the run's "
      "(compare the config with <workdir>/config.json); otherwise the files are damaged: move "
      f"the bad steps out of {root} and retry.")


# ------------------------------------------------------------------------------------------------
# The trainer's checkpointer
# ------------------------------------------------------------------------------------------------


def _manager(workdir: str, max_to_keep: int | None = None, *, read_only: bool = False,
             on_saved: Callable[[], None] | None = None) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(
      max_to_keep=max_to_keep, create=not read_only, read_only=read_only,
      async_options=ocp.AsyncOptions(post_finalization_callback=on_saved))
  handlers = {"state": ocp.StandardCheckpointHandler(), "data": ocp.JsonCheckpointHandler()}
  return ocp.CheckpointManager(os.path.join(os.path.abspath(workdir), SUBDIR), options=options,
                               item_handlers=handlers)


class Checkpointer:
  """Checkpoints of one run directory; the loop saves when `due(step)` and at the end.

  Args:
    workdir: the run directory (checkpoints go to `workdir/checkpoints`).
    every_steps: save period (`due`); 0 never.
    max_to_keep: how many steps orbax keeps.
    read_only: for evaluation: creates no folder, saves nothing, moves no bad step aside.
  """

  def __init__(self, workdir: str, *, every_steps: int, max_to_keep: int | None,
               read_only: bool = False):
    self.workdir = os.path.abspath(workdir)
    self.every_steps = every_steps
    self.read_only = read_only
    if read_only and not os.path.isdir(os.path.join(self.workdir, SUBDIR)):
      raise FileNotFoundError(f"No checkpoint in {os.path.join(workdir, SUBDIR)}; train first or "
                              "pass the workdir of a finished run.")
    self._pending: int | None = None
    self._mngr = _manager(workdir, max_to_keep, read_only=read_only, on_saved=self._write_sums)

  def _write_sums(self) -> None:
    """orbax's post-finalisation callback: the step's data is complete in its temporary folder,
    which orbax renames next, so the sums are committed together with the step."""
    step, self._pending = self._pending, None
    if step is None or jax.process_index() != 0:
      return
    final = os.path.join(self.workdir, SUBDIR, str(step))
    tmp = final + _ORBAX_TMP_SUFFIX
    write_checksums(tmp if os.path.isdir(tmp) else final)

  def latest_step(self) -> int | None:
    return self._mngr.latest_step()

  def due(self, step: int) -> bool:
    return self.every_steps > 0 and step % self.every_steps == 0

  def save(self, step: int, state: Any, data_state: dict[str, Any]) -> None:
    """Saves `state` (at optimiser step `step`) and the data position; asynchronous, atomic.
    SHA256SUMS is written when the step is complete."""
    if step in self._mngr.all_steps():
      return
    self._mngr.wait_until_finished()  # one save in flight, so `_pending` names it
    self._pending = step
    self._mngr.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                  data=ocp.args.JsonSave(data_state)))

  def restore(self, step: int, abstract_state: Any) -> tuple[Any, dict[str, Any]]:
    """Restores checkpoint `step` exactly (no fallback) into `abstract_state`.

    Raises:
      ValueError: the step's files differ from its SHA256SUMS.
    """
    verify_checksums(os.path.join(self.workdir, SUBDIR, str(step)))
    out = self._mngr.restore(step, args=_args(abstract_state))
    return out.state, out.data

  def restore_latest(self, abstract_state: Any) -> tuple[int, Any, dict[str, Any]] | None:
    """(step, state, data position) of the newest step that verifies and restores into
    `abstract_state` (ShapeDtypeStructs carrying shardings), None when there is no checkpoint.

    Raises:
      CheckpointError: there are checkpoints but none restores.
    """
    found = _restore_newest(self._mngr, self.workdir, lambda _: _args(abstract_state),
                            move_aside=not self.read_only)
    if found is None:
      return None
    step, out = found
    return step, out.state, out.data

  def restore_or_init(self, init_fn: Callable[[], Any],
                      abstract_state: Any) -> tuple[Any, dict[str, Any] | None]:
    """The newest checkpoint that restores (see `restore_latest`), else `init_fn()` with no
    data state."""
    found = self.restore_latest(abstract_state)
    if found is None:
      return init_fn(), None
    return found[1], found[2]

  def close(self) -> None:
    """Waits for pending asynchronous saves (and their checksums) and releases the manager."""
    self._mngr.wait_until_finished()
    self._mngr.close()


def _args(abstract_state: Any) -> ocp.args.Composite:
  return ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state),
                            data=ocp.args.JsonRestore())


def restore_subtree(workdir: str, target: Any) -> tuple[int, Any]:
  """(step, tree) of only the part of the state that `target` names, from the newest checkpoint
  that verifies and restores. Read-only (see `Checkpointer`).

  Args:
    workdir: the run directory.
    target: nested dicts of `jax.ShapeDtypeStruct`s (with shardings) along the saved state's
      paths, e.g. {"ema": {"params": ..., "rest": ...}}; nothing else (optimiser state, data
      position) is read.

  Raises:
    FileNotFoundError: when `workdir` holds no checkpoint.
    CheckpointError: when none restores.
  """
  root = os.path.join(os.path.abspath(workdir), SUBDIR)
  if not os.path.isdir(root):
    raise FileNotFoundError(f"No checkpoint in {os.path.join(workdir, SUBDIR)}; train first or "
                            "pass the workdir of a finished run.")
  mngr = ocp.CheckpointManager(
      root, options=ocp.CheckpointManagerOptions(create=False, read_only=True),
      item_handlers={"state": ocp.PyTreeCheckpointHandler()})
  args = ocp.args.Composite(state=ocp.args.PyTreeRestore(
      item=target, restore_args=ocp.checkpoint_utils.construct_restore_args(target),
      partial_restore=True))
  try:
    found = _restore_newest(mngr, os.path.abspath(workdir), lambda _: args, move_aside=False)
  finally:
    mngr.close()
  if found is None:
    raise FileNotFoundError(f"No checkpoint in {os.path.join(workdir, SUBDIR)}; train first or "
                            "pass the workdir of a finished run.")
  step, out = found
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
