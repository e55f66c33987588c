"""Tests of akorn_jax.evaluate.corruptions on real photographs shipped with scikit-learn."""


import jax
import numpy as np
import PIL.Image
import pytest
from sklearn.datasets import load_sample_images

from akorn_jax.evaluate import corruptions as cr


@pytest.fixture(scope="module")
def images():
  """[3, 32, 32, 3] float32 photo patches (two downscaled photos and one crop)."""
  photos = load_sample_images().images
  small = [np.asarray(PIL.Image.fromarray(p).resize((32, 32), PIL.Image.Resampling.BOX)) for p in photos]
  crop = photos[0][200:264, 300:364][::2, ::2]
  return np.stack(small + [crop]).astype(np.float32) / 255.0


@pytest.mark.parametrize("name", cr.CORRUPTIONS)
def test_shape_range_dtype_and_strength(name, images, tmp_path, monkeypatch):
  if name == "frost":  # its photographs come from an optional package: a stand-in folder here
    import spatter_frost_test  # pylint: disable=g-import-not-at-top
    monkeypatch.syspath_prepend(spatter_frost_test._fake_imagecorruptions(tmp_path))
    from akorn_jax.evaluate import spatter_frost  # pylint: disable=g-import-not-at-top
    spatter_frost._FROST_CACHE.clear()
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
  elif name == "glass_blur":
    # σ .05 and .25 are both (nearly) the identity kernel at 4σ truncation, so severities 1 and 2
    # nearly coincide, and the stronger blur at 3 and 5 smooths away some of the shuffle's change
    # (measured on 120 images: .064 .064 .058 .082 .075). What grows is the number of sweeps.
    assert change[3] > change[1] and change[4] > change[2], change
  elif name == "snow":
    # Severity 3's flakes are fewer but larger than 2's (its noise is zoomed, which lowers its
    # variance): the two change pixels about equally (.094 and .093 on 120 images).
    assert change[0] < min(change[1:3]) and max(change[1:3]) < change[3] < change[4], change
  elif name == "frost":
    # The stand-in photographs are uniform noise, so how the change grows says nothing about the
    # real ones; only that each severity corrupts (checked above) and that they differ.
    assert len(set(np.round(change, 6))) == 5, change
  elif name == "spatter":
    # Water drops at 1-3, mud at 4-5 (different mechanisms): stronger within each.
    assert change[3] < change[4], change
  elif name == "motion_blur":
    # CIFAR's (6, 2) and (8, 2) differ only in the kernel's length, and taps past ~6σ weigh
    # nothing (exp(-18)): severities 3 and 4 blur the same.
    assert change[0] < change[1] < change[2] <= change[3] + 1e-6 < change[4] + 1e-6, change
    assert change[4] > change[2], change
  elif name == "elastic_transform":
    # The affine jitter shrinks with severity while the local displacement grows, so the mean
    # pixel change falls; test_elastic_transform_distortion_grows_with_severity checks the growth.
    pass
  else:
    assert all(b > a for a, b in zip(change, change[1:])), change


@pytest.mark.parametrize("name", ["gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise",
                                  "fog", "glass_blur", "motion_blur", "snow", "elastic_transform"])
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
  for name in ("defocus_blur", "gaussian_blur", "pixelate", "glass_blur", "motion_blur",
               "zoom_blur"):
    np.testing.assert_allclose(cr.corrupt(name, x, 5, jax.random.key(0)), x, atol=2e-3)


def test_glass_blur_severity_1_only_moves_whole_pixels(images):
  # At σ .05 the Gaussian is the identity (radius int(4σ + .5) = 0): only the shuffle is left.
  out = np.asarray(cr.corrupt("glass_blur", images, 1, jax.random.key(4)))
  for x, y in zip(images, out):
    pixels = lambda im: im.reshape(-1, 3)[np.lexsort(im.reshape(-1, 3).T)]
    np.testing.assert_array_equal(pixels(y), pixels(x))  # a permutation of the RGB pixels
    moved = np.any(y != x, axis=-1)
    assert moved.mean() > 0.3
    # Offsets in [-1, 1) from rows and columns 2..31: row and column 0 are never swapped.
    assert not moved[0].any() and not moved[:, 0].any()


def test_motion_blur_smears_an_impulse_along_a_line():
  x = np.zeros((8, 32, 32, 3), np.float32)
  x[:, 16, 28] = 1.0
  out = np.asarray(cr.corrupt("motion_blur", x, 5, jax.random.key(5)))[..., 0]
  k = np.exp(-np.arange(19) ** 2 / (2 * 2.5 ** 2))  # severity 5: radius 9, σ 2.5 (CIFAR's)
  rows, cols = np.nonzero(np.ones((32, 32)))
  supports = set()
  for im in out:
    np.testing.assert_allclose(im.sum(), 1.0, atol=1e-5)  # the mass is kept, all of it in view
    np.testing.assert_allclose(im[16, 28], k[0] / k.sum(), atol=1e-6)  # tap 0 stays put
    lit = im.ravel() > 1e-6
    # Output p takes input p + o_i, o_i along the angle in ±45°: the trail lies to the left, in
    # the 45° cone, within 2 radius + 1 taps.
    assert np.all(cols[lit] <= 28) and np.all(np.abs(rows[lit] - 16) <= 28 - cols[lit])
    assert 28 - cols[lit].min() >= 6 and lit.sum() <= 19
    supports.add(tuple(np.flatnonzero(lit)))
  assert len(supports) > 1  # one angle per image


