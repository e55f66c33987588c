"""Our Sudoku puzzle generator and the generated sets shipped as package data.

How a puzzle is made (`generate`): a random full grid (the exact solver with shuffled digits) loses
givens in random order as long as the solution stays unique, until the puzzle's target number of
givens is reached or no given can go (a minimal puzzle, typically 22-26 givens). With a search
budget (`search`), a minimal puzzle above its target then takes up to `search` local moves: drop
two givens, add back givens where a second solution differs until the solution is unique again,
and remove givens greedily again; a move is kept when it does not add givens. After `search`
moves without reaching the target it restarts from a fresh grid (`restarts` times) and keeps the
sparsest puzzle found. This reaches 20-21 givens in seconds where greedy removal alone rarely gets
below 22 (rates and histograms in results/sudoku.md). `symmetric` removes and adds givens in pairs
(r, c) and (8 - r, 8 - c), the 180-degree symmetry of published puzzles.

Every puzzle has its own RNG, seeded by (seed, index), so puzzle i does not depend on how many are
generated or in which process; string seeding of `random.Random` is stable across Python versions.
`python -m akorn_jax.data.sudoku --regenerate` rebuilds the shipped `akorn_jax/assets/sudoku_*.npz`.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import multiprocessing
import os
import random
import sys
import time

import numpy as np

from akorn_jax.data.sudoku.solver import _DIGIT, _solve_cells

GENERATOR_VERSION = 1  # bump whenever the generator's output for a seed and its arguments changes


@dataclasses.dataclass(frozen=True)
class Method:
  """How hard the generator tries to reach low targets (see the module docstring).

  Attributes:
    search: local moves per restart for a minimal puzzle still above its target (0: greedy only).
    restarts: fresh grids tried after the first when the moves do not reach the target.
    symmetric: remove and add givens in 180-degree symmetric pairs.
  """
  search: int = 0
  restarts: int = 0
  symmetric: bool = False


GREEDY = Method()


def _partner(i: int) -> int:
  return 80 - i  # (r, c) -> (8 - r, 8 - c)


def _is_unique(puzzle: list[int], solution: list[int], removed: list[int]) -> bool:
  """Whether `puzzle`, unique before the cells `removed` were blanked, is still unique."""
  if len(removed) == 1:
    # Any second solution must differ at the removed cell: searching for one such is cheaper than
    # counting to two.
    i = removed[0]
    return not _solve_cells(puzzle, 1, exclude=(i, solution[i]))
  return len(_solve_cells(puzzle, 2)) == 1


def _remove_greedily(puzzle: list[int], solution: list[int], rng: random.Random, target: int,
                     symmetric: bool) -> int:
  """Blanks givens of the unique `puzzle` in random order while it stays unique, down to `target`
  givens; returns the number of givens left. One pass suffices: a given whose removal breaks
  uniqueness stays needed once more givens go."""
  givens = sum(1 for v in puzzle if v)
  order = [i for i in range(81) if puzzle[i] and (not symmetric or i <= _partner(i))]
  rng.shuffle(order)
  for i in order:
    if givens <= target:
      break
    pair = symmetric and i != _partner(i) and puzzle[_partner(i)]
    group = [i, _partner(i)] if pair else [i]
    for c in group:
      puzzle[c] = 0
    if _is_unique(puzzle, solution, group):
      givens -= len(group)
    else:
      for c in group:
        puzzle[c] = solution[c]
  return givens


def _make_unique(puzzle: list[int], solution: list[int], rng: random.Random,
                 symmetric: bool) -> None:
  """Adds givens from `solution` where another solution differs, until it is the only one."""
  while True:
    others = [s for s in _solve_cells(puzzle, 2) if [_DIGIT[c] for c in s] != solution]
    if not others:
      return
    other = [_DIGIT[c] for c in others[0]]
    i = rng.choice([i for i in range(81) if other[i] != solution[i]])
    for c in {i, _partner(i)} if symmetric else {i}:
      puzzle[c] = solution[c]


def _lower(puzzle: list[int], givens: int, solution: list[int], rng: random.Random, target: int,
           method: Method) -> tuple[list[int], int]:
  """Up to `method.search` moves (drop two givens, make unique, remove greedily) to `target`."""
  for _ in range(method.search):
    if givens <= target:
      break
    candidate = puzzle.copy()
    cells = [i for i in range(81) if candidate[i] and (not method.symmetric or i <= _partner(i))]
    for i in rng.sample(cells, 1 if method.symmetric else 2):
      candidate[i] = 0
      if method.symmetric:
        candidate[_partner(i)] = 0
    _make_unique(candidate, solution, rng, method.symmetric)
    left = _remove_greedily(candidate, solution, rng, target, method.symmetric)
    if left <= givens:
      puzzle, givens = candidate, left
  return puzzle, givens


def _generate_one(seed: int, index: int, min_givens: int, max_givens: int,
                  method: Method = GREEDY) -> tuple[list[int], list[int]]:
  """Puzzle `index` of the stream `seed`: (puzzle, solution) as 81 digits each, unique solution."""
  rng = random.Random(f"akorn_jax.sudoku:{seed}:{index}")
  solution = [_DIGIT[c] for c in _solve_cells([0] * 81, 1, rng)[0]]
  target = rng.randint(min_givens, max_givens)
  puzzle = solution.copy()
  givens = _remove_greedily(puzzle, solution, rng, target, method.symmetric)
  puzzle, givens = _lower(puzzle, givens, solution, rng, target, method)
  best = (givens, puzzle, solution)
  for _ in range(method.restarts):
    if best[0] <= target:
      break
    solution = [_DIGIT[c] for c in _solve_cells([0] * 81, 1, rng)[0]]
    puzzle = solution.copy()
    givens = _remove_greedily(puzzle, solution, rng, target, method.symmetric)
    puzzle, givens = _lower(puzzle, givens, solution, rng, target, method)
    best = min(best, (givens, puzzle, solution), key=lambda b: b[0])
  return best[1], best[2]


def _generate_star(args) -> tuple[list[int], list[int]]:
  return _generate_one(*args)


def generate(num: int, min_givens: int, max_givens: int, seed: int, *, start: int = 0,
             method: Method = GREEDY, processes: int = 1,
             progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
  """Generates `num` puzzles with a unique solution each, deterministically from `seed`.

  Puzzle i gets a target number of givens uniform in [min_givens, max_givens]; it ends with more
  when greedy removal (and the search of `method`) cannot reach the target, see the module
  docstring.

  Args:
    num: number of puzzles.
    min_givens, max_givens: range of the target number of givens (17 <= min <= max <= 81).
    seed: stream seed; puzzle i depends only on (seed, start + i) and `method`.
    start: index of the first puzzle in the stream (to extend a set or split it disjointly).
    method: how hard to try for low targets (default: greedy removal only).
    processes: worker processes (the result does not depend on it).
    progress: print a progress line to stderr every 500 puzzles.

  Returns:
    (puzzles, solutions), int8 `[num, 9, 9]` each.
  """
  if not 17 <= min_givens <= max_givens <= 81:
    raise ValueError(f"givens range [{min_givens}, {max_givens}] is invalid; expected "
                     "17 <= min_givens <= max_givens <= 81 (no unique Sudoku has fewer than 17).")
  jobs = [(seed, start + i, min_givens, max_givens, method) for i in range(num)]
  t0 = time.time()
  results = []

  def collect(it):
    for k, res in enumerate(it, 1):
      results.append(res)
      if progress and k % 500 == 0:
        print(f"  {k}/{num} puzzles, {time.time() - t0:.0f} s", file=sys.stderr, flush=True)

  if processes > 1:
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
      collect(pool.imap(_generate_star, jobs, chunksize=4))
  else:
    collect(map(_generate_star, jobs))
  puzzles = np.array([p for p, _ in results], np.int8).reshape(num, 9, 9)
  solutions = np.array([s for _, s in results], np.int8).reshape(num, 9, 9)
  return puzzles, solutions


# ---------------------------------------------------------------------------------------------
# Generated sets: shipped as package data, or made on the fly by the tfds builder
# ---------------------------------------------------------------------------------------------
LOW = Method(search=100, restarts=2)  # the 23-26 test band: every target reached or nearly
LOW_FAST = Method(search=40)  # the <= 22 band: cheaper per try; tries that end above 22 are skipped
MIXED_METHOD = Method(search=30)  # the training set needs many boards, not the last clue

# name -> how the set is made. Stored as puzzles/solutions uint8 [N, 81], train boards first, like
# SATNet's file. With `band`, only puzzles whose givens land in [min_givens, max_givens] are kept
# (the stream indices of the others are skipped), so a band set holds exactly its band.
GENERATED_SETS = {
    "satnet_like": dict(seed=0, min_givens=31, max_givens=42, num_train=9000, num_test=1000),
    "hard": dict(seed=1, min_givens=17, max_givens=34, num_train=1000, num_test=1000),
    # Held-apart test sets per band of givens (seeds no training set uses).
    "band_le22": dict(seed=3, min_givens=20, max_givens=22, num_train=0, num_test=50,
                      method=LOW_FAST, band=True),
    "band_23_26": dict(seed=4, min_givens=23, max_givens=26, num_train=0, num_test=500,
                       method=LOW, band=True),
    "band_27_34": dict(seed=5, min_givens=27, max_givens=34, num_train=0, num_test=500,
                       band=True),
}
BANDS = ("band_le22", "band_23_26", "band_27_34")
# The solver's training set, ~20-42 givens: made by the tfds builder `sudoku_generated/mixed` when
# prepared (about 2 core-hours of generation would make it too slow to rebuild as package data;
# the boards are the same on every machine). Its test split is the three bands.
MIXED = dict(seed=2, min_givens=20, max_givens=42, num_train=10_000, method=MIXED_METHOD)


def asset_path(name: str):
  """The shipped npz of the set `name` (a key of `GENERATED_SETS`) as an importlib resource."""
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


def generate_set(spec: dict, *, processes: int = 1,
                 progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
  """The boards of a set described like the values of `GENERATED_SETS` (train first, then test)."""
  num = spec.get("num_train", 0) + spec.get("num_test", 0)
  args = dict(method=spec.get("method", GREEDY), processes=processes, progress=progress)
  lo, hi = spec["min_givens"], spec["max_givens"]
  if not spec.get("band"):
    return generate(num, lo, hi, spec["seed"], **args)
  kept_p, kept_s, start = [], [], 0
  while sum(len(p) for p in kept_p) < num:
    chunk = max(num - sum(len(p) for p in kept_p), 16)
    puzzles, solutions = generate(chunk, lo, hi, spec["seed"], start=start, **args)
    givens = (puzzles > 0).sum((1, 2))
    keep = (givens >= lo) & (givens <= hi)
    kept_p.append(puzzles[keep])
    kept_s.append(solutions[keep])
    start += chunk
  return np.concatenate(kept_p)[:num], np.concatenate(kept_s)[:num]


def regenerate(out_dir: str, processes: int = 1, names: tuple[str, ...] | None = None) -> None:
  """Rebuilds the shipped sets `names` (default: all) in `out_dir`; prints each givens histogram
  and the generation rate."""
  for name in names or tuple(GENERATED_SETS):
    spec = GENERATED_SETS[name]
    num = spec["num_train"] + spec["num_test"]
    print(f"{name}: generating {num} puzzles ...", file=sys.stderr, flush=True)
    t0 = time.time()
    puzzles, solutions = generate_set(spec, processes=processes, progress=True)
    seconds = time.time() - t0
    path = os.path.join(out_dir, f"sudoku_{name}.npz")
    np.savez_compressed(path, puzzles=puzzles.reshape(num, 81).astype(np.uint8),
                        solutions=solutions.reshape(num, 81).astype(np.uint8),
                        num_train=spec["num_train"], seed=spec["seed"],
                        min_givens=spec["min_givens"], max_givens=spec["max_givens"],
                        generator_version=GENERATOR_VERSION)
    givens, counts = np.unique((puzzles > 0).sum((1, 2)), return_counts=True)
    print(f"{name}: wrote {path} ({os.path.getsize(path)} bytes) in {seconds:.0f} s with "
          f"{processes} process(es); givens histogram "
          + ", ".join(f"{g}: {c}" for g, c in zip(givens, counts)), flush=True)
