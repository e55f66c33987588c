"""Evaluation behind results/sudoku.md (CPU): T_eval=128, K in (1, 4, 16) on 500 puzzles per set,
plus the cost of K=4096 on 2 puzzles."""
import json, sys, time
sys.path.insert(0, ".")
import jax, numpy as np
from configs import sudoku_akorn
from experiments import evaluate as ev
from akorn_jax import data
from akorn_jax.evaluate import sudoku as se
from akorn_jax.train import restore

c = sudoku_akorn.get_config("cpu")
c.eval.num_puzzles = int(sys.argv[1]) if len(sys.argv) > 1 else 500
c.eval.num_starts = (1, 4, 16)
c.eval.chunk = 2048
c.lock()
t = time.time()
out = ev._jsonable(ev.evaluate(c, "runs/sudoku_cpu"))
out["wall_s"] = time.time() - t
# Also the training T (16) without extension, K = 1.
model, step = restore.load_model(c, "runs/sudoku_cpu")
for spec in c.eval.sets:
  name, cfg, split = data.parse_set(spec)
  src = data.open_split(name, cfg, split)
  n = c.eval.num_puzzles
  p = np.stack([src[i]["puzzle"] for i in range(n)]); s = np.stack([src[i]["solution"] for i in range(n)])
  r = se.evaluate_voting(model, p, s, key=jax.random.key(0), steps=16, num_starts=(1,), vote_types=("last",), chunk=2048)
  out[spec + " T16"] = ev._jsonable(r)
# Cost of K = 4096 (one chunked batched computation) on 2 puzzles at T_eval=128.
src = data.open_split("sudoku_generated", "hard", "test")
p = np.stack([src[i]["puzzle"] for i in range(2)]); s = np.stack([src[i]["solution"] for i in range(2)])
r = se.evaluate_voting(model, p, s, key=jax.random.key(0), steps=128, num_starts=(1, 4096), vote_types=("last", "sum", "final", "confidence"), chunk=2048)
out["K4096_cost_2_hard_puzzles"] = ev._jsonable(r)
json.dump(out, open("runs/sudoku_cpu/results_eval.json", "w"), indent=1)
print(json.dumps(out, indent=1))
