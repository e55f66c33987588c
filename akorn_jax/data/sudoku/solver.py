"""Exact Sudoku solver: candidate bitmasks, constraint propagation, most-constrained-cell search.

A state is a list of 81 candidate masks (bit d-1 set <=> digit d still possible). Plain Python ints
beat numpy here: the work is many tiny, data-dependent updates.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
from jax.typing import ArrayLike


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
