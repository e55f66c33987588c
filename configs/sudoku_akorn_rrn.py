"""Sudoku AKOrN on the whole RRN "sudoku-hard" test set (OOD) with energy voting up to K = 4,096,
in one command: configs/sudoku_akorn.py's model, T_eval = 128, K in (1, 100, 1024, 4096) as nested
subsets of the same 4,096 random starts per puzzle, every row of test.csv (num_puzzles 0 = all).

Prepare RRN once (no download: put test.csv in DIR):
  akorn-prepare-data --dataset=sudoku_rrn --manual_dir=DIR
Run (a model trained with configs/sudoku_akorn.py in RUN):
  akorn-evaluate --config=sudoku_akorn_rrn --workdir=RUN

Expected cost (from measured rates, results/sudoku.md; not run): rows = puzzles x 4,096. For the
18,000 puzzles of the RRN test set (the size the RRN paper gives; the run prints the real count)
that is 73.7 M rows: at 3,390 rows/s (one H200, float32, T = 128, chunks of 8,192 rows) about
6.0 hours plus ~1.5 min compilation; on a 2-core CPU (3.4 rows/s) about 250 days, so on a CPU use
the `tiny` variant or fewer puzzles (--config.eval.num_puzzles=N) and K. Reference: 51.7% at
K = 1, 81.6% at K = 100, 89.5% at K = 4,096 (energy votes, T = 128).
Option `tiny`: the tiny model, T_eval 8, K in (1, 4) (the test).
"""

from akorn_jax import config_base

from . import sudoku_akorn


def get_config(arg: str | None = None):
  v = config_base.parse_arg(arg, tiny=False)
  c = sudoku_akorn.get_config(arg)
  c.eval.sets = ("sudoku_rrn:test",)
  c.eval.num_puzzles = 0                     # 0 = every row of test.csv
  c.eval.steps = 128
  c.eval.num_starts = (1, 100, 1024, 4096)
  c.eval.vote_types = ("last", "sum", "final", "confidence")
  c.eval.chunk = 8192
  if v.tiny:
    c.eval.steps = 8
    c.eval.num_starts = (1, 4)
    c.eval.chunk = 64
  return c
