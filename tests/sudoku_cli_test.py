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
    self.embed = nnx.Embed(10, 2, rngs=nnx.Rngs(0))  # voting draws x_init [B, 9, 9, 2]

  def __call__(self, puzzle, *, key=None, x_init=None, steps=None):
    match = jnp.all(self.puzzles[...][None] == puzzle[:, None], axis=(2, 3)).astype(jnp.int32)
    board = jnp.einsum("bn,nij->bij", match, self.solutions[...])
    if self.broken:
      board = board.at[:, 0].set(jnp.roll(board[:, 0], 1, axis=-1))
    if x_init is None:
      x_init = jax.random.normal(key, (puzzle.shape[0], 9, 9, 2))
    energy = x_init.reshape(puzzle.shape[0], -1)[:, :3].T  # [T+1 = 3, B]
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
  assert rc == 2 and "--config=sudoku_akorn" in capsys.readouterr().err


@pytest.mark.parametrize("arg", ["--K=0", "--chunk=-1", "--chunk=0", "--steps=0", "--steps=-3",
                                 "--check_nodes=0", "--K=many"])
def test_bad_numbers_are_refused_by_the_parser(arg, capsys):
  with pytest.raises(SystemExit) as e:
    cli.main(["solve", "0" * 81, arg])
  assert e.value.code == 2 and f"{arg.split('=')[0]}={arg.split('=')[1]!r}: expected a whole number >= 1" in capsys.readouterr().err


def test_usage_errors(capsys):
  assert cli.main(["solve", "--weights_dir=/nonexistent"]) == 2
  assert "No puzzle given" in capsys.readouterr().err


def test_bad_files_are_named_and_exit_2(tmp_path, capsys):
  rc = cli.main(["solve", f"--file={tmp_path}", "--weights_dir=/nonexistent"])
  assert rc == 2 and f"--file='{tmp_path}' is a directory" in capsys.readouterr().err
  rc = cli.main(["solve", f"--file={tmp_path / 'missing.txt'}", "--weights_dir=/nonexistent"])
  err = capsys.readouterr().err
  assert rc == 2 and "missing.txt" in err and "cannot open it" in err
  latin1 = tmp_path / "latin1.txt"
  latin1.write_bytes(b"# caf\xe9\n" + b"0" * 81 + b"\n")
  rc = cli.main(["solve", f"--file={latin1}", "--weights_dir=/nonexistent"])
  err = capsys.readouterr().err
  assert rc == 2 and str(latin1) in err and "not UTF-8" in err


def test_bom_and_trailing_comments_are_accepted(boards, monkeypatch, capsys, tmp_path):
  _use_model(monkeypatch, Lookup(*boards), tmp_path)
  puzzles_file = tmp_path / "bom.txt"
  puzzles_file.write_bytes("\ufeff".encode() + f"{sudoku_data.board_string(boards[0][0])}  # the first\n".encode())
  rc = cli.main(["solve", f"--file={puzzles_file}", "--K=2", "--steps=2", "--json"])
  record = json.loads(capsys.readouterr().out)
  assert rc == 0 and record["solved"] and record["name"] == f"{puzzles_file}:1"


HOSTILE = ".....5.8....6.1.43..........1.5........1.6...3.......553.....61........4........."


def test_hostile_puzzle_is_inconclusive_within_the_node_budget(capsys):
  # 18 givens, no solution: the exact search would run for minutes. The check stops after
  # --check_nodes search nodes (counted, not timed) and names the puzzle.
  with pytest.raises(sudoku_data.SearchBudgetExceeded, match="2000 search nodes"):
    sudoku_data.solve(sudoku_data.parse_puzzle(HOSTILE), max_solutions=1, max_nodes=2000)
  rc = cli.main(["solve", HOSTILE, "--weights_dir=/nonexistent", "--check_nodes=2000"])
  err = capsys.readouterr().err
  assert rc == 2 and "inconclusive" in err and "2000 search nodes" in err
  assert f"Puzzle '#1' ('{HOSTILE.replace('.', '0')}')" in err


