"""Solve Sudoku puzzles with a trained AKOrN, or export a trained run's weights for shipping.

  akorn-sudoku solve 000000010400000000020000000000050407008000300001090000300400200050100000000806000
  akorn-sudoku solve --file=puzzles.txt --K=16 --steps=128 --json
  akorn-sudoku solve --workdir=runs/sudoku_akorn PUZZLE [--config=sudoku_akorn]
  akorn-sudoku export --workdir=runs/sudoku_akorn [--config=...] --out=DIR
(`python -m experiments.sudoku ...` in a checkout is the same command.)

Puzzles are 81 cells ('1'-'9', '0' or '.' for blanks; spaces and '|', '-', '+' are ignored), given
as arguments or in a UTF-8 file (one per line, a BOM is fine; '#' starts a comment, also after a
puzzle; for 'quiz,solution' CSV rows the quiz is read). Puzzles stream through in blocks of one
forward pass (--chunk rows = puzzles x K starts): each block is read, checked, solved and printed
before the next is read, so answers appear at once and memory does not grow with the file; on a
non-terminal stderr each block logs a progress line. Every puzzle is checked before it runs: a
malformed or unsolvable one stops the run with exit code 2 and a message naming it (the answers
of the blocks before it are already printed). Whether a puzzle has a solution is decided by the
exact solver within --check_nodes search nodes (default 20,000; any real puzzle needs a few
hundred); a puzzle it cannot decide within them also stops the run with exit code 2, as
inconclusive. Before anything runs, the memory of one block is estimated (XLA's figure for the
compiled forward pass plus the answers kept on the host) and a request that cannot fit is
refused with the number it would need.

Each puzzle runs from K random initial states (default 16, T = 128); the answer is the most
confident start ("confidence": the highest mean top probability over the blank cells; --vote=sum
picks the lowest energy summed over the steps, the reference's reported setting,
docs/evaluation.md#energy-voting; see akorn_jax.evaluate.sudoku). The defaults come from the
accuracy/time curve on the hardest givens band in results/sudoku.md. The answer is the model's own: it is checked against every
row, column, box and given, and reported as NOT solved when it breaks one. There is no silent
fallback to the exact solver; --check also prints the exact solver's answer, labelled as such.

Weights: by default the EMA checkpoint shipped in akorn_jax/assets/sudoku_akorn/ (SHA-256 checked);
with --workdir the latest EMA weights of a training run (its config as the run saved it, or
--config).

Exit codes: 0 every puzzle solved; 1 some model answer breaks a rule (the run completed); 2 bad
input: an argument, a file, a puzzle (malformed, unsolvable, or its check inconclusive), weights
that fail their checks, or a request that does not fit in memory.
"""

from __future__ import annotations

import argparse
import importlib.resources
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence

import jax
import ml_collections
import numpy as np

from akorn_jax import compute, config_loader
from akorn_jax.data import sudoku as sudoku_data
from akorn_jax.evaluate import sudoku as sudoku_eval
from akorn_jax.train import restore

PACKAGE_DIR = str(importlib.resources.files("akorn_jax"))
DEFAULT_WEIGHTS = os.path.join(PACKAGE_DIR, "assets", "sudoku_akorn")
CHECK_NODES = 20_000
MEMORY_FRACTION = 0.9  # refuse a request estimated above this share of the free memory


# ------------------------------------------------------------------------------------------------
# Input: puzzles from the arguments and --file, streamed in checked blocks
# ------------------------------------------------------------------------------------------------


def _puzzle_texts(args: argparse.Namespace) -> Iterator[tuple[str, str]]:
  """(name, text) of every puzzle given, the file read lazily; ValueError names a bad file."""
  for i, text in enumerate(args.puzzles):
    yield f"#{i + 1}", text
  if not args.file:
    return
  try:
    f = open(args.file, encoding="utf-8-sig")  # pylint: disable=consider-using-with
  except IsADirectoryError as e:
    raise ValueError(f"--file={args.file!r} is a directory; expected a text file with one puzzle "
                     "per line.") from e
  except OSError as e:
    raise ValueError(f"--file={args.file!r}: cannot open it ({e.strerror}); expected a readable "
                     "text file with one puzzle per line.") from e
  line_no = 0
  with f:
    try:
      for line_no, line in enumerate(f, 1):
        text = line.split("#", 1)[0].strip()
        if text:
          yield f"{args.file}:{line_no}", text.split(",")[0]
    except UnicodeDecodeError as e:
      raise ValueError(f"--file={args.file!r}: not UTF-8 text after line {line_no} ({e.reason}, "
                       f"byte {e.object[e.start:e.start + 1]!r}); expected a UTF-8 text file with "
                       "one puzzle per line. Re-save it as UTF-8.") from e
    except OSError as e:
      raise ValueError(f"--file={args.file!r}: read error after line {line_no} ({e}).") from e


