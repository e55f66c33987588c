"""The data layer: every dataset by name, opened as a random-access source of examples.

`open_split(name, config, split)` opens one; a set is also named by one string
"name/config:split" (`parse_set`, `open_set`, `read_set` for its first N examples as stacked
arrays), and `from_config(config.data, split)` opens an experiment's dataset.

| name | builder | configs | prepared |
| --- | --- | --- | --- |
| sudoku_generated | data.sudoku.SudokuGenerated | satnet_like, hard, tiny, band_le22, band_23_26, band_27_34, mixed, mixed_tiny | automatically (shipped arrays; `mixed` generated) |
| sudoku_satnet / sudoku_rrn | data.sudoku.SudokuSatnet / SudokuRrn | - | from the user's files |
| tetrominoes_generated / dsprites_generated | data.objects.*Generated | full, tiny | automatically |
| shapes | data.objects.Shapes | full, tiny | automatically |
| multi_object | data.objects.MultiObject | tetrominoes, multi_dsprites, clevr6 | from TFRecords |
| clevrtex | data.objects.Clevrtex | full, outd, camo | from the extracted release |
| cifar10 | tfds catalog (data.cifar) | - | `tfds build` on a machine with internet |
| image_folder / voc / coco | data.imagefolder / data.segmentation (read in place) | - | none: `data_dir` is the dataset's own folder |
"""

from __future__ import annotations

import difflib
import importlib
import os

from akorn_jax.data import common, pipeline

# name -> (module, builder class, generated: prepared on first use)
DATASETS = {
    "sudoku_generated": ("akorn_jax.data.sudoku.builders", "SudokuGenerated", True),
    "sudoku_satnet": ("akorn_jax.data.sudoku.builders", "SudokuSatnet", False),
    "sudoku_rrn": ("akorn_jax.data.sudoku.builders", "SudokuRrn", False),
    "tetrominoes_generated": ("akorn_jax.data.objects", "TetrominoesGenerated", True),
    "dsprites_generated": ("akorn_jax.data.objects", "DspritesGenerated", True),
    "shapes": ("akorn_jax.data.objects", "Shapes", True),
    "multi_object": ("akorn_jax.data.objects", "MultiObject", False),
    "clevrtex": ("akorn_jax.data.objects", "Clevrtex", False),
}
CATALOG = ("cifar10",)
# Read in place from the user's folder (data_dir = that folder), no tfds preparation.
FOLDERS = ("image_folder", "voc", "coco")


def _check(name: str) -> None:
  if name not in DATASETS and name not in CATALOG and name not in FOLDERS:
    valid = sorted([*DATASETS, *CATALOG, *FOLDERS])
    near = difflib.get_close_matches(name, valid, n=1)
    raise ValueError(f"Unknown dataset {name!r}; expected one of {valid}"
                     + (f" (did you mean {near[0]!r}?)" if near else "") + ".")


def builder_class(name: str):
  """The tfds builder class registered under `name`."""
  _check(name)
  module, cls, _ = DATASETS[name]
  return getattr(importlib.import_module(module), cls)


def open_split(name: str, config: str | None, split: str, *, data_dir: str | None = None):
  """Opens `name[/config]`'s `split` as a random-access source (len, [i] -> dict of numpy)."""
  _check(name)
  if name == "cifar10":
    from akorn_jax.data import cifar  # pylint: disable=g-import-not-at-top
    return cifar.cifar10(split, data_dir_=data_dir)
  if name in FOLDERS:
    return _folder_source(name, split, data_dir)
  generated = DATASETS[name][2]
  return common.source(builder_class(name), split, config=config or None, data_dir_=data_dir,
                       auto_prepare=generated)


def parse_set(spec: str) -> tuple[str, str, str]:
  """"name/config:split" (config and split optional, split defaults to "test") ->
  (name, config, split)."""
  name_cfg, _, split = spec.partition(":")
  name, _, cfg = name_cfg.partition("/")
  return name, cfg, split or "test"


def open_set(spec: str, *, data_dir: str | None = None):
  """Opens a set named "name/config:split" (see `parse_set`) as a random-access source."""
  name, cfg, split = parse_set(spec)
  return open_split(name, cfg, split, data_dir=data_dir)


def read_set(spec: str, num: int | None = None, *, data_dir: str | None = None):
  """The first `num` examples (all if None) of the set "name/config:split" as one dict of stacked
  numpy arrays, e.g. {"puzzle": [N, 9, 9], "solution": [N, 9, 9]} for a Sudoku set."""
  return pipeline.stack(open_set(spec, data_dir=data_dir), num)


def from_config(data_config, split: str):
  """Opens `split` of an experiment's dataset, from its config's `data` section (keys name,
  config, optional data_dir)."""
  return open_split(data_config.name, data_config.config, split,
                    data_dir=data_config.get("data_dir"))


def prepare(name: str, config: str | None = None, *, data_dir: str | None = None,
            manual_dir: str | None = None):
  """Prepares `name[/config]` as array_record (from `manual_dir` for real datasets)."""
  _check(name)
  if name in CATALOG:
    raise ValueError(
        f"{name} is a tfds catalog dataset: prepare it on a machine with internet with "
        f"`tfds build {name} --file_format=array_record --data_dir=DIR` and copy DIR here "
        f"(point --config.data.data_dir or $AKORN_DATA_DIR at it).")
  return common.build(builder_class(name), config=config or None, data_dir_=data_dir,
                      manual_dir=manual_dir)


def _folder_source(name: str, split: str, root: str | None):
  """image_folder: <root>/<split>/<class>/*; voc: root = VOC2012; coco: root holds
  annotations/instances_<split>.json and <split>/ images."""
  if not root:
    raise ValueError(f"Dataset {name!r} is read from its own folder: set config.data.data_dir to "
                     "it (see docs/datasets.md).")
  if name == "image_folder":
    from akorn_jax.data import imagefolder  # pylint: disable=g-import-not-at-top
    return imagefolder.ImageFolder(root, split)
  from akorn_jax.data import segmentation  # pylint: disable=g-import-not-at-top
  if name == "voc":
    return segmentation.VOCSegmentation(root, split)
  return segmentation.COCOSegmentation(
      os.path.join(root, "annotations", f"instances_{split}.json"), os.path.join(root, split))
