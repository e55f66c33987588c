"""Speed suite (docs/benchmarks.md#suite): one JSON line per item on stdout, logs on stderr.

  akorn-benchmark --suite=all --scale=cpu --steps=5 --warmup=2
  akorn-benchmark --suite=clevrtex_L1_train,sudoku_train --scale=full --profile_dir=/tmp/prof

Items run as a user's run of their config does (compute dtype "auto", the attention kernel the
layers choose, see akorn_jax/compute.py); --dtype and --attn_impl override that.

Items: sudoku_train, sudoku_eval_T128, clevrtex_L1_train, clevrtex_L2_train, tetro_conv_train,
cifar_train. With several items each runs in its own process, so compile caches and the device's
peak-memory counter (`peak_mem_gb`) belong to that item alone. Results: results/benchmarks.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence

import ml_collections
from absl import app, flags, logging

from akorn_jax import benchmark, commands, compute, config_loader, kuramoto

_SUITE = flags.DEFINE_list("suite", None, "Comma-separated items, or 'all'.", required=True)
_SCALE = flags.DEFINE_enum("scale", "full", benchmark.SCALES,
                           "Problem sizes (docs/benchmarks.md#suite).")
_DTYPE = flags.DEFINE_enum("dtype", None, ["auto", "float32", "bfloat16"],
                           "Override of the config's compute dtype of couplings/convs (default: "
                           "the config's own, 'auto' = bf16 on GPU/TPU, f32 on CPU).")
_STEPS = flags.DEFINE_integer("steps", 20, "Timed steps.")
_WARMUP = flags.DEFINE_integer("warmup", 3, "Untimed steps after compilation.")
_REMAT = flags.DEFINE_enum("remat", None, list(kuramoto.REMAT_POLICIES),
                           "Override of the config's Kuramoto remat policy (what the backward "
                           "pass keeps per step, akorn_jax/kuramoto.py).")
_ATTN = flags.DEFINE_enum("attn_impl", None, ["xla", "cudnn"],
                          "Override of the attention kernel (default: the layers' own choice, "
                          "cuDNN on GPU in bf16 where the shape fits, else XLA).")
_PROFILE = flags.DEFINE_string("profile_dir", None, "Write a trace of 3 extra steps here.")
_DEVICES = flags.DEFINE_integer("devices", 1, "Data-parallel mesh over the first N devices.")


def base_config(item: benchmark.Item) -> ml_collections.ConfigDict:
  """The reference experiment config of `item` (a built-in config)."""
  return config_loader.load(item.spec)


def run_item(name: str, *, scale: str, dtype: str | None = None, steps: int = 20, warmup: int = 3,
             remat: str | None = None, attn_impl: str | None = None, profile_dir: str | None = None,
             devices: int = 1) -> dict:
  """The JSON record of one item, measured in this process."""
  item = benchmark.get_item(name)
  config = benchmark.configure(item, base_config(item), scale=scale, dtype=dtype, remat=remat,
                               attn_impl=attn_impl, devices=devices)
  return benchmark.run(item, config, scale=scale, steps=steps, warmup=warmup,
                       profile_dir=profile_dir)


def _item_flags(name: str) -> list[str]:
  """This command line's flags for item `name` alone (one trace directory per item)."""
  args = [f"--suite={name}"]
  args += [f"--{f.name}={f.value}" for f in (_SCALE, _DTYPE, _STEPS, _WARMUP, _ATTN, _DEVICES,
                                              _REMAT) if f.value is not None]
  if _PROFILE.value:
    args.append(f"--profile_dir={os.path.join(_PROFILE.value, name)}")
  return args


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments {argv[1:]}; every option is a --flag.")
  compute.enable_compilation_cache()
  names = list(benchmark.ITEMS) if _SUITE.value == ["all"] else _SUITE.value
  for name in names:
    benchmark.get_item(name)  # fail on a typo before spending minutes on the others
  if len(names) > 1:
    failed = [name for name in names if subprocess.run(
        [sys.executable, "-m", __spec__.name, *_item_flags(name)]).returncode]
    if failed:
      raise SystemExit(f"Benchmark items failed: {failed} (see the log above).")
    return
  logging.info("Benchmarking %s at scale %s", names[0], _SCALE.value)
  record = run_item(names[0], scale=_SCALE.value, dtype=_DTYPE.value, steps=_STEPS.value,
                    warmup=_WARMUP.value, remat=_REMAT.value, attn_impl=_ATTN.value,
                    profile_dir=_PROFILE.value, devices=_DEVICES.value)
  print(json.dumps(record), flush=True)


def cli() -> None:
  """The `akorn-benchmark` command."""
  app.run(main, flags_parser=commands.parse_flags)


if __name__ == "__main__":
  cli()