def _checked(texts: Iterator[tuple[str, str]], check_nodes: int
             ) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
  """(name, puzzle, exact solution) per puzzle; ValueError names a malformed or unsolvable one."""
  for name, text in texts:
    board = sudoku_data.parse_puzzle(text, name=name)
    yield name, board, sudoku_data.validate_puzzle(board, name=name, max_nodes=check_nodes)


def _blocks(items: Iterator, size: int) -> Iterator[list]:
  block = []
  for item in items:
    block.append(item)
    if len(block) == size:
      yield block
      block = []
  if block:
    yield block


# ------------------------------------------------------------------------------------------------
# Model and memory
# ------------------------------------------------------------------------------------------------


def _load_config(args: argparse.Namespace) -> ml_collections.ConfigDict:
  """The experiment config of --workdir: the one the run saved, else --config=SPEC."""
  if args.config is not None:
    return config_loader.load(args.config)
  try:
    return restore.read_config(args.workdir)
  except FileNotFoundError as e:
    raise ValueError(f"{e} E.g. --config=sudoku_akorn (a built-in config, or sudoku_akorn:tiny) "
                     "or --config=configs/sudoku_akorn.py (a file).") from e


def _load_model(args: argparse.Namespace):
  """(model, model config) from --workdir or the exported weights folder."""
  if args.workdir:
    config = _load_config(args)
    model, _ = restore.load_model(config, args.workdir)
    return model, config.model.to_dict()
  folder = args.weights_dir
  if not os.path.isdir(folder):
    raise FileNotFoundError(f"No exported Sudoku checkpoint in {folder!r}; pass --workdir=DIR of a "
                            "trained run, or export one with `akorn-sudoku export`.")
  return restore.load_exported(folder)


def _free_memory() -> tuple[int | None, int | None]:
  """(free host bytes, free accelerator bytes); None where unknown (the CPU backend has no
  separate device memory: its arrays live in host memory)."""
  host = None
  try:
    with open("/proc/meminfo", encoding="ascii") as f:
      info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f if line.strip()}
    host = info.get("MemAvailable")
    with open("/sys/fs/cgroup/memory.max", encoding="ascii") as f:  # a container's own limit
      limit = f.read().strip()
    with open("/sys/fs/cgroup/memory.current", encoding="ascii") as f:
      used = int(f.read())
    if limit != "max" and host is not None:
      host = min(host, int(limit) - used)
  except (OSError, ValueError):
    pass
  device = None
  if jax.default_backend() != "cpu":
    stats = jax.local_devices()[0].memory_stats() or {}
    if "bytes_limit" in stats:
      device = stats["bytes_limit"] - stats.get("bytes_in_use", 0)
  return host, device


def _gb(num_bytes: float) -> str:
  return f"{num_bytes / 1e9:.2f} GB"


def _check_memory(model, args: argparse.Namespace, *, key, num_starts: int, block: int,
                  votes: tuple[str, ...]) -> int:
  """Estimates one block's memory, refuses what cannot fit, and compiles the forward pass.

  Host: per (puzzle, start) row its answer (81 bytes) and scores (4 bytes each), per chunk row
  the gathered boards and indices. Device: XLA's own figure for the compiled pass of a chunk.
  The host part is checked before compiling, so an absurd K fails at once.

  Returns:
    the rows per forward pass (the chunk `run_starts` will use).

  Raises:
    ValueError: the estimate exceeds MEMORY_FRACTION of the free memory, with the numbers.
  """
  rows = block * num_starts
  chunk = min(args.chunk, rows)
  host = rows * (81 + 4 * len(votes)) + chunk * (81 * 4 + 3 * 8 + 81 + 4 * len(votes))
  free_host, free_device = _free_memory()
  advice = "Lower --K or --chunk (rows per forward pass)."

  def refuse(need: float, free: float, where: str, detail: str):
    raise ValueError(f"--K={num_starts} --chunk={args.chunk}: solving needs about {_gb(need)} of "
                     f"{where} memory ({detail}) but {_gb(free)} is free. {advice}")

  answers = (f"{_gb(host)} for the answers and scores of {block} puzzle(s) x {num_starts} "
             "start(s) per block")
  if free_host is not None and host > MEMORY_FRACTION * free_host:
    refuse(host, free_host, "host", answers)
  device = sudoku_eval.compile_runner(model, key=key, steps=args.steps, num_rows=chunk,
                                      vote_types=votes)
  if device is not None:
    detail = f"{_gb(device)} for a forward pass of {chunk} rows"
    if free_device is not None and device > MEMORY_FRACTION * free_device:
      refuse(device, free_device, "accelerator", detail)
    if free_device is None and free_host is not None and host + device > MEMORY_FRACTION * free_host:
      refuse(host + device, free_host, "host", f"{detail}, plus {answers}")
  return chunk


