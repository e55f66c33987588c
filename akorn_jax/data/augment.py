"""Image augmentation on the accelerator, jittable and batched: SimCLR views and AugMix.

SimCLR views (docs/training.md#simclr-augmentation), `simclr_views`; per view: RandomResizedCrop
(area U(0.08, 1), log-uniform aspect in [3/4, 4/3], bilinear, same output
size), no flip, ColorJitter(0.4, 0.4, 0.4, 0.1) with p = 0.8, RandomGrayscale with p = 0.2.

Images are float in [0, 1], channels-last `[B, H, W, 3]`. The colour ops follow torchvision's tensor
formulas; the reference applies them to uint8 PIL images, so results differ by rounding only.

AugMix (Hendrycks et al. 2020), `augmix`, with torchvision's defaults and op set. Deviations from
torchvision's AugMix, which works on uint8 PIL images:
* intermediate results stay float (torchvision rounds to uint8 after every op); posterize and
  equalize quantise to 256 levels internally;
* chain depth, ops and magnitudes are drawn per image (torchvision draws the depth once per call,
  which is per image in its per-sample pipeline, the same thing);
* geometric ops sample bilinearly with zero fill like torchvision, but around pixel centres
  ((H-1)/2, (W-1)/2) for rotation.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from akorn_jax import imageops

def _per_image(factor: jax.typing.ArrayLike) -> jax.Array:
  """Broadcasts a scalar or per-image factor [...] against images [..., H, W, C]."""
  return jnp.asarray(factor, jnp.float32)[..., None, None, None]


def _blend(images: jax.Array, other: jax.Array, factor: jax.typing.ArrayLike) -> jax.Array:
  f = _per_image(factor)
  return jnp.clip(f * images + (1 - f) * other, 0.0, 1.0)


def adjust_brightness(images: jax.Array, factor: jax.typing.ArrayLike) -> jax.Array:
  """Scales intensities by `factor` (scalar or [...]) and clips to [0, 1]; images [..., H, W, 3]."""
  return _blend(images, jnp.zeros_like(images), factor)


def adjust_contrast(images: jax.Array, factor: jax.typing.ArrayLike) -> jax.Array:
  """Blends each image [..., H, W, 3] with the mean of its grayscale by `factor` (scalar or [...])."""
  mean = imageops.rgb_to_grey(images).mean(axis=(-3, -2, -1), keepdims=True)
  return _blend(images, mean, factor)


def adjust_saturation(images: jax.Array, factor: jax.typing.ArrayLike) -> jax.Array:
  """Blends images [..., H, W, 3] with their grayscale by `factor` (0 = gray, 1 = identity)."""
  return _blend(images, imageops.rgb_to_grey(images), factor)


def adjust_hue(images: jax.Array, shift: jax.typing.ArrayLike) -> jax.Array:
  """Rotates the hue of images [..., H, W, 3] by `shift` turns (scalar or [...], in [-0.5, 0.5])."""
  hsv = imageops.rgb_to_hsv(images)
  hue = (hsv[..., 0] + jnp.asarray(shift, images.dtype)[..., None, None]) % 1.0
  return imageops.hsv_to_rgb(hsv.at[..., 0].set(hue))


def _crop_boxes(key: jax.Array, batch: int, height: int, width: int, scale: tuple[float, float],
                ratio: tuple[float, float], tries: int = 10) -> jax.Array:
  """Boxes (top, left, h, w) float [B, 4] sampled as torchvision's RandomResizedCrop.get_params."""
  # One uniform draw for everything: each jax.random call is a separate threefry kernel to compile.
  u = jax.random.uniform(key, (batch, 2 * tries + 2))
  area = height * width * (scale[0] + (scale[1] - scale[0]) * u[:, :tries])
  log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
  aspect = jnp.exp(log_lo + (log_hi - log_lo) * u[:, tries:2 * tries])
  w = jnp.round(jnp.sqrt(area * aspect))
  h = jnp.round(jnp.sqrt(area / aspect))
  ok = (w > 0) & (w <= width) & (h > 0) & (h <= height)
  first = jnp.argmax(ok, axis=1)  # first valid try, as torchvision's loop
  h = jnp.take_along_axis(h, first[:, None], 1)[:, 0]
  w = jnp.take_along_axis(w, first[:, None], 1)[:, 0]
  found = ok.any(1)
  # Fallback when all tries fail: the whole image, clamped to the aspect range, centred.
  in_ratio = width / height
  if in_ratio < ratio[0]:
    fh, fw = round(width / ratio[0]), width
  elif in_ratio > ratio[1]:
    fh, fw = height, round(height * ratio[1])
  else:
    fh, fw = height, width
  h = jnp.where(found, h, fh)
  w = jnp.where(found, w, fw)
  # torchvision draws integer offsets uniformly in [0, H - h].
  top = jnp.floor(u[:, -2] * (height - h + 1))
  left = jnp.floor(u[:, -1] * (width - w + 1))
  top = jnp.where(found, top, (height - fh) // 2)
  left = jnp.where(found, left, (width - fw) // 2)
  return jnp.stack([top, left, h, w], -1)


def _interp_matrix(start: jax.Array, length: jax.Array, size_in: int, size_out: int) -> jax.Array:
  """Bilinear weights [B, size_out, size_in] mapping pixels of [start, start+length) to size_out."""
  # Half-pixel centres (align_corners=False); clamping the source coordinate replicates edges.
  src = start[:, None] + (jnp.arange(size_out) + 0.5) * (length[:, None] / size_out) - 0.5
  return imageops.bilinear_matrix(src, size_in)


def crop_and_resize(images: jax.Array, boxes: jax.Array, size: tuple[int, int] | None = None) -> jax.Array:
  """Bilinearly resamples boxes of images to `size` (default: the input size).

  Args:
    images: [B, H, W, C].
    boxes: [B, 4] (top, left, height, width) in pixels.
    size: output (H', W').

  Returns:
    [B, H', W', C]. Written as two small matmuls per image (rows, then columns) rather than a gather,
    which maps onto the accelerator's matrix units.
  """
  _, height, width, _ = images.shape
  out_h, out_w = size or (height, width)
  rows = _interp_matrix(boxes[:, 0], boxes[:, 2], height, out_h)  # [B, H', H]
  cols = _interp_matrix(boxes[:, 1], boxes[:, 3], width, out_w)  # [B, W', W]
  out = jnp.einsum("byh,bhwc->bywc", rows, images, precision=jax.lax.Precision.HIGHEST)
  return jnp.einsum("bxw,bywc->byxc", cols, out, precision=jax.lax.Precision.HIGHEST)


def random_resized_crop(key: jax.Array, images: jax.Array, scale: tuple[float, float] = (0.08, 1.0),
                        ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> jax.Array:
  """torchvision RandomResizedCrop, independently per image, output at the input size.

  Args:
    key: PRNG key.
    images: [B, H, W, C].
    scale: range of the crop area as a fraction of the image area.
    ratio: range of the crop aspect ratio w/h, sampled log-uniformly.

  Returns:
    [B, H, W, C].
  """
  batch, height, width, _ = images.shape
  return crop_and_resize(images, _crop_boxes(key, batch, height, width, scale, ratio))


def color_jitter(key: jax.Array, images: jax.Array, brightness: float = 0.4, contrast: float = 0.4,
                 saturation: float = 0.4, hue: float = 0.1, p: float = 0.8) -> jax.Array:
  """RandomApply(ColorJitter(brightness, contrast, saturation, hue), p) independently per image.

  Factors are drawn as torchvision: brightness/contrast/saturation U[max(0, 1-s), 1+s], hue shift
  U[-hue, hue]; the four ops run in a random order drawn per image (torchvision draws one order per
  call, i.e. per image in a per-sample pipeline).

  Args:
    key: PRNG key.
    images: [B, H, W, 3] in [0, 1].
    brightness, contrast, saturation, hue: jitter strengths.
    p: probability of jittering an image at all.

  Returns:
    [B, H, W, 3] in [0, 1].
  """
  u = jax.random.uniform(key, (images.shape[0], 9))  # one draw: see _crop_boxes

  def factor(x, s):
    return max(0.0, 1 - s) + (1 + s - max(0.0, 1 - s)) * x

  factors = (factor(u[:, 0], brightness), factor(u[:, 1], contrast), factor(u[:, 2], saturation),
             hue * (2 * u[:, 3] - 1))
  order = jnp.argsort(u[:, 4:8], axis=1)  # a uniformly random permutation per image, [B, 4]
  ops = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)

  def jitter_one(image, op, *fs):
    return jax.lax.switch(op, [lambda x, i=i: ops[i](x, fs[i]) for i in range(4)], image)

  def position(i, x):  # one loop body (not 4 unrolled copies) keeps compilation short
    return jax.vmap(jitter_one)(x, order[:, i], *factors)  # vmap turns the switch into a select

  jittered = jax.lax.fori_loop(0, 4, position, images)
  return jnp.where((u[:, 8] < p)[:, None, None, None], jittered, images)


def random_grayscale(key: jax.Array, images: jax.Array, p: float = 0.2) -> jax.Array:
  """Replaces each image [B, H, W, 3] by its luma on all three channels with probability p."""
  gray = jnp.broadcast_to(imageops.rgb_to_grey(images), images.shape)
  apply = jax.random.uniform(key, (images.shape[0],)) < p
  return jnp.where(apply[:, None, None, None], gray, images)


def simclr_views(key: jax.Array, images: jax.Array, hflip: bool = False) -> jax.Array:
  """Two independent SimCLR views per image (docs/training.md#simclr-augmentation), interleaved.

  Args:
    key: PRNG key.
    images: [B, H, W, 3] float in [0, 1].
    hflip: also flip each view horizontally with p = 0.5 (the reference does so only for
      ImageNet; never for the object datasets).

  Returns:
    float32 [2B, H, W, 3] in [0, 1]; rows 2i and 2i+1 are the two views of image i, the order the
    NT-Xent loss pairs them in.
  """
  k_crop, k_jitter, k_gray, k_flip = jax.random.split(key, 4)
  views = jnp.repeat(images.astype(jnp.float32), 2, axis=0)
  views = random_resized_crop(k_crop, views)
  if hflip:
    flip = jax.random.bernoulli(k_flip, 0.5, (views.shape[0], 1, 1, 1))
    views = jnp.where(flip, views[:, :, ::-1], views)
  views = color_jitter(k_jitter, views)
  return jnp.clip(random_grayscale(k_gray, views), 0.0, 1.0)


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
  return imageops.sample_bilinear(image[None], src[0][None], src[1][None], "zero")[0]


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
  blurred = imageops.correlate(image, kernel / kernel.sum(), "edge")
  degenerate = image.at[1:-1, 1:-1].set(blurred[1:-1, 1:-1])
  return jnp.clip((1 + m) * image - m * degenerate, 0.0, 1.0)


_PIXEL_OPS = (
    ("autocontrast", _autocontrast), ("equalize", _equalize), ("posterize", _posterize),
    ("solarize", _solarize),
    ("color", lambda x, m: adjust_saturation(x, 1 + m)),
    ("contrast", lambda x, m: adjust_contrast(x, 1 + m)),
    ("brightness", lambda x, m: adjust_brightness(x, 1 + m)),
    ("sharpness", _sharpness),
)
# Geometric ops give the inverse affine map (m, H, W) -> [2, 3]; one shared warp applies it.
_GEOMETRIC_OPS = (("rotate", _rotate), ("shear_x", _shear_x), ("shear_y", _shear_y),
                  ("translate_x", _translate_x), ("translate_y", _translate_y))
AUGMIX_OPS: tuple[str, ...] = tuple(name for name, _ in _PIXEL_OPS + _GEOMETRIC_OPS)


def _magnitudes(height: int, width: int, num_bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
  """torchvision AugMix's magnitude bins per op [13, num_bins] and whether each op is signed [13].

  torchvision's AugMix builds its table with num_bins = its _PARAMETER_MAX = 10 (RandAugment's
  11/31-bin tables are a different scale): e.g. shear bins linspace(0, 0.3, 10)."""
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
  magnitude bins drawn uniformly below `severity` (of torchvision's 10) and a random sign where the op has one;
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
