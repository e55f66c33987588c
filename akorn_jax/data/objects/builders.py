"""tfds builders of the object-discovery datasets (array_record, no TensorFlow)."""

from __future__ import annotations

import dataclasses
import os
import re

import numpy as np
import tensorflow_datasets as tfds

from akorn_jax.data.objects.generate import (SHAPES_SPLITS, generate_dsprites, generate_shapes,
                                             generate_tetrominoes)
from akorn_jax.data.objects.readers import load_clevrtex, process_multi_object
from akorn_jax.data.objects.tfrecord import parse_example, read_tfrecord

_ZLIB = tfds.features.Encoding.ZLIB  # masks and flat backgrounds compress several-fold.


def _features(height: int, width: int) -> tfds.features.FeaturesDict:
  return tfds.features.FeaturesDict({
      "image": tfds.features.Tensor(shape=(height, width, 3), dtype=np.uint8, encoding=_ZLIB),
      "mask": tfds.features.Tensor(shape=(height, width), dtype=np.uint8, encoding=_ZLIB),
  })


_CHUNK = 500  # images generated per numpy call (bounds memory); part of the seed, do not change.


@dataclasses.dataclass
class GeneratedConfig(tfds.core.BuilderConfig):
  """Sizes of a generated dataset; split s uses numpy seed (seed, s, chunk index)."""
  train_size: int = 60_000
  test_size: int = 320
  seed: int = 0


_GENERATED_CONFIGS = [
    GeneratedConfig(name="full", description="60,000 train / 320 test, like the DeepMind split."),
    GeneratedConfig(name="tiny", train_size=256, test_size=32, description="For tests and demos."),
]


