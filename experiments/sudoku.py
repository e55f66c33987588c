"""Solve Sudoku puzzles with a trained AKOrN, or export a trained run's weights for shipping.

  python -m experiments.sudoku solve 000000010400000000020000000000050407008000300001090000300400200050100000000806000
  python -m experiments.sudoku solve --file=puzzles.txt --K=64 --steps=128 --json
  python -m experiments.sudoku solve --workdir=runs/sudoku_akorn PUZZLE [--config=configs/sudoku_akorn.py]
  python -m experiments.sudoku export --workdir=runs/sudoku_akorn [--config=...] [--out=DIR]

Puzzles are 81 cells ('1'-'9', '0' or '.' for blanks; spaces and '|', '-', '+' are ignored), given
as arguments or in a file (one per line; '#' comments; for 'quiz,solution' CSV rows the quiz is
read). Every puzzle is checked first: a malformed or unsolvable one stops the run with exit code 2
and a message naming it.

Each puzzle runs from K random initial states; the answer is the start with the lowest energy
summed over the steps ("sum", the reference's reported setting, SPEC §6.2; --vote picks another
score, see akorn_jax.evaluate.sudoku). The answer is the model's own: it is checked against every
row, column, box and given, and reported as NOT solved when it breaks one. There is no silent
fallback to the exact solver; --check also prints the exact solver's answer, labelled as such.

Weights: by default the EMA checkpoint shipped in akorn_jax/assets/sudoku_akorn/ (SHA-256 checked);
with --workdir the latest EMA weights of a training run (its config as the run saved it, or
--config).

Exit codes: 0 every puzzle solved, 1 some answer breaks a constraint, 2 bad input or weights.
"""

from __future__ import annotations

import argparse
import importlib.resources
import importlib.util
import json
import os
import sys
from collections.abc import Sequence

import jax
import ml_collections
import numpy as np

from akorn_jax.data import sudoku as sudoku_data
from akorn_jax.evaluate import sudoku as sudoku_eval
from akorn_jax.train import restore

DEFAULT_WEIGHTS = str(importlib.resources.files("akorn_jax") / "assets" / "sudoku_akorn")


def _read_puzzles(args: argparse.Namespace) -> list[tuple[str, np.ndarray]]:
  """(name, board [9, 9]) of every puzzle given; raises ValueError naming a bad one."""
  texts = [(f"#{i + 1}", text) for i, text in enumerate(args.puzzles)]
  if args.file:
    with open(args.file) as f:
      for line_no, line in enumerate(f, 1):
        line = line.strip()
        if line and not line.startswith("#"):
          texts.append((f"{args.file}:{line_no}", line.split(",")[0]))
  if not texts:
    raise ValueError("No puzzle given; pass 81-cell puzzles as arguments or --file=FILE.")
  boards = []
  for name, text in texts:
    board = sudoku_data.parse_puzzle(text, name=name)
    sudoku_data.validate_puzzle(board, name=name)
    boards.append((name, board))
  return boards


def _load_config(args: argparse.Namespace) -> ml_collections.ConfigDict:
  """The experiment config of --workdir: the one the run saved, else --config=FILE[:ARG]."""
  if args.config is None:
    try:
      return restore.read_config(args.workdir)
    except FileNotFoundError as e:
      raise ValueError(f"{e} E.g. --config=configs/sudoku_akorn.py (or "
                       "configs/sudoku_akorn.py:tiny).") from e
  path, _, arg = args.config.partition(":")
  spec = importlib.util.spec_from_file_location("_sudoku_run_config", path)
  if spec is None or not os.path.isfile(path):
    raise ValueError(f"--config={args.config!r}: no config file {path!r}; expected a configs/*.py "
                     "file with get_config(arg), optionally followed by ':variant'.")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg or None)


def _load_model(args: argparse.Namespace):
  """(model, model config) from --workdir or the exported weights folder."""
  if args.workdir:
    config = _load_config(args)
    model, _ = restore.load_model(config, args.workdir)
    return model, config.model.to_dict()
  folder = args.weights_dir
  if not os.path.isdir(folder):
    raise FileNotFoundError(f"No exported Sudoku checkpoint in {folder!r}; pass --workdir=DIR of a "
                            "trained run, or export one with `python -m experiments.sudoku export`.")
  return restore.load_exported(folder)


def _broken_units(board: np.ndarray) -> int:
  """How many of the 27 rows, columns and boxes of a [9, 9] board miss a digit 1..9."""
  oh = sudoku_data.to_one_hot(board)  # [9, 9, 9]: row, column, digit
  boxes = oh.reshape(3, 3, 3, 3, 9).sum((1, 3))
  return int(sum((count != 1).any(-1).sum() for count in (oh.sum(1), oh.sum(0), boxes)))


