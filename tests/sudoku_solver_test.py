"""configs/sudoku_akorn.py:solver (issue #17): the paper's model trained on boards down to 20
givens, evaluated per givens band; trained here at tiny scale on `sudoku_generated/mixed_tiny`."""

import json
import math
import os

from akorn_jax import config_loader, tasks
from akorn_jax.train import loop


def test_solver_config_keeps_the_papers_model_and_optimiser():
  default, solver = config_loader.load("sudoku_akorn"), config_loader.load("sudoku_akorn:solver")
  assert solver.model.to_dict() == default.model.to_dict()
  assert solver.optim.to_dict() == default.optim.to_dict()
  assert default.data.config == "satnet_like" and solver.data.config == "mixed"
  assert solver.eval.sets[0] == "sudoku_generated/band_le22:test"  # the hardest band first
  assert "sudoku_generated/satnet_like:test" in solver.eval.sets  # and in distribution
  assert tuple(solver.eval.num_starts) == (1, 16, 256)


def test_solver_tiny_trains_on_the_mixed_boards(tmp_path):
  c = config_loader.load("sudoku_akorn:solver,tiny")
  assert c.data.config == "mixed_tiny"
  c.data.data_dir = str(tmp_path / "tfds")
  c.data.batch_size = 16
  c.model.ch, c.model.heads, c.model.steps = 16, 2, 2
  c.train.num_steps, c.train.log_every = 40, 10
  c.checkpoint.every_steps = 40
  c.eval.steps, c.eval.train_eval_puzzles, c.eval.chunk = 4, 16, 256
  c.lock()
  workdir = str(tmp_path / "run")
  out = loop.train_and_evaluate(c, workdir, task=tasks.get_task(c))
  assert {"eval/board_acc_T2", "eval/board_acc_T4"} <= out.keys()
  assert all(0.0 <= out[k] <= 1.0 for k in ("eval/board_acc_T2", "eval/board_acc_T4"))
  with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as f:
    losses = [r["loss"] for r in map(json.loads, f) if "loss" in r]
  assert len(losses) >= 3 and all(math.isfinite(v) for v in losses)
  assert losses[-1] < losses[0]  # it learned something from the mixed boards
