"""Spatter and frost (the last two CIFAR-10-C corruptions) and their small image ops."""

import importlib.util
import sys

import numpy as np
import pytest
from PIL import Image

from akorn_jax.evaluate import spatter_frost as sf


def _images(n=4):
  rng = np.random.default_rng(0)
  return rng.uniform(0.2, 0.8, (n, 32, 32, 3)).astype(np.float32)


def test_equalize_hist_matches_the_formula():
  a = np.array([[0, 0, 10], [10, 10, 200]], np.uint8)
  # cdf at 0, 10, 200 = 2, 5, 6; cdf_min 2; lut = round((cdf - 2) * 255 / 4)
  np.testing.assert_array_equal(sf.equalize_hist(a), [[0, 0, 191], [191, 191, 255]])


def test_canny_finds_the_outline_of_a_square():
  a = np.zeros((20, 20), np.uint8)
  a[5:15, 5:15] = 200
  e = sf.canny(a, 50, 150)
  assert e[5:15, 4:6].any(axis=1).all() and e[4:6, 5:15].any(axis=0).all()  # left / top sides
  assert not e[8:12, 8:12].any() and not e[0:2].any()  # nothing inside or far away
  assert not sf.canny(np.full((8, 8), 90, np.uint8), 50, 150).any()


@pytest.mark.parametrize("severity", [1, 2, 3, 4, 5])
def test_spatter_water_and_mud(severity):
  x = _images()
  param = sf.SPATTER[severity - 1]
  y = sf.spatter(x, param, np.random.default_rng(1))
  assert y.shape == x.shape and y.dtype == np.float32 and 0 <= y.min() and y.max() <= 1
  np.testing.assert_array_equal(y, sf.spatter(x, param, np.random.default_rng(1)))
  changed = np.abs(y - x).max(axis=-1) > 1e-6
  assert changed.any() and not changed.all()  # drops, not a global change
  d = (y - x)[changed]
  if param[5]:  # mud pulls towards brown (63, 42, 20): red changes least downwards
    assert np.all(d[:, 2] <= 1e-6) and np.mean(d[:, 0] - d[:, 2]) > 0
  else:  # water adds pale turquoise: never darker, blue/green gain more than red
    assert np.all(d >= -1e-6) and d[:, 1].sum() > d[:, 0].sum()


def _fake_imagecorruptions(tmp_path):
  pkg = tmp_path / "fakepkgs" / "imagecorruptions"
  (pkg / "frost").mkdir(parents=True)
  (pkg / "__init__.py").write_text("raise ImportError('must not be imported')\n")
  rng = np.random.default_rng(3)
  for name in sf.FROST_FILES:
    Image.fromarray(rng.integers(0, 255, (400, 500, 3), dtype=np.uint8)).save(pkg / "frost" / name)
  return str(tmp_path / "fakepkgs")


def test_frost_blends_a_crop_of_the_frost_photographs(tmp_path, monkeypatch):
  monkeypatch.syspath_prepend(_fake_imagecorruptions(tmp_path))
  sf._FROST_CACHE.clear()
  x = _images(2)
  for severity in (1, 5):
    a, b = sf.FROST[severity - 1]
    y = sf.frost(x, (a, b), np.random.default_rng(0))
    assert y.shape == x.shape and 0 <= y.min() and y.max() <= 1
    # y = clip(a x + b f) with f in [0, 1]: y >= a x (up to clipping at 1) and y <= a x + b.
    assert np.all(y >= np.minimum(a * x, 1) - 1e-5) and np.all(y <= a * x + b + 1e-5)
    assert np.abs(y - a * x).mean() > 0.02
  sf._FROST_CACHE.clear()


def test_frost_without_the_package_names_the_install(monkeypatch):
  monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
  sf._FROST_CACHE.clear()
  with pytest.raises(FileNotFoundError, match="pip install"):
    sf.frost(_images(1), sf.FROST[0], np.random.default_rng(0))
