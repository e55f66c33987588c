"""Sudoku boards: parse, format, validate, check solutions, and the one-hot form models see.

Boards are int8 arrays `[..., 9, 9]` with 0 = blank and 1..9 = digit. Models see the one-hot form
`[..., 9, 9, 9]` of docs/datasets.md#sudoku (class k <-> digit k+1, all-zero vector = blank), see
`to_one_hot`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from akorn_jax.data.sudoku.solver import SearchBudgetExceeded, solve

# A classic puzzle (32 givens, one solution) for examples: the demo and the CLI test solve it.
EXAMPLE_PUZZLE = "..3.2.6..9..3.5..1..18.64....81.29..7.......8..67.82....26.95..8..2.3..9..5.1.3.."


def to_one_hot(board: ArrayLike) -> jax.Array | np.ndarray:
  """Digits -> one-hot (docs/datasets.md#sudoku); numpy in, numpy out, jax in, jax out.

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
