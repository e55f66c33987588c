"""Tests for akorn_jax.data.sudoku: helpers, solver, generator, shipped sets, readers, builders."""

import itertools
import os

import jax.numpy as jnp
import numpy as np
import pytest

from akorn_jax import data
from akorn_jax.data import common
from akorn_jax.data import sudoku

# Arto Inkala's "world's hardest Sudoku" and its published solution.
ARTO = "800000000003600000070090200050007000000045700000100030001000068008500010090000400"
ARTO_SOLUTION = "812753649943682175675491283154237896369845721287169534521974368438526917796318452"
# A 17-given puzzle (the minimum for a unique Sudoku), from Gordon Royle's collection.
SEVENTEEN = "000000010400000000020000000000050407008000300001090000300400200050100000000806000"


def _board(text):
  return np.array([int(ch) for ch in text], np.int8).reshape(9, 9)


def _assert_valid_grid(grid):
  """Independent check: every row, column and box holds 1..9 exactly once."""
  grid = np.asarray(grid)
  expect = list(range(1, 10))
  for k in range(9):
    assert sorted(grid[k]) == expect
    assert sorted(grid[:, k]) == expect
    r, c = 3 * (k // 3), 3 * (k % 3)
    assert sorted(grid[r:r + 3, c:c + 3].reshape(-1)) == expect


# ---- board helpers -------------------------------------------------------------------------------


def test_one_hot_roundtrip_numpy_and_jax():
  board = _board(ARTO)
  oh = sudoku.to_one_hot(board)
  assert oh.shape == (9, 9, 9) and oh.dtype == np.float32
  assert oh[0, 0, 7] == 1 and oh[0, 0].sum() == 1  # digit 8 -> channel 7
  assert oh[0, 1].sum() == 0  # blank -> all-zero
  np.testing.assert_array_equal(sudoku.from_one_hot(oh), board)
  batch = np.stack([board, _board(ARTO_SOLUTION), np.zeros((9, 9), np.int8)])
  oh_j = sudoku.to_one_hot(jnp.asarray(batch))
  assert isinstance(oh_j, jnp.ndarray) and oh_j.shape == (3, 9, 9, 9)
  np.testing.assert_array_equal(np.asarray(oh_j), sudoku.to_one_hot(batch))
  back = sudoku.from_one_hot(oh_j)
  assert back.dtype == jnp.int8
  np.testing.assert_array_equal(np.asarray(back), batch)


def test_parse_and_format():
  board = sudoku.parse_puzzle(ARTO.replace("0", "."))
  np.testing.assert_array_equal(board, _board(ARTO))
  text = sudoku.format_board(board)
  assert text.splitlines()[0] == "8 . . | . . . | . . ."
  assert len(text.splitlines()) == 11
  np.testing.assert_array_equal(sudoku.parse_puzzle(text), board)  # decoration is ignored
  assert sudoku.board_string(board) == ARTO


def test_is_valid_solution_and_consistency():
  sol = _board(ARTO_SOLUTION)
  swapped = sol.copy()
  swapped[0, [0, 1]] = swapped[0, [1, 0]]  # rows still permutations, columns not
  band_swap = sol[[1, 0, 2, 3, 4, 5, 6, 7, 8]]  # a valid grid too (rows swapped inside a band)
  # A Latin square: rows and columns fine, boxes not.
  boxes_bad = np.array([[(r + c) % 9 + 1 for c in range(9)] for r in range(9)], np.int8)
  got = sudoku.is_valid_solution(np.stack([sol, swapped, band_swap, boxes_bad, np.zeros((9, 9))]))
  np.testing.assert_array_equal(got, [True, False, True, False, False])
  puzzle = _board(ARTO)
  assert sudoku.solution_consistent(puzzle, sol)
  assert not sudoku.solution_consistent(puzzle, band_swap)  # valid grid, but breaks givens


# ---- solver --------------------------------------------------------------------------------------


def test_solver_hard_and_seventeen_givens():
  assert sudoku.board_string(sudoku.solve(_board(ARTO))[0]) == ARTO_SOLUTION
  assert len(sudoku.solve(_board(ARTO), max_solutions=5)) == 1
  puzzle = _board(SEVENTEEN)
  assert (puzzle > 0).sum() == 17
  sols = sudoku.solve(puzzle, max_solutions=3)
  assert len(sols) == 1
  _assert_valid_grid(sols[0])
  assert ((puzzle == 0) | (puzzle == sols[0])).all()


def _deadly_rectangle(sol):
  """Four cells in two rows and two columns spanning two boxes, holding a b / b a."""
  for r1, r2 in itertools.combinations(range(9), 2):
    for c1, c2 in itertools.combinations(range(9), 2):
      same_band, same_stack = r1 // 3 == r2 // 3, c1 // 3 == c2 // 3
      if (same_band != same_stack and sol[r1, c1] == sol[r2, c2] and sol[r1, c2] == sol[r2, c1]):
        return (r1, r2), (c1, c2)
  return None


def test_solver_multiple_solutions():
  sol = _board(ARTO_SOLUTION)
  rect = _deadly_rectangle(sol)
  assert rect is not None
  (r1, r2), (c1, c2) = rect
  puzzle = sol.copy()
  puzzle[[r1, r1, r2, r2], [c1, c2, c1, c2]] = 0
  # Exactly the original grid and the one with the rectangle's two digits swapped.
  assert len(sudoku.solve(puzzle, max_solutions=10)) == 2
  sols = sudoku.solve(puzzle, max_solutions=10)
  swapped = sol.copy()
  swapped[[r1, r1, r2, r2], [c1, c2, c1, c2]] = sol[[r1, r1, r2, r2], [c2, c1, c2, c1]]
  assert sorted(map(sudoku.board_string, sols)) == sorted(map(sudoku.board_string, [sol, swapped]))
  assert len(sudoku.solve(np.zeros((9, 9), np.int8), max_solutions=3)) == 3


def _no_candidate_puzzle():
  """Row 1 holds 1..8 in columns 2..9, column 1 holds 9: r1c1 has no digit, yet nothing clashes."""
  board = np.zeros((9, 9), np.int8)
  board[0, 1:] = np.arange(1, 9)
  board[4, 0] = 9
  return board


def test_solver_unsolvable():
  assert sudoku.solve(_no_candidate_puzzle()) == []
  clash = _board(ARTO)
  clash[0, 8] = 8  # second 8 in row 1
  assert sudoku.solve(clash) == []


# ---- validation errors ---------------------------------------------------------------------------


def test_parse_errors():
  with pytest.raises(ValueError, match=r"'p7'.*bad character 'x' at cell 3.*expected digits"):
    sudoku.parse_puzzle("80x" + ARTO[3:], name="p7")
  with pytest.raises(ValueError, match=r"has 80 cells, expected exactly 81"):
    sudoku.validate_puzzle(ARTO[:80], name=3)


@pytest.mark.parametrize("cells, problem", [
    ({(2, 1): 5, (2, 6): 5}, "digit 5 appears twice in row 3 (columns 2 and 7)"),
    ({(0, 4): 2, (7, 4): 2}, "digit 2 appears twice in column 5 (rows 1 and 8)"),
    ({(3, 3): 7, (5, 5): 7},
     "digit 7 appears twice in box 5 (at row 4 column 4 and row 6 column 6)"),
])
def test_validate_contradictions(cells, problem):
  board = np.zeros((9, 9), np.int8)
  for (r, c), d in cells.items():
    board[r, c] = d
  with pytest.raises(ValueError) as err:
    sudoku.validate_puzzle(board, name=12)
  msg = str(err.value)
  assert problem in msg and "12" in msg and sudoku.board_string(board) in msg
  assert "expected each digit at most once" in msg


def test_validate_other_errors():
  with pytest.raises(ValueError, match=r"'hole'.*no solution.*expected a solvable puzzle"):
    sudoku.validate_puzzle(_no_candidate_puzzle(), name="hole")
  multi = np.zeros((9, 9), np.int8)
  multi[0] = np.arange(1, 10)
  # Not unique: accepted unless uniqueness is required.
  assert sudoku.validate_puzzle(multi)[0].tolist() == list(range(1, 10))
  with pytest.raises(ValueError, match=r"more than one solution.*expected a unique one"):
    sudoku.validate_puzzle(multi, name=0, require_unique=True)
  bad = _board(ARTO)
  bad[8, 8] = 11
  with pytest.raises(ValueError, match=r"value 11 at row 9 column 9; expected integers 0"):
    sudoku.validate_puzzle(bad)
  with pytest.raises(ValueError, match=r"has 80 cells.*expected 81"):
    sudoku.validate_puzzle(np.zeros(80, np.int8), name="short")
  sol = sudoku.validate_puzzle(SEVENTEEN, name="17", require_unique=True)
  assert sudoku.solution_consistent(_board(SEVENTEEN), sol)


# ---- generator and shipped sets ------------------------------------------------------------------


def test_generator_deterministic_and_unique():
  p1, s1 = sudoku.generate(4, 24, 30, seed=7)
  p2, s2 = sudoku.generate(4, 24, 30, seed=7)
  np.testing.assert_array_equal(p1, p2)
  np.testing.assert_array_equal(s1, s2)
  p3, _ = sudoku.generate(2, 24, 30, seed=7, start=2)  # puzzle i depends on (seed, i) only
  np.testing.assert_array_equal(p3, p1[2:])
  p4, _ = sudoku.generate(4, 24, 30, seed=8)
  assert not np.array_equal(p1, p4)
  assert p1.dtype == np.int8 and p1.shape == (4, 9, 9)
  assert sudoku.solution_consistent(p1, s1).all()
  assert ((p1 > 0).sum((1, 2)) <= 30).all()
  for puzzle, solution in zip(p1, s1):
    sols = sudoku.solve(puzzle)
    assert len(sols) == 1
    np.testing.assert_array_equal(sols[0], solution)
  with pytest.raises(ValueError, match=r"givens range \[12, 30\]"):
    sudoku.generate(1, 12, 30, seed=0)


def test_generator_reaches_low_givens_with_unique_solutions():
  puzzles, solutions = sudoku.generate(2, 20, 22, seed=5, method=sudoku.LOW)
  assert ((puzzles > 0).sum((1, 2)) <= 22).all()
  greedy, _ = sudoku.generate(2, 20, 22, seed=5)  # the same grids without the search stop higher
  assert ((greedy > 0).sum((1, 2)) >= (puzzles > 0).sum((1, 2))).all()
  symmetric, sym_solutions = sudoku.generate(
      2, 23, 26, seed=6, method=sudoku.Method(search=20, symmetric=True))
  given = symmetric > 0
  np.testing.assert_array_equal(given, given[:, ::-1, ::-1])  # 180-degree symmetric pattern
  for puzzle, solution in zip([*puzzles, *symmetric], [*solutions, *sym_solutions]):
    sols = sudoku.solve(puzzle, max_solutions=2)  # the exact solver: exactly one solution
    assert len(sols) == 1
    np.testing.assert_array_equal(sols[0], solution)


def test_generate_set_keeps_only_its_band():
  spec = dict(seed=9, min_givens=27, max_givens=28, num_train=0, num_test=5, band=True)
  puzzles, solutions = sudoku.generate_set(spec)
  givens = (puzzles > 0).sum((1, 2))
  assert len(puzzles) == 5 and givens.min() >= 27 and givens.max() <= 28
  assert sudoku.solution_consistent(puzzles, solutions).all()


@pytest.mark.parametrize("name", ["satnet_like", "hard", *sudoku.BANDS])
def test_shipped_sets(name):
  spec = sudoku.GENERATED_SETS[name]
  with sudoku.asset_path(name).open("rb") as f, np.load(f) as z:
    assert z["puzzles"].dtype == np.uint8 and z["puzzles"].shape[1] == 81
    assert int(z["seed"]) == spec["seed"]
    assert int(z["generator_version"]) == sudoku.GENERATOR_VERSION
  data = sudoku.load_generated(name)
  assert len(data["train"][0]) == spec["num_train"] and len(data["test"][0]) == spec["num_test"]
  puzzles = np.concatenate([data["train"][0], data["test"][0]])
  solutions = np.concatenate([data["train"][1], data["test"][1]])
  assert sudoku.solution_consistent(puzzles, solutions).all()
  givens = (puzzles > 0).sum((1, 2))
  assert givens.max() <= spec["max_givens"] and givens.min() >= 17
  if name == "satnet_like":
    assert givens.min() == spec["min_givens"]
  if spec.get("band"):  # exactly its band (band_le22 reaches 21 givens, not 20)
    assert givens.min() >= spec["min_givens"] and givens.max() <= spec["max_givens"]
  assert len({sudoku.board_string(p) for p in puzzles}) == len(puzzles)  # no duplicates
  for k in np.random.default_rng(0).choice(len(puzzles), 50, replace=False):
    sols = sudoku.solve(puzzles[k], max_solutions=2)
    assert len(sols) == 1, f"{name} puzzle {k} is not unique"
    np.testing.assert_array_equal(sols[0], solutions[k])


# ---- readers -------------------------------------------------------------------------------------


def _some_boards(n):
  puzzles, solutions = sudoku.load_generated("satnet_like")["train"]
  puzzles = puzzles[:n].copy()
  puzzles[0, 0, 0] = 0  # a blank first cell: a leading zero in the CSV
  return puzzles, solutions[:n].copy()


def _write_satnet(path, puzzles, solutions, **extra):
  np.savez(path, features=sudoku.to_one_hot(puzzles).astype(np.uint8),
           labels=sudoku.to_one_hot(solutions).astype(np.uint8), **extra)


def test_read_satnet(tmp_path):
  puzzles, solutions = _some_boards(5)
  _write_satnet(tmp_path / "satnet.npz", puzzles, solutions)
  got_p, got_s = sudoku.read_satnet(str(tmp_path))
  np.testing.assert_array_equal(got_p, puzzles)
  np.testing.assert_array_equal(got_s, solutions)
  assert got_p.dtype == np.int8


def test_read_satnet_errors(tmp_path):
  (tmp_path / "features.pt").write_bytes(b"not a pickle we would ever load")
  with pytest.raises(FileNotFoundError) as err:
    sudoku.read_satnet(str(tmp_path))
  assert sudoku.SATNET_CONVERT_COMMAND in str(err.value) and "features.pt" in str(err.value)
  puzzles, solutions = _some_boards(4)
  np.savez(tmp_path / "satnet.npz", features=sudoku.to_one_hot(puzzles))
  with pytest.raises(ValueError, match=r"lacks arrays \['labels'\]"):
    sudoku.read_satnet(str(tmp_path))
  feats = sudoku.to_one_hot(puzzles)
  feats[2, 4, 4] = 1  # all nine digits at once
  np.savez(tmp_path / "satnet.npz", features=feats, labels=sudoku.to_one_hot(solutions))
  with pytest.raises(ValueError, match=r"board 2: features is not one-hot"):
    sudoku.read_satnet(str(tmp_path / "satnet.npz"))
  wrong = solutions.copy()
  wrong[3] = solutions[1]  # a valid grid, but not the one that keeps puzzle 3's givens
  _write_satnet(tmp_path / "satnet.npz", puzzles, wrong)
  with pytest.raises(ValueError, match=r"board 3: puzzle .* has given .* expected the solution"):
    sudoku.read_satnet(str(tmp_path))
  (tmp_path / "satnet.npz").write_bytes(np.random.default_rng(0).bytes(4096))  # random bytes
  with pytest.raises(ValueError, match=r"satnet\.npz' is not a readable \.npz archive"):
    sudoku.read_satnet(str(tmp_path))
  np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object))  # pickled objects
  os.replace(tmp_path / "objects.npy", tmp_path / "satnet.npz")
  with pytest.raises(ValueError, match="is not a readable .npz archive"):
    sudoku.read_satnet(str(tmp_path))


