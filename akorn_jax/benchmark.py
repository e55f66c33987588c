"""The speed suite (BENCHMARKS.md §1): one jitted step per item, timed, with flop count and MFU.

A train item times the trainer's own step (`akorn_jax.train.loop.make_update_fn`: augmentation,
forward, loss, backward, Adam and the EMA update) on a random batch already on device; an eval item
times the jitted forward pass. Each item is a reference experiment config (configs/) resized to one
of three scales: `full` (the H200 sizes of BENCHMARKS.md §2), `cpu` (the CPU reference) and `tiny`
(the tests). `experiments/benchmark.py` is the command line; this module holds no config files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

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
    mode: "train" (the trainer's step) or "eval" (the jitted forward pass).
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


# BENCHMARKS.md §1. Object items count B as views: SimCLR sees B views made from B/2 images.
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
)}

# Dense (no sparsity) peak TFLOP/s per chip as (device_kind substring, bfloat16, float32); the
# first match wins, so "TPU v5 lite" precedes "TPU v5". float32 is the rate a float32 dot actually
# runs at under JAX's default precision: TF32 tensor cores on NVIDIA (XLA's default for f32 dots
# since Ampere), one bf16 MXU pass on TPU (jax-ml/jax#1856), hence equal to the bf16 peak there.
PEAK_TFLOPS = (
    # NVIDIA H100/H200 SXM datasheets: BF16 989.4, TF32 494.7 dense ("1,979 / 989 with sparsity").
    ("H200", 989.4, 494.7),
    ("H100 PCIe", 756.0, 378.0),  # NVIDIA H100 datasheet, PCIe column.
    ("H100", 989.4, 494.7),
    ("A100", 312.0, 156.0),       # NVIDIA A100 datasheet: BF16 312, TF32 156 dense.
    ("TPU v6", 918.0, 918.0),     # cloud.google.com/tpu/docs/v6e: 918 TFLOP/s bf16 per chip.
    ("TPU v5 lite", 197.0, 197.0),  # cloud.google.com/tpu/docs/v5e: 197 TFLOP/s bf16 per chip.
    ("TPU v5", 459.0, 459.0),     # cloud.google.com/tpu/docs/v5p: 459 TFLOP/s bf16 per chip.
    ("TPU v4", 275.0, 275.0),     # cloud.google.com/tpu/docs/v4: 275 TFLOP/s bf16 per chip.
)


def peak_tflops(device_kind: str, dtype: str) -> float | None:
  """Dense peak TFLOP/s of one chip for `dtype` ("float32" or "bfloat16"); None if unknown."""
  for name, bf16, fp32 in PEAK_TFLOPS:
    if name.lower() in device_kind.lower():
      return bf16 if dtype == "bfloat16" else fp32
  return None


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


def cudnn_attention_ok(seq_len: int, heads: int, head_dim: int) -> bool:
  """Whether cuDNN's fused attention compiles (forward and backward) for this shape in bf16.

  cuDNN accepts only some sequence lengths (it refused Sudoku's 81 tokens, BENCHMARKS.md §2), and
  the rules change between versions, so we ask it rather than encode them.
  """
  if jax.default_backend() != "gpu":
    return False
  q = jnp.zeros((1, seq_len, heads, head_dim), jnp.bfloat16)

  def f(q):
    return jax.nn.dot_product_attention(q, q, q, implementation="cudnn").astype(jnp.float32).sum()

  try:
    jax.jit(jax.grad(f)).lower(q).compile()
  except Exception:  # pylint: disable=broad-except  (any refusal means: use XLA)
    return False
  return True


def configure(item: Item, base: ml_collections.ConfigDict, *, scale: str, dtype: str = "float32",
              remat: bool = False, attn_impl: str = "auto",
              devices: int = 1) -> ml_collections.ConfigDict:
  """The item's config at `scale`: `base` (the item's reference config) resized, on `devices`.

  Args:
    item: the suite entry.
    base: the item's built-in config, `config_loader.load(item.spec)`.
    scale: "full", "cpu" or "tiny".
    dtype: compute dtype of couplings and convolutions, "float32" or "bfloat16".
    remat: rematerialise the Kuramoto steps in the backward pass.
    attn_impl: "auto" (cuDNN on GPU in bf16 where it accepts the shape, else XLA), "xla", "cudnn".
    devices: data-parallel mesh over the first `devices` devices; the batch stays global.

  Returns:
    A new config; `config.model.attn_impl` holds the resolved implementation where the model has
    attention.
  """
  if scale not in SCALES:
    raise ValueError(f"Unknown scale {scale!r}; expected one of {SCALES}.")
  if dtype not in ("float32", "bfloat16"):
    raise ValueError(f"Unknown dtype {dtype!r}; expected 'float32' or 'bfloat16'.")
  if attn_impl not in ("auto", "xla", "cudnn"):
    raise ValueError(f"Unknown attn_impl {attn_impl!r}; expected 'auto', 'xla' or 'cudnn'.")
  if not 1 <= devices <= jax.device_count():
    raise ValueError(f"devices={devices} but {jax.device_count()} exist; "
                     f"pick 1..{jax.device_count()}.")
  size = item.sizes[scale]
  config = ml_collections.ConfigDict(base.to_dict())
  config.model.ch = size.ch
  config.model.steps = size.steps
  config.model.dtype = dtype
  config.model.remat = remat
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
  if _has_attention(config):
    if attn_impl == "auto":
      heads = config.model.heads
      ok = dtype == "bfloat16" and cudnn_attention_ok(_seq_len(config), heads,
                                                     config.model.ch // heads)
      attn_impl = "cudnn" if ok else "xla"
    config.model.attn_impl = attn_impl
  return config


def random_batch(config: ml_collections.ConfigDict, seed: int = 0) -> dict[str, np.ndarray]:
  """A raw host batch of the task, random but in range (BENCHMARKS.md §1).

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


