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
      assert ex["label"].dtype == np.int32 and 0 <= int(ex["label"]) < 10
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
