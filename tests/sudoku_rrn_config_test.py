"""configs/sudoku_akorn_rrn.py evaluates every row of the RRN test CSV with voting, in one call."""

import numpy as np

from akorn_jax.data import common
from akorn_jax.data import sudoku as sudoku_data
from akorn_jax import config_loader
from experiments import evaluate as evaluate_driver


def test_rrn_config_evaluates_the_whole_test_csv(tmp_path):
  puzzles, solutions = sudoku_data.load_generated("satnet_like")["test"]
  manual = tmp_path / "manual"
  manual.mkdir()
  with open(manual / "test.csv", "w") as f:
    for p, s in zip(puzzles[:7], solutions[:7]):
      f.write("".join(map(str, p.reshape(-1))) + "," + "".join(map(str, s.reshape(-1))) + "\n")
  data_dir = str(tmp_path / "tfds")
  common.build(sudoku_data.SudokuRrn, data_dir_=data_dir, manual_dir=str(manual))

  full = config_loader.load("sudoku_akorn_rrn")
  assert full.eval.sets == ("sudoku_rrn:test",) and full.eval.num_puzzles == 0
  assert max(full.eval.num_starts) == 4096 and full.eval.steps == 128
  c = config_loader.load("sudoku_akorn_rrn:tiny")
  c.data.data_dir = data_dir
  c.model.ch, c.model.heads = 16, 2
  c.lock()
  out = evaluate_driver.evaluate(c, str(tmp_path / "run"), untrained=True)
  res = out["sudoku_rrn:test"]
  assert res["num_puzzles"] == 7  # every row, not a subset
  for key in ("acc/K=1/last", "acc/K=4/sum", "acc/K=4/confidence", "oracle/K=4"):
    assert 0.0 <= res[key] <= 1.0
  assert np.isfinite(res["acc/K=4/final"])