class _Generated(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Shared body of the numpy-generated builders; subclasses set `_generate` and `_SIZE`."""
  VERSION = tfds.core.Version("1.0.0")
  BUILDER_CONFIGS = _GENERATED_CONFIGS
  _SIZE = 0

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(builder=self, features=_features(self._SIZE, self._SIZE),
                                 disable_shuffling=True)

  def _split_generators(self, dl_manager):
    cfg = self.builder_config
    return {"train": self._generate_examples(cfg.train_size, 0),
            "test": self._generate_examples(cfg.test_size, 1)}

  def _generate_examples(self, n: int, split_id: int):
    for chunk, start in enumerate(range(0, n, _CHUNK)):
      images, masks = self._generate(min(_CHUNK, n - start), (self.builder_config.seed, split_id, chunk))
      for i, (image, mask) in enumerate(zip(images, masks)):
        yield start + i, {"image": image, "mask": mask}


class TetrominoesGenerated(_Generated):
  """Generated Tetrominoes (see `generate_tetrominoes`), 32x32."""
  _SIZE = 32
  _generate = staticmethod(generate_tetrominoes)


class DspritesGenerated(_Generated):
  """Generated Multi-dSprites colored_on_grayscale (see `generate_dsprites`), 64x64."""
  _SIZE = 64
  _generate = staticmethod(generate_dsprites)


@dataclasses.dataclass
class ShapesConfig(tfds.core.BuilderConfig):
  """Split sizes of Shapes; each split is the first `size` images of its range
  (docs/datasets.md#shapes)."""
  train_size: int = 40_000
  val_size: int = 1_000
  test_size: int = 1_000


class Shapes(tfds.core.GeneratorBasedBuilder):
  """The Shapes dataset of docs/datasets.md#shapes (see `generate_shapes`), 40x40, splits
  train/val/test."""
  VERSION = tfds.core.Version("1.0.0")
  BUILDER_CONFIGS = [
      ShapesConfig(name="full", description="40,000 train / 1,000 val / 1,000 test."),
      ShapesConfig(name="tiny", train_size=256, val_size=32, test_size=32, description="Tests, demos."),
  ]

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(builder=self, features=_features(40, 40), disable_shuffling=True)

  def _split_generators(self, dl_manager):
    cfg = self.builder_config
    sizes = {"train": cfg.train_size, "val": cfg.val_size, "test": cfg.test_size}
    return {split: self._generate_examples(SHAPES_SPLITS[split], n) for split, n in sizes.items()}

  def _generate_examples(self, start: int, n: int):
    images, masks = generate_shapes(n, start=start)
    for i in range(n):
      yield start + i, {"image": images[i], "mask": masks[i]}


@dataclasses.dataclass
class MultiObjectConfig(tfds.core.BuilderConfig):
  """One multi-object dataset: source file, geometry and split sizes
  (docs/datasets.md#multi-object-datasets)."""
  file: str = ""
  source_size: tuple[int, int] = (35, 35)  # (H, W) of the TFRecord images
  crop: tuple[int, int, int, int] = (1, 33, 1, 33)  # rows [r0, r1), cols [c0, c1)
  out_size: int = 32  # nearest resize of the crop to out_size x out_size (no-op when equal)
  max_label: int | None = None  # drop images with a larger label (CLEVR6)
  eval_size: int = 64
  test_size: int = 320
  val_size: int = 10_000
  train_size: int = 60_000


_GCS = "gs://multi-object-datasets"


class MultiObject(tfds.core.GeneratorBasedBuilder):
  """DeepMind multi-object datasets converted as in docs/datasets.md#multi-object-datasets; splits
  eval, test, val, train.

  The user copies the TFRecord file into the manual dir. Pixel label = index of the last mask slot
  equal to 255 (slot 0 = background). Records are taken in file order after the CLEVR6 filter: the
  first `eval_size` -> eval, the next `test_size` -> test, then val, then up to `train_size` -> train.
  CLEVR6, as the reference's conversion: crop, drop the record when its cropped labels exceed 6,
  then resize image and labels with nearest by the pixel-centre rule (source index
  floor((i + 1/2) · 192/128)); filter before resize.
  """
  VERSION = tfds.core.Version("1.0.0")
  BUILDER_CONFIGS = [
      MultiObjectConfig(name="tetrominoes", file="tetrominoes_train.tfrecords"),
      MultiObjectConfig(name="multi_dsprites", file="multi_dsprites_colored_on_grayscale.tfrecords",
                        source_size=(64, 64), crop=(0, 64, 0, 64), out_size=64),
      MultiObjectConfig(name="clevr6", file="clevr_with_masks_train.tfrecords",
                        source_size=(240, 320), crop=(29, 221, 64, 256), out_size=128, max_label=6,
                        train_size=70_000),
  ]
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      f"Copy the TFRecord file from {_GCS} into the manual dir, e.g.\n"
      f"  gsutil cp {_GCS}/tetrominoes/tetrominoes_train.tfrecords <manual_dir>/\n"
      f"  gsutil cp {_GCS}/multi_dsprites/multi_dsprites_colored_on_grayscale.tfrecords <manual_dir>/\n"
      f"  gsutil cp {_GCS}/clevr_with_masks/clevr_with_masks_train.tfrecords <manual_dir>/")

  def _info(self) -> tfds.core.DatasetInfo:
    size = self.builder_config.out_size
    return tfds.core.DatasetInfo(builder=self, features=_features(size, size), disable_shuffling=True)

  def _split_generators(self, dl_manager):
    cfg = self.builder_config
    path = os.path.join(dl_manager.manual_dir, cfg.file)
    if not os.path.exists(path):
      raise FileNotFoundError(f"Expected the original file {path!r} for multi_object/{cfg.name}. "
                              f"{self.MANUAL_DOWNLOAD_INSTRUCTIONS}")
    bounds, start = {}, 0
    for split, n in [("eval", cfg.eval_size), ("test", cfg.test_size), ("val", cfg.val_size),
                     ("train", cfg.train_size)]:
      bounds[split] = (start, start + n)
      start += n
    return {split: self._generate_examples(path, lo, hi) for split, (lo, hi) in bounds.items()}

  def _generate_examples(self, path: str, lo: int, hi: int):
    cfg = self.builder_config
    kept = 0
    for index, record in enumerate(read_tfrecord(path)):
      if kept >= hi:
        return
      if cfg.max_label is None and kept < lo:  # without a filter, earlier records need no decoding
        kept += 1
        continue
      example = process_multi_object(parse_example(record), cfg)
      if example is None:
        continue
      if kept >= lo:
        yield index, example
      kept += 1


@dataclasses.dataclass
class ClevrtexConfig(tfds.core.BuilderConfig):
  """A CLEVRTex variant and its splits as [lo, hi) fractions of the sorted ids."""
  variant: str = "full"
  splits: tuple[tuple[str, float, float], ...] = (("test", 0.0, 0.1), ("val", 0.1, 0.2),
                                                  ("train", 0.2, 1.0))


class Clevrtex(tfds.core.GeneratorBasedBuilder):
  """CLEVRTex at 128x128 (docs/datasets.md#clevrtex): centre square crop of side int(0.8 min(H, W)),
  then resize.

  The image is resized bilinearly with PIL, the flat mask (0 = background, 1..10 objects) with nearest.
  `outd` has one split `test` (the whole set); `camo` has `test` = the first 10% of the sorted ids.
  """
  VERSION = tfds.core.Version("1.0.0")
  BUILDER_CONFIGS = [
      ClevrtexConfig(name="full"),
      ClevrtexConfig(name="outd", variant="outd", splits=(("test", 0.0, 1.0),)),
      ClevrtexConfig(name="camo", variant="camo", splits=(("test", 0.0, 0.1),)),
  ]
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Download clevrtex_full_part{1..5}.tar.gz, clevrtex_outd.tar.gz and clevrtex_camo.tar.gz from "
      "https://www.robots.ox.ac.uk/~vgg/data/clevrtex/ and extract them under the manual dir (any "
      "folder depth): files CLEVRTEX_{variant}_{6-digit id}.png and ..._flat.png.")

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(builder=self, features=_features(128, 128), disable_shuffling=True)

  def _split_generators(self, dl_manager):
    cfg = self.builder_config
    pattern = re.compile(rf"CLEVRTEX_{cfg.variant}_(\d{{6}})\.png")
    found = {}
    for root, _, names in os.walk(dl_manager.manual_dir):
      for name in names:
        if match := pattern.fullmatch(name):
          found[int(match.group(1))] = os.path.join(root, name)
    if not found:
      raise FileNotFoundError(f"No CLEVRTEX_{cfg.variant}_NNNNNN.png under {dl_manager.manual_dir!r}. "
                              f"{self.MANUAL_DOWNLOAD_INSTRUCTIONS}")
    paths = [found[i] for i in sorted(found)]
    n = len(paths)
    return {split: self._generate_examples(paths[int(lo * n):int(hi * n)])
            for split, lo, hi in cfg.splits}

  def _generate_examples(self, paths: list[str]):
    for path in paths:
      yield os.path.basename(path)[:-4], load_clevrtex(path)
