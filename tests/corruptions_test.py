"""Tests of akorn_jax.evaluate.corruptions on real photographs shipped with scikit-learn."""

import os

import jax
import numpy as np
import PIL.Image
import pytest
from sklearn.datasets import load_sample_images

from akorn_jax import metrics
from akorn_jax.evaluate import corruptions as cr


@pytest.fixture(scope="module")
def images():
  """[3, 32, 32, 3] float32 photo patches (two downscaled photos and one crop)."""
  photos = load_sample_images().images
  small = [np.asarray(PIL.Image.fromarray(p).resize((32, 32), PIL.Image.Resampling.BOX)) for p in photos]
  crop = photos[0][200:264, 300:364][::2, ::2]
  return np.stack(small + [crop]).astype(np.float32) / 255.0


@pytest.mark.parametrize("name", cr.CORRUPTIONS)
def test_shape_range_dtype_and_strength(name, images):
  key = jax.random.key(0)
  change = []
  for s in range(1, 6):
    out = np.asarray(cr.corrupt(name, images, s, key))
    assert out.shape == images.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    change.append(np.abs(out - images).mean())
  assert change[0] > 1e-3, change
  if name == "saturate":
    # The original parameters desaturate at 1-2 and oversaturate at 3-5: monotone within each.
    assert change[1] > change[0] and change[2] < change[3] < change[4], change
  else:
    assert all(b > a for a, b in zip(change, change[1:])), change


@pytest.mark.parametrize("name", ["gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "fog"])
def test_random_corruptions_are_deterministic_per_key(name, images):
  a = cr.corrupt(name, images, 3, jax.random.key(1))
  b = cr.corrupt(name, images, 3, jax.random.key(1))
  c = cr.corrupt(name, images, 3, jax.random.key(2))
  np.testing.assert_array_equal(a, b)
  assert np.abs(np.asarray(a) - np.asarray(c)).max() > 0.01


def test_gaussian_noise_has_the_severity_sigma(images):
  x = np.full((4, 32, 32, 3), 0.5, np.float32)
  out = np.asarray(cr.corrupt("gaussian_noise", x, 5, jax.random.key(3)))
  np.testing.assert_allclose((out - x).std(), 0.10, rtol=0.05)


def test_contrast_matches_direct_formula(images):
  out = np.asarray(cr.corrupt("contrast", images, 2, jax.random.key(0)))
  mean = images.mean(axis=(1, 2), keepdims=True)
  np.testing.assert_allclose(out, np.clip((images - mean) * 0.5 + mean, 0, 1), atol=1e-6)


def test_brightness_matches_hsv_value_shift(images):
  import colorsys
  out = np.asarray(cr.corrupt("brightness", images, 3, jax.random.key(0)))
  for pix, got in zip(images.reshape(-1, 3)[:200], out.reshape(-1, 3)[:200]):
    h, s, v = colorsys.rgb_to_hsv(*pix)
    np.testing.assert_allclose(got, colorsys.hsv_to_rgb(h, s, min(v + 0.15, 1.0)), atol=1e-5)


def test_gaussian_blur_matches_scipy(images):
  from scipy.ndimage import gaussian_filter
  out = np.asarray(cr.corrupt("gaussian_blur", images, 5, jax.random.key(0)))
  want = gaussian_filter(images, sigma=(0, 1.0, 1.0, 0), mode="nearest", truncate=4.0)
  np.testing.assert_allclose(out, want, atol=1e-5)


def test_blur_preserves_constant_image():
  x = np.full((2, 9, 11, 3), 0.3, np.float32)
  for name in ("defocus_blur", "gaussian_blur", "pixelate"):
    np.testing.assert_allclose(cr.corrupt(name, x, 5, jax.random.key(0)), x, atol=2e-3)


def test_bad_arguments_name_the_problem(images):
  with pytest.raises(ValueError, match="gaussian_noise"):
    cr.corrupt("gausian_noise", images, 1, jax.random.key(0))
  with pytest.raises(ValueError, match="severity"):
    cr.corrupt("contrast", images, 6, jax.random.key(0))


def _softmax_probs(x, key):
  """A fixed 'classifier' on mean colour: 3 classes by the dominant channel."""
  del key
  logits = 20 * x.mean(axis=(1, 2))
  return jax.nn.softmax(logits)


def test_calibration_report(images):
  labels = np.asarray(np.argmax(images.mean(axis=(1, 2)), 1))
  rep = cr.calibration_report(_softmax_probs, images, labels, jax.random.key(0),
                              corruptions=("contrast", "gaussian_noise"), severities=(1, 5),
                              chunk_size=2)
  assert rep["clean"]["accuracy"] == 1.0
  probs = np.asarray(_softmax_probs(images, None), np.float64)
  assert rep["clean"]["ece"] == pytest.approx(metrics.expected_calibration_error(probs, labels),
                                              rel=1e-4)
  assert set(rep["corruptions"]) == {"contrast", "gaussian_noise"}
  assert set(rep["corruptions"]["contrast"]) == {1, 5}
  corrupted = np.asarray(_softmax_probs(cr.corrupt("contrast", images, 5, jax.random.key(9)), None))
  assert rep["corruptions"]["contrast"][5]["ece"] == pytest.approx(
      metrics.expected_calibration_error(corrupted, labels), rel=1e-4)
  cells = [r["ece"] for c in rep["corruptions"].values() for r in c.values()]
  assert rep["mean"]["ece"] == pytest.approx(np.mean(cells))
  assert rep["per_severity"][5]["accuracy"] == pytest.approx(
      np.mean([rep["corruptions"][c][5]["accuracy"] for c in rep["corruptions"]]))


def test_reliability_diagram_writes_png(tmp_path):
  rng = np.random.default_rng(0)
  probs = rng.dirichlet(np.ones(10), size=200)
  labels = rng.integers(0, 10, 200)
  path = cr.reliability_diagram(probs, labels, str(tmp_path / "rel.png"), title="test")
  assert os.path.getsize(path) > 1000
  with PIL.Image.open(path) as im:
    assert im.format == "PNG" and im.size[0] > 100
