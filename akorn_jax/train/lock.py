"""One trainer per workdir: an exclusive lock on `<workdir>/train.lock`.

Two trainers writing one workdir would interleave their checkpoints, metrics and config. The
trainer takes the lock before it writes anything and releases it when it ends, however it ends:
the lock is the operating system's (`flock`), held by the open file, so even a process killed
with SIGKILL lets go of it at once. The file also records who holds it (PID, host, start time,
command line), so a second trainer refuses at once naming the holder, and a trainer that finds
the record of a holder that is gone (crashed, killed, machine rebooted) says so and takes over.

`flock` is reliable on local disks and on NFS (where Linux maps it to byte-range locks). On
object-store mounts (gcsfuse and the like) it may be local to each machine: there, two machines
can still both train into one workdir; the lock file then at least names the other holder.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import sys
import time

LOCK_FILE = "train.lock"


class WorkdirLockedError(RuntimeError):
  """Another process holds the workdir's lock; the message names its PID and host."""


def _holder(fd: int) -> dict | None:
  """The holder record in the lock file, None when empty (released cleanly) or unreadable."""
  os.lseek(fd, 0, os.SEEK_SET)
  raw = os.read(fd, 1 << 16)
  if not raw.strip():
    return None
  try:
    record = json.loads(raw)
  except ValueError:
    return {"pid": "?", "host": "?", "started": "?", "argv": f"unreadable record {raw[:80]!r}"}
  return record if isinstance(record, dict) else None


def _describe(record: dict) -> str:
  return (f"PID {record.get('pid', '?')} on host {record.get('host', '?')} (started "
          f"{record.get('started', '?')}: {record.get('argv', '?')})")


class WorkdirLock:
  """An exclusive, non-blocking lock on a workdir (a context manager, or `acquire`/`release`).

  Args:
    workdir: the run directory; created if missing.
  """

  def __init__(self, workdir: str):
    self.workdir = workdir
    self.path = os.path.join(workdir, LOCK_FILE)
    self._fd: int | None = None

  def acquire(self) -> WorkdirLock:
    """Takes the lock, or refuses at once.

    Raises:
      WorkdirLockedError: another process holds it (named in the message).
    """
    if self._fd is not None:
      return self
    os.makedirs(self.workdir, exist_ok=True)
    fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
      holder = _holder(fd) or {}
      os.close(fd)
      raise WorkdirLockedError(
          f"Workdir {self.workdir!r} is in use by another trainer: {_describe(holder)}. Two "
          "trainers on one workdir would mix their checkpoints and metrics, so this one stops "
          "without touching it. Wait for that run to end (or stop it), or pass another --workdir."
      ) from e
    stale = _holder(fd)
    if stale is not None:
      logging.warning("Workdir %s: the previous trainer, %s, ended without releasing its lock "
                      "(it crashed or was killed); taking over.", self.workdir, _describe(stale))
    record = {"pid": os.getpid(), "host": socket.gethostname(),
              "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "argv": " ".join(sys.argv)}
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, (json.dumps(record) + "\n").encode())
    os.fsync(fd)
    self._fd = fd
    return self

  def release(self) -> None:
    """Empties the record (a clean end) and lets go of the lock; idempotent."""
    if self._fd is None:
      return
    fd, self._fd = self._fd, None
    try:
      os.ftruncate(fd, 0)
    finally:
      os.close(fd)  # closing the file releases the flock

  def __enter__(self) -> WorkdirLock:
    return self.acquire()

  def __exit__(self, *exc) -> None:
    self.release()
