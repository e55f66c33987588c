"""Tests of akorn_jax.compute: what "auto" resolves to, the attention kernel the layers choose, and
that cuDNN's padded tokens change nothing (checked through the padded XLA path on CPU)."""

import glob
import importlib
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from akorn_jax import compute
from akorn_jax import layers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_auto_is_float32_on_cpu_and_bfloat16_on_accelerators():
  assert jax.default_backend() == "cpu"
  assert compute.compute_dtype("auto") is None  # None = the layers' float32 default
  assert compute.compute_dtype("auto", backend="gpu") == jnp.bfloat16
  assert compute.compute_dtype("auto", backend="tpu") == jnp.bfloat16
  assert compute.compute_dtype("float32", backend="gpu") is None
  assert compute.compute_dtype("", backend="gpu") is None
  assert compute.compute_dtype("bfloat16") == jnp.bfloat16
  assert compute.dtype_name("auto") == "float32"
  assert compute.dtype_name("auto", backend="gpu") == "bfloat16"
  with pytest.raises(ValueError, match="Unknown compute dtype 'bf16'"):
    compute.compute_dtype("bf16")


def _configs():
  names = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(ROOT, "configs", "*.py")))
  for name in names:
    get_config = getattr(importlib.import_module(f"configs.{name}"), "get_config", None)
    if get_config is not None:
      yield name, get_config()


def test_every_config_computes_auto():
  seen = 0
  for name, config in _configs():
    if "model" in config and "dtype" in config.model:
      assert config.model.dtype == "auto", name
      assert compute.compute_dtype(config.model.dtype) is None, name  # float32 on this CPU
      seen += 1
  assert seen >= 8


def _cudnn_at(multiple):
  return lambda length, heads, head_dim, dtype, padded: length % multiple == 0


def test_attention_plan():
  bf16 = jnp.bfloat16
  # cuDNN where the GPU takes the true length, else the first padded length it takes.
  assert compute.attention_plan(256, 8, 64, bf16, backend="gpu",
                                supported=_cudnn_at(64)) == ("cudnn", 256)
  assert compute.attention_plan(81, 8, 64, bf16, backend="gpu",
                                supported=_cudnn_at(64)) == ("cudnn", 128)
  assert compute.attention_plan(81, 8, 64, bf16, backend="gpu",
                                supported=_cudnn_at(1)) == ("cudnn", 81)
  # XLA: float32, CPU, TPU, cuDNN refusing every length, or forced.
  assert compute.attention_plan(81, 8, 64, jnp.float32, backend="gpu",
                                supported=_cudnn_at(1)) == ("xla", 81)
  assert compute.attention_plan(81, 8, 64, bf16, backend="cpu") == ("xla", 81)
  assert compute.attention_plan(81, 8, 64, bf16, backend="tpu") == ("xla", 81)
  assert compute.attention_plan(81, 8, 64, bf16, backend="gpu",
                                supported=_cudnn_at(1000)) == ("xla", 81)
  assert compute.attention_plan(81, 8, 64, bf16, impl="xla", backend="gpu",
                                supported=_cudnn_at(1)) == ("xla", 81)
  with pytest.raises(ValueError, match="does not run 8 heads of dim 64 over 81 tokens"):
    compute.attention_plan(81, 8, 64, bf16, impl="cudnn", backend="cpu")
  with pytest.raises(ValueError, match="Unknown attn_impl 'flash'"):
    compute.attention_plan(81, 8, 64, bf16, impl="flash")
  assert not compute.cudnn_compiles(81, 8, 64, "bfloat16", False)  # no GPU here


def _qkv(seq_len=81, batch=2, heads=4, dim=16):
  keys = jax.random.split(jax.random.key(0), 3)
  return [jax.random.normal(k, (batch, seq_len, heads, dim)) for k in keys]


def test_padded_attention_equals_unpadded_outputs_and_gradients():
  q, k, v = _qkv()
  w = jax.random.normal(jax.random.key(1), q.shape)

  def loss(q, k, v, length):
    return jnp.sum(w * compute.attend(q, k, v, implementation="xla", length=length))

  plain = compute.attend(q, k, v, implementation="xla", length=81)
  padded = compute.attend(q, k, v, implementation="xla", length=128)
  assert padded.shape == plain.shape == q.shape
  np.testing.assert_allclose(padded, plain, atol=1e-5)
  np.testing.assert_allclose(plain, jax.nn.dot_product_attention(q, k, v), atol=1e-6)
  grads = [jax.grad(loss, argnums=(0, 1, 2))(q, k, v, length) for length in (81, 128)]
  for g_plain, g_padded in zip(*grads):
    np.testing.assert_allclose(g_padded, g_plain, atol=1e-5)


