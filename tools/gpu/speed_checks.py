r"""GPU checks of issue #12 that the speed suite does not make (stages of tools/gpu/h200_speed.sh).

  python tools/gpu/speed_checks.py voting --output=voting.jsonl [--dtypes=bfloat16,float32]
  python tools/gpu/speed_checks.py kernels --output=kernels.jsonl

voting: the shipped Sudoku AKOrN (akorn_jax/assets/sudoku_akorn) at T = 128 with K in {1, 16}
  on 1,000 `satnet_like` and 292 `hard` test boards, once per compute dtype; one JSON line per
  (dtype, set) with the accuracies, rows/s, the chunk the library chose and the first chunk's
  seconds (with compilation: cold on a fresh compilation cache, warm on a second run).
kernels: kernels per Kuramoto step (`benchmark.kernels_per_loop_step`) of the compiled
  sudoku_train and clevrtex_L1_train steps at full scale, with the block sums of `kuramoto` as
  reductions (ours) and as explicit slice sums (the alternative rejected on CPU).
Needs akorn_jax importable (h200_speed.sh sets PYTHONPATH; locally use the project's venv).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

from absl import app, flags

_OUTPUT = flags.DEFINE_string("output", None, "JSON lines file (appended).", required=True)
_DTYPES = flags.DEFINE_list("dtypes", ["bfloat16", "float32"], "Compute dtypes to vote in.")
_SETS = flags.DEFINE_list("sets", ["satnet_like:1000", "hard:292"], "config:boards to vote on.")
_STEPS = flags.DEFINE_integer("steps", 128, "Kuramoto steps T at test time.")
_CHUNK = flags.DEFINE_integer("chunk", 0, "Rows per forward pass (0: the library's choice).")
_SCALE = flags.DEFINE_string("scale", "full", "Benchmark scale of the kernels check.")


def _write(record: dict) -> None:
  with open(_OUTPUT.value, "a") as f:
    f.write(json.dumps(record) + "\n")
  print(json.dumps(record), flush=True)


def _shipped_model(dtype: str):
  """The shipped model rebuilt with compute dtype `dtype` (its weights stay float32)."""
  import os  # pylint: disable=g-import-not-at-top
  from flax import nnx  # pylint: disable=g-import-not-at-top
  import akorn_jax  # pylint: disable=g-import-not-at-top
  from akorn_jax import models  # pylint: disable=g-import-not-at-top
  try:
    from akorn_jax.train.restore import load_exported  # pylint: disable=g-import-not-at-top
  except ImportError:
    from akorn_jax.evaluate.sudoku import load_exported  # pylint: disable=g-import-not-at-top
  folder = os.path.join(os.path.dirname(akorn_jax.__file__), "assets", "sudoku_akorn")
  model, config = load_exported(folder)
  rebuilt = models.from_config({**config, "dtype": dtype}, rngs=nnx.Rngs(0))
  nnx.update(rebuilt, nnx.state(model))
  rebuilt.eval()
  return rebuilt


def voting() -> None:
  import jax  # pylint: disable=g-import-not-at-top
  from akorn_jax.data import sudoku as sudoku_data  # pylint: disable=g-import-not-at-top
  from akorn_jax.evaluate import sudoku as se  # pylint: disable=g-import-not-at-top
  for dtype in _DTYPES.value:
    model = _shipped_model(dtype)
    for spec in _SETS.value:
      name, _, num = spec.partition(":")
      puzzles, solutions = sudoku_data.load_generated(name)["test"]
      puzzles, solutions = puzzles[:int(num)], solutions[:int(num)]
      t0 = time.time()
      chunk = se.resolve_chunk(model, puzzles, steps=_STEPS.value, chunk=_CHUNK.value or None)
      res = se.evaluate_voting(model, puzzles, solutions, key=jax.random.key(0),
                               steps=_STEPS.value, num_starts=(1, 16), chunk=chunk)
      _write({"check": "voting", "dtype": dtype, "set": name, "T_eval": _STEPS.value,
              "chunk": chunk, "device": jax.devices()[0].device_kind, "wall_s": time.time() - t0,
              "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), **res})


def kernels() -> None:
  import jax  # pylint: disable=g-import-not-at-top
  from akorn_jax import benchmark, config_loader, kuramoto, tasks  # pylint: disable=g-import-not-at-top
  from akorn_jax.train import loop  # pylint: disable=g-import-not-at-top
  from akorn_jax.train import sharding as shard_lib  # pylint: disable=g-import-not-at-top

  def explicit_sum(a):
    total = a[..., 0:1]
    for i in range(1, a.shape[-1]):
      total = total + a[..., i:i + 1]
    return total

  reduction = kuramoto._block_sum  # pylint: disable=protected-access
  for name in ("sudoku_train", "clevrtex_L1_train"):
    item = benchmark.get_item(name)
    config = benchmark.configure(item, config_loader.load(item.spec), scale=_SCALE.value)
    for variant, block_sum in (("reduction", reduction), ("explicit", explicit_sum)):
      kuramoto._block_sum = block_sum  # pylint: disable=protected-access
      task = tasks.get_task(config)
      s = loop.setup(config, task)
      batch = shard_lib.global_batch(benchmark.random_batch(config), s.mesh)
      t0 = time.time()
      hlo = loop.make_update_fn(config, task, s).lower(s.abstract_state, batch).compile().as_text()
      _write({"check": "kernels", "item": name, "block_sum": variant, "scale": _SCALE.value,
              "dtype": benchmark.resolved_dtype(config), "compile_s": time.time() - t0,
              "kernels_per_loop_step": benchmark.kernels_per_loop_step(hlo),
              "device": jax.devices()[0].device_kind})
    kuramoto._block_sum = reduction  # pylint: disable=protected-access


def main(argv: Sequence[str]) -> None:
  checks = {"voting": voting, "kernels": kernels}
  if len(argv) != 2 or argv[1] not in checks:
    raise app.UsageError(f"Give one check: {sorted(checks)}.")
  checks[argv[1]]()


if __name__ == "__main__":
  app.run(main)