def _write_csv(path, puzzles, solutions, extra_lines=()):
  lines = [f"{sudoku.board_string(p)},{sudoku.board_string(s)}" for p, s in zip(puzzles, solutions)]
  path.write_text("\n".join(lines + list(extra_lines)) + "\n")


def test_read_rrn_csv(tmp_path):
  puzzles, solutions = _some_boards(6)
  _write_csv(tmp_path / "test.csv", puzzles, solutions)
  assert (tmp_path / "test.csv").read_text().startswith("0")
  got_p, got_s = sudoku.read_rrn_csv(str(tmp_path / "test.csv"))
  np.testing.assert_array_equal(got_p, puzzles)  # the leading zero survived
  np.testing.assert_array_equal(got_s, solutions)


@pytest.mark.parametrize("bad_line, problem", [
    ("1" * 80 + "," + ARTO_SOLUTION, r"row 4: .* is malformed; expected 'quiz,solution'"),
    (ARTO + "," + ARTO_SOLUTION + ",1", r"row 4: .* is malformed"),
    (ARTO.replace("8", "a", 1) + "," + ARTO_SOLUTION, r"row 4: .* is malformed"),
    (ARTO + "," + ARTO_SOLUTION[:-1] + "5", r"row 4: solution .* is not a complete valid grid "
     r"\(digit 5 appears twice in row 9 \(columns 8 and 9\)"),
    (ARTO.replace("8", "9", 1) + "," + ARTO_SOLUTION,
     r"row 4: puzzle .* has given 9 at row 1 column 1"),
])
def test_read_rrn_csv_errors(tmp_path, bad_line, problem):
  puzzles, solutions = _some_boards(3)
  _write_csv(tmp_path / "test.csv", puzzles, solutions, [bad_line])
  with pytest.raises(ValueError, match=problem) as err:
    sudoku.read_rrn_csv(str(tmp_path / "test.csv"))
  assert "test.csv" in str(err.value)


