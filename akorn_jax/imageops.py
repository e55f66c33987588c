"""Small image operations shared by the data pipelines, augmentations, corruptions and evaluators.

Images are channels-last `[..., H, W, C]`; float images hold values in [0, 1]. Every function but
`sample_bilinear` (JAX only) takes numpy or JAX arrays and returns the same kind (numpy in, numpy
out; JAX in, JAX out), so the same op serves host-side data code and jitted accelerator code.

| op | what |
| --- | --- |
| `to_float`, `to_uint8` | uint8 [0, 255] <-> float32 [0, 1] |
| `ignore_to_minus_one` | the object datasets' mask value 255 ("ignore") -> label -1 |
| `nearest_indices`, `resize_nearest` | PyTorch's legacy "nearest" resize |
| `bilinear_matrix`, `sample_bilinear` | bilinear interpolation, as a matrix or as a gather |
| `correlate` | small 2-D kernels as a sum of shifted images |
| `rgb_to_grey`, `rgb_to_hsv`, `hsv_to_rgb` | colour spaces |
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

IGNORE = 255  # mask value of pixels that belong to no single object (overlaps); see the data docs
LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 weights, as torchvision's and OpenCV's RGB -> grey


def _xp(x: Any):
  """jax.numpy for JAX arrays (and tracers), numpy otherwise."""
  return jnp if isinstance(x, jax.Array) else np


# ------------------------------------------------------------------------------------------------
# Value ranges and labels
# ------------------------------------------------------------------------------------------------


def to_float(images: Any) -> Any:
  """uint8 images in [0, 255] -> float32 in [0, 1] (torchvision's ToTensor); float images are only
  cast to float32, so the op is safe on already-converted batches."""
  xp = _xp(images)
  images = xp.asarray(images)
  if images.dtype == xp.uint8:
    return images.astype(xp.float32) / 255.0
  return images.astype(xp.float32)


def to_uint8(images: Any) -> Any:
  """float images in [0, 1] -> uint8 by rounding (values outside [0, 1] are clipped first); uint8
  images pass through."""
  xp = _xp(images)
  images = xp.asarray(images)
  if images.dtype == xp.uint8:
    return images
  return xp.round(xp.clip(images, 0.0, 1.0) * 255).astype(xp.uint8)


def ignore_to_minus_one(mask: Any) -> Any:
  """Stored uint8 masks [..., H, W] -> int32 labels with `IGNORE` (255) mapped to -1, the label
  our metrics skip (FG-ARI ignores pixels labelled -1)."""
  xp = _xp(mask)
  labels = xp.asarray(mask).astype(xp.int32)
  return xp.where(labels == IGNORE, -1, labels)


# ------------------------------------------------------------------------------------------------
# Resampling
# ------------------------------------------------------------------------------------------------


def nearest_indices(size_in: int, size_out: int) -> np.ndarray:
  """Source indices of PyTorch's legacy "nearest" resize: output i reads floor(i * in / out)."""
  return np.arange(size_out) * size_in // size_out


def resize_nearest(images: Any, size: Sequence[int], axis: int = -3) -> Any:
  """Resizes axes (axis, axis + 1) to `size` with PyTorch's legacy "nearest" rule (see
  `nearest_indices`); the default axis fits channels-last images `[..., H, W, C]`, use `axis=-2`
  for label maps `[..., H, W]`."""
  xp = _xp(images)
  images = xp.asarray(images)
  axis = axis % images.ndim
  rows = nearest_indices(images.shape[axis], size[0])
  cols = nearest_indices(images.shape[axis + 1], size[1])
  return xp.take(xp.take(images, rows, axis=axis), cols, axis=axis + 1)


def bilinear_matrix(positions: Any, size_in: int) -> Any:
  """Weights `[..., n_out, size_in]` of linear interpolation at `positions` `[..., n_out]` (source
  pixel coordinates, clamped to [0, size_in - 1], which repeats the edge pixels). `M @ x` resamples
  one axis; two such products make a separable bilinear resize that runs on matrix units."""
  xp = _xp(positions)
  src = xp.clip(xp.asarray(positions), 0.0, size_in - 1.0)
  return xp.maximum(0.0, 1.0 - xp.abs(src[..., None] - xp.arange(size_in)))


def _fold(i: jax.Array, n: int, border: str) -> jax.Array:
  """Maps integer indices onto [0, n): "edge" clamps, "reflect" mirrors about the edges' outer
  sides (scipy's reflect, ..1 0 | 0 1..), "reflect101" about the edge pixels (OpenCV's
  BORDER_REFLECT_101, ..2 1 | 0 1 2..); "zero" clamps (the caller zeroes the weight)."""
  if border in ("edge", "zero") or n == 1:
    return jnp.clip(i, 0, n - 1)
  period = 2 * n if border == "reflect" else 2 * n - 2
  m = jnp.mod(i, period)
  return jnp.where(m < n, m, period - 1 - m if border == "reflect" else period - m)


BORDERS = ("zero", "edge", "reflect", "reflect101")


def sample_bilinear(images: jax.Array, rows: jax.Array, cols: jax.Array,
                    border: str = "zero") -> jax.Array:
  """Samples images `[B, H, W, C]` bilinearly at float pixel coordinates `rows`, `cols`
  `[B, H', W']` (pixel centres at integers); returns `[B, H', W', C]`.

  The four neighbours of a point outside the image read zeros (`border="zero"`, torchvision's fill
  0) or are mapped back inside by "edge", "reflect" or "reflect101" (see `_fold`).
  """
  if border not in BORDERS:
    raise ValueError(f"Unknown border {border!r}; expected one of {BORDERS}.")
  h, w = images.shape[1:3]
  r0, c0 = jnp.floor(rows), jnp.floor(cols)
  fr, fc = (rows - r0)[..., None], (cols - c0)[..., None]
  r0, c0 = r0.astype(jnp.int32), c0.astype(jnp.int32)
  b = jnp.arange(images.shape[0])[:, None, None]

  def at(r, c):
    pix = images[b, _fold(r, h, border), _fold(c, w, border)]
    if border != "zero":
      return pix
    inside = (r >= 0) & (r <= h - 1) & (c >= 0) & (c <= w - 1)
    return jnp.where(inside[..., None], pix, 0.0)

  return ((1 - fr) * ((1 - fc) * at(r0, c0) + fc * at(r0, c0 + 1))
          + fr * ((1 - fc) * at(r0 + 1, c0) + fc * at(r0 + 1, c0 + 1)))


# ------------------------------------------------------------------------------------------------
# Filtering
# ------------------------------------------------------------------------------------------------


def correlate(images: Any, kernel: np.ndarray, border: str = "edge") -> Any:
  """Per-channel 2-D correlation of images `[..., H, W, C]` with a small static kernel `[kh, kw]`
  (odd sides), same-size output: the sum of the kernel-weighted shifted images. Borders are padded
  with numpy's pad modes ("edge", "reflect" = OpenCV's reflect-101, "constant" = zeros).

  A sum of shifts compiles to a few fused adds, cheaper than a convolution for 3x3 kernels.
  """
  xp = _xp(images)
  images = xp.asarray(images)
  kernel = np.asarray(kernel)
  kh, kw = kernel.shape
  pad = [(0, 0)] * (images.ndim - 3) + [(kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)]
  padded = xp.pad(images, pad, mode=border)
  h, w = images.shape[-3:-1]
  return sum(kernel[i, j].item() * padded[..., i:i + h, j:j + w, :]
             for i in range(kh) for j in range(kw) if kernel[i, j] != 0)


# ------------------------------------------------------------------------------------------------
# Colour
# ------------------------------------------------------------------------------------------------


def rgb_to_grey(images: Any) -> Any:
  """Luma `[..., 1]` of RGB `[..., 3]` with the BT.601 weights `LUMA`."""
  xp = _xp(images)
  images = xp.asarray(images)
  return (images * xp.asarray(LUMA, images.dtype)).sum(-1, keepdims=True)


def rgb_to_hsv(images: jax.Array) -> jax.Array:
  """RGB `[..., 3]` in [0, 1] -> HSV `[..., 3]`, all channels in [0, 1] (hue as a fraction of a
  turn, 0 for grey pixels); gradients stay finite on grey pixels."""
  xp = _xp(images)
  r, g, b = images[..., 0], images[..., 1], images[..., 2]
  maxc = images.max(-1)
  minc = images.min(-1)
  delta = maxc - minc
  grey = delta == 0
  safe = xp.where(grey, 1.0, delta)  # avoids 0/0 (and NaN gradients) on grey pixels
  s = delta / xp.where(maxc == 0, 1.0, maxc)
  rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
  h = xp.where(maxc == r, bc - gc, xp.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
  h = xp.where(grey, 0.0, (h / 6.0) % 1.0)
  return xp.stack([h, s, maxc], -1)


def hsv_to_rgb(hsv: Any) -> Any:
  """HSV `[..., 3]` (hue as a fraction of a turn) -> RGB `[..., 3]` in [0, 1]."""
  xp = _xp(hsv)
  hsv = xp.asarray(hsv)
  h, s, v = hsv[..., 0:1], hsv[..., 1:2], hsv[..., 2:3]
  k = (xp.asarray([5.0, 3.0, 1.0], hsv.dtype) + 6.0 * h) % 6.0
  return v - v * s * xp.clip(xp.minimum(k, 4.0 - k), 0.0, 1.0)
