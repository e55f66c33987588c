"""The speed suite (docs/benchmarks.md#suite): one jitted step per item, timed, with flop count and
MFU.

A train item times the trainer's own step (`akorn_jax.train.loop.make_update_fn`: augmentation,
forward, loss, backward, Adam and the EMA update) on a random batch already on device; an eval item
times the jitted forward pass. Each item is a reference experiment config (configs/) resized to one
of three scales: `full` (the H200 sizes of docs/benchmarks.md#suite), `cpu` (the CPU reference) and
`tiny`
(the tests). `experiments/benchmark.py` is the command line; this module holds no config files.
"""

from __future__ import annotations

import dataclasses
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from akorn_jax import compute
from akorn_jax import kuramoto
from akorn_jax import tasks
from akorn_jax.train import loop, restore
from akorn_jax.train import sharding as shard_lib

SCALES = ("full", "cpu", "tiny")


@dataclasses.dataclass(frozen=True)
class Size:
  """The sizes an item changes per scale: channels, T, batch B (model inputs per step) and image
  size (None: the config's)."""
  ch: int
  steps: int
  batch: int
  imsize: int | None = None


@dataclasses.dataclass(frozen=True)
class Item:
  """One entry of the suite.

  Attributes:
    name: suite name, e.g. "sudoku_train".
    mode: "train" (the trainer's step), "eval" (the jitted forward pass) or "loop" (the
      trainer's whole loop, `run_loop`).
    config: built-in config name (configs/), e.g. "clevrtex_akorn".
    config_arg: its option string, e.g. "L=2".
    sizes: `Size` per scale.
  """
  name: str
  mode: str
  config: str
  config_arg: str | None
  sizes: dict[str, Size]

  @property
  def spec(self) -> str:
    """The config spec for `config_loader.load`, e.g. "clevrtex_akorn:L=2"."""
    return f"{self.config}:{self.config_arg}" if self.config_arg else self.config


# docs/benchmarks.md#suite. Object items count B as views: SimCLR sees B views made from B/2 images.
ITEMS = {item.name: item for item in (
    Item("sudoku_train", "train", "sudoku_akorn", None,
         {"full": Size(512, 16, 100), "cpu": Size(128, 8, 32), "tiny": Size(64, 2, 4)}),
    Item("sudoku_eval_T128", "eval", "sudoku_akorn", None,
         {"full": Size(512, 128, 100), "cpu": Size(128, 32, 32), "tiny": Size(64, 2, 4)}),
    Item("clevrtex_L1_train", "train", "clevrtex_akorn", "L=1",
         {"full": Size(256, 8, 512, 128), "cpu": Size(64, 8, 64, 64), "tiny": Size(32, 2, 8, 32)}),
    Item("clevrtex_L2_train", "train", "clevrtex_akorn", "L=2",
         {"full": Size(256, 8, 512, 128), "cpu": Size(64, 8, 64, 64), "tiny": Size(32, 2, 8, 32)}),
    Item("tetro_conv_train", "train", "tetrominoes_akorn", "conv",
         {"full": Size(128, 8, 512), "cpu": Size(64, 8, 64), "tiny": Size(32, 2, 8)}),
    Item("cifar_train", "train", "cifar_akorn", None,
         {"full": Size(64, 3, 128), "cpu": Size(16, 3, 32), "tiny": Size(16, 1, 4)}),
    # End to end: the trainer's own loop (data pipeline, augmentation, step, EMA, logging) at the
    # sizes of the matching train item, so the gap to it is the host's cost.
    Item("sudoku_loop", "loop", "sudoku_akorn", "cpu",
         {"full": Size(512, 16, 100), "cpu": Size(128, 8, 32), "tiny": Size(64, 2, 4)}),
    Item("tetro_loop", "loop", "tetrominoes_akorn", "conv,cpu",
         {"full": Size(128, 8, 512), "cpu": Size(64, 8, 64), "tiny": Size(32, 2, 8)}),
)}

def get_item(name: str) -> Item:
  if name not in ITEMS:
    raise ValueError(f"Unknown benchmark item {name!r}; expected one of {sorted(ITEMS)} or 'all'.")
  return ITEMS[name]


# ------------------------------------------------------------------------------------------------
# Configs
# ------------------------------------------------------------------------------------------------


def _has_attention(config: ml_collections.ConfigDict) -> bool:
  return "attn_impl" in config.model and config.model.get("connectivity", "attn") == "attn"


