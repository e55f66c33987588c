import time, sys
sys.path.insert(0, '.')
from configs import sudoku_akorn
from akorn_jax.train import loop
c = sudoku_akorn.get_config("cpu"); c.lock()
t = time.time()
r = loop.train_and_evaluate(c, "runs/sudoku_cpu")
print("FINAL", r, "wall_s", time.time() - t, flush=True)