# ------------------------------------------------------------------------------------------------
# Solve
# ------------------------------------------------------------------------------------------------


def _broken_units(board: np.ndarray) -> int:
  """How many of the 27 rows, columns and boxes of a [9, 9] board miss a digit 1..9."""
  oh = sudoku_data.to_one_hot(board)  # [9, 9, 9]: row, column, digit
  boxes = oh.reshape(3, 3, 3, 3, 9).sum((1, 3))
  return int(sum((count != 1).any(-1).sum() for count in (oh.sum(1), oh.sum(0), boxes)))


def _report(record: dict, puzzle: np.ndarray, answer: np.ndarray, exact: np.ndarray,
            args: argparse.Namespace, deterministic: bool) -> None:
  """Prints one puzzle's result: a JSON line, or the grids and the verdict."""
  if args.json:
    print(json.dumps(record))
    return
  print(f"Puzzle {record['name']} ({int((puzzle > 0).sum())} givens):")
  print(sudoku_data.format_board(puzzle))
  print(f"\nModel answer ({record['model']}, K={record['K']} starts, T={args.steps} steps, "
        f"vote {record['vote']!r}):")
  print(sudoku_data.format_board(answer))
  if record["solved"]:
    print("Check: SOLVED - every row, column and box holds 1-9 once and all givens are kept.")
  else:
    changed = record["changed_givens"]
    problems = ([f"{_broken_units(answer)} of 27 rows/columns/boxes do not hold 1-9 once"]
                if not record["valid_grid"] else []) + (
                    [f"changes {changed} given digit(s)"] if changed else [])
    print(f"Check: NOT SOLVED - the model's answer breaks the rules: {'; '.join(problems)}.")
  energy = (f"Score {record['score']:.4f} (confidence)" if deterministic else
            f"Energy ({record['vote']}) {record['score']:.4f}, final E(x_T) "
            f"{record['final_energy']:.4f}")
  print(f"{energy}; {record['solved_starts']} of {record['K']} starts solved it.")
  if args.check:
    print("\nExact solver's answer (not the model's):")
    print(sudoku_data.format_board(exact))
    print(f"Model answer {'matches' if record['matches_exact'] else 'differs from'} the exact "
          "solver's.")
  print()


