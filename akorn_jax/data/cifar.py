"""CIFAR-10 and CIFAR-10-C through tfds array_record sources, and the CIFAR training augmentation.

Sources (SPEC §7.6): `cifar10` (50,000 train / 10,000 test) and `cifar10_corrupted/<name>_<s>`
(10,000 test images per corruption and severity s in 1..5), opened with `tfds.data_source` from the
data directory ($AKORN_DATA_DIR, see `akorn_jax.data.common`). They are never downloaded here:
tfds's catalog builders fetch from the internet and encode images with TensorFlow, so prepare them
once on a machine with internet and `tensorflow-cpu` (`pip install akorn_jax[tfrecord]`):

  tfds build cifar10 --file_format=array_record --data_dir=DIR
  tfds build cifar10_corrupted/fog_5 --file_format=array_record --data_dir=DIR  # one config each

and copy DIR to the training machine. Examples are `{"image": uint8 [32, 32, 3], "label": int32}`.

Training augmentation (SPEC §5.3, torchvision `augmentation_strong(32)`): horizontal flip p=0.5 ->
RandomResizedCrop(32, scale (0.2, 1)) -> ColorJitter(0.4, 0.4, 0.4, 0.1) always -> AugMix
(severity 3, width 3, depth 1..3, alpha 1, all ops). Test images are only scaled to [0, 1].
Everything runs batched and jitted on float images; deviations from torchvision's AugMix, which
works on uint8 PIL images:
* intermediate results stay float (torchvision rounds to uint8 after every op); posterize and
  equalize quantise to 256 levels internally;
* chain depth, ops and magnitudes are drawn per image (torchvision draws the depth once per call,
  which is per image in its per-sample pipeline, the same thing);
* geometric ops sample bilinearly with zero fill like torchvision, but around pixel centres
  ((H-1)/2, (W-1)/2) for rotation.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import tensorflow_datasets as tfds

from akorn_jax.data import augment
from akorn_jax.data.common import ENV_DATA_DIR, DatasetNotPreparedError, data_dir

NUM_CLASSES = 10
# The 15 corruptions of Hendrycks & Dietterich (2019), by their tfds config names.
CIFAR10_C_CORRUPTIONS: tuple[str, ...] = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "frosted_glass_blur",
    "motion_blur", "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic",
    "pixelate", "jpeg_compression")
# The 4 extra corruptions tfds also ships.
CIFAR10_C_EXTRA: tuple[str, ...] = ("gaussian_blur", "saturate", "spatter", "speckle_noise")


# ------------------------------------------------------------------------------------------------
# Sources
# ------------------------------------------------------------------------------------------------


class CifarSource(Sequence):
  """Random access to one split: `len` and `[i] -> {"image": uint8 [32, 32, 3], "label": int32}`."""

  def __init__(self, tfds_source):
    self._source = tfds_source

  def __len__(self) -> int:
    return len(self._source)

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    if not -len(self) <= index < len(self):
      raise IndexError(f"index {index} out of range for a split of {len(self)} examples")
    example = self._source[index % len(self)]
    return {"image": np.asarray(example["image"], np.uint8),
            "label": np.asarray(example["label"], np.int32)}


def _open(name: str, split: str, directory: str | None) -> CifarSource:
  directory = data_dir(directory)
  try:
    # download=False: an unprepared catalog dataset must fail here, never reach the network.
    return CifarSource(tfds.data_source(name, split=split, data_dir=directory, download=False))
  except Exception as e:  # tfds raises assorted types (NotImplementedError, AssertionError, ...)
    raise DatasetNotPreparedError(
        f"{name!r} split {split!r} could not be opened from {directory!r} ({type(e).__name__}: {e}). "
        f"Prepare it as array_record once, on a machine with internet and tensorflow-cpu:\n"
        f"  tfds build {name} --file_format=array_record --data_dir=DIR\n"
        f"then copy DIR here and pass it as data_dir or set ${ENV_DATA_DIR}=DIR.") from e


def cifar10(split: str, *, data_dir_: str | None = None) -> CifarSource:
  """CIFAR-10 split "train" or "test" (tfds slices like "train[:90%]" work too)."""
  return _open("cifar10", split, data_dir_)


def cifar10_c(corruption: str, severity: int, *, data_dir_: str | None = None) -> CifarSource:
  """The CIFAR-10-C test set of one corruption (see `CIFAR10_C_CORRUPTIONS`) at severity 1..5."""
  if corruption not in CIFAR10_C_CORRUPTIONS + CIFAR10_C_EXTRA:
    raise ValueError(f"Unknown CIFAR-10-C corruption {corruption!r}; expected one of "
                     f"{CIFAR10_C_CORRUPTIONS + CIFAR10_C_EXTRA}.")
  if severity not in (1, 2, 3, 4, 5):
    raise ValueError(f"CIFAR-10-C severity must be an int in 1..5, got {severity!r}.")
  return _open(f"cifar10_corrupted/{corruption}_{severity}", "test", data_dir_)


def to_float(images: jax.typing.ArrayLike) -> jax.Array:
  """uint8 images [..., H, W, 3] -> float32 in [0, 1] (the test-time transform, ToTensor)."""
  return jnp.asarray(images, jnp.float32) / 255.0


# ------------------------------------------------------------------------------------------------
# AugMix operations on one float image [H, W, 3]; m is the signed magnitude
# ------------------------------------------------------------------------------------------------


def _quantise(image: jax.Array) -> jax.Array:
  return jnp.clip(jnp.round(image * 255), 0, 255).astype(jnp.int32)


def _autocontrast(image, m):
  del m
  lo, hi = image.min(axis=(0, 1)), image.max(axis=(0, 1))
  flat = hi <= lo  # a constant channel stays as it is
  scale = jnp.where(flat, 1.0, 1.0 / jnp.where(flat, 1.0, hi - lo))
  return jnp.clip((image - jnp.where(flat, 0.0, lo)) * scale, 0.0, 1.0)


def _equalize(image, m):
  """Per-channel histogram equalisation on 256 levels, PIL's rule (as torchvision's tensor op)."""
  del m
  q = _quantise(image)
  channels = jnp.broadcast_to(jnp.arange(3), q.shape)
  hist = jnp.zeros((256, 3), jnp.int32).at[q, channels].add(1)
  top = hist[q.max(axis=(0, 1)), jnp.arange(3)]  # count of the highest level present
  step = (q.shape[0] * q.shape[1] - top) // 255
  safe = jnp.maximum(step, 1)
  lut = (jnp.cumsum(hist, axis=0) + step // 2) // safe
  lut = jnp.clip(jnp.concatenate([jnp.zeros((1, 3), jnp.int32), lut[:-1]]), 0, 255)
  out = jnp.take_along_axis(lut, q.reshape(-1, 3), axis=0).reshape(q.shape)
  return jnp.where(step == 0, image, out / 255.0)


def _posterize(image, m):
  drop = jnp.left_shift(1, 8 - m.astype(jnp.int32))  # keep the top m bits
  return (_quantise(image) // drop * drop) / 255.0


def _solarize(image, m):
  return jnp.where(image >= m, 1.0 - image, image)


def _warp(image: jax.Array, matrix: jax.Array) -> jax.Array:
  """Bilinear sampling with zero fill: output (row, col) reads input at matrix @ (row, col, 1)."""
  h, w, _ = image.shape
  rows, cols = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32),
                            indexing="ij")
  src = jnp.einsum("ij,jhw->ihw", matrix, jnp.stack([rows, cols, jnp.ones_like(rows)]))
  r0, c0 = jnp.floor(src[0]), jnp.floor(src[1])
  out = jnp.zeros_like(image)
  for dr in (0, 1):
    for dc in (0, 1):
      r, c = r0 + dr, c0 + dc
      weight = (1 - jnp.abs(src[0] - r)) * (1 - jnp.abs(src[1] - c))
      inside = (r >= 0) & (r <= h - 1) & (c >= 0) & (c <= w - 1)
      pix = image[jnp.clip(r, 0, h - 1).astype(jnp.int32), jnp.clip(c, 0, w - 1).astype(jnp.int32)]
      out = out + jnp.where(inside, weight, 0.0)[..., None] * pix
  return out


def _rotate(m, h, w):
  t = jnp.deg2rad(m)
  cy, cx = (h - 1) / 2, (w - 1) / 2
  cos, sin = jnp.cos(t), jnp.sin(t)
  # Inverse rotation about the centre; rows point down, so a positive angle turns counter-clockwise.
  return jnp.array([[cos, -sin, cy - cos * cy + sin * cx], [sin, cos, cx - sin * cy - cos * cx]])


def _shear_x(m, h, w):  # about the top-left corner, as torchvision's AugMix (center=[0, 0])
  return jnp.array([[1.0, 0.0, 0.0], [m, 1.0, 0.0]])


def _shear_y(m, h, w):
  return jnp.array([[1.0, m, 0.0], [0.0, 1.0, 0.0]])


def _translate_x(m, h, w):  # torchvision truncates the shift to whole pixels
  return jnp.array([[1.0, 0.0, 0.0], [0.0, 1.0, -jnp.trunc(m)]])


def _translate_y(m, h, w):
  return jnp.array([[1.0, 0.0, -jnp.trunc(m)], [0.0, 1.0, 0.0]])


def _sharpness(image, m):
  """Blend with a 3x3 smoothing (centre weight 5/13), borders untouched, as PIL/torchvision."""
  kernel = np.ones((3, 3), np.float32)
  kernel[1, 1] = 5.0
  kernel /= kernel.sum()
  h, w, _ = image.shape
  blurred = sum(float(kernel[i, j]) * image[i:i + h - 2, j:j + w - 2] for i in range(3) for j in range(3))
  degenerate = image.at[1:-1, 1:-1].set(blurred)
  return jnp.clip((1 + m) * image - m * degenerate, 0.0, 1.0)


_PIXEL_OPS = (
    ("autocontrast", _autocontrast), ("equalize", _equalize), ("posterize", _posterize),
    ("solarize", _solarize),
    ("color", lambda x, m: augment.adjust_saturation(x, 1 + m)),
    ("contrast", lambda x, m: augment.adjust_contrast(x, 1 + m)),
    ("brightness", lambda x, m: augment.adjust_brightness(x, 1 + m)),
    ("sharpness", _sharpness),
)
# Geometric ops give the inverse affine map (m, H, W) -> [2, 3]; one shared warp applies it.
_GEOMETRIC_OPS = (("rotate", _rotate), ("shear_x", _shear_x), ("shear_y", _shear_y),
                  ("translate_x", _translate_x), ("translate_y", _translate_y))
AUGMIX_OPS: tuple[str, ...] = tuple(name for name, _ in _PIXEL_OPS + _GEOMETRIC_OPS)


def augmix_op(name: str, image: jax.Array, magnitude: jax.typing.ArrayLike) -> jax.Array:
  """Applies one AugMix op (see `AUGMIX_OPS`) with signed `magnitude` to an image [H, W, 3]."""
  magnitude = jnp.asarray(magnitude, jnp.float32)
  pixel, geometric = dict(_PIXEL_OPS), dict(_GEOMETRIC_OPS)
  if name in pixel:
    return pixel[name](image, magnitude)
  return _warp(image, geometric[name](magnitude, *image.shape[:2]))


def _magnitudes(height: int, width: int, num_bins: int = 11) -> tuple[np.ndarray, np.ndarray]:
  """torchvision AugMix's magnitude bins per op [13, num_bins] and whether each op is signed [13]."""
  lin = lambda hi: np.linspace(0.0, hi, num_bins)
  table = {
      "autocontrast": (np.zeros(num_bins), False), "equalize": (np.zeros(num_bins), False),
      "posterize": (4 - np.round(np.arange(num_bins) / ((num_bins - 1) / 4)), False),
      "solarize": (np.linspace(1.0, 0.0, num_bins), False), "rotate": (lin(30.0), True),
      "shear_x": (lin(0.3), True), "shear_y": (lin(0.3), True),
      "translate_x": (lin(width / 3.0), True), "translate_y": (lin(height / 3.0), True),
      "color": (lin(0.9), True), "contrast": (lin(0.9), True), "brightness": (lin(0.9), True),
      "sharpness": (lin(0.9), True)}
  return (np.stack([table[n][0] for n in AUGMIX_OPS]).astype(np.float32),
          np.array([table[n][1] for n in AUGMIX_OPS]))