def test_attention_layer_selects_cudnn_when_the_backend_supports_it(monkeypatch):
  calls = []
  real = jax.nn.dot_product_attention

  def recording(q, k, v, *, implementation=None, **kw):
    calls.append((implementation, q.shape[1], q.dtype, kw.get("key_value_seq_lengths")))
    return real(q, k, v, implementation="xla", **kw)  # CPU: run the same padded call in XLA

  x = jax.random.normal(jax.random.key(2), (2, 9, 9, 32))
  attn = layers.Attention(32, heads=4, gta=True, hw=(9, 9), rngs=nnx.Rngs(0),
                          dtype=jnp.bfloat16)
  expected = layers.Attention(32, heads=4, gta=True, hw=(9, 9), rngs=nnx.Rngs(0),
                              dtype=jnp.bfloat16, attn_impl="xla")(x)
  monkeypatch.setattr(compute, "_backend", lambda: "gpu")
  monkeypatch.setattr(compute, "cudnn_compiles", _cudnn_at(64))
  monkeypatch.setattr(jax.nn, "dot_product_attention", recording)
  out = attn(x)
  assert [c[:3] for c in calls] == [("cudnn", 128, jnp.bfloat16)]
  np.testing.assert_array_equal(calls[0][3], [81, 81])
  np.testing.assert_allclose(out.astype(jnp.float32), expected.astype(jnp.float32), atol=2e-2)
  # In float32 (a CPU's "auto") the same layer stays on XLA at the true length.
  calls.clear()
  layers.Attention(32, heads=4, gta=True, hw=(9, 9), rngs=nnx.Rngs(0))(x)
  assert [c[:2] for c in calls] == [("xla", 81)]


def test_compilation_cache_default_override_and_off(tmp_path):
  # In a child process: the cache latches on at the first compilation.
  child = f"""
import os, jax, jax.numpy as jnp
from akorn_jax import compute
os.environ.pop("AKORN_JAX_CACHE_DIR", None)
os.environ["HOME"] = {str(tmp_path)!r}
assert compute.enable_compilation_cache() == os.path.join({str(tmp_path)!r}, ".cache/akorn_jax/jax")
os.environ["AKORN_JAX_CACHE_DIR"] = "off"
assert compute.enable_compilation_cache() is None
folder = compute.enable_compilation_cache({str(tmp_path / "cache")!r})
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
jax.jit(lambda x: jnp.sin(x) @ x)(jnp.ones((64, 64))).block_until_ready()
assert os.listdir(folder), "nothing cached"
"""
  subprocess.run([sys.executable, "-c", child], check=True, timeout=120, cwd=ROOT,
                 env={**os.environ, "PYTHONPATH": ROOT})


@pytest.mark.parametrize("steps", [1, 3])
def test_count_flops_counts_every_scan_step(steps):
  b, d = 5, 24
  x, w = jnp.ones((b, d)), jnp.ones((d, d))

  @jax.jit
  def f(x, w):
    return jax.lax.scan(lambda x, _: (x @ w, None), x, None, length=steps)[0]

  assert compute.count_flops(f, x, w) == 2 * b * d * d * steps
  # Forward and backward: d(sum f)/dw has two matmuls per step besides the forward one.
  grad = jax.jit(jax.grad(lambda x, w: f(x, w).sum(), argnums=1))
  assert compute.count_flops(grad, x, w) == 3 * 2 * b * d * d * steps
  if steps > 1:
    # The compiled step's own analysis counts the loop body once: why count_flops exists.
    compiled = f.lower(x, w).compile()
    assert compiled.cost_analysis()["flops"] == pytest.approx(2 * b * d * d, rel=1e-3)


def test_count_flops_on_loop_free_matmuls_and_convolutions():
  x, w, m = jnp.ones((2, 9, 9, 8)), jnp.ones((3, 3, 8, 16)), jnp.ones((8, 12))

  def conv(x, w, padding):
    return jax.lax.conv_general_dilated(x, w, (1, 1), padding,
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))

  def xla(f, *args):
    return jax.jit(f).lower(*args).compile().cost_analysis()["flops"]

  # Matmuls and unpadded convolutions: XLA's count.
  matmul = lambda x, m: jnp.einsum("bhwc,cd->bhwd", x, m)
  assert compute.count_flops(matmul, x, m) == xla(matmul, x, m) == 2 * 2 * 81 * 8 * 12
  valid = lambda x, w: conv(x, w, "VALID")
  assert compute.count_flops(valid, x, w) == xla(valid, x, w) == 2 * 2 * 49 * 9 * 8 * 16
  # Zero-padded: every tap of every output counts (XLA skips the taps that fall on padding).
  same = lambda x, w: conv(x, w, "SAME")
  assert compute.count_flops(same, x, w) == 2 * 2 * 81 * 9 * 8 * 16 > xla(same, x, w)


def test_peak_table():
  assert compute.peak_tflops("NVIDIA H200", "bfloat16") == 989.4
  assert compute.peak_tflops("NVIDIA H100 PCIe", "float32") == 378.0
  assert compute.peak_tflops("NVIDIA A100-SXM4-80GB", "bfloat16") == 312.0
  assert compute.peak_tflops("TPU v5 lite", "bfloat16") == 197.0
  assert compute.peak_tflops("TPU v5", "float32") == 459.0
  assert compute.peak_tflops("TPU v6 lite", "bfloat16") == 918.0
  assert compute.peak_tflops("cpu", "float32") is None
