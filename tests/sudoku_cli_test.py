"""Tests of the Sudoku solver command line (experiments/sudoku.py), run in-process via main()."""

from __future__ import annotations

import json
import os
import shutil

import flax.nnx as nnx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from akorn_jax.data import sudoku as sudoku_data
from akorn_jax.train import restore
from akorn_jax.models import SudokuAKOrN
from experiments import sudoku as cli

TINY = {"name": "sudoku_akorn", "ch": 16, "heads": 2, "steps": 2}


@pytest.fixture(scope="module")
def boards():
  puzzles, solutions = sudoku_data.load_generated("satnet_like")["test"]
  return puzzles[:2], solutions[:2]


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
  folder = str(tmp_path_factory.mktemp("weights"))
  model = SudokuAKOrN(rngs=nnx.Rngs(0), **{k: v for k, v in TINY.items() if k != "name"})
  restore.export_weights(model, TINY, folder)
  return folder


class Lookup(nnx.Module):
  """A fake model that answers from a table of known solutions, optionally shifting row 1 by one
  column (still a permutation per row, so only columns and boxes break)."""

  def __init__(self, puzzles, solutions, *, broken: bool = False):
    self.puzzles = nnx.Variable(jnp.asarray(puzzles, jnp.int32))
    self.solutions = nnx.Variable(jnp.asarray(solutions, jnp.int32))
    self.broken = broken

  def __call__(self, puzzle, *, key, steps=None):
    match = jnp.all(self.puzzles[...][None] == puzzle[:, None], axis=(2, 3)).astype(jnp.int32)
    board = jnp.einsum("bn,nij->bij", match, self.solutions[...])
    if self.broken:
      board = board.at[:, 0].set(jnp.roll(board[:, 0], 1, axis=-1))
    energy = jax.random.uniform(key, (3, puzzle.shape[0]))
    return jax.nn.one_hot(board - 1, 9), {"energies": [energy]}


def _use_model(monkeypatch, model, folder):
  """Makes the CLI's default weights folder `folder` (it must exist) and its loader return `model`."""
  monkeypatch.setattr(cli, "DEFAULT_WEIGHTS", str(folder))
  monkeypatch.setattr(cli.restore, "load_exported", lambda folder: (model, {"name": "lookup"}))


def test_solve_with_exported_tiny_model(weights_dir, boards, capsys):
  text = sudoku_data.board_string(boards[0][0])
  rc = cli.main(["solve", text, "--K=3", "--steps=2", f"--weights_dir={weights_dir}", "--json"])
  record = json.loads(capsys.readouterr().out)
  answer = sudoku_data.parse_puzzle(record["answer"])
  assert record["name"] == "#1" and record["puzzle"] == text and record["K"] == 3
  assert record["valid_grid"] == bool(sudoku_data.is_valid_solution(answer))
  assert record["solved"] == bool(sudoku_data.solution_consistent(boards[0][0], answer))
  assert np.isfinite(record["score"]) and np.isfinite(record["final_energy"])
  assert 0 <= record["solved_starts"] <= 3
  assert rc == (0 if record["solved"] else 1)
  # Text output: the puzzle and the answer as grids, and the verdict.
  rc = cli.main(["solve", text, "--K=3", "--steps=2", f"--weights_dir={weights_dir}"])
  out = capsys.readouterr().out
  assert sudoku_data.format_board(boards[0][0]) in out
  assert sudoku_data.format_board(answer) in out
  assert ("Check: SOLVED" if record["solved"] else "Check: NOT SOLVED") in out


def test_solved_puzzles_and_exact_check(boards, monkeypatch, capsys, tmp_path):
  _use_model(monkeypatch, Lookup(*boards), tmp_path)
  puzzles_file = tmp_path / "puzzles.txt"
  puzzles_file.write_text("# two puzzles\n" + "\n".join(
      f"{sudoku_data.board_string(p)},{sudoku_data.board_string(s)}" for p, s in zip(*boards)) + "\n")
  rc = cli.main(["solve", f"--file={puzzles_file}", "--K=2", "--steps=2", "--check", "--json"])
  records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
  assert rc == 0
  assert [r["name"] for r in records] == [f"{puzzles_file}:2", f"{puzzles_file}:3"]
  for r, solution in zip(records, boards[1]):
    assert r["solved"] and r["matches_exact"] and r["solved_starts"] == 2
    assert r["answer"] == r["exact_solution"] == sudoku_data.board_string(solution)
  rc = cli.main(["solve", sudoku_data.board_string(boards[0][1]), "--K=2", "--steps=2", "--check"])
  out = capsys.readouterr().out
  assert rc == 0 and "Check: SOLVED" in out and "Exact solver's answer (not the model's)" in out


