"""Building blocks shared by every model: PyTorch-default initialisation, convolutions and linear
layers, 2-D positional encodings, norms (PyTorch-style BatchNorm), pre-norm residual blocks, and the
per-layer setting broadcast.

Layout is channels-last: images `[B, H, W, C]`. Initialisation follows PyTorch's defaults
(docs/models.md#initialisation, decision in docs/reference.md#differences): convolution and linear
weights and biases are U(-1/sqrt(fan_in), 1/sqrt(fan_in)), embeddings N(0, 1), norms scale 1 / bias
0. The un-normalised stimulus enters the dynamics directly, so the init scale changes the behaviour.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

Dtype = Any


class Buffer(nnx.Variable):
  """A non-trainable state variable (frozen step size, frozen frequencies): saved, EMA-averaged,
  never optimised."""


def torch_uniform(fan_in: int):
  """PyTorch's default init for conv/linear weights and biases: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
  bound = 1.0 / math.sqrt(fan_in)

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)

  return init


def conv(in_ch: int, out_ch: int, ksize: int, *, rngs: nnx.Rngs, stride: int = 1,
         padding: int | str | None = None, use_bias: bool = True, dtype: Dtype = None,
         param_dtype: Dtype = jnp.float32) -> nnx.Conv:
  """k x k convolution with PyTorch init; default padding ksize//2 (zero padding, 'same' at stride 1)."""
  pad = ksize // 2 if padding is None else padding
  if isinstance(pad, int):
    pad = ((pad, pad), (pad, pad))
  init = torch_uniform(in_ch * ksize * ksize)
  return nnx.Conv(in_ch, out_ch, (ksize, ksize), strides=stride, padding=pad, use_bias=use_bias,
                  kernel_init=init, bias_init=init, dtype=dtype, param_dtype=param_dtype, rngs=rngs)


def linear(in_features: int, out_features: int, *, rngs: nnx.Rngs, use_bias: bool = True,
           dtype: Dtype = None, param_dtype: Dtype = jnp.float32) -> nnx.Linear:
  """Dense layer with PyTorch init (also the channels-last form of a 1x1 convolution)."""
  init = torch_uniform(in_features)
  return nnx.Linear(in_features, out_features, use_bias=use_bias, kernel_init=init, bias_init=init,
                    dtype=dtype, param_dtype=param_dtype, rngs=rngs)


def posenc2d(ch: int, h: int, w: int) -> jax.Array:
  """2-D sinusoidal code [h, w, ch] (docs/dynamics.md#positional-code): column code in the first
  ch/2 channels, row code
  in the last ch/2, each as interleaved (sin, cos) pairs with frequencies 10000^(-2k/(ch/2))."""
  if ch % 4:
    raise ValueError(f"posenc2d needs channels divisible by 4, got {ch}.")
  d = ch // 2
  freqs = 10000.0 ** (-jnp.arange(0, d, 2, dtype=jnp.float32) / d)  # [d/2]

  def code(pos):  # [P] -> [P, d] with (sin, cos) interleaved
    ang = pos[:, None] * freqs[None]
    return jnp.stack([jnp.sin(ang), jnp.cos(ang)], axis=-1).reshape(pos.shape[0], d)

  col = code(jnp.arange(w, dtype=jnp.float32))  # [w, d]
  row = code(jnp.arange(h, dtype=jnp.float32))  # [h, d]
  return jnp.concatenate([jnp.broadcast_to(col[None], (h, w, d)),
                          jnp.broadcast_to(row[:, None], (h, w, d))], axis=-1)


