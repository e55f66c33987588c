"""Progress of long loops (training, evaluations, attacks, corruptions) with a total and an ETA.

On a terminal it is a tqdm bar. When stderr is not a terminal (SLURM, nohup, a pipe, a test),
carriage-return bar updates would fill the log file with one long line, so progress becomes plain
lines instead: one every `every_s` seconds and a last one; a loop shorter than that stays silent.

  for batch in progress.track(batches, total=len(batches), desc="objects eval", unit="batch"):
    ...
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

import tqdm

T = TypeVar("T")


def is_terminal() -> bool:
  """Whether progress goes to a terminal (stderr is a TTY)."""
  return bool(getattr(sys.stderr, "isatty", lambda: False)())


def duration(seconds: float) -> str:
  """"H:MM:SS"."""
  s = max(int(seconds), 0)
  return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def track(items: Iterable[T], *, total: int | None = None, desc: str = "", unit: str = "it",
          every_s: float = 30.0) -> Iterator[T]:
  """Yields `items`, showing progress (see the module docstring); `total` defaults to len(items)."""
  if total is None and hasattr(items, "__len__"):
    total = len(items)  # type: ignore[arg-type]
  if is_terminal():
    yield from tqdm.tqdm(items, total=total, desc=desc, unit=unit, dynamic_ncols=True)
    return
  start = last = time.perf_counter()
  done, printed = 0, False
  for item in items:
    yield item
    done += 1
    now = time.perf_counter()
    if now - last >= every_s or (printed and done == total):
      last, printed = now, True
      line = f"{desc}: {done}/{total if total is not None else '?'} {unit}"
      if total:
        line += f" ({100 * done / total:.0f}%)"
      rate = done / (now - start) if now > start else 0.0
      if rate:
        line += f", {rate:.3g} {unit}/s"
        if total and done < total:
          line += f", ETA {duration((total - done) / rate)}"
      line += f", {duration(now - start)} elapsed"
      print(line, file=sys.stderr, flush=True)
