"""Voting evaluation behind results/sudoku.md (H200), sized to a time box.

  python results/scripts/sudoku_eval_gpu.py CONFIG WORKDIR OUT.jsonl DEADLINE_EPOCH_S [MAX_PUZZLES]

Loads the run's EMA weights once, then appends one JSON line per stage to OUT.jsonl:
  A. satnet_like test, 1,000 puzzles, T_eval 128, K in {1, 16}: also measures rows/s;
  B. hard test, up to 1,000 puzzles (what ~45% of the time left allows), K in {1, 16, 100};
  C. hard test, as many puzzles as the rest allows, K in {1, 100, 1024, 4096};
  D. if time remains, both sets at the training T (16), K = 1.
Each stage is the library's `evaluate_voting` (one batched, chunked computation per stage; the
starts of K are nested subsets of the same random starts, so C's first puzzles repeat B's rows).
"""
import importlib
import json
import sys
import time

sys.path.insert(0, ".")

import jax  # noqa: E402

from akorn_jax import data  # noqa: E402
from akorn_jax.evaluate import sudoku as se  # noqa: E402
from akorn_jax.train import restore  # noqa: E402

VOTES = ("last", "sum", "final", "confidence")


def main(config_arg: str, workdir: str, out_path: str, deadline: float,
         max_puzzles: int = 1000) -> None:
  path, _, variant = config_arg.partition(":")  # e.g. configs/sudoku_akorn.py:tiny
  config = importlib.import_module(path.removesuffix(".py").replace("/", ".")).get_config(
      variant or None)
  model, step = restore.load_model(config, workdir)
  device = jax.devices()[0].device_kind
  chunk = int(config.eval.chunk)
  boards = {cfg: data.read_set(f"sudoku_generated/{cfg}:test", max_puzzles)
            for cfg in ("satnet_like", "hard")}
  sets = {cfg: (b["puzzle"], b["solution"]) for cfg, b in boards.items()}

  def stage(label, cfg, n, ks, steps=128, votes=VOTES):
    puzzles, solutions = sets[cfg]
    t0 = time.time()
    res = se.evaluate_voting(model, puzzles[:n], solutions[:n], key=jax.random.key(0), steps=steps,
                             num_starts=ks, vote_types=votes, chunk=chunk)
    rec = {"stage": label, "set": cfg, "T_eval": steps, "K": list(ks), "step": step,
           "device": device, "date": time.strftime("%Y-%m-%d %H:%M:%S"), "chunk": chunk,
           "wall_s": time.time() - t0, **res}
    with open(out_path, "a") as f:
      f.write(json.dumps(rec) + "\n")
    print(json.dumps(rec), flush=True)
    return rec

  a = stage("A", "satnet_like", max_puzzles, (1, 16))
  rate = a.get("rows_per_s") or 16000 / a["wall_s"]
  left = deadline - time.time()
  n_b = int(max(0, min(max_puzzles, 0.45 * left * rate / 100)))
  if n_b >= 10:
    stage("B", "hard", n_b, (1, 16, 100))
  left = deadline - time.time() - 25  # D and the margin
  n_c = int(max(0, min(max_puzzles, left * rate / 4096)))
  if n_c >= 2:
    stage("C", "hard", n_c, (1, 100, 1024, 4096))
  if deadline - time.time() > 30:
    for cfg in ("satnet_like", "hard"):
      stage("D", cfg, max_puzzles, (1,), steps=16, votes=("last",))


if __name__ == "__main__":
  main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), *map(int, sys.argv[5:]))