def _solve(args: argparse.Namespace) -> int:
  try:
    boards = _read_puzzles(args)
    model, model_config = _load_model(args)
  except (ValueError, FileNotFoundError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  puzzles = np.stack([b for _, b in boards])
  vote, num_starts = args.vote, args.K
  deterministic = not sudoku_eval.has_energies(model, args.steps)
  if deterministic:  # K starts would all give the same answer, and there is no energy to vote on
    vote, num_starts = "confidence", 1
  votes = ("confidence",) if deterministic else (vote, "final")
  preds, scores = sudoku_eval.run_starts(model, puzzles, key=jax.random.key(args.seed),
                                         steps=args.steps, num_starts=num_starts, vote_types=votes,
                                         chunk=args.chunk)
  best = np.argmin(scores[vote], axis=1)
  all_ok = True
  for i, (name, puzzle) in enumerate(boards):
    answer = preds[i, best[i]].astype(np.int8)
    valid = bool(sudoku_data.is_valid_solution(answer))
    changed = int(((puzzle != 0) & (puzzle != answer)).sum())
    solved = valid and changed == 0
    all_ok &= solved
    record = {
        "name": name, "puzzle": sudoku_data.board_string(puzzle),
        "answer": sudoku_data.board_string(answer), "solved": solved, "valid_grid": valid,
        "changed_givens": changed, "model": model_config["name"], "K": num_starts,
        "steps": args.steps, "vote": vote, "score": float(scores[vote][i, best[i]]),
        "final_energy": None if deterministic else float(scores["final"][i, best[i]]),
        "solved_starts": int(sudoku_data.solution_consistent(puzzle, preds[i]).sum()),
    }
    if args.check:
      exact = sudoku_data.solve(puzzle, max_solutions=1)[0]
      record.update(exact_solution=sudoku_data.board_string(exact),
                    matches_exact=bool((exact == answer).all()))
    if args.json:
      print(json.dumps(record))
      continue
    print(f"Puzzle {name} ({int((puzzle > 0).sum())} givens):")
    print(sudoku_data.format_board(puzzle))
    print(f"\nModel answer ({model_config['name']}, K={num_starts} starts, T={args.steps} steps, "
          f"vote {vote!r}):")
    print(sudoku_data.format_board(answer))
    if solved:
      print("Check: SOLVED - every row, column and box holds 1-9 once and all givens are kept.")
    else:
      problems = ([f"{_broken_units(answer)} of 27 rows/columns/boxes do not hold 1-9 once"]
                  if not valid else []) + ([f"changes {changed} given digit(s)"] if changed else [])
      print(f"Check: NOT SOLVED - the model's answer breaks the rules: {'; '.join(problems)}.")
    energy = (f"Score {record['score']:.4f} (confidence)" if deterministic else
              f"Energy ({vote}) {record['score']:.4f}, final E(x_T) {record['final_energy']:.4f}")
    print(f"{energy}; {record['solved_starts']} of {num_starts} starts solved it.")
    if args.check:
      print("\nExact solver's answer (not the model's):")
      print(sudoku_data.format_board(exact))
      print(f"Model answer {'matches' if record['matches_exact'] else 'differs from'} the exact solver's.")
    print()
  return 0 if all_ok else 1


def _export(args: argparse.Namespace) -> int:
  try:
    model, model_config = _load_model(args)
  except (ValueError, FileNotFoundError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  restore.export_weights(model, model_config, args.out)
  print(f"Exported {model_config['name']} to {args.out}")
  return 0


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m experiments.sudoku", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  commands = parser.add_subparsers(dest="command", required=True)
  solve = commands.add_parser("solve", help="solve puzzles with the model")
  export = commands.add_parser("export", help="export a run's EMA weights (npz + config + SHA256SUMS)")
  for p in (solve, export):
    p.add_argument("--workdir", help="training run to load the latest EMA weights from")
    p.add_argument("--config",
                   help="the run's config file[:variant] when the workdir has no saved config")
  solve.add_argument("puzzles", nargs="*", metavar="PUZZLE", help="81 cells, '0' or '.' for blanks")
  solve.add_argument("--file", help="file with one puzzle per line")
  solve.add_argument("--K", type=int, default=64, help="random starts per puzzle (default 64)")
  solve.add_argument("--steps", type=int, default=128, help="Kuramoto steps T (default 128)")
  solve.add_argument("--vote", default="sum", choices=sudoku_eval.VOTE_TYPES,
                     help="score that picks the start (default sum)")
  solve.add_argument("--seed", type=int, default=0, help="seed of the random starts")
  solve.add_argument("--chunk", type=int, default=8192, help="(puzzle, start) rows per forward pass")
  solve.add_argument("--json", action="store_true", help="print one JSON object per puzzle")
  solve.add_argument("--check", action="store_true", help="also print the exact solver's answer")
  solve.add_argument("--weights_dir", default=DEFAULT_WEIGHTS, help=argparse.SUPPRESS)
  export.add_argument("--out", default=DEFAULT_WEIGHTS, help="folder to write (default: the package's)")
  args = parser.parse_args(argv)
  if args.command == "export" and not args.workdir:
    parser.error("export needs --workdir=DIR of a trained run")
  if args.command == "solve" and args.K < 1:
    parser.error(f"--K={args.K}; expected at least 1 random start")
  return _solve(args) if args.command == "solve" else _export(args)


if __name__ == "__main__":
  sys.exit(main())
