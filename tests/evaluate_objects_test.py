"""Tests for akorn_jax.evaluate.objects (up-tiling, bicubic, clustering, evaluator) and pictures."""

import math

import jax
import numpy as np
from PIL import Image
import pytest
from scipy.spatial.distance import pdist

from akorn_jax import metrics
from akorn_jax.evaluate import objects
from akorn_jax.evaluate import pictures


def _keys_kernel(x, a=-0.75):
  x = abs(x)
  if x <= 1:
    return (a + 2) * x**3 - (a + 3) * x**2 + 1
  if x < 2:
    return a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a
  return 0.0


def _direct_bicubic_1d(signal, out_size):
  """torch-style bicubic resampling written as a plain loop over outputs and taps."""
  n = len(signal)
  out = []
  for o in range(out_size):
    src = (o + 0.5) * n / out_size - 0.5
    k0 = math.floor(src)
    out.append(sum(signal[min(max(k, 0), n - 1)] * _keys_kernel(src - k) for k in range(k0 - 1, k0 + 3)))
  return np.array(out)


@pytest.mark.parametrize("in_size,out_size", [(7, 11), (11, 7), (5, 5), (8, 13)])
def test_bicubic_matches_direct_formula(in_size, out_size):
  signal = np.random.default_rng(in_size).normal(size=in_size)
  mat = objects.bicubic_matrix(in_size, out_size)
  np.testing.assert_allclose(mat @ signal, _direct_bicubic_1d(signal, out_size), atol=1e-12)
  np.testing.assert_allclose(mat.sum(1), 1.0, atol=1e-12)  # reproduces constants


def test_bicubic_differs_from_jax_keys_half():
  # jax.image.resize("bicubic") uses a = -0.5; ours must not silently be that kernel.
  img = np.random.default_rng(0).random((1, 5, 7, 1)).astype(np.float32)
  ours = objects.resize_bicubic(img, (8, 9))
  theirs = np.asarray(jax.image.resize(img, (1, 8, 9, 1), "bicubic", antialias=False))
  assert np.abs(ours - theirs).max() > 1e-3


def test_resize_bicubic_is_separable_and_identity_at_same_size():
  img = np.random.default_rng(1).random((2, 5, 7, 3)).astype(np.float32)
  out = objects.resize_bicubic(img, (8, 9))
  assert out.shape == (2, 8, 9, 3) and out.dtype == np.float32
  across = np.stack([_direct_bicubic_1d(row, 9) for row in img[1, :, :, 2]])  # [5, 9]
  expected = np.stack([_direct_bicubic_1d(col, 8) for col in across.T], axis=1)  # [8, 9]
  np.testing.assert_allclose(out[1, :, :, 2], expected, atol=1e-6)
  np.testing.assert_array_equal(objects.bicubic_matrix(6, 6), np.eye(6))
  np.testing.assert_array_equal(objects.resize_bicubic(img, (5, 7)), img)


def _corner_features(psize):
  """Fake model: the top-left pixel of every psize x psize patch, so features reveal their crop."""
  return lambda crops: crops[:, ::psize, ::psize, :]