def test_request_that_cannot_fit_is_refused_with_the_numbers(weights_dir, monkeypatch, capsys):
  monkeypatch.setattr(cli, "_free_memory", lambda: (10**9, None))  # 1 GB free, CPU-like
  # The answers alone: 1e8 starts x 89 bytes, refused before compiling anything.
  rc = cli.main(["solve", sudoku_data.EXAMPLE_PUZZLE, "--K=100000000", f"--weights_dir={weights_dir}"])
  err = capsys.readouterr().err
  assert rc == 2 and "needs about 8.9" in err and "1.00 GB is free" in err and "--K=100000000" in err
  # The forward pass: XLA's estimate for 8192 rows of the tiny model exceeds a 0.1 GB budget.
  monkeypatch.setattr(cli, "_free_memory", lambda: (10**8, None))
  rc = cli.main(["solve", sudoku_data.EXAMPLE_PUZZLE, "--K=8192", "--chunk=8192", "--steps=2",
                 f"--weights_dir={weights_dir}"])
  err = capsys.readouterr().err
  assert rc == 2 and "for a forward pass of 8192 rows" in err and "0.10 GB is free" in err


def test_export_needs_out_and_spares_the_shipped_model(tmp_path, capsys):
  with pytest.raises(SystemExit) as e:
    cli.main(["export", f"--workdir={tmp_path}"])
  assert e.value.code == 2 and "--out" in capsys.readouterr().err
  before = open(os.path.join(cli.DEFAULT_WEIGHTS, "SHA256SUMS")).read()
  rc = cli.main(["export", f"--workdir={tmp_path}", f"--out={cli.DEFAULT_WEIGHTS}"])
  assert rc == 2 and "inside the installed package" in capsys.readouterr().err
  assert open(os.path.join(cli.DEFAULT_WEIGHTS, "SHA256SUMS")).read() == before
  # --force passes the guard (and then fails here only because the workdir holds no run).
  rc = cli.main(["export", f"--workdir={tmp_path}", f"--out={cli.DEFAULT_WEIGHTS}", "--force"])
  err = capsys.readouterr().err
  assert rc == 2 and "inside the installed package" not in err and "config.json" in err


# The child's own peak RSS is VmHWM of /proc/self/status (the high-water mark of its address space
# after exec). Not getrusage's ru_maxrss: Linux carries that over from the parent across fork and
# exec, so inside the test suite it reported the pytest worker's gigabytes, not the solver's.
STREAM = """
import sys
sys.path.insert(0, {root!r})
from experiments import sudoku
rc = sudoku.main(sys.argv[1:])
with open("/proc/self/status") as f:
  hwm = [line.split()[1] for line in f if line.startswith("VmHWM:")][0]
print("maxrss_kb", hwm, file=sys.stderr)
sys.exit(rc)
"""