def _seq_len(config: ml_collections.ConfigDict) -> int:
  if config.task == "sudoku":
    return 81
  return (config.model.imsize // config.model.psize) ** 2


def resolved_dtype(config: ml_collections.ConfigDict) -> str:
  """The compute dtype the config's model runs in on this backend ("float32", "bfloat16", ...)."""
  return compute.dtype_name(config.model.get("dtype", "float32"))


def resolved_attention(config: ml_collections.ConfigDict) -> str | None:
  """The attention kernel the model's layers choose (None without attention), e.g. "cudnn@128"
  when cuDNN runs the tokens padded to 128."""
  if not _has_attention(config):
    return None
  heads, seq_len = config.model.heads, _seq_len(config)
  impl, length = compute.attention_plan(
      seq_len, heads, config.model.ch // heads,
      compute.compute_dtype(config.model.dtype) or jnp.float32, impl=config.model.attn_impl or None)
  return impl if length == seq_len else f"{impl}@{length}"


def remat_policy(config: ml_collections.ConfigDict) -> str | None:
  """The Kuramoto remat policy the config's model runs with (None: the model has no such knob)."""
  remat = config.model.get("remat")
  return {False: "none", True: "full"}.get(remat, remat) if isinstance(remat, bool) else remat


def configure(item: Item, base: ml_collections.ConfigDict, *, scale: str, dtype: str | None = None,
              remat: str | None = None, attn_impl: str | None = None,
              devices: int = 1) -> ml_collections.ConfigDict:
  """The item's config at `scale`: `base` (the item's reference config) resized, on `devices`.

  The model computes as a user's run of the config does (`compute.py`: its `model.dtype`, "auto"
  by default, and the attention kernel its layers choose); `dtype` and `attn_impl` override.

  Args:
    item: the suite entry.
    base: the item's built-in config, `config_loader.load(item.spec)`.
    scale: "full", "cpu" or "tiny".
    dtype: None (the config's own) or a compute dtype: "auto", "float32", "bfloat16".
    remat: None (the config's own) or a `kuramoto.REMAT_POLICIES` name: what the backward pass
      keeps of each Kuramoto step.
    attn_impl: None (the layers' choice) or "xla" / "cudnn" (forced).
    devices: data-parallel mesh over the first `devices` devices; the batch stays global.

  Returns:
    A new config.
  """
  if scale not in SCALES:
    raise ValueError(f"Unknown scale {scale!r}; expected one of {SCALES}.")
  if dtype is not None:
    compute.compute_dtype(dtype)  # raises on an unknown name
  if attn_impl not in (None, "xla", "cudnn"):
    raise ValueError(f"Unknown attn_impl {attn_impl!r}; expected None (the layers' choice), "
                     "'xla' or 'cudnn'.")
  if not 1 <= devices <= jax.device_count():
    raise ValueError(f"devices={devices} but {jax.device_count()} exist; "
                     f"pick 1..{jax.device_count()}.")
  size = item.sizes[scale]
  if remat is not None and remat not in kuramoto.REMAT_POLICIES:
    raise ValueError(f"Unknown remat policy {remat!r}; expected one of {kuramoto.REMAT_POLICIES}.")
  fields = base.to_dict()
  if remat is not None and "remat" in fields["model"]:
    fields["model"]["remat"] = remat  # may replace a config's boolean on/off with a policy name
  config = ml_collections.ConfigDict(fields)
  config.model.ch = size.ch
  config.model.steps = size.steps
  if dtype is not None:
    config.model.dtype = dtype
  # The objects' step makes two SimCLR views per image, so B model inputs need B/2 images.
  config.data.batch_size = size.batch // 2 if config.task == "objects" else size.batch
  if size.imsize is not None:
    config.model.imsize = size.imsize
  if config.task == "classification":
    # The reference augments CIFAR (AugMix etc.) in its CPU data loader, outside the timed step.
    config.data.augment = False
  if config.data.batch_size % devices:
    raise ValueError(f"{item.name} at scale {scale} feeds {config.data.batch_size} examples per "
                     f"step, which {devices} devices cannot split evenly; pick a divisor.")
  config.mesh.data, config.mesh.fsdp = devices, 1
  if _has_attention(config) and attn_impl is not None:
    config.model.attn_impl = attn_impl
  return config


def random_batch(config: ml_collections.ConfigDict, seed: int = 0) -> dict[str, np.ndarray]:
  """A raw host batch of the task, random but in range (docs/benchmarks.md#suite).

  Returns:
    sudoku: "puzzle" / "solution" int8 [B, 9, 9] (digits 1..9, about 40% givens, 0 = blank);
    objects: "image" uint8 [B/2, H, W, 3]; classification: "image" uint8 [B, 32, 32, 3] and
    "label" int32 [B].
  """
  rng = np.random.default_rng(seed)
  b = config.data.batch_size
  if config.task == "sudoku":
    solution = rng.integers(1, 10, (b, 9, 9), dtype=np.int8)
    return {"puzzle": np.where(rng.random((b, 9, 9)) < 0.4, solution, 0).astype(np.int8),
            "solution": solution}
  if config.task == "objects":
    s = config.model.imsize
    return {"image": rng.integers(0, 256, (b, s, s, 3), dtype=np.uint8)}
  if config.task == "classification":
    return {"image": rng.integers(0, 256, (b, 32, 32, 3), dtype=np.uint8),
            "label": rng.integers(0, config.model.num_classes, (b,), dtype=np.int32)}
  raise ValueError(f"No benchmark batch for task {config.task!r}.")


# ------------------------------------------------------------------------------------------------
# Measuring
# ------------------------------------------------------------------------------------------------


# HLO instructions that launch no kernel of their own (bookkeeping, views, constants).
_NOT_KERNELS = {"parameter", "get-tuple-element", "tuple", "constant", "bitcast", "after-all",
                "partition-id", "replica-id", "opt-barrier", "add-dependency", "domain"}


def kernels_per_loop_step(hlo_text: str) -> list[int]:
  """Instructions that launch work in each while-loop body of a compiled program's HLO text, in
  program order: for a Kuramoto model, the kernels of one step of the forward scan (and of the
  backward scan of a train step). A fusion counts once, however many ops it fused.
  """
  bodies = re.findall(r"\swhile\(.*?body=%?([\w.\-]+)", hlo_text)
  counts = []
  for body in bodies:
    block = re.search(r"^%?" + re.escape(body) + r" .*?\{\n(.*?)^\}", hlo_text, re.S | re.M)
    if block is None:
      continue
    ops = re.findall(r"=\s.*?\s([a-z][a-z0-9\-]*)\(", block.group(1))
    counts.append(sum(op not in _NOT_KERNELS for op in ops))
  return counts


def _time_steps(call: Callable[[], Any], *, steps: int, warmup: int) -> list[float]:
  """Seconds of each of `steps` calls, after `warmup` untimed ones; each waits for its results."""
  for _ in range(warmup):
    jax.block_until_ready(call())
  times = []
  for _ in range(steps):
    t0 = time.perf_counter()
    jax.block_until_ready(call())
    times.append(time.perf_counter() - t0)
  return times


def _peak_memory_gb(devices: list[jax.Device]) -> float | None:
  """Largest peak allocation of the process on `devices` (None where the backend keeps no stats,
  e.g. CPU). The peak is process-wide, so run one item per process for per-item numbers."""
  stats = [d.memory_stats() for d in devices]
  peaks = [s["peak_bytes_in_use"] for s in stats if s and "peak_bytes_in_use" in s]
  return max(peaks) / 1e9 if peaks else None


def run_loop(item: Item, config: ml_collections.ConfigDict, *, scale: str, steps: int = 10,
             warmup: int = 2) -> dict[str, Any]:
  """Times the trainer's real loop (`loop.train_and_evaluate`) on the config's dataset.

  The loss function is wrapped to stamp the host clock (`jax.debug.callback`) when each step
  runs, so step times include everything between steps: reading and batching examples, host to
  device copies, augmentation, the step, EMA, logging. Evaluation is off; the final checkpoint is
  written after the last timed step. Generated datasets are generated on first use.

  Returns:
    config, mode, scale, dtype, device, batch, median_step_s, min_step_s, steps_per_s,
    examples_per_s, wall_s (the whole run, with compilation and the final save), steps, warmup.
  """
  task = tasks.get_task(config)
  stamps: list[float] = []

  def loss_fn(model, batch, key):
    jax.debug.callback(lambda: stamps.append(time.perf_counter()))
    return task.loss_fn(model, batch, key)

  timed = dataclasses.replace(task, loss_fn=loss_fn, evaluate=None)
  run_config = ml_collections.ConfigDict(config.to_dict())
  run_config.train.num_steps = warmup + steps + 1
  run_config.train.eval_every = 0
  run_config.checkpoint.every_steps = 10 ** 9
  t0 = time.perf_counter()
  with tempfile.TemporaryDirectory() as workdir:
    loop.train_and_evaluate(run_config, workdir, task=timed)
  wall = time.perf_counter() - t0
  times = np.diff(stamps[warmup:]).tolist()  # start of step k to start of step k+1
  if len(times) != steps:
    raise RuntimeError(f"{item.name}: {len(stamps)} step stamps for {warmup + steps + 1} steps.")
  median = statistics.median(times)
  device = jax.devices()[0]
  return {
      "config": item.name, "mode": item.mode, "scale": scale, "dtype": resolved_dtype(config),
      "device": "cpu" if device.platform == "cpu" else device.device_kind,
      "batch": item.sizes[scale].batch, "median_step_s": median, "min_step_s": min(times),
      "steps_per_s": 1.0 / median, "examples_per_s": item.sizes[scale].batch / median,
      "wall_s": wall, "devices": int(config.mesh.data),
      "steps": steps, "warmup": warmup,
  }


def run(item: Item, config: ml_collections.ConfigDict, *, scale: str, steps: int = 10,
        warmup: int = 2, profile_dir: str | None = None) -> dict[str, Any]:
  """Compiles, warms up and times `item` under `config` (from `configure`).

  Args:
    item: the suite entry.
    config: its config at `scale`.
    scale: reported as given.
    steps: timed steps (median and minimum are reported).
    warmup: untimed steps after compilation.
    profile_dir: if set, 3 more steps run inside `jax.profiler.trace(profile_dir)`.

  Returns:
    The JSON record of docs/benchmarks.md#record (plus remat, attn_impl, devices, steps, warmup,
    step_mem_gb: XLA's static estimate of one device's buffers for the step, and
    kernels_per_loop_step: `kernels_per_loop_step` of the compiled step).
  """
  if steps < 1 or warmup < 0:
    raise ValueError(f"steps={steps} must be >= 1 and warmup={warmup} >= 0.")
  if item.mode == "loop":
    return run_loop(item, config, scale=scale, steps=steps, warmup=warmup)
  task = tasks.get_task(config)
  s = loop.setup(config, task)
  state = s.init_fn()
  batch = shard_lib.global_batch(random_batch(config), s.mesh)
  params = restore.count_params(nnx.merge(s.graphdef, state.params, state.rest))

  if item.mode == "train":
    fn, args = loop.make_update_fn(config, task, s), (state, batch)
  else:
    t_eval = int(config.model.steps)

    @jax.jit
    def fn(params, rest, puzzle, key):
      model = nnx.merge(s.graphdef, params, rest)
      model.eval()
      return model(puzzle, key=key, steps=t_eval)[0]

    args = (state.params, state.rest, batch["puzzle"], jax.random.key(0))
  try:
    flops = compute.count_flops(fn, *args)
  except Exception as e:  # pylint: disable=broad-except  (a missing count must not lose the timing)
    logging.warning("No flop count for %s: %r", item.name, e)
    flops = None

  t0 = time.perf_counter()
  compiled = fn.lower(*args).compile()
  compile_s = time.perf_counter() - t0
  kernels = kernels_per_loop_step(compiled.as_text())
  mem = compiled.memory_analysis()
  step_mem = None if mem is None else (mem.argument_size_in_bytes + mem.output_size_in_bytes
                                       + mem.temp_size_in_bytes - mem.alias_size_in_bytes) / 1e9

  if item.mode == "train":
    carry = [state]

    def call():
      carry[0], metrics = compiled(carry[0], batch)  # the state is donated: thread it through
      return carry[0], metrics
  else:
    def call():
      return compiled(*args)

  times = _time_steps(call, steps=steps, warmup=warmup)
  if profile_dir:
    with jax.profiler.trace(profile_dir):
      _time_steps(call, steps=3, warmup=0)

  device = jax.devices()[0]
  devices = int(s.mesh.size)
  median = statistics.median(times)
  size = item.sizes[scale]
  dtype = resolved_dtype(config)
  peak = compute.peak_tflops(device.device_kind, dtype)
  tflops_per_s = None if flops is None else flops / median / 1e12
  return {
      "config": item.name, "mode": item.mode, "scale": scale, "dtype": dtype,
      "device": "cpu" if device.platform == "cpu" else device.device_kind,
      "batch": size.batch, "median_step_s": median, "min_step_s": min(times),
      "examples_per_s": size.batch / median, "compile_s": compile_s, "params": params,
      "flops_per_step": flops, "tflops_per_s": tflops_per_s,
      "mfu": None if peak is None or flops is None else tflops_per_s / (peak * devices),
      "peak_mem_gb": _peak_memory_gb(list(s.mesh.devices.flat)), "step_mem_gb": step_mem,
      "remat": remat_policy(config),
      "attn_impl": resolved_attention(config),
      "devices": devices, "steps": steps, "warmup": warmup, "kernels_per_loop_step": kernels,
  }