# ---- tfds builders -------------------------------------------------------------------------------


def test_generated_builder_tiny(tmp_path):
  train = data.open_split("sudoku_generated", "tiny", "train", data_dir=str(tmp_path))
  test = data.open_split("sudoku_generated", "tiny", "test", data_dir=str(tmp_path))
  assert len(train) == 256 and len(test) == 64
  shipped = sudoku.load_generated("satnet_like")
  for split, src in (("train", train), ("test", test)):
    for k in (0, 5, len(src) - 1):
      ex = src[k]
      assert ex["puzzle"].dtype == np.int8 and ex["puzzle"].shape == (9, 9)
      np.testing.assert_array_equal(ex["puzzle"], shipped[split][0][k])
      np.testing.assert_array_equal(ex["solution"], shipped[split][1][k])


def test_mixed_tiny_builder(tmp_path):
  train = data.open_split("sudoku_generated", "mixed_tiny", "train", data_dir=str(tmp_path))
  test = data.open_split("sudoku_generated", "mixed_tiny", "test", data_dir=str(tmp_path))
  assert len(train) == 256 and len(test) == 3 * 16
  train_puzzles = np.stack([train[k]["puzzle"] for k in range(len(train))])
  test_puzzles = np.stack([test[k]["puzzle"] for k in range(len(test))])
  givens = (train_puzzles > 0).sum((1, 2))
  assert givens.min() >= 20 and givens.max() <= 42 and givens.max() - givens.min() >= 12
  test_givens = (test_puzzles > 0).sum((1, 2))
  assert test_givens[:16].max() <= 22 and test_givens[16:32].min() >= 23
  assert not {sudoku.board_string(p) for p in train_puzzles} & {
      sudoku.board_string(p) for p in test_puzzles}  # held apart
  band = data.open_split("sudoku_generated", "band_le22", "test", data_dir=str(tmp_path))
  np.testing.assert_array_equal(band[3]["puzzle"], test[3]["puzzle"])


