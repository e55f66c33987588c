"""Metrics out of the loop: JSON lines, TensorBoard (tensorboardX, no TensorFlow), images, progress.

Telemetry of training: each logged line holds the means of the step metrics over the log interval
(summed on the device, one host transfer per log), `steps_per_s`, `examples_per_s` and, where the
chip's peak rate is known (`akorn_jax.compute.PEAK_TFLOPS`), `mfu` (model flops utilisation: XLA's
flop count of one step x steps/s over the devices' peak). The clock starts once the first step
(with its compilation) has finished, and evaluation time is left out. On a terminal, progress is a
tqdm bar; otherwise (SLURM, nohup, a pipe) one plain line per log on stderr. An optional step range
writes a jax profiler trace into <workdir>/tb (TensorBoard's profile tab).

Only process 0 writes; the other processes get a writer whose methods do nothing, so the loop
needs no `if process_index == 0` of its own.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import tensorboardX
import tqdm

from akorn_jax import compute, config_base
from akorn_jax import progress as progress_lib

METRICS_FILE = "metrics.jsonl"


def check_finite(step: int, metrics: Mapping[str, float]) -> None:
  """Stops the run on a NaN/inf metric, before anything of that step is saved.

  Raises:
    FloatingPointError: naming the step and the first non-finite metric.
  """
  for name in sorted(metrics, key=lambda k: k != "loss"):  # the loss first: usually the cause
    value = metrics[name]
    if not math.isfinite(value):
      raise FloatingPointError(
          f"Non-finite {name}={value} at step {step}; training stopped and this state was not "
          "saved, so the last checkpoint is the last good one. Lower optim.lr, set "
          "optim.clip_norm, or inspect the batch of this step.")


def _read_kept(path: str, initial_step: int) -> list[str]:
  """The lines of `path` up to `initial_step`. A torn last line (the run was killed while writing
  it) is dropped with a warning; an unparsable line elsewhere stops the run, naming it.

  Raises:
    ValueError: a line before the last is not a JSON object with a "step".
  """
  with open(path, encoding="utf-8", errors="replace") as f:
    lines = [line for line in f if line.strip()]
  kept = []
  for i, line in enumerate(lines):
    try:
      step = json.loads(line)["step"]
    except (ValueError, KeyError, TypeError) as e:
      if i == len(lines) - 1:
        logging.warning("%s: dropping its unparsable last line (the run was killed while writing "
                        "it): %r", path, line[:200])
        break
      raise ValueError(f"{path}: line {i + 1} is not a JSON object with a 'step' ({e}): "
                       f"{line[:200]!r}. Fix or remove that line (or move the file away) and "
                       "resume; checkpoints are untouched.") from e
    if step <= initial_step:
      kept.append(line if line.endswith("\n") else line + "\n")
  return kept


@jax.jit
def _add(sums: dict[str, jax.Array], metrics: dict[str, jax.Array]) -> dict[str, jax.Array]:
  return jax.tree.map(lambda a, b: a + b.astype(jnp.float32), sums, metrics)


class IntervalMeans:
  """Running sums of the step metrics, kept on the device.

  `add` is one small asynchronous computation per step (no host transfer, no wait); `means` brings
  the sums to the host once, when a line is logged.
  """

  def __init__(self):
    self._sums: dict[str, jax.Array] | None = None
    self.count = 0

  def add(self, metrics: Mapping[str, jax.Array]) -> None:
    metrics = dict(metrics)
    if self._sums is None:
      self._sums = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), metrics)
    else:
      self._sums = _add(self._sums, metrics)
    self.count += 1

  def means(self, to_host: Callable[[Any], Any]) -> dict[str, float]:
    """Means since the last `reset`; `to_host` copies device arrays to numpy (multi-host safe)."""
    if not self.count:
      return {}
    return {k: float(v) / self.count for k, v in to_host(self._sums).items()}

  def reset(self) -> None:
    self._sums, self.count = None, 0


class MetricWriter:
  """Writes `{workdir}/metrics.jsonl`, TensorBoard events and images, and shows a progress bar.

  The loop calls `step` after dispatching each step, `log` at each log step, runs evaluations
  inside `untimed()`, and may call `count_flops` once for MFU.

  Args:
    workdir: run directory.
    total_steps: the run's last step (for the bar's ETA).
    initial_step: the step the run starts (or resumes) at.
    batch_size: global examples per step (for examples/s).
    profile_steps: "A:B" traces the steps after step A up to step B ("" = no trace).
    progress: "bar" (tqdm), "lines" (one plain line per log on stderr), "none", or "auto" (a bar
      when stderr is a terminal, else lines).
  """

  def __init__(self, workdir: str, *, total_steps: int, initial_step: int = 0,
               batch_size: int | None = None, profile_steps: str = "", progress: str = "auto"):
    self.active = jax.process_index() == 0
    self._means = IntervalMeans()
    self._total, self._batch = total_steps, batch_size
    self._t0: float | None = None     # start of the timed part of this interval
    self._timed_steps = 0             # steps finished since _t0
    self._first: int | None = None    # first step seen by this process (its compilation)
    self._flops: float | None = None  # per step, when the peak is known
    self._peak: float | None = None   # FLOP/s of all devices
    self._start_wall = time.perf_counter()
    self._initial = initial_step
    self._profile = config_base.parse_step_range(profile_steps) if profile_steps else None
    self._profile_dir = os.path.join(workdir, "tb")
    self._tracing = False
    if not self.active:
      return
    if progress == "auto":
      progress = "bar" if progress_lib.is_terminal() else "lines"
    if progress not in ("bar", "lines", "none"):
      raise ValueError(f"progress={progress!r}; expected 'auto', 'bar', 'lines' or 'none'.")
    self._lines = progress == "lines"
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, METRICS_FILE)
    # A resumed run rewrites the steps after its checkpoint: drop what the dead run logged there so
    # the files read like one uninterrupted run.
    kept = _read_kept(path, initial_step) if os.path.exists(path) else []
    self._jsonl = open(path, "w", encoding="utf-8")
    self._jsonl.writelines(kept)
    self._tb = tensorboardX.SummaryWriter(os.path.join(workdir, "tb"),
                                          purge_step=initial_step + 1 if initial_step else None)
    self._bar = (tqdm.tqdm(total=total_steps, initial=initial_step, unit="step", dynamic_ncols=True)
                 if progress == "bar" else None)

  def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
    """One JSON line {"step": step, **scalars} and one TensorBoard scalar per entry."""
    if not self.active:
      return
    scalars = {k: float(v) for k, v in scalars.items()}
    self._jsonl.write(json.dumps({"step": step, **scalars}) + "\n")
    self._jsonl.flush()
    for name, value in scalars.items():
      self._tb.add_scalar(name, value, step)
    self._tb.flush()
    if "loss" in scalars and self._bar is not None:
      self._bar.set_postfix(loss=f"{scalars['loss']:.4g}", refresh=False)

  def write_images(self, step: int, images: Mapping[str, np.ndarray]) -> None:
    """Images as uint8 arrays [H, W, 3] (e.g. masks, phases), next to the scalars."""
    if not self.active:
      return
    for name, image in images.items():
      image = np.asarray(image)
      if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"Image {name!r} has dtype {image.dtype} and shape {image.shape}; "
                         "expected uint8 [H, W, 3]. Convert with np.uint8(255 * x.clip(0, 1)).")
      self._tb.add_image(name, image, step, dataformats="HWC")
    self._tb.flush()

  def advance(self, steps: int = 1) -> None:
    """Moves the progress bar (rate and ETA come from tqdm)."""
    if self.active and self._bar is not None:
      self._bar.update(steps)

  # --- telemetry ---------------------------------------------------------------------------------

  def step(self, step: int, metrics: Mapping[str, jax.Array]) -> None:
    """Called once per step, right after dispatching it, with its metrics (device arrays)."""
    self._means.add(metrics)
    if self._first is None:  # the clock starts once the first step, compilation included, is done
      self._first = step
      jax.block_until_ready(metrics)
      self._t0, self._timed_steps = time.perf_counter(), 0
    else:
      self._timed_steps += 1
    if self._profile is not None:
      start, stop = self._profile
      if not self._tracing and step == max(start, self._first) and step < stop:
        jax.profiler.start_trace(self._profile_dir)
        self._tracing = True
      elif self._tracing and step == stop:
        jax.block_until_ready(metrics)
        jax.profiler.stop_trace()
        self._tracing = False
    self.advance()

  def means(self, to_host: Callable[[Any], Any]) -> dict[str, float]:
    """The interval's means so far (e.g. for the NaN check before a save), without logging."""
    return self._means.means(to_host)

  def log(self, step: int, to_host: Callable[[Any], Any]) -> dict[str, float]:
    """Writes the interval's means and rates at `step`, starts a new interval, returns the line."""
    line = self._means.means(to_host)  # waits for `step`: the interval's last step is done
    self._means.reset()
    now = time.perf_counter()
    if self._t0 is not None and self._timed_steps and now > self._t0:
      rate = self._timed_steps / (now - self._t0)
      line["steps_per_s"] = rate
      if self._batch:
        line["examples_per_s"] = rate * self._batch
      if self._flops and self._peak:
        line["mfu"] = self._flops * rate / self._peak
    self._t0, self._timed_steps = now, 0
    self.write_scalars(step, line)
    if self.active and self._lines:
      self._print_line(step, line)
    return line

  @contextlib.contextmanager
  def untimed(self) -> Iterator[None]:
    """Leaves the enclosed time (an evaluation) out of steps/s."""
    start = time.perf_counter()
    try:
      yield
    finally:
      if self._t0 is not None:
        self._t0 += time.perf_counter() - start

  def count_flops(self, fn: Callable[..., Any], *args: Any, dtype: str = "float32") -> None:
    """The matmul/convolution flop count of one step `fn(*args)`, for MFU; skipped where no peak rate is known."""
    if not self.active:
      return
    peak = compute.peak_tflops(jax.devices()[0].device_kind, dtype)
    if peak is None:
      return
    try:
      self._flops = compute.count_flops(fn, *args)
    except Exception as e:  # pylint: disable=broad-except  (MFU is optional; training is not)
      logging.warning("No flop count for MFU: %r", e)
      return
    self._peak = peak * 1e12 * jax.device_count()

  def _print_line(self, step: int, line: Mapping[str, float]) -> None:
    """One plain progress line on stderr (no carriage returns), for logs that are files."""
    parts = [f"step {step}/{self._total} ({100 * step / max(self._total, 1):.0f}%)"]
    parts += [f"{k} {v:.4g}" for k, v in line.items()
              if k not in ("steps_per_s", "examples_per_s", "mfu", "lr")][:4]
    rate = line.get("steps_per_s")
    if rate:
      left = (self._total - step) / rate
      parts.append(f"{rate:.3g} steps/s")
      if "mfu" in line:
        parts.append(f"MFU {100 * line['mfu']:.1f}%")
      parts.append(f"ETA {progress_lib.duration(left)}")
    print(" | ".join(parts), file=sys.stderr, flush=True)

  def close(self) -> None:
    if self._tracing:
      jax.profiler.stop_trace()
      self._tracing = False
    if not self.active:
      return
    if self._bar is not None:
      self._bar.close()
    self._tb.close()
    self._jsonl.close()
