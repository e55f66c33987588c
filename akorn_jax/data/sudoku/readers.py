"""Readers for the reference Sudoku sets, from files the user places in a manual directory.

* SATNet's 10,000 boards, from an npz converted once from `features.pt` / `labels.pt`.
* RRN's "sudoku-hard" CSVs (rows `quiz,solution`, no header).
"""

from __future__ import annotations

import os

import numpy as np

from akorn_jax.data import common
from akorn_jax.data.sudoku.boards import _conflict, board_string, from_one_hot, is_valid_solution

SATNET_FILE = "satnet.npz"
SATNET_CONVERT_COMMAND = (
    "python -c \"import torch,numpy as np; np.savez('satnet.npz', "
    "features=torch.load('features.pt', weights_only=True).numpy(), "
    "labels=torch.load('labels.pt', weights_only=True).numpy())\"")
RRN_SPLITS = ("train", "valid", "test")


def _check_pairs(puzzles: np.ndarray, solutions: np.ndarray, where) -> None:
  """Raises ValueError naming `where(k)` (file and row) for the first bad puzzle/solution pair."""
  bad_solution = ~is_valid_solution(solutions)
  clash = ~((puzzles == 0) | (puzzles == solutions)).all((-2, -1))
  for k in np.flatnonzero(bad_solution | clash)[:1]:
    if bad_solution[k]:
      problem = _conflict(solutions[k]) or "it has blank cells"
      raise ValueError(f"{where(k)}: solution {board_string(solutions[k])!r} is not a complete "
                       f"valid grid ({problem}); expected digits 1-9, each once per row, column "
                       "and box. The file is corrupt or in another format; fetch it again.")
    cell = np.flatnonzero(((puzzles[k] != 0) & (puzzles[k] != solutions[k])).reshape(-1))[0]
    raise ValueError(f"{where(k)}: puzzle {board_string(puzzles[k])!r} has given "
                     f"{puzzles[k].reshape(-1)[cell]} at row {cell // 9 + 1} column {cell % 9 + 1} "
                     f"but the solution has {solutions[k].reshape(-1)[cell]} there; expected the "
                     "solution to keep every given. The file is corrupt; fetch it again.")


def read_satnet(path: str) -> tuple[np.ndarray, np.ndarray]:
  """Reads SATNet's boards from the npz converted from `features.pt` / `labels.pt`.

  We never unpickle `.pt` files (that can run arbitrary code). Convert them once where PyTorch is
  installed, in the folder holding them:

      python -c "import torch,numpy as np; np.savez('satnet.npz', features=torch.load('features.pt', weights_only=True).numpy(), labels=torch.load('labels.pt', weights_only=True).numpy())"

  Args:
    path: `satnet.npz`, or the folder holding it.

  Returns:
    (puzzles, solutions), int8 `[N, 9, 9]` (N = 10,000; train = 0..8,999, test = the rest).

  Raises:
    FileNotFoundError: no npz (with the conversion command when only the .pt files are there).
    ValueError: wrong keys or shapes, or a board that is not one-hot or not consistent, naming it.
  """
  file = os.path.join(path, SATNET_FILE) if os.path.isdir(path) else path
  if not os.path.isfile(file):
    folder = os.path.dirname(file) or "."
    if os.path.isfile(os.path.join(folder, "features.pt")):
      raise FileNotFoundError(
          f"Found SATNet's features.pt in {folder!r} but no {SATNET_FILE}. We do not unpickle .pt "
          f"files; convert them once (needs PyTorch), in that folder:\n  {SATNET_CONVERT_COMMAND}")
    raise FileNotFoundError(
        f"No {SATNET_FILE} in {folder!r}. Download SATNet's sudoku.zip (powei.tw/sudoku.zip), "
        f"unzip it there and convert the tensors once (needs PyTorch):\n  {SATNET_CONVERT_COMMAND}")
  arrays = common.read_npz(file)
  missing = {"features", "labels"} - set(arrays)
  if missing:
    raise ValueError(f"{file!r} lacks arrays {sorted(missing)} (has {sorted(arrays)}); expected "
                     f"'features' and 'labels' as written by:\n  {SATNET_CONVERT_COMMAND}")
  features, labels = arrays["features"], arrays["labels"]
  if features.shape != labels.shape or features.shape[1:] not in ((9, 9, 9), (729,)):
    raise ValueError(f"{file!r}: features {features.shape} and labels {labels.shape}; expected "
                     "both [N, 9, 9, 9] one-hot boards. Convert features.pt/labels.pt again.")
  features = features.reshape(-1, 9, 9, 9)
  labels = labels.reshape(-1, 9, 9, 9)
  for key, arr, most in (("features", features, 1), ("labels", labels, 1)):
    ok = ((arr == 0) | (arr == 1)).all((1, 2, 3)) & (arr.sum(-1) <= most).all((1, 2))
    for k in np.flatnonzero(~ok)[:1]:
      raise ValueError(f"{file!r}, board {k}: {key} is not one-hot (values {np.unique(arr[k])}, "
                       "at most one 1 per cell expected). Convert the original .pt files again.")
  puzzles, solutions = from_one_hot(features), from_one_hot(labels)
  _check_pairs(puzzles, solutions, lambda k: f"{file!r}, board {k}")
  return puzzles, solutions


def read_rrn_csv(path: str) -> tuple[np.ndarray, np.ndarray]:
  """Reads one RRN CSV: rows `quiz,solution` of 81 digits (0 = blank), no header.

  Cells are read as characters, never as numbers, so leading zeros (blank first cells) survive.

  Args:
    path: e.g. `test.csv`.

  Returns:
    (puzzles, solutions), int8 `[N, 9, 9]`.

  Raises:
    ValueError: naming file and row (1-based line) for a malformed row, a bad character, an invalid
      solution or a solution that contradicts its quiz.
  """
  quizzes, sols, lines = [], [], []
  with open(path, encoding="ascii", errors="replace") as f:
    for line_no, line in enumerate(f, 1):
      line = line.strip()
      if not line:
        continue
      fields = line.split(",")
      if len(fields) != 2 or any(len(x) != 81 or not (x.isascii() and x.isdigit()) for x in fields):
        raise ValueError(f"{path!r}, row {line_no}: {line[:200]!r} is malformed; expected "
                         "'quiz,solution', two strings of 81 digits 0-9 (0 = blank), no header. "
                         "Fix or remove the row.")
      quizzes.append(fields[0])
      sols.append(fields[1])
      lines.append(line_no)
  if not quizzes:
    raise ValueError(f"{path!r} has no rows; expected lines 'quiz,solution' of 81 digits each.")

  def digits(rows):
    codes = np.frombuffer("".join(rows).encode(), np.uint8)
    return (codes - ord("0")).astype(np.int8).reshape(-1, 9, 9)

  puzzles, solutions = digits(quizzes), digits(sols)
  _check_pairs(puzzles, solutions, lambda k: f"{path!r}, row {lines[k]}")
  return puzzles, solutions
