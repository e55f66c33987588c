"""Tests of akorn_jax.data.cifar: tfds sources (mocked, offline) and the training augmentation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds

from akorn_jax.data import cifar
from akorn_jax.data.common import DatasetNotPreparedError

B, H, W = 3, 32, 32


def test_sources_with_mock_data(tmp_path):
  with tfds.testing.mock_data(num_examples=5):
    for src in (cifar.cifar10("train", data_dir_=str(tmp_path)),
                cifar.cifar10_c("gaussian_noise", 3, data_dir_=str(tmp_path))):
      assert len(src) == 5
      ex = src[4]
      assert set(ex) == {"image", "label"}
      assert ex["image"].shape == (32, 32, 3) and ex["image"].dtype == np.uint8
      assert ex["label"].dtype == np.int32 and 0 <= int(ex["label"]) < cifar.NUM_CLASSES
      np.testing.assert_array_equal(src[-1]["image"], ex["image"])
      with pytest.raises(IndexError):
        src[5]


def test_unprepared_dataset_raises_with_instructions(tmp_path):
  with pytest.raises(DatasetNotPreparedError, match="tfds build cifar10 --file_format=array_record"):
    cifar.cifar10("test", data_dir_=str(tmp_path))
  with pytest.raises(DatasetNotPreparedError, match="AKORN_DATA_DIR"):
    cifar.cifar10_c("fog", 5, data_dir_=str(tmp_path))


def test_cifar10_c_validates_arguments():
  with pytest.raises(ValueError, match="gaussian_noise"):
    cifar.cifar10_c("gausian_noise", 1)
  with pytest.raises(ValueError, match="severity"):
    cifar.cifar10_c("fog", 0)


def _images(seed=0):
  """Smooth random colour images (a coarse random grid upsampled) so geometric ops matter."""
  coarse = jax.random.uniform(jax.random.key(seed), (B, 4, 4, 3))
  return jax.image.resize(coarse, (B, H, W, 3), "linear")


def test_train_augment_shape_range_and_determinism():
  x = _images()
  a = cifar.train_augment(jax.random.key(1), x)
  b = cifar.train_augment(jax.random.key(1), x)
  c = cifar.train_augment(jax.random.key(2), x)
  assert a.shape == x.shape and a.dtype == jnp.float32
  assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
  np.testing.assert_array_equal(a, b)
  assert float(jnp.abs(a - c).max()) > 0.05
  assert float(jnp.abs(a - x).mean()) > 0.01
  # uint8 input is the same as its float version.
  u8 = np.asarray(jnp.round(x * 255), np.uint8)
  np.testing.assert_allclose(cifar.train_augment(jax.random.key(1), u8),
                             cifar.train_augment(jax.random.key(1), u8 / np.float32(255)), atol=1e-6)


def test_augmix_per_image_and_in_range():
  x = _images(3)
  out = cifar.augmix(jax.random.key(0), x)
  assert out.shape == x.shape and float(out.min()) >= 0 and float(out.max()) <= 1
  # Each image gets its own ops: identical inputs give different outputs.
  same = jnp.broadcast_to(x[:1], x.shape)
  out = np.asarray(cifar.augmix(jax.random.key(0), same))
  assert np.abs(out[0] - out[1]).max() > 1e-3


def _op(name):
  return lambda image, m: cifar.augmix_op(name, image, m)


def test_augmix_ops_against_direct_computations():
  img = _images(4)[0]
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
