r"""Rows/s of Sudoku energy voting for the shipped model, for side-by-side runs of two checkouts.

  PYTHONPATH=CHECKOUT python tools/voting_rate.py NUM K T CHUNK

NUM satnet_like test puzzles x K starts at T steps, CHUNK rows per forward pass (0: the library's
choice where it has one). Prints one JSON line: rows/s after the first chunk, the first chunk's
seconds (with compilation), peak RSS and a checksum of the scores (equal across checkouts when
the numbers are). Works with the voting API before and after issue #12 (`run_starts`).
"""

import json
import os
import resource
import sys
import time

import jax

import akorn_jax
from akorn_jax.data import sudoku as sudoku_data
from akorn_jax.evaluate import sudoku as voting

try:
  from akorn_jax.train.restore import load_exported  # pylint: disable=g-import-not-at-top
except ImportError:
  load_exported = voting.load_exported

num, k, steps, chunk = map(int, sys.argv[1:5])
model, _ = load_exported(os.path.join(os.path.dirname(akorn_jax.__file__), "assets",
                                      "sudoku_akorn"))
puzzles = sudoku_data.load_generated("satnet_like")["test"][0][:num]
times = []
t0 = time.time()
_, scores = voting.run_starts(model, puzzles, key=jax.random.key(0), steps=steps, num_starts=k,
                              vote_types=("sum", "final"), chunk_times=times,
                              **({"chunk": chunk} if chunk else {}))
used = chunk or voting.resolve_chunk(model, puzzles, steps=steps, vote_types=("sum", "final"))
print(json.dumps({
    "module": voting.__file__, "rows": num * k, "chunk": used, "chunks": len(times),
    "first_chunk_s": times[0], "wall_s": time.time() - t0,
    "rows_per_s": used * (len(times) - 1) / sum(times[1:]) if len(times) > 1 else None,
    "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
    "checksum": float(scores["final"].sum())}))
