"""Our Sudoku puzzle generator and the generated sets shipped as package data.

`python -m akorn_jax.data.sudoku --regenerate` rebuilds `akorn_jax/assets/sudoku_*.npz`.
"""

from __future__ import annotations

import importlib.resources
import multiprocessing
import os
import random
import sys
import time

import numpy as np

from akorn_jax.data.sudoku.solver import _DIGIT, _solve_cells

GENERATOR_VERSION = 1  # bump whenever the generator's output for a seed changes


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
