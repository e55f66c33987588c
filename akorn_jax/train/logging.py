"""Metrics out of the loop: JSON lines, TensorBoard (tensorboardX, no TensorFlow), images, progress.

Only process 0 writes; the other processes get a writer whose methods do nothing, so the loop
needs no `if process_index == 0` of its own.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping

import jax
import numpy as np
import tensorboardX
import tqdm

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


class MetricWriter:
  """Writes `{workdir}/metrics.jsonl`, TensorBoard events and images, and shows a progress bar.

  Args:
    workdir: run directory.
    total_steps: the run's last step (for the bar's ETA).
    initial_step: the step the run starts (or resumes) at.
  """

  def __init__(self, workdir: str, *, total_steps: int, initial_step: int = 0):
    self.active = jax.process_index() == 0
    if not self.active:
      return
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, METRICS_FILE)
    # A resumed run rewrites the steps after its checkpoint: drop what the dead run logged there so
    # the files read like one uninterrupted run.
    kept = _read_kept(path, initial_step) if os.path.exists(path) else []
    self._jsonl = open(path, "w", encoding="utf-8")
    self._jsonl.writelines(kept)
    self._tb = tensorboardX.SummaryWriter(os.path.join(workdir, "tb"),
                                          purge_step=initial_step + 1 if initial_step else None)
    self._bar = tqdm.tqdm(total=total_steps, initial=initial_step, unit="step", dynamic_ncols=True)

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
    if "loss" in scalars:
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
    if self.active:
      self._bar.update(steps)

  def close(self) -> None:
    if not self.active:
      return
    self._bar.close()
    self._tb.close()
    self._jsonl.close()