class BatchNorm(nnx.BatchNorm):
  """BatchNorm with PyTorch's statistics (PyTorch's `BatchNorm2d`, channels last).

  Training mode normalises with the biased batch variance computed in two passes (E[(x - mean)²],
  not E[x²] - mean²), and updates the running variance with the *unbiased* batch variance
  (times N / (N - 1), N = values per channel), as PyTorch does; Flax's own BatchNorm uses the
  biased one there. Eval mode (`model.eval()`) uses the running statistics.
  """

  def __call__(self, x: jax.Array, use_running_average: bool | None = None, *,
               mask: jax.Array | None = None) -> jax.Array:
    use_running = self.use_running_average if use_running_average is None else use_running_average
    if use_running or mask is not None or self.axis_name is not None:
      return super().__call__(x, use_running_average=use_running, mask=mask)
    axes = tuple(i for i in range(x.ndim) if i != x.ndim - 1)
    xf = x.astype(jnp.float32)
    mean = jnp.mean(xf, axis=axes)
    var = jnp.mean(jnp.square(xf - mean), axis=axes)
    count = x.size // x.shape[-1]
    unbiased = var * (count / max(count - 1, 1))
    m = self.momentum
    self.mean[...] = jax.lax.stop_gradient(m * self.mean[...] + (1 - m) * mean)
    self.var[...] = jax.lax.stop_gradient(m * self.var[...] + (1 - m) * unbiased)
    y = (xf - mean) * jax.lax.rsqrt(var + self.epsilon)
    if self.scale is not None:
      y = y * self.scale[...]
    if self.bias is not None:
      y = y + self.bias[...]
    return y.astype(self.dtype or x.dtype)


def norm_layer(kind: str | None, ch: int, *, rngs: nnx.Rngs):
  """"bn" (BatchNorm as PyTorch's, momentum 0.1 = flax 0.9), "gn" (8 groups) or None.

  Variances are computed in two passes as PyTorch does (Flax's default one-pass E[x²] - E[x]²
  loses precision when the mean is large against the spread)."""
  if kind == "bn":
    return BatchNorm(ch, momentum=0.9, epsilon=1e-5, use_fast_variance=False, rngs=rngs)
  if kind == "gn":
    return nnx.GroupNorm(ch, num_groups=8, epsilon=1e-5, use_fast_variance=False, rngs=rngs)
  if kind in (None, "none"):
    return None
  raise ValueError(f"Unknown norm {kind!r}; expected 'bn', 'gn' or None.")


class NormReLUConv(nnx.Module):
  """Pre-activation block: norm -> ReLU -> conv (docs/dynamics.md#readout, BNReLUConv2d)."""

  def __init__(self, in_ch: int, out_ch: int, ksize: int, *, rngs: nnx.Rngs,
               norm: str | None = None, stride: int = 1, dtype: Dtype = None,
               param_dtype: Dtype = jnp.float32):
    self.norm = norm_layer(norm, in_ch, rngs=rngs)
    self.conv = conv(in_ch, out_ch, ksize, stride=stride, rngs=rngs, dtype=dtype,
                     param_dtype=param_dtype)

  def __call__(self, x: jax.Array) -> jax.Array:
    if self.norm is not None:
      x = self.norm(x)
    return self.conv(jax.nn.relu(x))


class FF(nnx.Module):
  """Two pre-activation conv blocks in->hidden->out (docs/dynamics.md#readout)."""

  def __init__(self, in_ch: int, out_ch: int, hid_ch: int, ksize: int, *, rngs: nnx.Rngs,
               norm: str | None = None, dtype: Dtype = None, param_dtype: Dtype = jnp.float32):
    kw = dict(rngs=rngs, norm=norm, dtype=dtype, param_dtype=param_dtype)
    self.first = NormReLUConv(in_ch, hid_ch, ksize, **kw)
    self.second = NormReLUConv(hid_ch, out_ch, ksize, **kw)

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.second(self.first(x))


class Residual(nnx.Module):
  """x + f(x)."""

  def __init__(self, fn: nnx.Module):
    self.fn = fn

  def __call__(self, x: jax.Array) -> jax.Array:
    return x + self.fn(x)


def as_tuple(value, length: int, name: str) -> tuple:
  """Broadcasts a per-layer setting (int/str or sequence) to `length` layers."""
  if isinstance(value, (list, tuple)):
    if len(value) != length:
      raise ValueError(f"{name} has {len(value)} entries {tuple(value)} but the model has "
                       f"{length} layers; give one value or one per layer.")
    return tuple(value)
  return (value,) * length
