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
