"""Sudoku AKOrN (docs/models.md#sudoku-akorn, docs/training.md#sudoku): reference settings, trained
on our generated SATNet-like boards.

Run (full, GPU):
  akorn-train --config=sudoku_akorn --workdir=runs/sudoku_akorn
  akorn-evaluate --workdir=runs/sudoku_akorn
(in a checkout also `python -m experiments.train --config=configs/sudoku_akorn.py ...`).
Expected (reference, SATNet/RRN data): 100.0% in-distribution, 51.7% OOD at T_eval=128, 89.5% with
K=4096 energy votes. Our numbers on generated data are in results/sudoku.md.

Options (`--config=sudoku_akorn:tiny`): `tiny` = ch 64, T 8, a few hundred steps on CPU (the demo
and the tests); `cpu` = ch 128, T 16, 4,000 steps of batch 50 (the largest run a 2-core CPU
finishes in about an hour; it solved no full board, see results/sudoku.md). The model shipped in
the package is this config's full run on an H200 (8,541 of 9,000 steps).

`solver`: the same model trained on `sudoku_generated/mixed` (10,000 boards, 20-42 givens, made
when first prepared) for 100 epochs, evaluated per givens band (<= 22, 23-26, 27-34) and on
satnet_like at K = 1, 16, 256 (T 128): the solver for hard published puzzles. `solver,tiny` trains
it at tiny scale (`mixed_tiny`). Full run: tools/gpu/sudoku_solver.sh.
"""

from akorn_jax import config_base

from . import sudoku_base


def get_config(arg: str | None = None):
  v = config_base.parse_arg(arg, tiny=False, cpu=False, solver=False)
  c = sudoku_base.sudoku_config()

  # --- model -------------------------------------------------------------------------------------
  c.model.name = "sudoku_akorn"
  c.model.n = 4
  c.model.gamma = 1.0               # learned (a Param in the model)
  c.model.use_omega = True
  c.model.global_omega = True
  c.model.init_omega = 0.5
  c.model.learn_omega = True
  c.model.remat = False
  c.optim.tie_gta = True            # the reference's tied GTA matrices (q = k = v = oᵀ)

  # --- eval: energy voting over K random starts ---------------------------------------------------
  c.eval.num_starts = (1, 100, 1024, 4096)
  c.eval.vote_types = ("last", "sum", "final", "confidence")

  if v.solver:  # the same model on boards down to 20 givens
    c.data.config = "mixed"
    c.train.num_steps = config_base.steps_for_epochs(100, 10_000, 100)
    c.train.log_every = 100
    c.train.eval_every = 1000
    c.checkpoint.every_steps = 1000
    c.eval.num_starts = (1, 16, 256)
    c.eval.sets = tuple(f"sudoku_generated/{s}:test" for s in (
        "band_le22", "band_23_26", "band_27_34", "satnet_like"))

  if v.cpu:  # the largest run a 2-core CPU finishes in about an hour
    c.model.ch = 128
    c.data.batch_size = 50
    c.train.num_steps = 4000
    c.train.log_every = 50
    c.train.eval_every = 1000
    c.checkpoint.every_steps = 250
    c.eval.train_eval_puzzles = 200
    c.eval.chunk = 4096

  if v.tiny:
    sudoku_base.shrink_to_tiny(c)
    c.model.steps = 8
    c.train.num_steps = 600
    c.checkpoint.every_steps = 200
    c.eval.steps = 16
    c.eval.num_starts = (1, 8)
    if v.solver:
      c.data.config = "mixed_tiny"
      c.eval.sets = ("sudoku_generated/band_le22:test", "sudoku_generated/band_27_34:test")
  return c
