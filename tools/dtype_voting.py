r"""Voting accuracy of the shipped Sudoku model computed in float32 and in bfloat16 (issue #12).

  python tools/dtype_voting.py NUM K T

The first NUM boards of the generated `satnet_like` and `hard` test sets, K starts (K = 1 is the
first start), T Kuramoto steps, votes by confidence and by final energy. The bfloat16 model is the
same weights with `dtype="bfloat16"` (matmuls in bfloat16; oscillator state, norms and energies
stay float32). Prints one JSON line per (dtype, set). On a CPU bfloat16 is emulated (slow), but its
rounding of the matmul inputs is the same as on a GPU.
"""

import json
import os
import sys
import time

import jax
from flax import nnx

import akorn_jax
from akorn_jax import models
from akorn_jax.data import sudoku as sudoku_data
from akorn_jax.evaluate import sudoku as voting
from akorn_jax.train import restore

num, k, steps = map(int, sys.argv[1:4])
weights, config = restore.load_exported(
    os.path.join(os.path.dirname(akorn_jax.__file__), "assets", "sudoku_akorn"))
for dtype in ("float32", "bfloat16"):
  model = models.from_config({**config, "dtype": dtype}, rngs=nnx.Rngs(0))
  nnx.update(model, nnx.state(weights))
  model.eval()
  for name in ("satnet_like", "hard"):
    puzzles, solutions = sudoku_data.load_generated(name)["test"]
    start = time.time()
    out = voting.evaluate_voting(model, puzzles[:num], solutions[:num], key=jax.random.key(0),
                                 steps=steps, num_starts=(1, k), vote_types=("confidence", "final"))
    print(json.dumps({"dtype": dtype, "set": name, "boards": num, "T": steps,
                      **{key: v for key, v in out.items() if key.startswith(("acc/", "oracle"))},
                      "wall_s": time.time() - start}), flush=True)