@pytest.mark.parametrize("factor", [2, 4])
def test_uptile_pixel_order(factor):
  psize, h, w = 4, 12, 8
  images = np.random.default_rng(factor).random((3, h, w, 3)).astype(np.float32)
  big = objects.uptile(_corner_features(psize), images, psize, factor)
  assert big.shape == (3, h // psize * factor, w // psize * factor, 3)
  # big[Y, X] comes from crop (Y % r, X % r) at patch (Y // r, X // r), i.e. resized pixel (Y s, X s).
  stride = psize // factor
  resized = objects.resize_bicubic(images, (h + psize - stride, w + psize - stride))
  expected = resized[:, ::stride, ::stride][:, : big.shape[1], : big.shape[2]]
  np.testing.assert_array_equal(big, expected)


def test_uptile_interleaving_with_loop():
  psize, factor = 4, 2
  images = np.random.default_rng(5).random((2, 8, 12, 3)).astype(np.float32)
  calls = []

  def pooled(crops):  # [B, 8, 12, 3] -> [B, 2, 3, 3], average pooling over patches
    calls.append(crops)
    return crops.reshape(crops.shape[0], 2, psize, 3, psize, 3).mean((2, 4))

  big = objects.uptile(pooled, images, psize, factor)
  resized = objects.resize_bicubic(images, (10, 14))
  assert len(calls) == factor**2
  for i in range(factor):
    for j in range(factor):
      feat = pooled(resized[:, 2 * i : 2 * i + 8, 2 * j : 2 * j + 12])
      for y in range(2):
        for x in range(3):
          np.testing.assert_allclose(big[:, y * factor + i, x * factor + j], feat[:, y, x], rtol=1e-6)


def test_uptile_factor_one_is_the_model_and_bad_factor_raises():
  images = np.random.default_rng(2).random((3, 5 * 4, 7 * 4, 3)).astype(np.float32)
  fn = lambda x: np.asarray(x).reshape(3, 5, 4, 7, 4, 3).sum((2, 4)) * 1.7
  np.testing.assert_array_equal(objects.uptile(fn, images, 4, 1), fn(images))
  with pytest.raises(ValueError, match="divisor"):
    objects.uptile(fn, images, 4, 3)


def _grouped_features(rng, h, w, c, num_groups):
  groups = rng.integers(0, num_groups, size=(h, w))
  groups[0, :num_groups] = np.arange(num_groups)  # every group present
  centres = rng.normal(size=(num_groups, c)) * 3
  return centres[groups] + 0.02 * rng.normal(size=(h, w, c)), groups


@pytest.mark.parametrize("c,pca_dim", [(6, 128), (200, 8)])
def test_cluster_features_recovers_separated_groups(c, pca_dim):
  rng = np.random.default_rng(c)
  feats, groups = zip(*[_grouped_features(rng, 5, 7, c, 3) for _ in range(3)])
  labels = objects.cluster_features(np.stack(feats), 3, pca_dim=pca_dim)
  assert labels.shape == (3, 5, 7) and labels.min() == 0 and labels.max() == 2
  for g, lab in zip(groups, labels):
    assert metrics.fg_ari(g + 1, lab) == 1.0


def test_cluster_features_pca_path(monkeypatch):
  rng = np.random.default_rng(11)
  feats = rng.normal(size=(2, 5, 7, 40))
  seen = []
  linkage = objects.hierarchy.linkage
  monkeypatch.setattr(objects.hierarchy, "linkage", lambda x, **kw: seen.append(x) or linkage(x, **kw))
  objects.cluster_features(feats, 4, pca_dim=6, num_workers=1)
  objects.cluster_features(feats, 4, pca_dim=40, num_workers=1)
  assert [s.shape for s in seen] == [(35, 6), (35, 6), (35, 40), (35, 40)]
  # Independent PCA (SVD of the centred, normalised vectors): same pairwise distances.
  x = feats[0].reshape(35, 40)
  x = x / np.linalg.norm(x, axis=1, keepdims=True)
  x = x - x.mean(0)
  _, _, vt = np.linalg.svd(x, full_matrices=False)
  np.testing.assert_allclose(pdist(seen[0]), pdist(x @ vt[:6].T), atol=1e-10)
  np.testing.assert_allclose(pdist(seen[2]), pdist(x), atol=1e-10)  # no PCA: only normalised


def test_evaluate_objects_on_colour_coded_scenes():
  psize, b, h, w = 4, 3, 5, 7
  rng = np.random.default_rng(0)
  patch_ids = rng.integers(0, 3, size=(b, h, w))
  patch_ids[:, 0, :3] = np.arange(3)
  patch_ids[2] = 0  # background only: skipped by both metrics
  colours = np.array([[200, 10, 10], [10, 200, 10], [10, 10, 200]], np.uint8)
  images = colours[patch_ids].repeat(psize, 1).repeat(psize, 2)
  masks = patch_ids.repeat(psize, 1).repeat(psize, 2)
  masks[:, 0, 0] = 255  # ignore pixel

  def pooled(x):
    return x.reshape(x.shape[0], h, psize, w, psize, 3).mean((2, 4))

  batches = [{"image": images[:2], "mask": masks[:2, ..., None]}, {"image": images[2:], "mask": masks[2:]}]
  got = objects.evaluate_objects(pooled, batches, psize=psize, num_clusters=3)
  assert got == {"fg_ari": 1.0, "fg_ari_std": 0.0, "mbo": 1.0, "mbo_std": 0.0, "num_images": 3}
  # With one cluster the objects merge: FG-ARI 0, MBO below 1.
  worse = objects.evaluate_objects(pooled, batches, psize=psize, num_clusters=1, uptile_factor=2)
  assert worse["fg_ari"] == 0.0 and worse["mbo"] < 0.8


def test_pictures_shapes_png_roundtrip(tmp_path):
  rng = np.random.default_rng(0)
  states = rng.normal(size=(4, 5, 7, 8))
  rgb = pictures.state_to_rgb(states)
  assert rgb.shape == (4, 5, 7, 3) and rgb.dtype == np.uint8
  assert rgb.min() == 0 and rgb.max() == 255  # scaled jointly over all steps
  assert pictures.state_to_rgb(states[..., :2]).shape == (4, 5, 7, 3)
  mask = np.array([[0, 1, -1], [2, 17, 1]])
  mrgb = pictures.mask_to_rgb(mask)
  assert mrgb.shape == (2, 3, 3) and mrgb.dtype == np.uint8
  np.testing.assert_array_equal(mrgb[0, 1], mrgb[1, 2])
  np.testing.assert_array_equal(mrgb[0, 2], [255, 255, 255])
  assert not np.array_equal(mrgb[0, 0], mrgb[1, 0])
  image = rng.random((10, 14, 3))
  fig = pictures.object_figure(image, mask.repeat(5, 0)[:10].repeat(5, 1)[:, :14], mask, states)
  assert fig.dtype == np.uint8 and fig.shape == (10, 7 * 14 + 6 * 2, 3)
  np.testing.assert_array_equal(fig[:, :14], np.round(image * 255).astype(np.uint8))
  path = tmp_path / "sub" / "fig.png"
  pictures.save_png(str(path), fig)
  np.testing.assert_array_equal(np.asarray(Image.open(path)), fig)
