"""Tests of akorn_jax.imageops against direct computations, on numpy and JAX inputs."""

import colorsys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage

from akorn_jax import imageops


def _rand(shape, seed=0):
  return np.random.default_rng(seed).random(shape).astype(np.float32)


@pytest.mark.parametrize("xp", [np, jnp])
def test_uint8_float_round_trip(xp):
  u8 = xp.asarray(np.arange(256, dtype=np.uint8).reshape(16, 16, 1))
  x = imageops.to_float(u8)
  assert isinstance(x, type(u8)) and x.dtype == np.float32
  np.testing.assert_allclose(np.asarray(x)[0, :3, 0], [0, 1 / 255, 2 / 255], rtol=1e-6)
  assert float(x.max()) == 1.0
  np.testing.assert_array_equal(np.asarray(imageops.to_uint8(x)), np.asarray(u8))
  # Float input is only cast; out-of-range floats are clipped on the way to uint8.
  np.testing.assert_array_equal(np.asarray(imageops.to_float(xp.asarray([0.5], xp.float64))), [0.5])
  np.testing.assert_array_equal(np.asarray(imageops.to_uint8(xp.asarray([-0.2, 0.5, 1.7]))),
                                [0, 128, 255])


def test_ignore_to_minus_one():
  mask = np.array([[0, 1, 255], [2, 255, 3]], np.uint8)
  labels = imageops.ignore_to_minus_one(mask)
  assert labels.dtype == np.int32
  np.testing.assert_array_equal(labels, [[0, 1, -1], [2, -1, 3]])
  np.testing.assert_array_equal(imageops.ignore_to_minus_one(jnp.asarray(mask)), labels)


def test_resize_nearest_follows_torch_legacy_rule():
  labels = np.arange(2 * 2 * 3).reshape(2, 2, 3)
  up = imageops.resize_nearest(labels, (4, 6), axis=-2)
  np.testing.assert_array_equal(up, labels.repeat(2, 1).repeat(2, 2))
  # torch nearest: src = floor(dst * in / out)
  odd = imageops.resize_nearest(labels, (3, 7), axis=-2)
  np.testing.assert_array_equal(odd[1], labels[1][[0, 0, 1]][:, [0, 0, 0, 1, 1, 2, 2]])
  image = _rand((5, 7, 3))
  down = imageops.resize_nearest(image, (2, 3))  # channels-last default
  np.testing.assert_array_equal(down, image[[0, 2]][:, [0, 2, 4]])
  np.testing.assert_array_equal(imageops.resize_nearest(jnp.asarray(image), (2, 3)), down)


def test_bilinear_matrix_and_sampling_agree_with_scipy():
  image = _rand((1, 6, 5, 2))
  rows = np.array([0.0, 0.5, 2.25, 4.9, 5.0])
  m = imageops.bilinear_matrix(rows, 6)
  np.testing.assert_allclose(m.sum(1), 1.0)
  np.testing.assert_allclose(m[1], [0.5, 0.5, 0, 0, 0, 0])
  # Inside the image, the gather form equals scipy's order-1 map_coordinates (same on both axes).
  rr, cc = np.meshgrid(np.linspace(0, 5, 7), np.linspace(0, 4, 4), indexing="ij")
  got = imageops.sample_bilinear(jnp.asarray(image), jnp.asarray(rr[None]), jnp.asarray(cc[None]),
                                 "edge")
  for ch in range(2):
    want = scipy.ndimage.map_coordinates(image[0, ..., ch], [rr, cc], order=1)
    np.testing.assert_allclose(got[0, ..., ch], want, atol=1e-6)
  # Outside: zero fill reads zeros, edge clamps, reflect mirrors (..1 0 | 0 1..), reflect101
  # (..2 1 | 0 1 2..).
  at = lambda r, c, border: float(imageops.sample_bilinear(
      jnp.asarray(image), jnp.full((1, 1, 1), r), jnp.full((1, 1, 1), c), border)[0, 0, 0, 0])
  assert at(-3.0, 1.0, "zero") == 0.0
  assert at(-0.5, 1.0, "zero") == pytest.approx(0.5 * image[0, 0, 1, 0])
  assert at(-3.0, 1.0, "edge") == pytest.approx(image[0, 0, 1, 0])
  assert at(-2.0, 1.0, "reflect") == pytest.approx(image[0, 1, 1, 0])
  assert at(-2.0, 1.0, "reflect101") == pytest.approx(image[0, 2, 1, 0])
  with pytest.raises(ValueError, match="Unknown border 'wrap'"):
    imageops.sample_bilinear(jnp.asarray(image), jnp.zeros((1, 1, 1)), jnp.zeros((1, 1, 1)), "wrap")


@pytest.mark.parametrize("border,scipy_mode", [("edge", "nearest"), ("reflect", "mirror"),
                                               ("constant", "constant")])
def test_correlate_matches_scipy(border, scipy_mode):
  images = _rand((2, 6, 7, 3))
  kernel = np.arange(9, dtype=np.float64).reshape(3, 3) / 36
  want = scipy.ndimage.correlate(images.astype(np.float64), kernel[None, :, :, None],
                                 mode=scipy_mode)
  np.testing.assert_allclose(imageops.correlate(images, kernel, border), want, atol=1e-6)
  np.testing.assert_allclose(imageops.correlate(jnp.asarray(images), kernel, border), want,
                             atol=1e-5)
  line = np.array([[0.25, 0.5, 0.25]])  # a non-square kernel, one image without batch axis
  np.testing.assert_allclose(imageops.correlate(images[0], line, border),
                             scipy.ndimage.correlate(images[0], line[..., None], mode=scipy_mode),
                             atol=1e-6)


def test_grey_and_hsv_match_colorsys():
  pixels = np.concatenate([_rand((200, 3), 4), np.eye(3), [[0.3, 0.3, 0.3], [0, 0, 0]]])
  for xp in (np, jnp):
    hsv = imageops.rgb_to_hsv(xp.asarray(pixels, xp.float32))
    np.testing.assert_allclose(hsv, [colorsys.rgb_to_hsv(*p) for p in pixels], atol=1e-5)
    np.testing.assert_allclose(imageops.hsv_to_rgb(hsv), pixels, atol=1e-5)
  grey = imageops.rgb_to_grey(pixels)
  assert grey.shape == (205, 1)
  np.testing.assert_allclose(grey[:, 0], pixels @ np.array([0.299, 0.587, 0.114]), rtol=1e-6)
  # The gradient through HSV stays finite on grey pixels.
  grad = jax.grad(lambda x: imageops.rgb_to_hsv(x).sum())(jnp.full((3,), 0.4))
  assert np.isfinite(np.asarray(grad)).all()
