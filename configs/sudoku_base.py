"""Settings shared by the Sudoku configs (docs/training.md#sudoku); not a config itself.

`sudoku_config()` is the common protocol: generated SATNet-like boards, batch 100, Adam with
global-norm clipping 1.0, EMA 0.995, 100 epochs of 90 steps, and the evaluation sets.
`shrink_to_tiny(c)` is the common part of each model's `tiny` variant (a CPU-sized model and run);
each config then sets what differs for its model.
"""

import ml_collections

from akorn_jax import config_base


def sudoku_config() -> ml_collections.ConfigDict:
  """The shared protocol; the caller names the model and sets its size."""
  c = config_base.base_config("sudoku")

  # --- data: 9,000 train / 1,000 test generated boards, 31-42 givens --------------------------
  c.data.name = "sudoku_generated"
  c.data.config = "satnet_like"
  c.data.batch_size = 100
  c.data.eval_batch_size = 100

  # --- model: the size every Sudoku model shares -------------------------------------------------
  c.model.ch = 512
  c.model.num_layers = 1
  c.model.steps = 16
  c.model.heads = 8
  c.model.attn_impl = ""            # jax.nn.dot_product_attention implementation; "" = default

  # --- optim: Adam, global-norm clipping 1.0, 100 epochs x 90 steps -----------------------------
  c.optim.lr = 1e-3
  c.optim.clip_norm = 1.0
  c.ema.beta = 0.995
  c.ema.update_every = 10
  c.ema.update_after_step = 100
  c.train.num_steps = config_base.steps_for_epochs(100, 9000, 100)
  c.train.log_every = 90
  c.train.eval_every = 900
  c.checkpoint.every_steps = 900

  # --- eval --------------------------------------------------------------------------------------
  c.eval.steps = 128                         # test-time T extension
  c.eval.num_starts = (1,)                   # K: nested subsets of the same random starts
  c.eval.vote_types = ("confidence",)
  c.eval.sets = ("sudoku_generated/satnet_like:test", "sudoku_generated/hard:test")
  c.eval.num_puzzles = 1000
  c.eval.chunk = 8192                        # puzzles x starts per forward pass
  c.eval.train_eval_puzzles = 1000           # puzzles scored during training (K = 1)
  return c


def shrink_to_tiny(c: ml_collections.ConfigDict) -> None:
  """The shared part of the `tiny` variants: ch 64, 4 heads, batch 32, CPU-sized evaluation."""
  c.model.ch = 64
  c.model.heads = 4
  c.data.batch_size = 32
  c.train.log_every = 50
  c.train.eval_every = 0
  c.ema.update_after_step = 20
  c.eval.num_puzzles = 200
  c.eval.chunk = 1024
  c.eval.train_eval_puzzles = 200