def _solve(args: argparse.Namespace) -> int:
  done, solved_count, start = 0, 0, time.perf_counter()
  progress, last_line = not sys.stderr.isatty(), None  # log lines (first block, every 5 s, last)
  try:
    block_size = max(1, args.chunk // args.K)
    blocks = _blocks(_checked(_puzzle_texts(args), args.check_nodes), block_size)
    first = next(blocks, None)  # checked before any model is loaded
    if first is None:
      raise ValueError("No puzzle given; pass 81-cell puzzles as arguments or --file=FILE.")
    model, model_config = _load_model(args)
    vote, num_starts = args.vote, args.K
    deterministic = not sudoku_eval.has_energies(model, args.steps)
    if deterministic:  # K starts would all give the same answer, and there is no energy to vote on
      vote, num_starts = "confidence", 1
    votes = ("confidence",) if deterministic else (vote, "final")
    key = jax.random.key(args.seed)
    padded_size = len(first)
    _check_memory(model, args, key=key, num_starts=num_starts, block=padded_size, votes=votes)
    block, index = first, 0
    while block is not None:
      # A short last block is padded with its first puzzle (results dropped): one compilation.
      puzzles = np.stack([b for _, b, _ in block] + [block[0][1]] * (padded_size - len(block)))
      # Start k of the i-th puzzle of block b starts from fold_in(fold_in(fold_in(key, b), i), k).
      preds, scores = sudoku_eval.run_starts(
          model, puzzles, key=jax.random.fold_in(key, index), steps=args.steps,
          num_starts=num_starts, vote_types=votes, chunk=args.chunk)
      best = np.argmin(scores[vote], axis=1)
      for i, (name, puzzle, exact) in enumerate(block):
        answer = preds[i, best[i]].astype(np.int8)
        valid = bool(sudoku_data.is_valid_solution(answer))
        changed = int(((puzzle != 0) & (puzzle != answer)).sum())
        solved = valid and changed == 0
        solved_count += solved
        record = {
            "name": name, "puzzle": sudoku_data.board_string(puzzle),
            "answer": sudoku_data.board_string(answer), "solved": solved, "valid_grid": valid,
            "changed_givens": changed, "model": model_config["name"], "K": num_starts,
            "steps": args.steps, "vote": vote, "score": float(scores[vote][i, best[i]]),
            "final_energy": None if deterministic else float(scores["final"][i, best[i]]),
            "solved_starts": int(sudoku_data.solution_consistent(puzzle, preds[i]).sum()),
        }
        if args.check:
          record.update(exact_solution=sudoku_data.board_string(exact),
                        matches_exact=bool((exact == answer).all()))
        _report(record, puzzle, answer, exact, args, deterministic)
      sys.stdout.flush()
      done += len(block)
      block, index = next(blocks, None), index + 1
      now = time.perf_counter()
      if progress and (last_line is None or now - last_line > 5 or block is None):
        print(f"[sudoku] {done} puzzle(s) done, {solved_count} solved, {now - start:.1f} s",
              file=sys.stderr, flush=True)
        last_line = now
  except (ValueError, OSError) as e:  # bad input; CheckpointError is a ValueError
    sys.stdout.flush()
    print(f"error: {e}", file=sys.stderr)
    return 2
  return 0 if solved_count == done else 1


# ------------------------------------------------------------------------------------------------
# Export
# ------------------------------------------------------------------------------------------------


def _export(args: argparse.Namespace) -> int:
  out = os.path.realpath(args.out)
  package = os.path.realpath(PACKAGE_DIR)
  if (out == package or out.startswith(package + os.sep)) and not args.force:
    print(f"error: --out={args.out!r} is inside the installed package ({package}); exporting there "
          "would replace the shipped model that `solve` uses by default. Pick another folder, or "
          "add --force if you mean to replace it.", file=sys.stderr)
    return 2
  try:
    model, model_config = _load_model(args)
  except (ValueError, OSError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  restore.export_weights(model, model_config, args.out)
  print(f"Exported {model_config['name']} to {args.out}")
  return 0


def _at_least_one(flag: str):
  def parse(text: str) -> int:
    try:
      value = int(text)
    except ValueError:
      value = None
    if value is None or value < 1:
      raise argparse.ArgumentTypeError(f"{flag}={text!r}: expected a whole number >= 1")
    return value
  return parse


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="akorn-sudoku", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  commands = parser.add_subparsers(dest="command", required=True)
  solve = commands.add_parser("solve", help="solve puzzles with the model")
  export = commands.add_parser("export", help="export a run's EMA weights (npz + config + SHA256SUMS)")
  for p in (solve, export):
    p.add_argument("--workdir", help="training run to load the latest EMA weights from")
    p.add_argument("--config", help="the run's config (built-in name[:options] or "
                   "file.py[:options]) when the workdir has no saved config")
  solve.add_argument("puzzles", nargs="*", metavar="PUZZLE", help="81 cells, '0' or '.' for blanks")
  solve.add_argument("--file", help="UTF-8 file with one puzzle per line ('#' comments)")
  solve.add_argument("--K", type=_at_least_one("--K"), default=16,
                     help="random starts per puzzle (default 16)")
  solve.add_argument("--steps", type=_at_least_one("--steps"), default=128,
                     help="Kuramoto steps T (default 128)")
  solve.add_argument("--vote", default="confidence", choices=sudoku_eval.VOTE_TYPES,
                     help="score that picks the start (default confidence)")
  solve.add_argument("--seed", type=int, default=0, help="seed of the random starts")
  solve.add_argument("--chunk", type=_at_least_one("--chunk"), default=None,
                     help="(puzzle, start) rows per forward pass, also the streaming block "
                          "(default 8192 on an accelerator, 256 on CPU)")
  solve.add_argument("--check_nodes", type=_at_least_one("--check_nodes"), default=CHECK_NODES,
                     help=f"search nodes the exact solver may spend deciding that a puzzle has a "
                          f"solution (default {CHECK_NODES})")
  solve.add_argument("--json", action="store_true", help="print one JSON object per puzzle")
  solve.add_argument("--check", action="store_true", help="also print the exact solver's answer")
  solve.add_argument("--weights_dir", default=DEFAULT_WEIGHTS, help=argparse.SUPPRESS)
  export.add_argument("--out", required=True, help="folder to write weights.npz, config.json and "
                      "SHA256SUMS to")
  export.add_argument("--force", action="store_true",
                      help="allow --out inside the installed package (replaces the shipped model)")
  args = parser.parse_args(argv)
  if args.command == "export" and not args.workdir:
    parser.error("export needs --workdir=DIR of a trained run")
  if args.command == "solve" and args.chunk is None:
    args.chunk = 256 if jax.default_backend() == "cpu" else 8192
  compute.enable_compilation_cache()
  return _solve(args) if args.command == "solve" else _export(args)


def cli() -> None:
  """The `akorn-sudoku` command."""
  sys.exit(main())


if __name__ == "__main__":
  cli()
