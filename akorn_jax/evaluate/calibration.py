"""Calibration: accuracy and expected calibration error (ECE), clean and under corruptions, and
the reliability diagram.

ECE (`metrics.expected_calibration_error`) bins predictions by confidence (the top class's
probability) into equal-width bins and averages |accuracy - confidence| over the bins, weighted by
their share of the examples; 0 is perfectly calibrated. Reports give it as a fraction (x100 for %).

Two sources of corrupted images share one report format, `{"clean"?, "corruptions": {name:
{severity: {"accuracy", "ece"}}}, "per_severity": {severity: mean}, "mean": mean}`:

* `calibration_report`: our corruptions (`evaluate.corruptions`) applied to given clean images;
* `cifar10_c_report`: the released CIFAR-10-C test sets (`data.cifar.cifar10_c`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from akorn_jax import imageops, metrics, progress
from akorn_jax.evaluate import common
from akorn_jax.evaluate import corruptions as corruptions_lib

# (images [B, H, W, 3] in [0, 1], key) -> class probabilities [B, K]
ProbsFn = Callable[[jax.Array, jax.Array], jax.Array]


def scores(probs: np.ndarray, labels: np.ndarray, num_bins: int = 15) -> dict[str, float]:
  """{"accuracy", "ece"} of class probabilities [N, K] against int labels [N]."""
  return {"accuracy": float(np.mean(np.asarray(probs).argmax(1) == labels)),
          "ece": metrics.expected_calibration_error(probs, labels, num_bins=num_bins)}


def _probs(probs_fn: ProbsFn, images: np.ndarray, transform, key: jax.Array, chunk_size: int,
           mesh: jax.sharding.Mesh | None) -> np.ndarray:
  """probs_fn over `images` in chunks, each call's batch split over `mesh` (evaluate/common.py);
  chunk c uses keys split from fold_in(key, c) for `transform(images, key)` and for the model."""
  out = []
  for c, lo in enumerate(range(0, len(images), chunk_size)):
    k_data, k_model = jax.random.split(jax.random.fold_in(key, c))
    batch = np.asarray(transform(images[lo:lo + chunk_size], k_data))
    out.append(common.sharded_call(probs_fn, batch, k_model, batch_argnums=(0,), mesh=mesh))
  return np.concatenate(out).astype(np.float64)


def _summarise(report: dict, severities: Sequence[int]) -> dict:
  """Adds the means per severity and over all cells to a report with "corruptions"."""
  mean = lambda rows: {m: float(np.mean([r[m] for r in rows])) for m in ("accuracy", "ece")}
  cells = report["corruptions"].values()
  report["per_severity"] = {s: mean([c[s] for c in cells]) for s in severities}
  report["mean"] = mean([r for c in cells for r in c.values()])
  return report


def calibration_report(probs_fn: ProbsFn, images: ArrayLike, labels: ArrayLike, key: jax.Array, *,
                       corruptions: Sequence[str] = corruptions_lib.CORRUPTIONS,
                       severities: Sequence[int] = (1, 2, 3, 4, 5), num_bins: int = 15,
                       chunk_size: int = 500, mesh: jax.sharding.Mesh | None = None) -> dict:
  """Accuracy and ECE, clean and under each of our corruptions and severities.

  Args:
    probs_fn: `probs_fn(images [B, H, W, 3] in [0, 1], key) -> probs [B, K]` (softmax outputs;
      the key drives the model's randomness).
    images: [N, H, W, 3] clean images in [0, 1].
    labels: [N] int true classes.
    key: base key for the corruptions and the model.
    corruptions: names from `corruptions.CORRUPTIONS`.
    severities: severities in 1..5.
    num_bins: ECE bins.
    chunk_size: examples per call of `probs_fn`.
    mesh: devices every call's batch is split over (default: all; evaluate/common.py); the
      results do not depend on it.

  Returns:
    The report format of the module docstring, with "clean". ECE is computed per (corruption,
    severity) and averaged.
  """
  images, labels = np.asarray(images, np.float32), np.asarray(labels)
  clean = _probs(probs_fn, images, lambda x, k: jnp.asarray(x), jax.random.fold_in(key, 0),
                 chunk_size, mesh)
  report = {"clean": scores(clean, labels, num_bins), "corruptions": {}}
  for i, name in enumerate(progress.track(corruptions, desc="corruptions", unit="corruption"),
                           start=1):
    report["corruptions"][name] = {
        s: scores(_probs(probs_fn, images,
                         lambda x, k, s=s, name=name: corruptions_lib.corrupt(name, x, s, k),
                         jax.random.fold_in(jax.random.fold_in(key, i), s), chunk_size, mesh),
                  labels, num_bins)
        for s in severities}
  return _summarise(report, severities)


def cifar10_c_report(probs_fn: ProbsFn, key: jax.Array, *, names: Sequence[str] | None = None,
                     severities: Sequence[int] = (1, 2, 3, 4, 5), num_images: int = 10_000,
                     data_dir: str | None = None, num_bins: int = 15, chunk_size: int = 500,
                     mesh: jax.sharding.Mesh | None = None) -> dict:
  """Accuracy and ECE on the released CIFAR-10-C, per corruption and severity.

  Args:
    probs_fn: as for `calibration_report`.
    key: base key of the model's randomness.
    names: tfds corruption names (default: the 15 of the benchmark, `cifar.CIFAR10_C_CORRUPTIONS`).
    severities: severities in 1..5.
    num_images: the first images of each test set (10,000 = all).
    data_dir: tfds data directory holding the prepared sets.
    num_bins: ECE bins.
    chunk_size: examples per call of `probs_fn`.
    mesh: as for `calibration_report`.

  Returns:
    The report format of the module docstring (no "clean").

  Raises:
    DatasetNotPreparedError: a set is not prepared (the message says how).
  """
  from akorn_jax.data import cifar  # pylint: disable=g-import-not-at-top

  report = {"corruptions": {}}
  names = tuple(names or cifar.CIFAR10_C_CORRUPTIONS)
  for i, name in enumerate(progress.track(names, desc="CIFAR-10-C", unit="corruption"), start=1):
    report["corruptions"][name] = {}
    for s in severities:
      src = cifar.cifar10_c(name, s, data_dir_=data_dir)
      n = min(len(src), num_images)
      images = imageops.to_float(np.stack([src[j]["image"] for j in range(n)]))
      labels = np.asarray([src[j]["label"] for j in range(n)])
      probs = _probs(probs_fn, images, lambda x, k: jnp.asarray(x),
                     jax.random.fold_in(jax.random.fold_in(key, i), s), chunk_size, mesh)
      report["corruptions"][name][s] = scores(probs, labels, num_bins)
  return _summarise(report, severities)


def reliability_diagram(probs: ArrayLike, labels: ArrayLike, path: str, *, num_bins: int = 15,
                        title: str | None = None) -> str:
  """Writes a reliability diagram (accuracy vs confidence per bin, with counts) as a PNG.

  Args:
    probs: [N, K] class probabilities.
    labels: [N] int true classes.
    path: output file.
    num_bins: equal-width confidence bins.
    title: prefix of the plot title (the ECE is always shown).

  Returns:
    `path`.
  """
  # A bare Figure renders with Agg without touching pyplot's global backend state.
  from matplotlib.figure import Figure

  bins = metrics.calibration_bins(probs, labels, num_bins=num_bins)
  ece = metrics.expected_calibration_error(probs, labels, num_bins=num_bins)
  edges = bins["bin_edges"]
  centers, width = (edges[:-1] + edges[1:]) / 2, edges[1] - edges[0]
  filled = bins["count"] > 0
  fig = Figure(figsize=(4.5, 5.5))
  ax, ax_count = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
  ax.bar(centers[filled], bins["accuracy"][filled], width=width, edgecolor="black",
         label="accuracy")
  ax.bar(centers[filled], (bins["confidence"] - bins["accuracy"])[filled], width=width,
         bottom=bins["accuracy"][filled], color="red", alpha=0.3, label="gap")
  ax.plot([0, 1], [0, 1], "k--", linewidth=1)
  ax.set(ylim=(0, 1), ylabel="accuracy",
         title=f"{title + ': ' if title else ''}ECE {100 * ece:.2f}%")
  ax.legend(loc="upper left")
  ax_count.bar(centers, bins["count"], width=width, edgecolor="black", color="gray")
  ax_count.set(xlim=(0, 1), xlabel="confidence", ylabel="count")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  return path
