"""Sudoku data: board helpers, an exact solver, a puzzle generator, readers and tfds builders.

Boards are int8 arrays `[..., 9, 9]` with 0 = blank and 1..9 = digit. Models see the one-hot form
`[..., 9, 9, 9]` of SPEC §7.5 (class k <-> digit k+1, all-zero vector = blank), see `to_one_hot`.

Datasets (SPEC §7.5; each example is `{"puzzle": int8 [9, 9], "solution": int8 [9, 9]}`):

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

* `sudoku_satnet` — the SATNet set (train = boards 0..8,999, test = 9,000..9,999). We never
  unpickle the original `features.pt` / `labels.pt`; convert them once, where PyTorch is installed,
  with

      python -c "import torch,numpy as np; np.savez('satnet.npz', features=torch.load('features.pt', weights_only=True).numpy(), labels=torch.load('labels.pt', weights_only=True).numpy())"

  and put `satnet.npz` in the manual directory.
* `sudoku_rrn` — the RRN "sudoku-hard" CSVs (`train.csv`, `valid.csv`, `test.csv`, rows
  `quiz,solution` without header), one split per file present in the manual directory.

Open any split with `load_split("generated" | "satnet" | "rrn", split, config=...)`.
"""

from __future__ import annotations

import argparse
import importlib.resources
import multiprocessing
import os
import random
import sys
import time
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import tensorflow_datasets as tfds
from jax.typing import ArrayLike

from akorn_jax.data import common

# A classic puzzle (32 givens, one solution) for examples: the demo and the CLI test solve it.
EXAMPLE_PUZZLE = "..3.2.6..9..3.5..1..18.64....81.29..7.......8..67.82....26.95..8..2.3..9..5.1.3.."
GENERATOR_VERSION = 1  # bump whenever the generator's output for a seed changes

# ---------------------------------------------------------------------------------------------
# Board helpers
# ---------------------------------------------------------------------------------------------


def to_one_hot(board: ArrayLike) -> jax.Array | np.ndarray:
  """Digits -> one-hot (SPEC §7.5); numpy in, numpy out, jax in, jax out.

  Args:
    board: int `[..., 9, 9]`, 0 = blank, 1..9 = digit.

  Returns:
    float32 `[..., 9, 9, 9]`; channel k is digit k+1, a blank cell is all-zero.
  """
  xp = jnp if isinstance(board, jax.Array) else np
  board = xp.asarray(board)
  return (board[..., None] == xp.arange(1, 10)).astype(xp.float32)


def from_one_hot(one_hot: ArrayLike) -> jax.Array | np.ndarray:
  """One-hot `[..., 9, 9, 9]` -> int8 digits `[..., 9, 9]` (all-zero vector -> 0 = blank)."""
  xp = jnp if isinstance(one_hot, jax.Array) else np
  one_hot = xp.asarray(one_hot)
  digits = xp.argmax(one_hot, axis=-1) + 1
  return xp.where(one_hot.max(axis=-1) > 0, digits, 0).astype(xp.int8)


def board_string(board: ArrayLike) -> str:
  """The 81-character form of a `[9, 9]` board, row by row, '0' for blanks."""
  return "".join(str(int(v)) for v in np.asarray(board).reshape(-1))


def format_board(board: ArrayLike) -> str:
  """A human-readable 9x9 grid ('.' = blank) with box separators, for logs and error messages."""
  cells = np.asarray(board).reshape(9, 9)
  lines = []
  for r in range(9):
    if r in (3, 6):
      lines.append("------+-------+------")
    row = [str(int(v)) if v else "." for v in cells[r]]
    lines.append(" | ".join(" ".join(row[c:c + 3]) for c in (0, 3, 6)))
  return "\n".join(lines)


_DECORATION = set(" \t\r\n|-+")


def parse_puzzle(text: str, *, name: str | int | None = None) -> np.ndarray:
  """Parses 81 cells ('1'..'9' digits, '0' or '.' blank); whitespace and '|', '-', '+' are ignored.

  Args:
    text: a puzzle as one 81-character line or a decorated grid such as `format_board`'s output.
    name: how error messages call this puzzle (an index or a name).

  Returns:
    int8 `[9, 9]` board.

  Raises:
    ValueError: a character that is not a digit or '.', or not exactly 81 cells.
  """
  label = _label(name, text)
  cells = [ch for ch in text if ch not in _DECORATION]
  for pos, ch in enumerate(cells):
    if ch != "." and not ("0" <= ch <= "9"):
      raise ValueError(f"{label}: bad character {ch!r} at cell {pos + 1}; expected digits 1-9 and "
                       "'0' or '.' for blanks (spaces and '|', '-', '+' are ignored). "
                       "Fix the puzzle text.")
  if len(cells) != 81:
    raise ValueError(f"{label}: has {len(cells)} cells, expected exactly 81 (9 rows of 9). "
                     "Check for missing or extra cells.")
  return np.array([0 if ch == "." else int(ch) for ch in cells], np.int8).reshape(9, 9)


