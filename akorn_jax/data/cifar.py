"""CIFAR-10 and CIFAR-10-C through tfds array_record sources, and the CIFAR training augmentation.

Sources (docs/datasets.md#cifar-10): `cifar10` (50,000 train / 10,000 test) and
`cifar10_corrupted/<name>_<s>`
(10,000 test images per corruption and severity s in 1..5), opened with `tfds.data_source` from the
data directory ($AKORN_DATA_DIR, see `akorn_jax.data.common`). They are never downloaded here:
tfds's catalog builders fetch from the internet and encode images with TensorFlow, so prepare them
once on a machine with internet and `tensorflow-cpu` (`pip install akorn_jax[tfrecord]`):

  tfds build cifar10 --file_format=array_record --data_dir=DIR
  tfds build cifar10_corrupted/fog_5 --file_format=array_record --data_dir=DIR  # one config each

and copy DIR to the training machine. Examples are `{"image": uint8 [32, 32, 3], "label": int32}`.

Training augmentation (docs/training.md#cifar-augmentation, torchvision `augmentation_strong(32)`):
horizontal flip p=0.5 ->
RandomResizedCrop(32, scale (0.2, 1)) -> ColorJitter(0.4, 0.4, 0.4, 0.1) always -> AugMix
(severity 3, width 3, depth 1..3, alpha 1, all ops). Test images are only scaled to [0, 1].
Everything runs batched and jitted on float images; the ops and their deviations from torchvision
are in `akorn_jax.data.augment`.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import tensorflow_datasets as tfds

from akorn_jax import imageops
from akorn_jax.data import augment
from akorn_jax.data.common import ENV_DATA_DIR, DatasetNotPreparedError, data_dir

# The 15 corruptions of Hendrycks & Dietterich (2019), by their tfds config names.
CIFAR10_C_CORRUPTIONS: tuple[str, ...] = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "frosted_glass_blur",
    "motion_blur", "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic",
    "pixelate", "jpeg_compression")
# The 4 extra corruptions tfds also ships.
CIFAR10_C_EXTRA: tuple[str, ...] = ("gaussian_blur", "saturate", "spatter", "speckle_noise")


# ------------------------------------------------------------------------------------------------
# Sources
# ------------------------------------------------------------------------------------------------


class CifarSource(Sequence):
  """Random access to one split: `len` and `[i] -> {"image": uint8 [32, 32, 3], "label": int32}`."""

  def __init__(self, tfds_source):
    self._source = tfds_source

  def __len__(self) -> int:
    return len(self._source)

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    if not -len(self) <= index < len(self):
      raise IndexError(f"index {index} out of range for a split of {len(self)} examples")
    example = self._source[index % len(self)]
    return {"image": np.asarray(example["image"], np.uint8),
            "label": np.asarray(example["label"], np.int32)}


def _open(name: str, split: str, directory: str | None) -> CifarSource:
  directory = data_dir(directory)
  try:
    # download=False: an unprepared catalog dataset must fail here, never reach the network.
    return CifarSource(tfds.data_source(name, split=split, data_dir=directory, download=False))
  except Exception as e:  # tfds raises assorted types (NotImplementedError, AssertionError, ...)
    raise DatasetNotPreparedError(
        f"{name!r} split {split!r} could not be opened from {directory!r} ({type(e).__name__}: {e}). "
        f"Prepare it as array_record once, on a machine with internet and tensorflow-cpu:\n"
        f"  tfds build {name} --file_format=array_record --data_dir=DIR\n"
        f"then copy DIR here and pass it as data_dir or set ${ENV_DATA_DIR}=DIR.") from e


def cifar10(split: str, *, data_dir_: str | None = None) -> CifarSource:
  """CIFAR-10 split "train" or "test" (tfds slices like "train[:90%]" work too)."""
  return _open("cifar10", split, data_dir_)


def cifar10_c(corruption: str, severity: int, *, data_dir_: str | None = None) -> CifarSource:
  """The CIFAR-10-C test set of one corruption (see `CIFAR10_C_CORRUPTIONS`) at severity 1..5."""
  if corruption not in CIFAR10_C_CORRUPTIONS + CIFAR10_C_EXTRA:
    raise ValueError(f"Unknown CIFAR-10-C corruption {corruption!r}; expected one of "
                     f"{CIFAR10_C_CORRUPTIONS + CIFAR10_C_EXTRA}.")
  if severity not in (1, 2, 3, 4, 5):
    raise ValueError(f"CIFAR-10-C severity must be an int in 1..5, got {severity!r}.")
  return _open(f"cifar10_corrupted/{corruption}_{severity}", "test", data_dir_)


def train_augment(key: jax.Array, images: jax.typing.ArrayLike) -> jax.Array:
  """The CIFAR-10 training augmentation of docs/training.md#cifar-augmentation, independently per
  image.

  Args:
    key: PRNG key.
    images: [B, H, W, 3] uint8, or float in [0, 1].

  Returns:
    [B, H, W, 3] float32 in [0, 1].
  """
  return _train_augment(key, imageops.to_float(jnp.asarray(images)))


@jax.jit
def _train_augment(key: jax.Array, images: jax.Array) -> jax.Array:
  k_flip, k_crop, k_jitter, k_mix = jax.random.split(key, 4)
  flip = jax.random.bernoulli(k_flip, 0.5, (images.shape[0], 1, 1, 1))
  images = jnp.where(flip, images[:, :, ::-1], images)
  images = augment.random_resized_crop(k_crop, images, scale=(0.2, 1.0))
  images = augment.color_jitter(k_jitter, images, 0.4, 0.4, 0.4, 0.1, p=1.0)
  return augment.augmix(k_mix, images)
