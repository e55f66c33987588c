"""Sudoku Transformer baseline (SPEC §4.5): 8 blocks, T = 1.

Run: python -m experiments.train --config=configs/sudoku_transformer.py --workdir=runs/sudoku_tf
Reference (SATNet/RRN): 98.6% ID, 5.2% OOD. Variant `tiny` for CPU.
"""

from configs import sudoku_itrsa


def get_config(arg: str | None = None):
  c = sudoku_itrsa.get_config(arg)
  c.model.num_layers = 2 if c.model.ch == 64 else 8
  c.model.steps = 1
  c.eval.steps = 1
  return c