def test_zoom_blur_of_a_ramp_and_rotation():
  ramp = np.broadcast_to((np.arange(32, dtype=np.float32) / 31)[None, :, None, None],
                         (1, 32, 32, 3))
  out = np.asarray(cr.corrupt("zoom_blur", ramp, 1, jax.random.key(0)))
  # Bilinear zooms of a linear ramp are exact: about the centre 15.5, zooms 1, 1.01, ..., 1.06.
  r = np.arange(32)
  zoomed = [15.5 + (r - 15.5) / (1 + 0.01 * k) for k in range(7)]
  want = (r + sum(zoomed)) / 8 / 31
  np.testing.assert_allclose(out[0, :, :, 0], np.broadcast_to(want[:, None], (32, 32)), atol=1e-6)
  # Zooming about the centre commutes with rotations of a square image.
  x = np.asarray(jax.random.uniform(jax.random.key(6), (2, 32, 32, 3)))
  rot = lambda a: np.rot90(a, 1, axes=(1, 2))
  np.testing.assert_allclose(cr.corrupt("zoom_blur", rot(x), 4, jax.random.key(0)),
                             rot(np.asarray(cr.corrupt("zoom_blur", x, 4, jax.random.key(0)))),
                             atol=1e-6)


def test_snow_on_a_grey_image():
  x = np.full((4, 32, 32, 3), 0.3, np.float32)
  out = np.asarray(cr.corrupt("snow", x, 1, jax.random.key(7)))
  # Severity 1 blend b = .95: background .95 x .3 + .05 x max(.3, 1.5 x .3 + .5) = .3325.
  background = 0.95 * 0.3 + 0.05 * 0.95
  assert out.min() >= background - 1e-6
  assert np.mean(np.abs(out - background) < 1e-6) > 0.5  # sparse flakes ...
  assert out.max() > background + 0.1  # ... but some
  np.testing.assert_array_equal(out, out[..., :1].repeat(3, -1))  # white flakes on grey
  # The flakes are added with their 180° rotation.
  np.testing.assert_allclose(out, out[:, ::-1, ::-1], atol=1e-6)
  assert np.abs(out[0] - out[1]).max() > 0.1  # flakes per image


def _coordinate_images(n):
  """n images whose channels 0 and 1 are the row and column / 31 (channel 2 is .5)."""
  r, c = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
  return np.tile(np.stack([r / 31, c / 31, np.full((32, 32), 0.5)], -1)[None], (n, 1, 1, 1))


def test_elastic_transform_without_displacement_is_the_identity():
  x = _coordinate_images(2).astype(np.float32)
  out = jax.jit(lambda im: cr._elastic_transform(im, (0.0, 0.0, 0.0), jax.random.key(0)))(x)
  np.testing.assert_allclose(out, x, atol=1e-6)


def test_elastic_transform_distortion_grows_with_severity():
  x = _coordinate_images(3).astype(np.float32)  # the shape of `images`: reuses their compiles
  # Bilinear sampling of the coordinate images returns the source coordinates where no border is
  # reflected: fit an affine map to them on the centre 16 x 16 and look at what is left.
  r, c = np.meshgrid(np.arange(8, 24), np.arange(8, 24), indexing="ij")
  design = np.stack([r.ravel(), c.ravel(), np.ones(256)], 1)
  non_affine, worst, shift = [], [], []
  for s in range(1, 6):
    out = np.asarray(cr.corrupt("elastic_transform", x, s, jax.random.key(8)))
    src = out[:, 8:24, 8:24, :2].reshape(3, 256, 2) * 31
    residual = src - np.stack([design @ np.linalg.lstsq(design, y, rcond=None)[0] for y in src])
    non_affine.append(np.abs(residual).mean())
    worst.append(np.abs(residual).max())
    shift.append(np.abs(src - design[:, :2]).max())
  assert worst[0] < 1e-3 < shift[0] < 2.56 * 3  # severity 1 is a pure, random affine warp
  assert all(b > a for a, b in zip(non_affine, non_affine[1:])), non_affine
  # Severity 2's field (α 1.6) is smoothed by σ 6.4: it moves pixels by well under a pixel.
  assert worst[1] < 0.2, worst
  assert worst[-1] < 3.2 * 1.2, worst  # |displacement| <= α (3.2), up to the warp


def test_bad_arguments_name_the_problem(images):
  with pytest.raises(ValueError, match="gaussian_noise"):
    cr.corrupt("gausian_noise", images, 1, jax.random.key(0))
  with pytest.raises(ValueError, match="severity"):
    cr.corrupt("contrast", images, 6, jax.random.key(0))


def test_cifar_config_evaluates_every_implemented_corruption():
  from akorn_jax import config_loader  # pylint: disable=g-import-not-at-top
  assert tuple(sorted(config_loader.load("cifar_akorn").eval.corruptions)) == tuple(sorted(cr.CORRUPTIONS))