def test_satnet_builder(tmp_path, monkeypatch):
  monkeypatch.setattr(sudoku.builders, "SATNET_SPLITS", {"train": slice(0, 6), "test": slice(6, 8)})
  puzzles, solutions = _some_boards(8)
  manual = tmp_path / "manual"
  manual.mkdir()
  data_dir = str(tmp_path / "tfds")
  with pytest.raises(common.DatasetNotPreparedError, match="sudoku_satnet"):
    data.open_split("sudoku_satnet", None, "test", data_dir=data_dir)
  _write_satnet(manual / "satnet.npz", puzzles, solutions)
  common.build(sudoku.SudokuSatnet, data_dir_=data_dir, manual_dir=str(manual))
  test = data.open_split("sudoku_satnet", None, "test", data_dir=data_dir)
  train = data.open_split("sudoku_satnet", None, "train", data_dir=data_dir)
  assert len(test) == 2 and len(train) == 6
  np.testing.assert_array_equal(test[1]["puzzle"], puzzles[7])
  np.testing.assert_array_equal(test[1]["solution"], solutions[7])


def test_rrn_builder(tmp_path):
  puzzles, solutions = _some_boards(7)
  manual = tmp_path / "manual"
  manual.mkdir()
  _write_csv(manual / "train.csv", puzzles[:4], solutions[:4])
  _write_csv(manual / "test.csv", puzzles[4:], solutions[4:])
  data_dir = str(tmp_path / "tfds")
  builder = common.build(sudoku.SudokuRrn, data_dir_=data_dir, manual_dir=str(manual))
  assert set(builder.info.splits) == {"train", "test"}  # no valid.csv, no valid split
  train = data.open_split("sudoku_rrn", None, "train", data_dir=data_dir)
  test = data.open_split("sudoku_rrn", None, "test", data_dir=data_dir)
  assert len(train) == 4 and len(test) == 3
  np.testing.assert_array_equal(train[0]["puzzle"], puzzles[0])  # leading-zero row
  np.testing.assert_array_equal(test[2]["solution"], solutions[6])


def test_open_split_unknown_name():
  with pytest.raises(ValueError, match=r"Unknown dataset 'sudoku_satent'.*did you mean 'sudoku_satnet'"):
    data.open_split("sudoku_satent", None, "train")
