"""Sudoku Transformer baseline (docs/models.md#sudoku-baselines): the ItrSA protocol with 8 blocks
and T = 1.

Run: akorn-train --config=sudoku_transformer --workdir=runs/sudoku_tf
Reference (SATNet/RRN): 98.6% ID, 5.2% OOD. Option `tiny` for CPU (2 blocks).
"""

from akorn_jax import config_base

from . import sudoku_itrsa


def get_config(arg: str | None = None):
  v = config_base.parse_arg(arg, tiny=False)
  c = sudoku_itrsa.get_config(arg)
  c.model.num_layers = 2 if v.tiny else 8
  c.model.steps = 1
  c.eval.steps = 1
  return c
