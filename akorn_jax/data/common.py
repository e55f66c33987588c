"""Shared plumbing for akorn_jax's tfds builders: where data lives and how a split is opened.

Every dataset of the project is a `tfds.core.GeneratorBasedBuilder` written as array_record and read
back through `tfds.data_source`-style random access, so no TensorFlow is needed at any point.

* Generated datasets (stand-ins we can make offline) are prepared on first use.
* Real datasets (CLEVRTex, multi-object TFRecords, SATNet, RRN, CIFAR-10) are never downloaded here:
  the user places the original files in a manual directory and prepares them once; opening an
  unprepared one raises `DatasetNotPreparedError` with the exact command to run.
"""

from __future__ import annotations

import os
import zipfile
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

ENV_DATA_DIR = "AKORN_DATA_DIR"


class DatasetNotPreparedError(FileNotFoundError):
  """A dataset was requested that has not been prepared in the data directory."""


def read_npz(path: str) -> dict[str, np.ndarray]:
  """Every array of the .npz archive `path`, never unpickling anything.

  Raises:
    ValueError: naming `path` when it is not an .npz archive of plain arrays (random bytes, a
      truncated copy, a single .npy, arrays of Python objects).
  """
  with open(path, "rb") as f:
    magic = f.read(6)
  reason = None
  if magic.startswith(b"\x93NUMPY"):
    reason = "it is a single .npy array"
  elif not magic.startswith(b"PK"):
    reason = f"it does not start like a zip archive: first bytes {magic!r}"
  else:
    try:
      with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
      reason = ("an array holds Python objects, which we never unpickle" if "pickle" in str(e)
                else f"{type(e).__name__}: {e}")
  raise ValueError(f"{path!r} is not a readable .npz archive of arrays ({reason}). The file is "
                   "damaged or of another kind; copy or export it again.")


def data_dir(path: str | None = None) -> str:
  """Returns the tfds data directory: `path`, else $AKORN_DATA_DIR, else ~/.cache/akorn_jax/tfds."""
  if path:
    return os.path.expanduser(path)
  return os.path.expanduser(os.environ.get(ENV_DATA_DIR, "~/.cache/akorn_jax/tfds"))


def prepare_command(name: str, config: str | None, directory: str, manual_dir: str | None = None) -> str:
  """The shell command that prepares dataset `name[/config]` into `directory`."""
  full = f"{name}/{config}" if config else name
  cmd = f"python -m experiments.prepare_data --dataset={full} --data_dir={directory}"
  if manual_dir is not None:
    cmd += f" --manual_dir={manual_dir}"
  return cmd


def build(builder_cls: type[tfds.core.GeneratorBasedBuilder], *, config: Any = None,
          data_dir_: str | None = None, manual_dir: str | None = None) -> tfds.core.DatasetBuilder:
  """Prepares a builder as array_record (no-op when already prepared) and returns it.

  Args:
    builder_cls: the GeneratorBasedBuilder subclass.
    config: a BuilderConfig instance or the name of one, or None for the default.
    data_dir_: tfds data directory (see `data_dir`).
    manual_dir: folder holding the user-supplied original files, for real datasets.
  """
  builder = builder_cls(config=config, data_dir=data_dir(data_dir_), file_format="array_record")
  dl_config = tfds.download.DownloadConfig(manual_dir=manual_dir) if manual_dir else None
  builder.download_and_prepare(download_config=dl_config)
  return builder


def source(builder_cls: type[tfds.core.GeneratorBasedBuilder], split: str, *, config: Any = None,
           data_dir_: str | None = None, auto_prepare: bool = False):
  """Opens one split as a random-access source (`len`, `[i]` -> dict of numpy arrays).

  Args:
    builder_cls: the GeneratorBasedBuilder subclass.
    split: split name, e.g. "train" or "test" (tfds slicing such as "train[:10%]" works too).
    config: BuilderConfig instance or name.
    data_dir_: tfds data directory.
    auto_prepare: prepare the dataset if missing (only for generated datasets; real datasets need
      the user's files and raise instead).

  Raises:
    DatasetNotPreparedError: the dataset is not prepared and `auto_prepare` is False.
  """
  directory = data_dir(data_dir_)
  builder = builder_cls(config=config, data_dir=directory, file_format="array_record")
  if not builder.is_prepared():
    if auto_prepare:
      builder = build(builder_cls, config=config, data_dir_=directory)
    else:
      cfg_name = builder.builder_config.name if builder.builder_config else None
      raise DatasetNotPreparedError(
          f"Dataset {builder.name!r} (config {cfg_name!r}) is not prepared in {directory!r}. "
          f"Prepare it once with:\n  "
          f"{prepare_command(builder.name, cfg_name, directory, '<folder with the original files>')}")
  return builder.as_data_source(split=split)