def augmix(key: jax.Array, images: jax.Array, *, severity: int = 3, width: int = 3,
           depth: int = -1, alpha: float = 1.0) -> jax.Array:
  """AugMix (Hendrycks et al. 2020) with torchvision's defaults and op set, per image.

  Each image gets `width` chains of `depth` random ops (depth -1: uniform in 1..3 per chain) with
  magnitude bins drawn uniformly below `severity` (of 11) and a random sign where the op has one;
  the result is m0·x + m1·Σ_i w_i·chain_i with (m0, m1) ~ Dirichlet(alpha, alpha) and
  w ~ Dirichlet(alpha·1_width).

  Args:
    key: PRNG key.
    images: [B, H, W, 3] float in [0, 1].
    severity: 1..10, the number of lowest magnitude bins in use.
    width: chains mixed per image.
    depth: ops per chain, or -1 for uniform in 1..3.
    alpha: Dirichlet/Beta concentration.

  Returns:
    [B, H, W, 3] float32 in [0, 1].
  """
  if not 1 <= severity <= 10:
    raise ValueError(f"AugMix severity must be in 1..10, got {severity}.")
  b, h, w, _ = images.shape
  table, signed = _magnitudes(h, w)
  max_depth = 3 if depth <= 0 else depth
  k_mix, k_w, k_depth, k_op, k_mag, k_sign = jax.random.split(key, 6)
  m = jax.random.dirichlet(k_mix, jnp.full((2,), alpha), (b,))  # [B, 2]
  weights = jax.random.dirichlet(k_w, jnp.full((width,), alpha), (b,)) * m[:, 1:]  # [B, width]
  depths = (jax.random.randint(k_depth, (b, width), 1, 4) if depth <= 0
            else jnp.full((b, width), depth))
  steps = width * max_depth
  ops = jax.random.randint(k_op, (b, steps), 0, len(AUGMIX_OPS))
  mags = jnp.asarray(table)[ops, jax.random.randint(k_mag, (b, steps), 0, severity)]
  sign = jnp.where(jnp.asarray(signed)[ops] & jax.random.bernoulli(k_sign, 0.5, (b, steps)), -1., 1.)
  mags = mags * sign
  pixel_branches = [lambda x, mg, fn=fn: fn(x, mg).astype(jnp.float32) for _, fn in _PIXEL_OPS]
  geometric_branches = [lambda mg, fn=fn: fn(mg, h, w) for _, fn in _GEOMETRIC_OPS]
  n_pixel = len(_PIXEL_OPS)

  def one_image(image, ops_i, mags_i, depths_i, weights_i, m0):
    def step(t, carry):  # one loop body for all chain steps keeps compilation short
      aug, mix = carry
      chain, pos = t // max_depth, t % max_depth
      aug = jnp.where(pos == 0, image, aug)
      op = ops_i[t]
      # Under vmap a switch computes every branch: sharing one warp among the geometric ops
      # halves the work and the compile time.
      pixel = jax.lax.switch(jnp.minimum(op, n_pixel - 1), pixel_branches, aug, mags_i[t])
      matrix = jax.lax.switch(jnp.maximum(op - n_pixel, 0), geometric_branches, mags_i[t])
      applied = jnp.where(op < n_pixel, pixel, _warp(aug, matrix))
      aug = jnp.where(pos < depths_i[chain], applied, aug)
      mix = mix + jnp.where(pos == max_depth - 1, weights_i[chain], 0.0) * aug
      return aug, mix

    _, mix = jax.lax.fori_loop(0, steps, step, (image, m0 * image))
    return jnp.clip(mix, 0.0, 1.0)

  return jax.vmap(one_image)(images.astype(jnp.float32), ops, mags, depths, weights, m[:, 0])


def train_augment(key: jax.Array, images: jax.typing.ArrayLike) -> jax.Array:
  """The CIFAR-10 training augmentation of SPEC §5.3, independently per image.

  Args:
    key: PRNG key.
    images: [B, H, W, 3] uint8, or float in [0, 1].

  Returns:
    [B, H, W, 3] float32 in [0, 1].
  """
  images = jnp.asarray(images)
  return _train_augment(key, to_float(images) if images.dtype == jnp.uint8 else images)


@jax.jit
def _train_augment(key: jax.Array, images: jax.Array) -> jax.Array:
  k_flip, k_crop, k_jitter, k_mix = jax.random.split(key, 4)
  flip = jax.random.bernoulli(k_flip, 0.5, (images.shape[0], 1, 1, 1))
  images = jnp.where(flip, images[:, :, ::-1], images)
  images = augment.random_resized_crop(k_crop, images, scale=(0.2, 1.0))
  images = augment.color_jitter(k_jitter, images, 0.4, 0.4, 0.4, 0.1, p=1.0)
  return augmix(k_mix, images)
