import time, sys
sys.path.insert(0, '.')
from configs import sudoku_akorn
from akorn_jax import tasks
from akorn_jax.train import loop
c = sudoku_akorn.get_config("cpu"); c.lock()
t = time.time()
r = loop.train_and_evaluate(c, "runs/sudoku_cpu", task=tasks.get_task(c))
print("FINAL", r, "wall_s", time.time() - t, flush=True)
