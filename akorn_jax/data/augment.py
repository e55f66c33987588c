"""SimCLR view augmentation on the accelerator (SPEC §5.1), jittable and batched.

Per view: RandomResizedCrop (area U(0.08, 1), log-uniform aspect in [3/4, 4/3], bilinear, same output
size), no flip, ColorJitter(0.4, 0.4, 0.4, 0.1) with p = 0.8, RandomGrayscale with p = 0.2.

Images are float in [0, 1], channels-last `[B, H, W, 3]`. The colour ops follow torchvision's tensor
formulas; the reference applies them to uint8 PIL images, so results differ by rounding only.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

_GRAY = (0.299, 0.587, 0.114)  # ITU-R 601 luma, as torchvision


def _per_image(factor: jax.typing.ArrayLike) -> jax.Array:
  """Broadcasts a scalar or per-image factor [...] against images [..., H, W, C]."""
  return jnp.asarray(factor, jnp.float32)[..., None, None, None]


def rgb_to_grayscale(images: jax.Array) -> jax.Array:
  """Luma [..., H, W, 1] of RGB images [..., H, W, 3]."""
  return (images * jnp.asarray(_GRAY, images.dtype)).sum(-1, keepdims=True)


def _blend(images: jax.Array, other: jax.Array, factor: jax.typing.ArrayLike) -> jax.Array:
  f = _per_image(factor)
  return jnp.clip(f * images + (1 - f) * other, 0.0, 1.0)


def adjust_brightness(images: jax.Array, factor: jax.typing.ArrayLike) -> jax.Array:
  """Scales intensities by `factor` (scalar or [...]) and clips to [0, 1]; images [..., H, W, 3]."""
  return _blend(images, jnp.zeros_like(images), factor)


def adjust_contrast(images: jax.Array, factor: jax.typing.ArrayLike) -> jax.Array:
  """Blends each image [..., H, W, 3] with the mean of its grayscale by `factor` (scalar or [...])."""
  mean = rgb_to_grayscale(images).mean(axis=(-3, -2, -1), keepdims=True)
  return _blend(images, mean, factor)


def adjust_saturation(images: jax.Array, factor: jax.typing.ArrayLike) -> jax.Array:
  """Blends images [..., H, W, 3] with their grayscale by `factor` (0 = gray, 1 = identity)."""
  return _blend(images, rgb_to_grayscale(images), factor)


def rgb_to_hsv(images: jax.Array) -> jax.Array:
  """RGB [..., 3] in [0, 1] -> HSV [..., 3], all channels in [0, 1] (hue as a fraction of a turn)."""
  r, g, b = images[..., 0], images[..., 1], images[..., 2]
  maxc = images.max(-1)
  minc = images.min(-1)
  delta = maxc - minc
  gray = delta == 0
  safe = jnp.where(gray, 1.0, delta)  # avoids 0/0 (and NaN gradients) on gray pixels
  s = delta / jnp.where(maxc == 0, 1.0, maxc)
  rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
  h = jnp.where(maxc == r, bc - gc, jnp.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
  h = jnp.where(gray, 0.0, (h / 6.0) % 1.0)
  return jnp.stack([h, s, maxc], -1)


def hsv_to_rgb(hsv: jax.Array) -> jax.Array:
  """HSV [..., 3] (hue as a fraction of a turn) -> RGB [..., 3] in [0, 1]."""
  h, s, v = hsv[..., 0:1], hsv[..., 1:2], hsv[..., 2:3]
  k = (jnp.asarray([5.0, 3.0, 1.0], hsv.dtype) + 6.0 * h) % 6.0
  return v - v * s * jnp.clip(jnp.minimum(k, 4.0 - k), 0.0, 1.0)


def adjust_hue(images: jax.Array, shift: jax.typing.ArrayLike) -> jax.Array:
  """Rotates the hue of images [..., H, W, 3] by `shift` turns (scalar or [...], in [-0.5, 0.5])."""
  hsv = rgb_to_hsv(images)
  hue = (hsv[..., 0] + jnp.asarray(shift, images.dtype)[..., None, None]) % 1.0
  return hsv_to_rgb(hsv.at[..., 0].set(hue))


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
  src = jnp.clip(src, 0.0, size_in - 1.0)
  return jnp.maximum(0.0, 1.0 - jnp.abs(src[:, :, None] - jnp.arange(size_in)))


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
  gray = jnp.broadcast_to(rgb_to_grayscale(images), images.shape)
  apply = jax.random.uniform(key, (images.shape[0],)) < p
  return jnp.where(apply[:, None, None, None], gray, images)


def simclr_views(key: jax.Array, images: jax.Array, hflip: bool = False) -> jax.Array:
  """Two independent SimCLR views per image (SPEC §5.1), interleaved.

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
