"""Sudoku ItrSA baseline (docs/models.md#sudoku-baselines): one Transformer block whose attention
repeats T=16 times.

Run: akorn-train --config=sudoku_itrsa --workdir=runs/sudoku_itrsa
Reference (SATNet/RRN): 95.7% ID, 34.4% OOD at T_eval = 32. Option `tiny` for CPU.
"""

from akorn_jax import config_base

from . import sudoku_base


def get_config(arg: str | None = None):
  v = config_base.parse_arg(arg, tiny=False)
  c = sudoku_base.sudoku_config()
  c.model.name = "sudoku_transformer"
  c.optim.lr = 5e-4
  c.eval.steps = 32                   # deterministic model: no voting (K = 1, confidence)

  if v.tiny:
    sudoku_base.shrink_to_tiny(c)
    c.model.steps = 4
    c.train.num_steps = 300
    c.checkpoint.every_steps = 100
    c.eval.steps = 8
  return c