def _label(name: str | int | None, board: ArrayLike | str) -> str:
  """'Puzzle <name> (<81 chars>)' for error messages."""
  text = board if isinstance(board, str) else board_string(board)
  text = text if len(text) <= 200 else text[:200] + "..."
  return f"Puzzle {name!r} ({text!r})" if name is not None else f"Puzzle {text!r}"


def _conflict(board: np.ndarray) -> str | None:
  """Describes the first digit repeated in a row, column or box of `board` [9, 9], or None."""
  counts = np.zeros((3, 9, 10), np.int8)  # unit kind (row, column, box), unit, digit
  r, c = np.indices((9, 9))
  for kind, unit in enumerate((r, c, 3 * (r // 3) + c // 3)):
    np.add.at(counts[kind], (unit.ravel(), board.ravel().astype(np.intp)), 1)
  if counts[:, :, 1:].max(initial=0) <= 1:  # the usual case, fast; the loops below say where
    return None
  for r in range(9):
    for d in range(1, 10):
      cols = np.flatnonzero(board[r] == d)
      if len(cols) > 1:
        return f"digit {d} appears twice in row {r + 1} (columns {cols[0] + 1} and {cols[1] + 1})"
  for c in range(9):
    for d in range(1, 10):
      rows = np.flatnonzero(board[:, c] == d)
      if len(rows) > 1:
        return f"digit {d} appears twice in column {c + 1} (rows {rows[0] + 1} and {rows[1] + 1})"
  for b in range(9):
    r0, c0 = 3 * (b // 3), 3 * (b % 3)
    box = board[r0:r0 + 3, c0:c0 + 3]
    for d in range(1, 10):
      hits = np.argwhere(box == d)
      if len(hits) > 1:
        (ra, ca), (rb, cb) = hits[:2] + [r0 + 1, c0 + 1]
        return (f"digit {d} appears twice in box {b + 1} "
                f"(at row {ra} column {ca} and row {rb} column {cb})")
  return None


def validate_puzzle(board: ArrayLike | str, *, name: str | int | None = None,
                    require_unique: bool = False, max_nodes: int | None = None) -> np.ndarray:
  """Checks that a puzzle is well formed and solvable, and returns its (first) solution.

  Args:
    board: int `[9, 9]` (or 81 values), or text accepted by `parse_puzzle`.
    name: how error messages call this puzzle (an index or a name).
    require_unique: also reject puzzles with more than one solution.
    max_nodes: search nodes the exact solver may spend (None: no limit; a hostile puzzle with
      few givens and no solution can then take minutes).

  Returns:
    int8 `[9, 9]` solution.

  Raises:
    ValueError: naming the puzzle and the problem: wrong number of cells, values outside 0..9,
      contradicting givens, no solution, or (with `require_unique`) several solutions.
    SearchBudgetExceeded (a ValueError): `max_nodes` did not settle it (named as inconclusive).
  """
  if isinstance(board, str):
    board = parse_puzzle(board, name=name)
  raw = np.asarray(board)
  if raw.size != 81:
    raise ValueError(f"Puzzle {name!r}: has {raw.size} cells (shape {raw.shape}), expected 81 "
                     "as [9, 9]. Pass one board at a time.")
  label = _label(name, raw)
  bad = np.flatnonzero((raw.reshape(-1) < 0) | (raw.reshape(-1) > 9) | (raw.reshape(-1) % 1 != 0))
  if len(bad):
    i = bad[0]
    raise ValueError(f"{label}: value {raw.reshape(-1)[i]} at row {i // 9 + 1} column {i % 9 + 1}; "
                     "expected integers 0 (blank) to 9.")
  cells = raw.reshape(9, 9).astype(np.int8)
  conflict = _conflict(cells)
  if conflict:
    raise ValueError(f"{label}: {conflict}; expected each digit at most once per row, column and "
                     "box. Fix the givens.")
  try:
    solutions = solve(cells, max_solutions=2 if require_unique else 1, max_nodes=max_nodes)
  except SearchBudgetExceeded as e:
    raise SearchBudgetExceeded(
        f"{label}: inconclusive: {e}, so it is not known whether it has a solution (puzzles with "
        "few givens and no solution are the usual cause). Check the givens, or allow more nodes "
        "(the Sudoku CLI's --check_nodes).") from None
  if not solutions:
    raise ValueError(f"{label}: has no solution although no two givens clash directly; expected a "
                     "solvable puzzle. Check the givens against the source.")
  if require_unique and len(solutions) > 1:
    raise ValueError(f"{label}: has more than one solution (e.g. {board_string(solutions[0])} and "
                     f"{board_string(solutions[1])}); expected a unique one. Add givens.")
  return solutions[0]


def is_valid_solution(board: ArrayLike) -> np.ndarray:
  """Whether each `[9, 9]` board is a complete grid with every digit once per row, column and box.

  Args:
    board: int `[..., 9, 9]`.

  Returns:
    bool `[...]`.
  """
  oh = to_one_hot(np.asarray(board))  # [..., 9, 9, 9]: row, column, digit
  rows_ok = (oh.sum(-2) == 1).all((-2, -1))
  cols_ok = (oh.sum(-3) == 1).all((-2, -1))
  boxes = oh.reshape(*oh.shape[:-3], 3, 3, 3, 3, 9).sum((-4, -2))  # [..., 3, 3, 9]
  return rows_ok & cols_ok & (boxes == 1).all((-3, -2, -1))


def solution_consistent(puzzle: ArrayLike, solution: ArrayLike) -> np.ndarray:
  """Whether each solution is valid and keeps its puzzle's givens; `[..., 9, 9]` -> bool `[...]`."""
  puzzle, solution = np.asarray(puzzle), np.asarray(solution)
  keeps = ((puzzle == 0) | (puzzle == solution)).all((-2, -1))
  return keeps & is_valid_solution(solution)


# ---------------------------------------------------------------------------------------------
# Exact solver: candidate bitmasks, constraint propagation, most-constrained-cell backtracking
# ---------------------------------------------------------------------------------------------
# A state is a list of 81 candidate masks (bit d-1 set <=> digit d still possible). Plain Python
# ints beat numpy here: the work is many tiny, data-dependent updates.

_ALL = 0x1FF
_UNITS = tuple(
    [tuple(9 * r + c for c in range(9)) for r in range(9)]
    + [tuple(9 * r + c for r in range(9)) for c in range(9)]
    + [tuple(9 * (br + r) + bc + c for r in range(3) for c in range(3))
       for br in (0, 3, 6) for bc in (0, 3, 6)])
_PEERS = tuple(tuple(sorted({j for u in _UNITS if i in u for j in u} - {i})) for i in range(81))
_POPCOUNT = tuple(bin(m).count("1") for m in range(512))
_DIGIT = {1 << d: d + 1 for d in range(9)}


def _propagate(cands: list[int], queue: list[int]) -> bool:
  """Eliminates decided cells' digits from their peers and fills hidden singles, to a fixpoint.

  Args:
    cands: 81 candidate masks, updated in place.
    queue: cells whose single candidate has not been removed from their peers yet.

  Returns:
    False on a contradiction (a cell or a unit left without a place for some digit).
  """
  while queue:
    while queue:
      i = queue.pop()
      b = cands[i]
      for p in _PEERS[i]:
        c = cands[p]
        if c & b:
          c ^= b
          if not c:
            return False
          cands[p] = c
          if not c & (c - 1):
            queue.append(p)
    for unit in _UNITS:
      once = more = 0
      for i in unit:
        c = cands[i]
        more |= once & c
        once |= c
      if once != _ALL:
        return False
      singles = once & ~more
      while singles:
        b = singles & -singles
        singles ^= b
        for i in unit:
          if cands[i] & b:
            if cands[i] != b:
              cands[i] = b
              queue.append(i)
            break
  return True


class SearchBudgetExceeded(ValueError):
  """The exact search used up its `max_nodes` before finding the solutions asked for or proving
  there are none (a puzzle with few givens and no solution can take minutes)."""


def _search(cands: list[int], limit: int, rng: random.Random | None, out: list[list[int]],
            budget: list[int] | None = None) -> bool:
  """Depth-first search from a propagated state; appends solutions to `out`, True at `limit`.
  `budget` is [nodes left]; each call spends one and raises SearchBudgetExceeded at none."""
  if budget is not None:
    budget[0] -= 1
    if budget[0] < 0:
      raise SearchBudgetExceeded("search node budget used up")
  best, best_n = -1, 10
  for i in range(81):
    n = _POPCOUNT[cands[i]]
    if 1 < n < best_n:
      best, best_n = i, n
      if n == 2:
        break
  if best < 0:
    out.append(cands)
    return len(out) >= limit
  c = cands[best]
  bits = [b for b in _DIGIT if c & b]
  if rng is not None:
    rng.shuffle(bits)
  for b in bits:
    nxt = cands.copy()
    nxt[best] = b
    if _propagate(nxt, [best]) and _search(nxt, limit, rng, out, budget):
      return True
  return False


def _initial(cells: Sequence[int]) -> tuple[list[int], list[int]]:
  """Candidate masks and propagation queue for 81 digits (0 = blank)."""
  cands = [1 << (v - 1) if v else _ALL for v in cells]
  return cands, [i for i, v in enumerate(cells) if v]


def _solve_cells(cells: Sequence[int], limit: int, rng: random.Random | None = None,
                 exclude: tuple[int, int] | None = None,
                 max_nodes: int | None = None) -> list[list[int]]:
  """Up to `limit` solutions (81 masks each) of 81 digits; `exclude=(cell, digit)` bans a digit.
  Raises SearchBudgetExceeded after `max_nodes` search nodes (None: no limit)."""
  cands, queue = _initial(cells)
  if exclude is not None:
    cands[exclude[0]] = _ALL & ~(1 << (exclude[1] - 1))
  out: list[list[int]] = []
  if _propagate(cands, queue):
    try:
      _search(cands, limit, rng, out, None if max_nodes is None else [max_nodes])
    except SearchBudgetExceeded:
      raise SearchBudgetExceeded(
          f"the exact search stopped after {max_nodes} search nodes without finding {limit} "
          f"solution(s) or proving there are fewer (found {len(out)})") from None
  return out


def _to_board(cands: list[int]) -> np.ndarray:
  return np.array([_DIGIT[c] for c in cands], np.int8).reshape(9, 9)


def solve(board: ArrayLike, max_solutions: int = 2, *,
          max_nodes: int | None = None) -> list[np.ndarray]:
  """Finds up to `max_solutions` solutions of a puzzle with an exact search (no model involved).

  Args:
    board: int `[9, 9]`, 0 = blank. Values are assumed in 0..9 (see `validate_puzzle`).
    max_solutions: stop after this many; 2 is enough to tell unique from ambiguous.
    max_nodes: give up after this many search nodes (None: search to the end, which for a
      hostile puzzle can take minutes).

  Returns:
    int8 `[9, 9]` solutions; empty when the puzzle has none (including clashing givens).

  Raises:
    SearchBudgetExceeded: `max_nodes` search nodes did not settle the question.
  """
  cells = [int(v) for v in np.asarray(board).reshape(81)]
  return [_to_board(c) for c in _solve_cells(cells, max_solutions, max_nodes=max_nodes)]


def count_solutions(board: ArrayLike, limit: int = 2) -> int:
  """The number of solutions of `board` [9, 9], counted up to `limit`."""
  return len(_solve_cells([int(v) for v in np.asarray(board).reshape(81)], limit))


# ---------------------------------------------------------------------------------------------
# Generator
# ---------------------------------------------------------------------------------------------


def _generate_one(seed: int, index: int, min_givens: int,
                  max_givens: int) -> tuple[list[int], list[int]]:
  """Puzzle `index` of the stream `seed`: (puzzle, solution) as 81 digits each, unique solution.

  Each puzzle has its own RNG, so puzzle i does not depend on how many are generated or in which
  process; string seeding of `random.Random` is stable across Python versions.
  """
  rng = random.Random(f"akorn_jax.sudoku:{seed}:{index}")
  solution = [_DIGIT[c] for c in _solve_cells([0] * 81, 1, rng)[0]]
  target = rng.randint(min_givens, max_givens)
  puzzle = solution.copy()
  order = list(range(81))
  rng.shuffle(order)
  givens = 81
  # One pass suffices: a cell whose removal breaks uniqueness stays unremovable once more cells go.
  for i in order:
    if givens <= target:
      break
    puzzle[i] = 0
    # The puzzle was unique with solution `solution`, so any solution with another digit at i is a
    # second one; searching for one such is cheaper than counting to two.
    if _solve_cells(puzzle, 1, exclude=(i, solution[i])):
      puzzle[i] = solution[i]
    else:
      givens -= 1
  return puzzle, solution


def _generate_star(args: tuple[int, int, int, int]) -> tuple[list[int], list[int]]:
  return _generate_one(*args)


def generate(num: int, min_givens: int, max_givens: int, seed: int, *, start: int = 0,
             processes: int = 1, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
  """Generates `num` puzzles with a unique solution each, deterministically from `seed`.

  A random full grid (randomised solver) loses cells in random order as long as the solution stays
  unique, until the puzzle's target number of givens (uniform in [min_givens, max_givens]) is
  reached or no cell can be removed (a minimal puzzle, typically 22-26 givens).

  Args:
    num: number of puzzles.
    min_givens, max_givens: range of the target number of givens (17 <= min <= max <= 81).
    seed: stream seed; puzzle i depends only on (seed, start + i).
    start: index of the first puzzle in the stream (to extend a set or split it disjointly).
    processes: worker processes (the result does not depend on it).
    progress: print a progress line to stderr every 500 puzzles.

  Returns:
    (puzzles, solutions), int8 `[num, 9, 9]` each.
  """
  if not 17 <= min_givens <= max_givens <= 81:
    raise ValueError(f"givens range [{min_givens}, {max_givens}] is invalid; expected "
                     "17 <= min_givens <= max_givens <= 81 (no unique Sudoku has fewer than 17).")
  jobs = [(seed, start + i, min_givens, max_givens) for i in range(num)]
  t0 = time.time()
  results = []

  def collect(it):
    for k, res in enumerate(it, 1):
      results.append(res)
      if progress and k % 500 == 0:
        print(f"  {k}/{num} puzzles, {time.time() - t0:.0f} s", file=sys.stderr, flush=True)

  if processes > 1:
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
      collect(pool.imap(_generate_star, jobs, chunksize=16))
  else:
    collect(map(_generate_star, jobs))
  puzzles = np.array([p for p, _ in results], np.int8).reshape(num, 9, 9)
  solutions = np.array([s for _, s in results], np.int8).reshape(num, 9, 9)
  return puzzles, solutions


# ---------------------------------------------------------------------------------------------
# Shipped generated sets (package data)
# ---------------------------------------------------------------------------------------------
# name -> (seed, givens range, train size, test size). Stored as puzzles/solutions uint8 [N, 81],
# train boards first, like SATNet's file.
GENERATED_SETS = {
    "satnet_like": dict(seed=0, min_givens=31, max_givens=42, num_train=9000, num_test=1000),
    "hard": dict(seed=1, min_givens=17, max_givens=34, num_train=1000, num_test=1000),
}


def asset_path(name: str):
  """The shipped npz of generated set `name` ("satnet_like" or "hard") as an importlib resource."""
  return importlib.resources.files("akorn_jax") / "assets" / f"sudoku_{name}.npz"


def load_generated(name: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """Reads a shipped set: {"train": (puzzles, solutions), "test": (...)}, int8 `[N, 9, 9]` each."""
  if name not in GENERATED_SETS:
    raise ValueError(f"Unknown generated Sudoku set {name!r}; "
                     f"expected one of {sorted(GENERATED_SETS)}.")
  with asset_path(name).open("rb") as f, np.load(f) as z:
    puzzles = z["puzzles"].astype(np.int8).reshape(-1, 9, 9)
    solutions = z["solutions"].astype(np.int8).reshape(-1, 9, 9)
    n = int(z["num_train"])
  return {"train": (puzzles[:n], solutions[:n]), "test": (puzzles[n:], solutions[n:])}


def regenerate(out_dir: str, processes: int = 1) -> None:
  """Rebuilds every shipped set in `out_dir` and prints the histogram of givens of each."""
  for name, spec in GENERATED_SETS.items():
    num = spec["num_train"] + spec["num_test"]
    print(f"{name}: generating {num} puzzles ...", file=sys.stderr, flush=True)
    puzzles, solutions = generate(num, spec["min_givens"], spec["max_givens"], spec["seed"],
                                  processes=processes, progress=True)
    path = os.path.join(out_dir, f"sudoku_{name}.npz")
    np.savez_compressed(path, puzzles=puzzles.reshape(num, 81).astype(np.uint8),
                        solutions=solutions.reshape(num, 81).astype(np.uint8),
                        num_train=spec["num_train"], seed=spec["seed"],
                        min_givens=spec["min_givens"], max_givens=spec["max_givens"],
                        generator_version=GENERATOR_VERSION)
    givens, counts = np.unique((puzzles > 0).sum((1, 2)), return_counts=True)
    print(f"{name}: wrote {path} ({os.path.getsize(path)} bytes); givens histogram "
          + ", ".join(f"{g}: {c}" for g, c in zip(givens, counts)), flush=True)


# ---------------------------------------------------------------------------------------------
# Readers for the reference data (files the user places in a manual directory)
# ---------------------------------------------------------------------------------------------
SATNET_FILE = "satnet.npz"
SATNET_SPLITS = {"train": slice(0, 9000), "test": slice(9000, 10000)}  # SPEC §7.5
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
  with np.load(file, allow_pickle=False) as z:
    missing = {"features", "labels"} - set(z.files)
    if missing:
      raise ValueError(f"{file!r} lacks arrays {sorted(missing)} (has {sorted(z.files)}); expected "
                       f"'features' and 'labels' as written by:\n  {SATNET_CONVERT_COMMAND}")
    features, labels = z["features"], z["labels"]
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


# ---------------------------------------------------------------------------------------------
# tfds builders (array_record, no TensorFlow)
# ---------------------------------------------------------------------------------------------


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
  """Puzzles from akorn_jax's own generator, shipped with the package (unique solutions)."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": f"Generator version {GENERATOR_VERSION}."}
  BUILDER_CONFIGS = [
      tfds.core.BuilderConfig(name="satnet_like", description="9,000/1,000, givens 31..42."),
      tfds.core.BuilderConfig(name="hard", description="1,000/1,000, givens 21..34."),
      tfds.core.BuilderConfig(name="tiny", description="256/64 boards of satnet_like, for tests."),
  ]
  # config -> (shipped set, number of train and test boards taken from its splits; None = all)
  _SOURCES = {"satnet_like": ("satnet_like", None, None), "hard": ("hard", None, None),
              "tiny": ("satnet_like", 256, 64)}
  HOMEPAGE = None

  def _split_generators(self, dl_manager):
    del dl_manager  # everything is in the package
    name, num_train, num_test = self._SOURCES[self.builder_config.name]
    data = load_generated(name)
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


_BUILDERS = {"generated": SudokuGenerated, "satnet": SudokuSatnet, "rrn": SudokuRrn}


def load_split(name: str, split: str, *, config: str | None = None, data_dir: str | None = None):
  """Opens one split as a random-access source of `{"puzzle", "solution"}` int8 [9, 9] examples.

  Args:
    name: "generated", "satnet" or "rrn" (or the builder names "sudoku_generated", ...).
    split: "train" / "test" (RRN also "valid"); tfds slicing such as "test[:100]" works.
    config: for "generated": "satnet_like" (default), "hard" or "tiny".
    data_dir: tfds data directory (default: $AKORN_DATA_DIR or ~/.cache/akorn_jax/tfds).

  Raises:
    DatasetNotPreparedError: SATNet or RRN not prepared yet (the message gives the command). The
      generated sets are prepared on first use.
  """
  key = name.removeprefix("sudoku_")
  if key not in _BUILDERS:
    raise ValueError(f"Unknown Sudoku dataset {name!r}; expected one of {sorted(_BUILDERS)}.")
  return common.source(_BUILDERS[key], split, config=config, data_dir_=data_dir,
                       auto_prepare=key == "generated")


# ---------------------------------------------------------------------------------------------
# Command line: python -m akorn_jax.data.sudoku --regenerate
# ---------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--regenerate", action="store_true",
                      help="rebuild the shipped generated sets (about 2 minutes on one core)")
  parser.add_argument("--out_dir", default=str(importlib.resources.files("akorn_jax") / "assets"),
                      help="where to write sudoku_*.npz (default: the package's assets folder)")
  parser.add_argument("--processes", type=int, default=1, help="worker processes")
  args = parser.parse_args(argv)
  if not args.regenerate:
    parser.error("nothing to do; pass --regenerate")
  os.makedirs(args.out_dir, exist_ok=True)
  regenerate(args.out_dir, args.processes)


if __name__ == "__main__":
  main()
