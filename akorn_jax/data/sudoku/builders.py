"""tfds builders of the Sudoku sets (array_record, no TensorFlow).

Each example is `{"puzzle": int8 [9, 9], "solution": int8 [9, 9]}`. Open a split through the data
layer: `akorn_jax.data.open_split("sudoku_generated", "tiny", "train")`.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow_datasets as tfds

from akorn_jax.data.sudoku.generate import (BANDS, GENERATOR_VERSION, GREEDY, MIXED, generate_set,
                                            load_generated)
from akorn_jax.data.sudoku.readers import (RRN_SPLITS, SATNET_CONVERT_COMMAND, SATNET_FILE,
                                           read_rrn_csv, read_satnet)

SATNET_SPLITS = {"train": slice(0, 9000), "test": slice(9000, 10000)}  # docs/datasets.md#sudoku


class _SudokuExamples:
  """Features and examples of the Sudoku builders (a mixin, so tfds registers no base builder)."""

  def _info(self) -> tfds.core.DatasetInfo:
    board = dict(shape=(9, 9), dtype=np.int8, minimum=0, maximum=9)
    features = tfds.features.FeaturesDict({
        "puzzle": tfds.features.Tensor(**board, doc="0 = blank, 1..9 = given digit"),
        "solution": tfds.features.Tensor(**board, doc="the full solution, digits 1..9"),
    })
    # Keep file order: example i of a split is board i of the source (SATNet's split is by index,
    # `tiny` is a prefix); training pipelines shuffle on their own.
    return tfds.core.DatasetInfo(builder=self, description=type(self).__doc__, features=features,
                                 homepage=self.HOMEPAGE, disable_shuffling=True)

  def _generate_examples(self, puzzles: np.ndarray, solutions: np.ndarray):
    for k in range(len(puzzles)):
      yield k, {"puzzle": puzzles[k].astype(np.int8), "solution": solutions[k].astype(np.int8)}


class SudokuGenerated(_SudokuExamples, tfds.core.GeneratorBasedBuilder):
  """Puzzles from akorn_jax's own generator (unique solutions): shipped with the package, except
  the `mixed` training boards, which are generated when the config is prepared."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": f"Generator version {GENERATOR_VERSION}."}
  BUILDER_CONFIGS = [
      tfds.core.BuilderConfig(name="satnet_like", description="9,000/1,000, givens 31..42."),
      tfds.core.BuilderConfig(name="hard", description="1,000/1,000, givens 21..34."),
      tfds.core.BuilderConfig(name="tiny", description="256/64 boards of satnet_like, for tests."),
      tfds.core.BuilderConfig(
          name="mixed", description="10,000 train boards, target givens 20..42, generated when "
          "prepared (all CPU cores); test = the three bands."),
      tfds.core.BuilderConfig(
          name="mixed_tiny", description="256 train boards of the mixed stream by greedy removal "
          "only (fast, so 22+ givens); test = 16 boards per band. For tests."),
      tfds.core.BuilderConfig(name="band_le22", description="Test only: 50 boards, 20..22 givens."),
      tfds.core.BuilderConfig(name="band_23_26",
                              description="Test only: 500 boards, 23..26 givens."),
      tfds.core.BuilderConfig(name="band_27_34",
                              description="Test only: 500 boards, 27..34 givens."),
  ]
  # config -> (shipped set, number of train and test boards taken from its splits; None = all)
  _SOURCES = {"satnet_like": ("satnet_like", None, None), "hard": ("hard", None, None),
              "tiny": ("satnet_like", 256, 64)}
  HOMEPAGE = None

  def _split_generators(self, dl_manager):
    del dl_manager  # everything is in the package or generated here
    name = self.builder_config.name
    if name in BANDS:
      return {"test": self._generate_examples(*load_generated(name)["test"])}
    if name in ("mixed", "mixed_tiny"):
      tiny = name == "mixed_tiny"
      spec = dict(MIXED, num_train=256, method=GREEDY) if tiny else MIXED
      train = generate_set(spec, processes=1 if tiny else os.cpu_count() or 1, progress=not tiny)
      bands = [load_generated(band)["test"] for band in BANDS]
      test = [np.concatenate([b[i][:16 if tiny else None] for b in bands]) for i in (0, 1)]
      return {"train": self._generate_examples(*train), "test": self._generate_examples(*test)}
    source, num_train, num_test = self._SOURCES[name]
    data = load_generated(source)
    return {"train": self._generate_examples(*(a[:num_train] for a in data["train"])),
            "test": self._generate_examples(*(a[:num_test] for a in data["test"]))}


class SudokuSatnet(_SudokuExamples, tfds.core.GeneratorBasedBuilder):
  """SATNet's 10,000 boards (train 0..8,999, test 9,000..9,999), from the manual directory."""

  VERSION = tfds.core.Version("1.0.0")
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Download powei.tw/sudoku.zip, unzip it and, where PyTorch is installed, convert the tensors "
      f"once (we never unpickle .pt files):\n  {SATNET_CONVERT_COMMAND}\n"
      f"Then place {SATNET_FILE} in the manual directory.")
  HOMEPAGE = "https://github.com/locuslab/SATNet"

  def _split_generators(self, dl_manager):
    puzzles, solutions = read_satnet(os.fspath(dl_manager.manual_dir))
    expected = max(s.stop for s in SATNET_SPLITS.values())
    if len(puzzles) != expected:
      raise ValueError(f"{SATNET_FILE} holds {len(puzzles)} boards; expected SATNet's {expected} "
                       f"(splits {SATNET_SPLITS}). Convert features.pt/labels.pt again.")
    return {split: self._generate_examples(puzzles[s], solutions[s])
            for split, s in SATNET_SPLITS.items()}


class SudokuRrn(_SudokuExamples, tfds.core.GeneratorBasedBuilder):
  """RRN's "sudoku-hard" (17..34 givens): one split per CSV found in the manual directory."""

  VERSION = tfds.core.Version("1.0.0")
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Download the RRN sudoku-hard archive (train.csv, valid.csv, test.csv; rows 'quiz,solution') "
      "and place the CSV files (at least test.csv) in the manual directory.")
  HOMEPAGE = "https://github.com/rasmusbergpalm/recurrent-relational-networks"

  def _split_generators(self, dl_manager):
    folder = os.fspath(dl_manager.manual_dir)
    files = {s: os.path.join(folder, f"{s}.csv") for s in RRN_SPLITS}
    found = {s: f for s, f in files.items() if os.path.isfile(f)}
    if not found:
      raise FileNotFoundError(f"None of {[f'{s}.csv' for s in RRN_SPLITS]} is in {folder!r}. "
                              + self.MANUAL_DOWNLOAD_INSTRUCTIONS)
    return {s: self._generate_examples(*read_rrn_csv(f)) for s, f in found.items()}
