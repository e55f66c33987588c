"""Tests of akorn_jax.data.augment (SimCLR views), against direct computations where possible."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from akorn_jax.data import augment

B, H, W = 3, 5, 7


def _images(seed=0, shape=(B, H, W, 3)):
  return jnp.asarray(np.random.default_rng(seed).random(shape), jnp.float32)


# The tested (jitted) path; eager op-by-op dispatch would only make the tests slower.
simclr_views = jax.jit(augment.simclr_views)
color_jitter = jax.jit(augment.color_jitter, static_argnames="p")
random_grayscale = jax.jit(augment.random_grayscale, static_argnames="p")
random_resized_crop = jax.jit(augment.random_resized_crop)
crop_and_resize = jax.jit(augment.crop_and_resize, static_argnames="size")
crop_boxes = jax.jit(augment._crop_boxes, static_argnums=(1, 2, 3, 4, 5))
brightness, contrast, saturation, hue = (jax.jit(f) for f in (
    augment.adjust_brightness, augment.adjust_contrast, augment.adjust_saturation, augment.adjust_hue))


def test_simclr_views_shape_range_dtype_and_keys():
  images = _images()
  views_fn = simclr_views
  views = views_fn(jax.random.key(1), images)
  assert views.shape == (2 * B, H, W, 3) and views.dtype == jnp.float32
  assert float(views.min()) >= 0.0 and float(views.max()) <= 1.0
  np.testing.assert_array_equal(views, views_fn(jax.random.key(1), images))
  assert not np.allclose(views, views_fn(jax.random.key(2), images))
  assert not np.allclose(views[0], views[1])  # the two views of an image differ


def test_simclr_views_are_interleaved():
  # Black stays black under every op, so the views of black images must be exactly the rows 2i, 2i+1.
  images = jnp.zeros((B, H, W, 3)).at[1].set(_images()[1] * 0.5 + 0.25)
  views = simclr_views(jax.random.key(3), images)
  np.testing.assert_array_equal(views[jnp.array([0, 1, 4, 5])], 0.0)
  assert (views[2].max() > 0) and (views[3].max() > 0)


def test_simclr_views_compiles_once():
  traces = []

  def views(key, images):
    traces.append(None)
    return augment.simclr_views(key, images)

  views_fn = jax.jit(views)
  for seed in range(3):
    views_fn(jax.random.key(seed), _images(seed)).block_until_ready()
  assert len(traces) == 1


def test_identity_factors():
  images = _images()
  for op in (brightness, contrast, saturation):
    np.testing.assert_allclose(op(images, 1.0), images, atol=1e-6)
  np.testing.assert_allclose(hue(images, 0.0), images, atol=1e-5)
  np.testing.assert_allclose(hue(images, jnp.zeros(B)), images, atol=1e-5)


def test_colour_ops_against_direct_formulas():
  images = _images()
  gray = images @ jnp.array([0.299, 0.587, 0.114])  # [B, H, W]
  np.testing.assert_allclose(brightness(images, 0.5), images * 0.5, atol=1e-6)
  np.testing.assert_allclose(brightness(images, 3.0), np.minimum(images * 3, 1), atol=1e-6)
  factors = jnp.array([0.0, 0.5, 1.5])  # per image
  mean = gray.mean((1, 2))[:, None, None, None]
  want = np.clip(factors[:, None, None, None] * (images - mean) + mean, 0, 1)
  np.testing.assert_allclose(contrast(images, factors), want, atol=1e-6)
  want = np.clip(factors[:, None, None, None] * (images - gray[..., None]) + gray[..., None], 0, 1)
  np.testing.assert_allclose(saturation(images, factors), want, atol=1e-6)
  red = jnp.array([1.0, 0.0, 0.0]).reshape(1, 1, 1, 3)
  np.testing.assert_allclose(hue(red, 1 / 3), [[[[0, 1, 0]]]], atol=1e-6)
  np.testing.assert_allclose(hue(red, -1 / 3), [[[[0, 0, 1]]]], atol=1e-6)


def test_random_grayscale():
  images = _images()
  gray = random_grayscale(jax.random.key(0), images, p=1.0)
  np.testing.assert_allclose(gray[..., 0], gray[..., 1], atol=0)
  np.testing.assert_allclose(gray[..., 0], images @ jnp.array([0.299, 0.587, 0.114]), atol=1e-6)
  np.testing.assert_array_equal(random_grayscale(jax.random.key(0), images, p=0.0), images)
  many = random_grayscale(jax.random.key(1), _images(1, (400, 2, 2, 3)))
  fraction = float((many[..., 0] == many[..., 1]).all((1, 2)).mean())
  assert 0.12 < fraction < 0.28  # p = 0.2


def test_color_jitter_probability_and_range():
  images = _images(5, (400, 3, 2, 3))
  out = color_jitter(jax.random.key(0), images)
  changed = float((jnp.abs(out - images) > 1e-6).any((1, 2, 3)).mean())
  assert 0.72 < changed < 0.88  # p = 0.8
  assert float(out.min()) >= 0 and float(out.max()) <= 1
  np.testing.assert_array_equal(color_jitter(jax.random.key(0), images, p=0.0), images)


def test_crop_and_resize_identity_and_exact_crop():
  images = _images()
  full = jnp.tile(jnp.array([0.0, 0.0, H, W]), (B, 1))
  np.testing.assert_allclose(crop_and_resize(images, full), images, atol=1e-6)
  box = jnp.tile(jnp.array([1.0, 2.0, 3.0, 4.0]), (B, 1))  # integer box at scale 1: a plain crop
  np.testing.assert_allclose(crop_and_resize(images, box, (3, 4)), images[:, 1:4, 2:6],
                             atol=1e-6)


def test_crop_and_resize_matches_jax_image_resize():
  images = _images()
  full = jnp.tile(jnp.array([0.0, 0.0, H, W]), (B, 1))
  want = jax.image.resize(images, (B, 2 * H, 3 * W, 3), "linear", antialias=False)
  np.testing.assert_allclose(crop_and_resize(images, full, (2 * H, 3 * W)), want, atol=1e-5)


@pytest.mark.parametrize("height,width", [(32, 32), (2, 60)])
def test_crop_boxes_follow_torchvision_ranges(height, width):
  boxes = np.asarray(crop_boxes(jax.random.key(0), 2000, height, width, (0.08, 1.0),
                                         (3 / 4, 4 / 3)))
  top, left, h, w = boxes.T
  assert (top >= 0).all() and (left >= 0).all() and (top + h <= height).all() and (left + w <= width).all()
  assert (h >= 1).all() and (w >= 1).all()
  np.testing.assert_array_equal(boxes, np.round(boxes))
  if height == width:
    area = h * w / (height * width)
    assert area.min() > 0.04 and area.max() <= 1.0 and np.median(area) > 0.3
    ratio = w / h
    assert ratio.min() > 0.5 and ratio.max() < 2.0
  else:  # 2x60 is far outside the aspect range: every crop is the centred fallback
    np.testing.assert_array_equal(boxes, np.tile([0, 28, 2, 3], (2000, 1)))


def test_random_resized_crop_is_a_crop_of_the_image():
  # A constant image stays constant under any crop; a horizontal ramp stays monotone.
  ramp = jnp.tile(jnp.linspace(0, 1, W)[None, None, :, None], (B, H, 1, 3))
  out = random_resized_crop(jax.random.key(0), ramp)
  assert out.shape == ramp.shape
  assert (jnp.diff(out[..., 0], axis=2) >= -1e-6).all()
  np.testing.assert_allclose(out[..., 0], out[..., 2])
  constant = jnp.full((B, H, W, 3), 0.3)
  np.testing.assert_allclose(random_resized_crop(jax.random.key(0), constant), 0.3, atol=1e-6)

# ---- AugMix --------------------------------------------------------------------------------------


def _smooth_images(seed=0, shape=(3, 32, 32, 3)):
  """Smooth random colour images (a coarse random grid upsampled) so geometric ops matter."""
  coarse = jax.random.uniform(jax.random.key(seed), (shape[0], 4, 4, 3))
  return jax.image.resize(coarse, shape, "linear")


def test_augmix_per_image_and_in_range():
  x = _smooth_images(3)
  out = augment.augmix(jax.random.key(0), x)
  assert out.shape == x.shape and float(out.min()) >= 0 and float(out.max()) <= 1
  # Each image gets its own ops: identical inputs give different outputs.
  same = jnp.broadcast_to(x[:1], x.shape)
  out = np.asarray(augment.augmix(jax.random.key(0), same))
  assert np.abs(out[0] - out[1]).max() > 1e-3


def _op(name):
  """One AugMix op (by its name in `augment.AUGMIX_OPS`) applied to one image [H, W, 3]."""
  pixel, geometric = dict(augment._PIXEL_OPS), dict(augment._GEOMETRIC_OPS)
  if name in pixel:
    return lambda image, m: pixel[name](image, jnp.float32(m))
  return lambda image, m: augment._warp(image, geometric[name](jnp.float32(m), *image.shape[:2]))


def test_augmix_ops_against_direct_computations():
  img = _smooth_images(4)[0]
  np.testing.assert_allclose(_op("solarize")(img, jnp.float32(0.5)),
                             np.where(img >= 0.5, 1 - img, img), atol=1e-7)
  q = np.clip(np.round(np.asarray(img) * 255), 0, 255).astype(np.int32)
  np.testing.assert_allclose(_op("posterize")(img, jnp.float32(3)), (q & 0b11100000) / 255, atol=1e-7)
  ac = np.asarray(_op("autocontrast")(img * 0.5 + 0.2, 0.0))
  np.testing.assert_allclose(ac.min(axis=(0, 1)), 0, atol=1e-6)
  np.testing.assert_allclose(ac.max(axis=(0, 1)), 1, atol=1e-6)
  # Whole-pixel translation is an exact shift with zero fill.
  t = np.asarray(_op("translate_x")(img, jnp.float32(2.7)))
  np.testing.assert_allclose(t[:, 2:], img[:, :-2], atol=1e-6)
  np.testing.assert_array_equal(t[:, :2], 0)
  # Zero magnitude is the identity for every geometric op; 180 degrees flips both axes.
  for name in ("rotate", "shear_x", "shear_y", "translate_y"):
    np.testing.assert_allclose(_op(name)(img, jnp.float32(0)), img, atol=1e-6)
  np.testing.assert_allclose(_op("rotate")(img, jnp.float32(180)), img[::-1, ::-1], atol=1e-5)
  np.testing.assert_allclose(_op("sharpness")(img, jnp.float32(0)), img, atol=1e-7)


def test_equalize_flattens_histogram():
  # A low-contrast ramp: equalisation spreads it over the full range with a near-uniform histogram.
  ramp = jnp.broadcast_to(jnp.linspace(0.3, 0.5, 32)[None, :, None], (32, 32, 3))
  out = np.asarray(_op("equalize")(ramp, 0.0))
  assert out.min() < 0.05 and out.max() > 0.95
  assert np.all(np.diff(out[0, :, 0]) >= 0)  # monotone map
  # Constant image: nothing to equalise.
  const = jnp.full((8, 8, 3), 0.4)
  np.testing.assert_allclose(_op("equalize")(const, 0.0), const)
