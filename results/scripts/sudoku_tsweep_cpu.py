"""Test-time extension of the shipped Sudoku AKOrN on a CPU: board accuracy at K = 1 for
T_eval in (16, 32, 64) on the first 500 satnet_like and the first 292 hard test boards (the boards
of results/sudoku.md's H200 table, whose T_eval = 128 numbers complete the curve).

  python results/scripts/sudoku_tsweep_cpu.py > tsweep.jsonl
"""
import json
import sys
import time

sys.path.insert(0, ".")

import jax  # noqa: E402

from akorn_jax import data  # noqa: E402
from akorn_jax.evaluate import sudoku as se  # noqa: E402
from akorn_jax.train import restore  # noqa: E402

model, _ = restore.load_exported("akorn_jax/assets/sudoku_akorn")
for name, n in (("satnet_like", 500), ("hard", 292)):
  boards = data.read_set(f"sudoku_generated/{name}:test", n)
  puzzles, solutions = boards["puzzle"], boards["solution"]
  for steps in (16, 32, 64):
    t0 = time.time()
    res = se.evaluate_voting(model, puzzles, solutions, key=jax.random.key(0), steps=steps,
                             num_starts=(1,), vote_types=("last",), chunk=512)
    print(json.dumps({"set": name, "T_eval": steps, "boards": n, "acc/K=1": res["acc/K=1"],
                      "wall_s": round(time.time() - t0, 1), "device": jax.devices()[0].device_kind,
                      "date": time.strftime("%Y-%m-%d %H:%M:%S")}), flush=True)
