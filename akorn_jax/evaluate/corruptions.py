"""Common corruptions in the style of CIFAR-10-C, and calibration under them.

Our own implementations of a subset of the corruptions of Hendrycks & Dietterich (2019,
"Benchmarking neural network robustness to common corruptions and perturbations"), with the
severity parameters of their CIFAR (32x32) variant as we know them from the paper's release. We
could not check them against the original script offline: treat numbers computed here as "our
CIFAR-10-C-like corruptions", and use the released CIFAR-10-C (`akorn_jax.data.cifar`) for numbers
to compare with the literature.

| name | severities 1..5 | method |
| --- | --- | --- |
| gaussian_noise | σ .04 .06 .08 .09 .10 | x + N(0, σ²) |
| shot_noise | λ 500 250 100 75 50 | Poisson(λx) / λ |
| impulse_noise | p .01 .02 .03 .05 .07 | fraction p of values set to 0 or 1 (salt & pepper) |
| speckle_noise | σ .06 .10 .12 .16 .20 | x + x·N(0, σ²) (one of the 4 "extra" corruptions) |
| defocus_blur | (r, s) (.3,.4) (.4,.5) (.5,.6) (1,.2) (1.5,.1) | disk of radius r smoothed by a 3x3 Gaussian of σ s, reflect-101 borders |
| gaussian_blur | σ .4 .6 .7 .8 1 | separable Gaussian, truncated at 4σ, edge borders (extra) |
| contrast | c .75 .5 .4 .3 .15 | (x - m)·c + m, m the per-channel spatial mean |
| brightness | c .05 .1 .15 .2 .3 | HSV value + c |
| saturate | (a, b) (.3,0) (.1,0) (1.5,0) (2,.1) (2.5,.2) | HSV saturation·a + b (extra) |
| fog | (c, d) (.2,3) (.5,3) (.75,2.5) (1,2) (1.5,1.75) | + c·plasma fractal of wibble decay d |
| pixelate | f .95 .9 .85 .75 .65 | box downsample by f, box upsample (PIL) |
| jpeg_compression | quality 80 65 58 50 40 | PIL JPEG round trip |

Not implemented: glass, motion and zoom blur, snow, frost (needs the original frost photos),
elastic transform, spatter. Deviations: saturate keeps grey pixels grey (HSV hue is undefined
there); the fog fractal is our periodic diamond-square (noise amplitude wibble², halved by
`d` per level as in the original) with a fractal per image; pixelate and JPEG run through PIL on
uint8 and are not jittable (their key is unused). Saturate is not monotone in pixel change across
severities (it desaturates at 1-2 and oversaturates at 3-5), by the original design.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import PIL.Image
from jax.typing import ArrayLike

from akorn_jax import metrics

# ------------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------------


def _shift_conv(images: jax.Array, kernel: np.ndarray, mode: str) -> jax.Array:
  """Per-channel 2-D correlation with a small static kernel [kh, kw], same size output."""
  kh, kw = kernel.shape
  padded = jnp.pad(images, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)), mode=mode)
  h, w = images.shape[1:3]
  return sum(float(kernel[i, j]) * padded[:, i:i + h, j:j + w]
             for i in range(kh) for j in range(kw) if kernel[i, j] != 0)


def _gaussian_1d(sigma: float, radius: int) -> np.ndarray:
  k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
  return k / k.sum()


def _disk_kernel(radius: float, alias_blur: float) -> np.ndarray:
  """A normalised disk of `radius` on the 17x17 grid, smoothed by a 3x3 Gaussian, cropped."""
  grid = np.arange(-8, 9)
  xx, yy = np.meshgrid(grid, grid)
  disk = (xx ** 2 + yy ** 2 <= radius ** 2).astype(np.float64)
  g = _gaussian_1d(alias_blur, 1)
  disk = np.pad(disk / disk.sum(), 1)
  smooth = sum(g[i] * g[j] * np.roll(disk, (i - 1, j - 1), (0, 1)) for i in range(3) for j in range(3))
  nz = np.nonzero(smooth > 1e-12)
  return smooth[nz[0].min():nz[0].max() + 1, nz[1].min():nz[1].max() + 1]


def _numpy_rng(key: jax.Array) -> np.random.Generator:
  """A numpy generator seeded from a JAX key, for the corruptions computed outside JAX."""
  return np.random.default_rng(int(jax.random.randint(key, (), 0, 2 ** 31 - 1)))


def _plasma_fractal(rng: np.random.Generator, size: int, decay: float) -> np.ndarray:
  """Periodic diamond-square height map [size, size] in [0, 1]; size a power of two."""
  m = np.zeros((size, size))
  step, wibble = size, 100.0
  while step >= 2:
    half = step // 2
    g = m[::half, ::half]  # a view: writes land in m.
    n = g.shape[0] // 2
    noise = lambda: wibble ** 2 * rng.uniform(-1, 1, (n, n))
    # Square step: cell centres get the mean of their 4 diagonal neighbours.
    diag = sum(np.roll(g, (a, b), (0, 1)) for a in (-1, 1) for b in (-1, 1))
    g[1::2, 1::2] = diag[1::2, 1::2] / 4 + noise()
    # Diamond step: edge midpoints get the mean of their 4 axial neighbours (corners and centres).
    cross = sum(np.roll(g, s, ax) for s in (-1, 1) for ax in (0, 1))
    g[0::2, 1::2] = cross[0::2, 1::2] / 4 + noise()
    g[1::2, 0::2] = cross[1::2, 0::2] / 4 + noise()
    step, wibble = half, wibble / decay
  m -= m.min()
  return m / m.max()


# ------------------------------------------------------------------------------------------------
# Corruptions: (images [B,H,W,3] float32 in [0,1], parameter, key) -> same
# ------------------------------------------------------------------------------------------------


def _gaussian_noise(x, sigma, key):
  return x + sigma * jax.random.normal(key, x.shape)


def _shot_noise(x, lam, key):
  return jax.random.poisson(key, x * lam, x.shape).astype(jnp.float32) / lam


def _impulse_noise(x, p, key):
  k_flip, k_salt = jax.random.split(key)
  flip = jax.random.uniform(k_flip, x.shape) < p
  return jnp.where(flip, jax.random.bernoulli(k_salt, 0.5, x.shape).astype(x.dtype), x)


def _speckle_noise(x, sigma, key):
  return x + x * sigma * jax.random.normal(key, x.shape)


def _defocus_blur(x, param, key):
  del key
  return _shift_conv(x, _disk_kernel(*param), "reflect")


def _gaussian_blur(x, sigma, key):
  del key
  g = _gaussian_1d(sigma, int(4 * sigma + 0.5))
  return _shift_conv(_shift_conv(x, g[None, :], "edge"), g[:, None], "edge")


def _contrast(x, c, key):
  del key
  mean = jnp.mean(x, axis=(1, 2), keepdims=True)
  return (x - mean) * c + mean


def _brightness(x, c, key):
  del key
  # With hue and saturation fixed, RGB scales with the HSV value V = max(R, G, B); black has no
  # hue and becomes grey at the new value.
  v = jnp.max(x, axis=-1, keepdims=True)
  v_new = jnp.clip(v + c, 0.0, 1.0)
  return jnp.where(v > 0, x * v_new / jnp.maximum(v, 1e-12), v_new)


def _saturate(x, param, key):
  del key
  a, b = param[0], param[1]
  # With hue and value fixed, each channel's distance to V scales with saturation S = (V - min)/V.
  v = jnp.max(x, axis=-1, keepdims=True)
  s = (v - jnp.min(x, axis=-1, keepdims=True)) / jnp.maximum(v, 1e-12)
  s_new = jnp.clip(s * a + b, 0.0, 1.0)
  return v - (v - x) * jnp.where(s > 0, s_new / jnp.maximum(s, 1e-12), 1.0)


def _fog(x, param, key):
  c, decay = param
  b, h, w, _ = x.shape
  size = 1 << (max(h, w, 2) - 1).bit_length()  # the smallest power of two covering the image
  rng = _numpy_rng(key)
  fog = np.stack([_plasma_fractal(rng, size, decay)[:h, :w] for _ in range(b)])[..., None]
  peak = jnp.max(x, axis=(1, 2, 3), keepdims=True)
  return (x + c * fog) * peak / (peak + c)


def _pil_map(x, fn):
  out = [np.asarray(fn(PIL.Image.fromarray(im)), np.float32) / 255.0
         for im in np.asarray(jnp.round(x * 255), np.uint8)]
  return jnp.asarray(np.stack(out))


def _pixelate(x, f, key):
  del key
  h, w = x.shape[1:3]
  box = PIL.Image.Resampling.BOX
  return _pil_map(x, lambda im: im.resize((max(1, int(w * f)), max(1, int(h * f))), box)
                  .resize((w, h), box))


def _jpeg(x, quality, key):
  del key

  def roundtrip(im):
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality)
    return PIL.Image.open(buf).convert("RGB")

  return _pil_map(x, roundtrip)


# name -> (function, severity parameters 1..5, how it runs): "traced" jits once with the
# parameter as an argument, "static" jits per severity (the parameter shapes a kernel), "numpy"
# runs eagerly (PIL, or numpy randomness).
_REGISTRY: dict[str, tuple[Callable, tuple, str]] = {
    "gaussian_noise": (_gaussian_noise, (0.04, 0.06, 0.08, 0.09, 0.10), "traced"),
    "shot_noise": (_shot_noise, (500, 250, 100, 75, 50), "traced"),
    "impulse_noise": (_impulse_noise, (0.01, 0.02, 0.03, 0.05, 0.07), "traced"),
    "speckle_noise": (_speckle_noise, (0.06, 0.1, 0.12, 0.16, 0.2), "traced"),
    "defocus_blur": (_defocus_blur, ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)),
                     "static"),
    "gaussian_blur": (_gaussian_blur, (0.4, 0.6, 0.7, 0.8, 1.0), "static"),
    "contrast": (_contrast, (0.75, 0.5, 0.4, 0.3, 0.15), "traced"),
    "brightness": (_brightness, (0.05, 0.1, 0.15, 0.2, 0.3), "traced"),
    "saturate": (_saturate, ((0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)), "traced"),
    "fog": (_fog, ((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)), "numpy"),
    "pixelate": (_pixelate, (0.95, 0.9, 0.85, 0.75, 0.65), "numpy"),
    "jpeg_compression": (_jpeg, (80, 65, 58, 50, 40), "numpy"),
}

CORRUPTIONS: tuple[str, ...] = tuple(_REGISTRY)


def _apply(name, images, param, key):
  return jnp.clip(_REGISTRY[name][0](images, param, key), 0.0, 1.0)


_apply_traced = jax.jit(_apply, static_argnums=0)
_apply_static = jax.jit(_apply, static_argnums=(0, 2))


def corrupt(name: str, images: ArrayLike, severity: int, key: jax.Array) -> jax.Array:
  """Applies corruption `name` at `severity`.

  Args:
    name: one of `CORRUPTIONS`.
    images: [B, H, W, 3] float in [0, 1].
    severity: 1 (mild) .. 5 (strong).
    key: randomness of the noise and fog corruptions (unused by the others).

  Returns:
    [B, H, W, 3] float32 in [0, 1].
  """
  if name not in _REGISTRY:
    raise ValueError(f"Unknown corruption {name!r}; expected one of {CORRUPTIONS}.")
  if severity not in (1, 2, 3, 4, 5):
    raise ValueError(f"severity must be an int in 1..5, got {severity!r}.")
  images = jnp.asarray(images, jnp.float32)
  _, params, how = _REGISTRY[name]
  param = params[severity - 1]
  if how == "traced":
    return _apply_traced(name, images, jnp.asarray(param, jnp.float32), key)
  return (_apply_static if how == "static" else _apply)(name, images, param, key)


# ------------------------------------------------------------------------------------------------
# Calibration under corruption
# ------------------------------------------------------------------------------------------------


def _scores(probs: np.ndarray, labels: np.ndarray, num_bins: int) -> dict[str, float]:
  return {"accuracy": float(np.mean(probs.argmax(1) == labels)),
          "ece": metrics.expected_calibration_error(probs, labels, num_bins=num_bins)}


def calibration_report(probs_fn: Callable[[jax.Array, jax.Array], jax.Array], images: ArrayLike,
                       labels: ArrayLike, key: jax.Array, *,
                       corruptions: Sequence[str] = CORRUPTIONS,
                       severities: Sequence[int] = (1, 2, 3, 4, 5), num_bins: int = 15,
                       chunk_size: int = 500) -> dict:
  """Accuracy and expected calibration error, clean and under each corruption and severity.

  Args:
    probs_fn: `probs_fn(images [B, H, W, 3] in [0, 1], key) -> probs [B, K]` (softmax outputs;
      the key drives the model's randomness).
    images: [N, H, W, 3] clean images in [0, 1].
    labels: [N] int true classes.
    key: base key for the corruptions and the model.
    corruptions: names from `CORRUPTIONS`.
    severities: severities in 1..5.
    num_bins: ECE bins.
    chunk_size: examples per call of `probs_fn`.

  Returns:
    {"clean": {"accuracy", "ece"}, "corruptions": {name: {severity: {"accuracy", "ece"}}},
     "per_severity": {severity: mean over corruptions}, "mean": mean over all corruptions and
     severities}. ECE is a fraction (x100 for %), computed per (corruption, severity) and averaged.
  """
  images, labels = np.asarray(images, np.float32), np.asarray(labels)

  def probs_of(transform, k):
    out = []
    for c, lo in enumerate(range(0, len(images), chunk_size)):
      k_data, k_model = jax.random.split(jax.random.fold_in(k, c))
      out.append(np.asarray(probs_fn(transform(images[lo:lo + chunk_size], k_data), k_model)))
    return np.concatenate(out).astype(np.float64)

  report = {"clean": _scores(probs_of(lambda x, k: jnp.asarray(x), jax.random.fold_in(key, 0)),
                             labels, num_bins), "corruptions": {}}
  for i, name in enumerate(corruptions, start=1):
    report["corruptions"][name] = {
        s: _scores(probs_of(lambda x, k, s=s, name=name: corrupt(name, x, s, k),
                            jax.random.fold_in(jax.random.fold_in(key, i), s)), labels, num_bins)
        for s in severities}
  mean = lambda rows: {m: float(np.mean([r[m] for r in rows])) for m in ("accuracy", "ece")}
  cells = report["corruptions"].values()
  report["per_severity"] = {s: mean([c[s] for c in cells]) for s in severities}
  report["mean"] = mean([r for c in cells for r in c.values()])
  return report


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
  ax.bar(centers[filled], bins["accuracy"][filled], width=width, edgecolor="black", label="accuracy")
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