def test_broken_answer_is_reported_not_replaced(boards, monkeypatch, capsys, tmp_path):
  _use_model(monkeypatch, Lookup(*boards, broken=True), tmp_path)
  text = sudoku_data.board_string(boards[0][0])
  rc = cli.main(["solve", text, "--K=2", "--steps=2", "--json"])
  record = json.loads(capsys.readouterr().out)
  assert rc == 1 and not record["solved"] and not record["valid_grid"]
  assert record["answer"] != sudoku_data.board_string(boards[1][0])
  rc = cli.main(["solve", text, "--K=2", "--steps=2"])
  out = capsys.readouterr().out
  assert rc == 1 and "Check: NOT SOLVED" in out and "rows/columns/boxes do not hold 1-9 once" in out


@pytest.mark.parametrize("puzzle, message", [
    ("123", "has 3 cells, expected exactly 81"),
    ("x" + "0" * 80, "bad character 'x' at cell 1"),
    ("11" + "0" * 79, "digit 1 appears twice in row 1"),
])
def test_malformed_puzzles_exit_2(puzzle, message, capsys):
  # The weights folder does not exist: puzzles are checked before any model is loaded.
  rc = cli.main(["solve", "0" * 81, puzzle, "--weights_dir=/nonexistent"])
  err = capsys.readouterr().err
  assert rc == 2 and "Puzzle '#2'" in err and message in err


def test_bad_line_in_file_is_named(tmp_path, capsys):
  puzzles_file = tmp_path / "p.txt"
  puzzles_file.write_text("0" * 81 + "\n\n" + "0" * 80 + "\n")
  rc = cli.main(["solve", f"--file={puzzles_file}", "--weights_dir=/nonexistent"])
  assert rc == 2 and f"{puzzles_file}:3" in capsys.readouterr().err


def test_tampered_or_missing_weights_exit_2(weights_dir, tmp_path, capsys):
  folder = str(tmp_path / "tampered")
  shutil.copytree(weights_dir, folder)
  path = os.path.join(folder, "weights.npz")
  data = bytearray(open(path, "rb").read())
  data[len(data) // 2] ^= 0xFF
  with open(path, "wb") as f:
    f.write(data)
  rc = cli.main(["solve", "0" * 81, f"--weights_dir={folder}"])
  err = capsys.readouterr().err
  assert rc == 2 and "SHA-256 mismatch" in err and "weights.npz" in err
  rc = cli.main(["solve", "0" * 81, f"--weights_dir={tmp_path / 'none'}"])
  assert rc == 2 and "No exported Sudoku checkpoint" in capsys.readouterr().err


def test_workdir_without_config_exit_2(tmp_path, capsys):
  rc = cli.main(["solve", "0" * 81, f"--workdir={tmp_path}"])
  assert rc == 2 and "--config=configs/sudoku_akorn.py" in capsys.readouterr().err


def test_usage_errors(capsys):
  with pytest.raises(SystemExit) as e:
    cli.main(["solve", "0" * 81, "--K=0"])
  assert e.value.code == 2 and "--K=0" in capsys.readouterr().err
  assert cli.main(["solve", "--weights_dir=/nonexistent"]) == 2
  assert "No puzzle given" in capsys.readouterr().err


def test_shipped_checkpoint_solves_the_demo_puzzle(capsys):
  # The package's own weights (the H200 run of configs/sudoku_akorn.py, results/sudoku.md): the
  # checksums verify, the model loads, and it completes the demo's puzzle from the rules alone.
  restore.verify_checksums(cli.DEFAULT_WEIGHTS)
  rc = cli.main(["solve", sudoku_data.EXAMPLE_PUZZLE, "--K=2", "--json"])
  record = json.loads(capsys.readouterr().out)
  answer = sudoku_data.parse_puzzle(record["answer"])
  assert rc == 0 and record["solved"] and record["valid_grid"]
  assert sudoku_data.solution_consistent(sudoku_data.parse_puzzle(sudoku_data.EXAMPLE_PUZZLE), answer)
