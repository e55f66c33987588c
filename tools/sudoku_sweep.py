r"""Board accuracy of exported Sudoku weights over a grid of test-time steps T and starts K.

  python tools/sudoku_sweep.py --steps=16,32,64 --sets=sudoku_generated/hard:test --num_puzzles=292
  python tools/sudoku_sweep.py --weights=DIR --steps=128 --num_starts=1,4096 --num_puzzles=2 \
      --output=sweep.jsonl

One JSON line per (set, T) goes to stdout and, with --output, is appended to that file. Each line
holds the set, T_eval, the K values, every key of `akorn_jax.evaluate.sudoku.evaluate_voting`
("acc/K=1", "acc/K={K}/{vote}", "oracle/K={K}", timings), the device and the date.

--weights is a folder written by `python -m experiments.sudoku export` (default: the model shipped
in the package); export a training run first to sweep it. The results/sudoku.md test-time
extension table is `--steps=16,32,64` on 500 satnet_like and 292 hard boards, run once per set.
Needs akorn_jax importable: run from the repository root in the project's venv (`make` sets it up).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

from absl import app, flags

_WEIGHTS = flags.DEFINE_string("weights", None, "Exported weights folder (default: the shipped "
                               "akorn_jax/assets/sudoku_akorn).")
_SETS = flags.DEFINE_list("sets", ["sudoku_generated/satnet_like:test", "sudoku_generated/hard:test"],
                          "Sudoku sets, name/config:split.")
_NUM_PUZZLES = flags.DEFINE_integer("num_puzzles", 100, "First N boards of each set.")
_STEPS = flags.DEFINE_list("steps", ["16", "32", "64"], "Test-time Kuramoto steps T.")
_NUM_STARTS = flags.DEFINE_list("num_starts", ["1"], "Numbers of random starts K to report.")
_VOTES = flags.DEFINE_list("vote_types", ["last"], "Vote scores (see evaluate.sudoku.vote_scores).")
_CHUNK = flags.DEFINE_integer("chunk", 512, "(puzzle, start) rows per forward pass.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the random starts (the same starts for every T).")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "tfds data dir (default $AKORN_DATA_DIR).")
_OUTPUT = flags.DEFINE_string("output", None, "Also append the JSON lines to this file.")


def _ints(name: str, values: Sequence[str]) -> tuple[int, ...]:
  try:
    out = tuple(int(v) for v in values)
  except ValueError:
    out = ()
  if not out or min(out) < 1:
    raise app.UsageError(f"--{name}={','.join(values)}: expected positive integers, e.g. 16,32,64.")
  return out


def sweep(weights: str | None, sets: Sequence[str], num_puzzles: int, steps: Sequence[int],
          num_starts: Sequence[int], vote_types: Sequence[str], *, chunk: int = 512, seed: int = 0,
          data_dir: str | None = None):
  """Yields one record per (set, T): evaluate_voting's metrics plus what was run, where and when."""
  import importlib.resources  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  from akorn_jax import data  # pylint: disable=g-import-not-at-top
  from akorn_jax.evaluate import sudoku as sudoku_eval  # pylint: disable=g-import-not-at-top
  from akorn_jax.train import restore  # pylint: disable=g-import-not-at-top

  weights = weights or str(importlib.resources.files("akorn_jax") / "assets" / "sudoku_akorn")
  model, _ = restore.load_exported(weights)
  for spec in sets:
    boards = data.read_set(spec, num_puzzles, data_dir=data_dir)
    puzzles, solutions = boards["puzzle"], boards["solution"]
    for t in steps:
      res = sudoku_eval.evaluate_voting(model, puzzles, solutions, key=jax.random.key(seed),
                                        steps=t, num_starts=tuple(num_starts),
                                        vote_types=tuple(vote_types), chunk=chunk)
      yield {"set": spec, "boards": len(puzzles), "T_eval": t, "K": list(num_starts),
             "weights": weights, **res, "device": jax.devices()[0].device_kind,
             "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments {argv[1:]}; every input is a --flag.")
  steps, starts = _ints("steps", _STEPS.value), _ints("num_starts", _NUM_STARTS.value)
  for rec in sweep(_WEIGHTS.value, _SETS.value, _NUM_PUZZLES.value, steps, starts, _VOTES.value,
                   chunk=_CHUNK.value, seed=_SEED.value, data_dir=_DATA_DIR.value):
    line = json.dumps(rec)
    print(line, flush=True)
    if _OUTPUT.value:
      with open(_OUTPUT.value, "a") as f:
        f.write(line + "\n")


if __name__ == "__main__":
  app.run(main)
