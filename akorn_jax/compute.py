"""How to compute: the one place that picks the compute dtype and the attention kernel.

Every model reads its config's `model.dtype` through `compute_dtype` ("auto": bfloat16 matmuls and
convolutions on GPU/TPU, float32 on CPU) and every attention layer asks `attention_plan` which
kernel to run (cuDNN's fused flash attention where the backend and shape allow, padding the tokens
when cuDNN refuses their count, else XLA). The benchmark times exactly these choices; its
`--dtype`/`--attn_impl` flags only override them. The oscillator state, normalisations and energies
stay float32 whatever is chosen here (see `kuramoto`). `enable_compilation_cache` turns on JAX's
persistent compilation cache for every driver.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

Dtype = Any


def _backend() -> str:
  """The platform choices are made for ("cpu", "gpu", "tpu"); tests replace it."""
  return jax.default_backend()


COMPUTE_DTYPES = ("auto", "float32", "bfloat16", "float16")


def compute_dtype(name: str | None, backend: str | None = None) -> Dtype:
  """The compute dtype of matmuls and convolutions for a config's `model.dtype`.

  "auto" is bfloat16 on accelerators (GPU, TPU), where matrix units run it at twice the float32
  rate or more, and float32 on CPU, where bfloat16 is emulated and slower. The oscillator state,
  normalisations and energies stay float32 whatever this returns (see `kuramoto`).

  Args:
    name: "auto", "float32", "bfloat16", "float16", or None / "" (= float32).
    backend: the platform to decide for (default: `jax.default_backend()`).

  Returns:
    None for float32 (the layers' default) or a jnp dtype.
  """
  if name in (None, "", "float32"):
    return None
  if name not in COMPUTE_DTYPES:
    raise ValueError(f"Unknown compute dtype {name!r}; expected one of {COMPUTE_DTYPES}.")
  if name == "auto":
    return None if (backend or _backend()) == "cpu" else jnp.dtype(jnp.bfloat16)
  return jnp.dtype(name)


def dtype_name(name: str | None, backend: str | None = None) -> str:
  """The name of the dtype `compute_dtype(name)` resolves to, e.g. "auto" -> "bfloat16" on GPU."""
  dtype = compute_dtype(name, backend)
  return "float32" if dtype is None else jnp.dtype(dtype).name


# cuDNN's fused attention accepts only some sequence lengths (it refused Sudoku's 81 tokens on an
# H200, results/benchmarks.md); rather than encode rules that change between versions, we try the
# true length and then lengths padded up to these multiples.
CUDNN_PAD_MULTIPLES = (64, 128)


@functools.cache
def cudnn_compiles(seq_len: int, heads: int, head_dim: int, dtype: str, padded: bool) -> bool:
  """Whether cuDNN's fused attention compiles, forward and backward, for this shape (GPU only).

  `padded` asks for the padding-mask variant (`query_seq_lengths`/`key_value_seq_lengths`).
  Cached per shape: the probe is a small compilation, done once per process.
  """
  if _backend() != "gpu":
    return False
  q = jax.ShapeDtypeStruct((1, seq_len, heads, head_dim), jnp.dtype(dtype))
  # numpy, not jnp: this runs while a model is being traced, and a jnp constant would belong to
  # that outer trace (a leaked tracer, read as "cuDNN refuses").
  lengths = np.ones((1,), np.int32) if padded else None

  def loss(q):
    o = jax.nn.dot_product_attention(q, q, q, query_seq_lengths=lengths,
                                     key_value_seq_lengths=lengths, implementation="cudnn")
    return o.astype(jnp.float32).sum()

  try:
    jax.jit(jax.grad(loss)).lower(q).compile()
  except Exception:  # pylint: disable=broad-except  (any refusal means: not this shape)
    return False
  return True


def attention_plan(seq_len: int, heads: int, head_dim: int, dtype: Dtype, *,
                   impl: str | None = None, backend: str | None = None,
                   supported: Callable[..., bool] | None = None) -> tuple[str, int]:
  """Chooses the attention kernel and the (padded) sequence length it runs at.

  cuDNN flash attention where the backend is a GPU, the compute dtype is 16-bit and cuDNN
  accepts the shape, at the true length or padded up to a multiple of 64 or 128 (the padding keys
  are masked out); XLA's attention otherwise, at the true length.

  Args:
    seq_len, heads, head_dim: the attention's shape.
    dtype: dtype of q, k and v.
    impl: None / "" / "auto" (choose), "xla" or "cudnn" (forced; cuDNN raises if no length fits).
    backend: platform (default `jax.default_backend()`).
    supported: `(seq_len, heads, head_dim, dtype name, padded) -> bool`, cuDNN's verdict on a
      shape (default: compile a probe; tests pass their own).

  Returns:
    ("xla" or "cudnn", length to pad the tokens to).
  """
  if impl not in (None, "", "auto", "xla", "cudnn"):
    raise ValueError(f"Unknown attn_impl {impl!r}; expected '' (auto), 'xla' or 'cudnn'.")
  if impl == "xla":
    return "xla", seq_len
  backend = backend or _backend()
  supported = supported or cudnn_compiles
  half = jnp.dtype(dtype) in (jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16))
  if backend == "gpu" and half:
    lengths = [seq_len] + sorted({-(-seq_len // m) * m for m in CUDNN_PAD_MULTIPLES} - {seq_len})
    for length in lengths:
      if supported(length, heads, head_dim, jnp.dtype(dtype).name, length != seq_len):
        return "cudnn", length
  if impl == "cudnn":
    raise ValueError(f"attn_impl='cudnn' but cuDNN's fused attention does not run {heads} heads "
                     f"of dim {head_dim} over {seq_len} tokens in {jnp.dtype(dtype).name} on the "
                     f"{backend} backend; use '' (auto) or 'xla'.")
  return "xla", seq_len


def attend(q: jax.Array, k: jax.Array, v: jax.Array, *, implementation: str,
           length: int) -> jax.Array:
  """Softmax attention of q, k, v [B, L, heads, d], run over tokens zero-padded to `length`.

  The padding keys are masked out (`key_value_seq_lengths`) and the padding queries dropped, so the
  result equals unpadded attention up to rounding (tests/layers_test.py checks outputs and
  gradients).
  """
  seq_len = q.shape[1]
  if length == seq_len:
    return jax.nn.dot_product_attention(q, k, v, implementation=implementation)
  pad = [(0, 0), (0, length - seq_len), (0, 0), (0, 0)]
  lengths = jnp.full((q.shape[0],), seq_len, jnp.int32)
  o = jax.nn.dot_product_attention(jnp.pad(q, pad), jnp.pad(k, pad), jnp.pad(v, pad),
                                   query_seq_lengths=lengths, key_value_seq_lengths=lengths,
                                   implementation=implementation)
  return o[:, :seq_len]


# ------------------------------------------------------------------------------------------------
# Compilation cache
# ------------------------------------------------------------------------------------------------

DEFAULT_CACHE_DIR = os.path.join("~", ".cache", "akorn_jax", "jax")


def enable_compilation_cache(path: str | None = None) -> str | None:
  """Turns on JAX's persistent compilation cache, so a second run skips compiling (the Sudoku
  voting pass and a full-scale train step take tens of seconds to compile on a GPU).

  Every driver (experiments/*) calls this first. The directory is `path`, else
  $AKORN_JAX_CACHE_DIR, else JAX's own $JAX_COMPILATION_CACHE_DIR, else ~/.cache/akorn_jax/jax;
  "off" turns the cache off. Programs that compile in under a second are not cached (JAX's
  default threshold).

  Returns:
    The cache directory, or None when off.
  """
  folder = (path or os.environ.get("AKORN_JAX_CACHE_DIR")
            or os.environ.get("JAX_COMPILATION_CACHE_DIR") or DEFAULT_CACHE_DIR)
  if folder.lower() in ("off", "none", "0"):
    return None
  folder = os.path.expanduser(folder)
  os.makedirs(folder, exist_ok=True)
  jax.config.update("jax_compilation_cache_dir", folder)
  return folder


# ------------------------------------------------------------------------------------------------
# What a program costs and what a chip can do: FLOPs of a traced program, peak rates per chip
# (the trainer's MFU and the benchmark both use them).
# ------------------------------------------------------------------------------------------------


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


def _sub_jaxprs(value: Any) -> list[Any]:
  """The jaxprs held in an equation parameter (a Jaxpr, a ClosedJaxpr, or a tuple of them)."""
  if hasattr(value, "eqns"):
    return [value]
  if hasattr(getattr(value, "jaxpr", None), "eqns"):
    return [value.jaxpr]
  if isinstance(value, (tuple, list)):
    return [j for v in value for j in _sub_jaxprs(v)]
  return []


def _matmul_flops(jaxpr: Any) -> float:
  """Matmul and convolution FLOPs (2 per multiply-add) of one run of `jaxpr`, loops included."""
  total = 0.0
  for eqn in jaxpr.eqns:
    name = eqn.primitive.name
    out = eqn.outvars[0].aval if eqn.outvars else None
    if name == "dot_general":
      (contract, _), _ = eqn.params["dimension_numbers"]
      lhs = eqn.invars[0].aval
      total += 2.0 * math.prod(lhs.shape[d] for d in contract) * math.prod(out.shape)
    elif name == "conv_general_dilated":
      rhs = eqn.invars[1].aval
      rhs_spec = eqn.params["dimension_numbers"].rhs_spec  # (out features, in features, spatial)
      total += 2.0 * math.prod(rhs.shape[d] for d in rhs_spec[1:]) * math.prod(out.shape)
    else:
      inner = [_matmul_flops(j) for v in eqn.params.values() for j in _sub_jaxprs(v)]
      if not inner:
        continue
      if name == "cond":  # one branch runs; count the dearest
        total += max(inner)
      else:  # scan runs its body `length` times; a while loop's trip count is unknown: once
        total += eqn.params.get("length", 1) * sum(inner)
  return total


def count_flops(fn: Callable[..., Any], *args: Any) -> float:
  """Matmul and convolution FLOPs of one call `fn(*args)` (2 per multiply-add, the global program).

  Counted on the traced program (`jax.make_jaxpr`), where a `lax.scan` carries its trip count: the
  T Kuramoto steps count T times (XLA's own cost analysis counts a loop body once), forward and
  backward alike, and a rematerialised forward counts again. Elementwise work is left out, as in
  the usual definition of MFU; on a loop-free program of matmuls and convolutions this equals
  XLA's count (tests/benchmark_test.py).

  Args:
    fn: a function or a `jax.jit` of one.
    *args: arguments (arrays or ShapeDtypeStructs, possibly sharded).
  """
  return _matmul_flops(jax.make_jaxpr(fn)(*args).jaxpr)
