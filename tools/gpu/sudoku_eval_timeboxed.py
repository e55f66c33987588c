r"""Sudoku voting evaluation sized to a time box (stage 3 of tools/gpu/h200_run.sh).

  python tools/gpu/sudoku_eval_timeboxed.py --weights=DIR --output=eval.jsonl --time_s=120 \
      [--max_puzzles=1000]

--weights is a folder written by `python -m experiments.sudoku export` (h200_run.sh exports the
run first). The model is loaded once, then one JSON line per stage is appended to --output:
  A. satnet_like test, --max_puzzles boards, T_eval 128, K in {1, 16}; also measures rows/s;
  B. hard test, as many boards (<= --max_puzzles) as ~45% of the time left allows, K in {1, 16, 100};
  C. hard test, as many boards as the rest allows, K in {1, 100, 1024, 4096};
  D. if time remains, both sets at the training T (16), K = 1.
Each stage is one call of the library's `evaluate_voting` (batched and chunked; the K starts are
nested subsets of the same random starts, so C's first boards repeat B's rows). A stage that does
not fit is skipped, so whatever finished is in --output when the time box ends.
Needs akorn_jax importable (h200_run.sh sets PYTHONPATH; locally use the project's venv).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

from absl import app, flags

_WEIGHTS = flags.DEFINE_string("weights", None, "Exported weights folder.", required=True)
_OUTPUT = flags.DEFINE_string("output", None, "JSON lines file (appended).", required=True)
_TIME_S = flags.DEFINE_float("time_s", 120.0, "Seconds from start by which every stage has ended.")
_MAX_PUZZLES = flags.DEFINE_integer("max_puzzles", 1000, "Most boards per set and stage.")
_CHUNK = flags.DEFINE_integer("chunk", 8192, "(puzzle, start) rows per forward pass.")

VOTES = ("last", "sum", "final", "confidence")


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments {argv[1:]}; every input is a --flag.")
  deadline = time.time() + _TIME_S.value
  import jax  # pylint: disable=g-import-not-at-top
  from akorn_jax import data  # pylint: disable=g-import-not-at-top
  from akorn_jax.evaluate import sudoku as se  # pylint: disable=g-import-not-at-top
  from akorn_jax.train import restore  # pylint: disable=g-import-not-at-top

  model, _ = restore.load_exported(_WEIGHTS.value)
  device, chunk, max_puzzles = jax.devices()[0].device_kind, _CHUNK.value, _MAX_PUZZLES.value
  boards = {cfg: data.read_set(f"sudoku_generated/{cfg}:test", max_puzzles)
            for cfg in ("satnet_like", "hard")}
  sets = {cfg: (b["puzzle"], b["solution"]) for cfg, b in boards.items()}

  def stage(label, cfg, n, ks, steps=128, votes=VOTES):
    puzzles, solutions = sets[cfg]
    t0 = time.time()
    res = se.evaluate_voting(model, puzzles[:n], solutions[:n], key=jax.random.key(0), steps=steps,
                             num_starts=ks, vote_types=votes, chunk=chunk)
    rec = {"stage": label, "set": cfg, "T_eval": steps, "K": list(ks), "weights": _WEIGHTS.value,
           "device": device, "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "chunk": chunk,
           "wall_s": time.time() - t0, **res}
    with open(_OUTPUT.value, "a") as f:
      f.write(json.dumps(rec) + "\n")
    print(json.dumps(rec), flush=True)
    return rec

  a = stage("A", "satnet_like", max_puzzles, (1, 16))
  rate = a.get("rows_per_s") or 16 * a["num_puzzles"] / a["wall_s"]
  n_b = int(max(0, min(max_puzzles, 0.45 * (deadline - time.time()) * rate / 100)))
  if n_b >= 10:
    stage("B", "hard", n_b, (1, 16, 100))
  n_c = int(max(0, min(max_puzzles, (deadline - time.time() - 25) * rate / 4096)))  # 25 s: D, margin
  if n_c >= 2:
    stage("C", "hard", n_c, (1, 100, 1024, 4096))
  if deadline - time.time() > 30:
    for cfg in ("satnet_like", "hard"):
      stage("D", cfg, max_puzzles, (1,), steps=16, votes=("last",))


if __name__ == "__main__":
  app.run(main)