def test_large_file_streams_block_by_block(weights_dir, tmp_path):
  # 10,000 puzzles through a named pipe at K=1, 16 rows per pass. The test writes one block, then
  # waits for its answers before writing the rest: a solver that reads (or checks) the whole file
  # first never answers and the test fails at the timeout. Memory is bounded (stated in README).
  import subprocess, sys, threading  # pylint: disable=import-outside-toplevel,multiple-imports
  puzzles, _ = sudoku_data.load_generated("satnet_like")["test"]
  lines = [sudoku_data.board_string(puzzles[i % len(puzzles)]) + "\n" for i in range(10_000)]
  fifo = str(tmp_path / "puzzles.fifo")
  os.mkfifo(fifo)
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  proc = subprocess.Popen(
      [sys.executable, "-c", STREAM.format(root=root), "solve", f"--file={fifo}", "--K=1",
       "--chunk=16", "--steps=2", "--json", f"--weights_dir={weights_dir}"],
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=root)
  stderr, first_read = [], threading.Event()
  threading.Thread(target=lambda: stderr.extend(proc.stderr), daemon=True).start()

  def write():
    with open(fifo, "w") as pipe:
      pipe.writelines(lines[:16])
      pipe.flush()
      first_read.wait()  # the rest only once the first answer is out
      pipe.writelines(lines[16:])

  writer = threading.Thread(target=write, daemon=True)
  writer.start()
  timer = threading.Timer(300, proc.kill)  # a hang fails the test instead of blocking the suite
  timer.start()
  try:
    first = json.loads(proc.stdout.readline() or "null")  # answered while the pipe is still open
    assert first is not None and first["name"] == f"{fifo}:1" and first["K"] == 1
    assert writer.is_alive()  # the file is not complete yet
    first_read.set()
    records = [first] + [json.loads(line) for line in proc.stdout]
    proc.wait()
  finally:
    first_read.set()
    timer.cancel()
  err = "".join(stderr)
  assert proc.returncode in (0, 1), err[-2000:]
  assert [r["name"] for r in records] == [f"{fifo}:{i}" for i in range(1, 10_001)]
  assert "[sudoku] 16 puzzle(s) done" in err and "[sudoku] 10000 puzzle(s) done" in err  # first, last
  maxrss_mb = int(err.split("maxrss_kb")[1].split()[0]) / 1024
  # Measured 0.5-0.6 GB (1 or 8 devices; 500 or 2,000 puzzles alike: memory does not grow with
  # the file). The README states 1 GB.
  assert maxrss_mb < 1000, f"peak RSS {maxrss_mb:.0f} MB"


def test_shipped_checkpoint_solves_the_demo_puzzle(capsys):
  # The package's own weights (the H200 run of configs/sudoku_akorn.py, results/sudoku.md): the
  # checksums verify, the model loads, and it completes the demo's puzzle from the rules alone.
  restore.verify_checksums(cli.DEFAULT_WEIGHTS)
  rc = cli.main(["solve", sudoku_data.EXAMPLE_PUZZLE, "--K=2", "--json"])
  record = json.loads(capsys.readouterr().out)
  answer = sudoku_data.parse_puzzle(record["answer"])
  assert rc == 0 and record["solved"] and record["valid_grid"]
  assert sudoku_data.solution_consistent(sudoku_data.parse_puzzle(sudoku_data.EXAMPLE_PUZZLE), answer)


def test_malformed_or_uppercase_sums_and_random_npz(weights_dir, tmp_path, capsys):
  from akorn_jax.train import checkpoint as ckpt_lib  # pylint: disable=import-outside-toplevel
  folder = str(tmp_path / "w")
  shutil.copytree(weights_dir, folder)
  sums = os.path.join(folder, "SHA256SUMS")
  text = open(sums).read()
  with open(sums, "w") as f:  # sha256sum -c accepts uppercase hex and '*' binary markers
    f.write(text.upper().replace("  WEIGHTS.NPZ", " *weights.npz").replace("  CONFIG.JSON", "  config.json"))
  rc = cli.main(["solve", sudoku_data.EXAMPLE_PUZZLE, "--K=1", "--steps=2", f"--weights_dir={folder}"])
  assert rc in (0, 1), capsys.readouterr().err
  capsys.readouterr()
  with open(sums, "w") as f:
    f.write("not a checksum line\n")
  rc = cli.main(["solve", sudoku_data.EXAMPLE_PUZZLE, f"--weights_dir={folder}"])
  err = capsys.readouterr().err
  assert rc == 2 and "SHA256SUMS:1: malformed line 'not a checksum line'" in err
  with open(os.path.join(folder, "weights.npz"), "wb") as f:  # random bytes, signed again
    f.write(np.random.default_rng(0).bytes(2048))
  ckpt_lib.write_checksums(folder)
  rc = cli.main(["solve", sudoku_data.EXAMPLE_PUZZLE, f"--weights_dir={folder}"])
  err = capsys.readouterr().err
  assert rc == 2 and "weights.npz' is not a readable .npz archive" in err and "pickle" not in err