@contextlib.contextmanager
def _unrolled_scans() -> Iterator[None]:
  """Traces every `jax.lax.scan` fully unrolled (for flop counting only)."""
  scan = jax.lax.scan
  jax.lax.scan = functools.partial(scan, unroll=True)
  try:
    yield
  finally:
    jax.lax.scan = scan


def count_flops(fn: Callable[..., Any], *args: Any) -> float:
  """XLA's flop count of one call `fn(*args)` (the global program, before partitioning).

  XLA's cost analysis counts a while loop's body once, whatever its trip count, so the compiled
  step's own `cost_analysis()` misses all but one of the T Kuramoto steps. We therefore analyse
  the same computation traced with every `lax.scan` unrolled; on loop-free programs this equals the
  compiled step's count (tests/benchmark_test.py checks it).

  Args:
    fn: a function or a `jax.jit` of one; its Python body is traced afresh (a new jit), so the
      unrolled trace never lands in the caller's compile cache.
    *args: arguments (arrays or ShapeDtypeStructs, possibly sharded).
  """
  fn = getattr(fn, "__wrapped__", fn)
  with _unrolled_scans():
    lowered = jax.jit(lambda *a: fn(*a)).lower(*args)
  cost = lowered.cost_analysis()
  if not cost or "flops" not in cost:
    cost = hlo_cost_analysis(lowered)
  return float(cost["flops"])


def hlo_cost_analysis(lowered: jax.stages.Lowered) -> dict[str, float]:
  """XLA's HLO cost analysis of a lowering (unoptimised HLO), run by the CPU client.

  `Lowered.cost_analysis()` returns None on backends reached through the PJRT C API (the CUDA
  plugin among them); the analysis of unoptimised HLO does not depend on the backend, so we run
  the same XLA pass with the CPU client. Custom calls (e.g. cuDNN attention) count 0 flops.
  """
  from jax._src import xla_bridge  # pylint: disable=g-import-not-at-top
  from jax._src.lib import _jax  # pylint: disable=g-import-not-at-top
  module = lowered._lowering.hlo().as_hlo_module()  # pylint: disable=protected-access
  return _jax.hlo_module_cost_analysis(xla_bridge.get_backend("cpu"), module)


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
    The JSON record of BENCHMARKS.md §1 (plus remat, attn_impl, devices, steps, warmup and
    step_mem_gb: XLA's static estimate of one device's buffers for the step).
  """
  if steps < 1 or warmup < 0:
    raise ValueError(f"steps={steps} must be >= 1 and warmup={warmup} >= 0.")
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
    flops = count_flops(fn, *args)
  except Exception as e:  # pylint: disable=broad-except  (a missing count must not lose the timing)
    logging.warning("No flop count for %s: %r", item.name, e)
    flops = None

  t0 = time.perf_counter()
  compiled = fn.lower(*args).compile()
  compile_s = time.perf_counter() - t0
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
  peak = peak_tflops(device.device_kind, config.model.dtype)
  tflops_per_s = None if flops is None else flops / median / 1e12
  return {
      "config": item.name, "mode": item.mode, "scale": scale, "dtype": config.model.dtype,
      "device": "cpu" if device.platform == "cpu" else device.device_kind,
      "batch": size.batch, "median_step_s": median, "min_step_s": min(times),
      "examples_per_s": size.batch / median, "compile_s": compile_s, "params": params,
      "flops_per_step": flops, "tflops_per_s": tflops_per_s,
      "mfu": None if peak is None or flops is None else tflops_per_s / (peak * devices),
      "peak_mem_gb": _peak_memory_gb(list(s.mesh.devices.flat)), "step_mem_gb": step_mem,
      "remat": bool(config.model.remat),
      "attn_impl": config.model.attn_impl if _has_attention(config) else None,
      "devices": devices, "steps": steps, "warmup": warmup,
  }
