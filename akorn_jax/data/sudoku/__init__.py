"""Sudoku data: board helpers, an exact solver, a puzzle generator, readers and tfds builders.

| module | job |
| --- | --- |
| `boards` | parse / format / validate boards, check solutions, the one-hot form models see |
| `solver` | the exact solver (no model involved) |
| `generate` | our puzzle generator and the generated sets shipped as package data |
| `readers` | SATNet's and RRN's files, checked board by board |
| `builders` | the tfds builders (`sudoku_generated`, `sudoku_satnet`, `sudoku_rrn`) |

Every public name is re-exported here, so `from akorn_jax.data import sudoku; sudoku.solve(...)`
works.

Boards are int8 arrays `[..., 9, 9]` with 0 = blank and 1..9 = digit (see `boards`).

Datasets (docs/datasets.md#sudoku; each example is `{"puzzle": int8 [9, 9], "solution": int8 [9,
9]}`):

* `sudoku_generated` — puzzles made by our own generator and shipped as package data
  (`akorn_jax/assets/sudoku_*.npz`, rebuilt with `python -m akorn_jax.data.sudoku --regenerate`),
  prepared automatically on first use. Every puzzle has exactly one solution. Configs:

  - `satnet_like`: 9,000 train / 1,000 test, givens uniform in 31..42 (the range SATNet's boards are
    believed to span; an offline stand-in for the in-distribution set), seed 0; 799..874 boards per
    number of givens.
  - `hard`: 1,000 train / 1,000 test, target givens uniform in 17..34 (the RRN range); greedy
    removal stops at a minimal puzzle before reaching the lowest targets, so the low end is clipped.
    Achieved
    givens, generator version 1, seed 1 (train + test, 2,000 boards):
    21: 1, 22: 22, 23: 145, 24: 315, 25: 341, 26: 253, 27: 133, 28: 105, 29: 122, 30: 101,
    31: 122, 32: 109, 33: 129, 34: 102.
  - `tiny`: 256 train / 64 test, the first boards of `satnet_like`'s splits (tests, demo).
  - `band_le22`, `band_23_26`, `band_27_34`: held-apart test sets (test split only) of 50, 500
    and 500 boards with exactly 20-22, 23-26 and 27-34 givens (seeds 3, 4, 5; no training set
    uses them): band_le22 made with `generate.LOW_FAST`, band_23_26 with `LOW`, band_27_34 by
    greedy removal.
  - `mixed`: the solver's training set, 10,000 boards with target givens uniform in 20..42 (seed
    2), generated when the config is prepared (on all CPU cores; not shipped, see
    `generate.MIXED`); its test split is the three bands. `mixed_tiny`: 256 boards of the same
    stream by greedy removal only (fast; 22+ givens) and 16 boards per band, for tests.

* `sudoku_satnet` — the SATNet set (train = boards 0..8,999, test = 9,000..9,999). We never
  unpickle the original `features.pt` / `labels.pt`; convert them once, where PyTorch is installed,
  with

      python -c "import torch,numpy as np; np.savez('satnet.npz', features=torch.load('features.pt', weights_only=True).numpy(), labels=torch.load('labels.pt', weights_only=True).numpy())"

  and put `satnet.npz` in the manual directory.
* `sudoku_rrn` — the RRN "sudoku-hard" CSVs (`train.csv`, `valid.csv`, `test.csv`, rows
  `quiz,solution` without header), one split per file present in the manual directory.

Open any split with `akorn_jax.data.open_split("sudoku_generated", "tiny", "train")`.
"""

from akorn_jax.data.sudoku.boards import (EXAMPLE_PUZZLE, board_string, format_board, from_one_hot,
                                          is_valid_solution, parse_puzzle, solution_consistent,
                                          to_one_hot, validate_puzzle)
from akorn_jax.data.sudoku.builders import SATNET_SPLITS, SudokuGenerated, SudokuRrn, SudokuSatnet
from akorn_jax.data.sudoku.generate import (BANDS, GENERATED_SETS, GENERATOR_VERSION, GREEDY, LOW,
                                            LOW_FAST, MIXED, Method, asset_path, generate,
                                            generate_set, load_generated, regenerate)
from akorn_jax.data.sudoku.readers import (RRN_SPLITS, SATNET_CONVERT_COMMAND, SATNET_FILE,
                                           read_rrn_csv, read_satnet)
from akorn_jax.data.sudoku.solver import SearchBudgetExceeded, solve

__all__ = [
    "BANDS", "EXAMPLE_PUZZLE", "GENERATED_SETS", "GENERATOR_VERSION", "GREEDY", "LOW", "LOW_FAST",
    "MIXED", "Method", "RRN_SPLITS", "SATNET_CONVERT_COMMAND", "SATNET_FILE", "SATNET_SPLITS",
    "SearchBudgetExceeded", "SudokuGenerated", "SudokuRrn", "SudokuSatnet", "asset_path",
    "board_string", "format_board", "from_one_hot", "generate", "generate_set",
    "is_valid_solution", "load_generated", "parse_puzzle", "read_rrn_csv", "read_satnet",
    "regenerate", "solution_consistent", "solve", "to_one_hot", "validate_puzzle",
]
