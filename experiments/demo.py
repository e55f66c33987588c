"""The demo behind `make demo`: a tour of akorn_jax on built-in generated data, on a CPU.

1. Builds the reference Sudoku AKOrN from configs/sudoku_akorn.py and prints its parameter count.
2. Runs a small AKOrN on a generated puzzle and prints the energy of every Kuramoto step.
3. Trains the `tiny` Sudoku config on generated SATNet-like boards (a few minutes on 2 cores; the
   run resumes if interrupted) and reports its board accuracy with energy voting.
4. Solves an example puzzle with the checkpoint shipped in the package.

  python -m experiments.demo [--workdir=runs/demo_sudoku] [--steps=N]
"""

from __future__ import annotations

import json

from absl import app, flags

from akorn_jax import commands

_WORKDIR = flags.DEFINE_string("workdir", "runs/demo_sudoku", "Where the demo run lives.")
_STEPS = flags.DEFINE_integer("steps", None, "Training steps (default: the tiny config's).")



def main(argv):
  del argv
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from flax import nnx  # pylint: disable=g-import-not-at-top

  from akorn_jax import config_loader, data, tasks  # pylint: disable=g-import-not-at-top
  from akorn_jax.data import sudoku as sudoku_data  # pylint: disable=g-import-not-at-top
  from akorn_jax.evaluate import sudoku as sudoku_eval  # pylint: disable=g-import-not-at-top
  from akorn_jax.train import loop, restore  # pylint: disable=g-import-not-at-top

  print("== 1. The reference Sudoku AKOrN (built-in config sudoku_akorn) ==")
  full = config_loader.load("sudoku_akorn")
  params = restore.count_params(restore.abstract_model(full))
  print(json.dumps({"config": "sudoku_akorn", "params": params}))

  print("\n== 2. Energy of each Kuramoto step of a small AKOrN on a generated puzzle ==")
  config = config_loader.load("sudoku_akorn:tiny")
  if _STEPS.value is not None:
    config.train.num_steps = _STEPS.value
  config.lock()
  boards = data.read_set("sudoku_generated/satnet_like:test", config.eval.num_puzzles)
  puzzles, solutions = boards["puzzle"], boards["solution"]
  puzzle = puzzles[:1]
  small = tasks.build_model(config, nnx.Rngs(0))
  _, aux = small(puzzle, key=jax.random.key(0))
  energies = np.asarray(aux["energies"][-1][:, 0])
  for t, e in enumerate(energies):
    print(f"  E(x_{t}) = {e:10.2f}")

  print(f"\n== 3. Training the tiny config for {config.train.num_steps} steps into "
        f"{_WORKDIR.value} ==")
  last = loop.train_and_evaluate(config, _WORKDIR.value, task=tasks.get_task(config))
  if last:  # empty when the workdir already held a finished run
    print(json.dumps({"last_training_batch": {k: round(last[k], 4) for k in
                                              ("loss", "cell_acc", "board_acc") if k in last}}))
  model, step = restore.load_model(config, _WORKDIR.value)
  n = len(puzzles)
  res = sudoku_eval.evaluate_voting(model, puzzles, solutions, key=jax.random.key(1),
                                    steps=config.eval.steps,
                                    num_starts=tuple(config.eval.num_starts),
                                    vote_types=("last", "confidence"), chunk=config.eval.chunk)
  print(json.dumps({"step": step, "test_puzzles": n, "T_eval": config.eval.steps,
                    **{k: round(v, 4) for k, v in res.items() if k.startswith(("acc", "cell"))}}))

  print("\n== 4. Solving an example puzzle with the checkpoint shipped in the package ==")
  print("(the reference configuration trained on an H200, results/sudoku.md; the check below")
  print(" verifies the model's answer with the rules, never falling back to an exact solver.)")
  from . import sudoku as sudoku_cli  # pylint: disable=g-import-not-at-top
  code = sudoku_cli.main(["solve", sudoku_data.EXAMPLE_PUZZLE, "--K=16"])
  print(f"(akorn-sudoku solve ... exited with {code}: 0 = solved, 1 = not solved)")


def cli() -> None:
  """The `akorn-demo` command."""
  app.run(main, flags_parser=commands.parse_flags)


if __name__ == "__main__":
  cli()
