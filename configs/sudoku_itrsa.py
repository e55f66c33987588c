"""Sudoku ItrSA baseline (SPEC §4.5): one Transformer block whose attention repeats T=16 times.

Run: python -m experiments.train --config=configs/sudoku_itrsa.py --workdir=runs/sudoku_itrsa
Reference (SATNet/RRN): 95.7% ID, 34.4% OOD at T_eval = 32. Variant `tiny` for CPU.
"""

from akorn_jax import config_base


def get_config(arg: str | None = None):
  variants = config_base.parse_arg(arg, {"tiny"})
  c = config_base.base_config("sudoku")
  c.data.name = "sudoku_generated"
  c.data.config = "satnet_like"
  c.data.batch_size = 100

  c.model.name = "sudoku_transformer"
  c.model.ch = 512
  c.model.num_layers = 1
  c.model.steps = 16
  c.model.heads = 8
  c.model.attn_impl = ""

  c.optim.lr = 5e-4
  c.optim.clip_norm = 1.0
  c.ema.beta = 0.995
  c.ema.update_every = 10
  c.ema.update_after_step = 100
  c.train.num_steps = config_base.steps_for_epochs(100, 9000, 100)
  c.train.log_every = 90
  c.train.eval_every = 900
  c.checkpoint.every_steps = 900

  c.eval.steps = 32
  c.eval.num_starts = (1,)            # deterministic model: no voting
  c.eval.vote_types = ("confidence",)
  c.eval.sets = ("sudoku_generated/satnet_like:test", "sudoku_generated/hard:test")
  c.eval.num_puzzles = 1000
  c.eval.chunk = 8192
  c.eval.train_eval_puzzles = 1000

  if "tiny" in variants:
    c.model.ch = 64
    c.model.heads = 4
    c.model.steps = 4
    c.data.batch_size = 32
    c.train.num_steps = 300
    c.train.log_every = 50
    c.train.eval_every = 0
    c.checkpoint.every_steps = 100
    c.ema.update_after_step = 20
    c.eval.steps = 8
    c.eval.num_puzzles = 200
    c.eval.chunk = 1024
    c.eval.train_eval_puzzles = 200
  return c
