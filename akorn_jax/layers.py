"""Flax NNX layers of AKOrN: couplings J, stimulus normalisation, the Kuramoto layer, readouts.

Layout is channels-last: images `[B, H, W, C]`, oscillators are contiguous n-blocks of C.
Initialisation follows PyTorch's defaults (docs/models.md#initialisation, decision in
docs/reference.md#differences): convolution and linear
weights and biases are U(-1/sqrt(fan_in), 1/sqrt(fan_in)), embeddings N(0, 1), norms scale 1 / bias 0.
The un-normalised stimulus enters the dynamics directly, so the init scale changes the behaviour.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from akorn_jax import compute
from akorn_jax import kuramoto

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


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _same_conv(x: jax.Array, kernel: jax.Array, pad: int) -> jax.Array:
  """Stride-1 zero-padded convolution, NHWC x HWIO."""
  return jax.lax.conv_general_dilated(x, kernel, (1, 1), ((pad, pad), (pad, pad)),
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _same_conv_fwd(x, kernel, pad):
  return _same_conv(x, kernel, pad), (x, kernel)


def _same_conv_bwd(pad, res, dy):
  x, kernel = res
  dims = ("NHWC", "HWIO", "NHWC")
  # dL/dx: correlate with the spatially flipped, in/out-swapped kernel.
  dx = jax.lax.conv_general_dilated(dy, jnp.flip(kernel, (0, 1)).transpose(0, 1, 3, 2), (1, 1),
                                    ((pad, pad), (pad, pad)), dimension_numbers=dims)
  # dL/dk[a, b, i, o] = sum_{n,h,w} x_pad[n, h+a, w+b, i] dy[n, h, w, o]: a convolution with the
  # input channels as batch and the batch as features.
  dk = jax.lax.conv_general_dilated(x.transpose(3, 1, 2, 0), dy.transpose(1, 2, 0, 3), (1, 1),
                                    ((pad, pad), (pad, pad)), dimension_numbers=dims)
  return dx, dk.transpose(1, 2, 0, 3)


_same_conv.defvjp(_same_conv_fwd, _same_conv_bwd)


class CouplingConv(nnx.Conv):
  """The k x k convolution coupling J of a KLayer (stride 1, 'same' zero padding).

  On the CPU backend its gradient is written out explicitly: inside `lax.scan`, XLA:CPU otherwise
  leaves the kernel-gradient convolution in a layout it runs ~35x slower (measured: tetro_conv_train
  12.3 s -> 0.35 s per step, results/benchmarks.md). Other backends use XLA's own gradient.
  """

  def __call__(self, x: jax.Array) -> jax.Array:
    if jax.default_backend() != "cpu":
      return super().__call__(x)
    dtype = self.dtype or jnp.result_type(x, self.kernel[...])
    y = _same_conv(x.astype(dtype), self.kernel[...].astype(dtype), self.kernel_size[0] // 2)
    return y + self.bias[...].astype(dtype)


def coupling_conv(ch: int, ksize: int, *, rngs: nnx.Rngs, dtype: Dtype = None,
                  param_dtype: Dtype = jnp.float32) -> CouplingConv:
  """J = k x k convolution C -> C with PyTorch init (odd k)."""
  if ksize % 2 == 0:
    raise ValueError(f"The coupling convolution needs an odd kernel size, got ksize={ksize}.")
  init = torch_uniform(ch * ksize * ksize)
  pad = ksize // 2
  return CouplingConv(ch, ch, (ksize, ksize), padding=((pad, pad), (pad, pad)), kernel_init=init,
                      bias_init=init, dtype=dtype, param_dtype=param_dtype, rngs=rngs)


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


def gta_init(hw: Sequence[int], head_dim: int) -> tuple[jax.Array, jax.Array]:
  """Initial GTA matrices (docs/dynamics.md#attention-and-gta): 2-D rotations with integer
  coordinates, base 10000.

  Args:
    hw: (H, W) token grid.
    head_dim: d_h (even).

  Returns:
    (R, R^T), each [H*W, d_h/2, 2, 2]; R initialises mat_q/k/v, R^T initialises mat_o.
  """
  if head_dim % 2:
    raise ValueError(f"GTA needs an even head dimension, got {head_dim}.")
  h, w = hw
  nfreq = head_dim // 4 + (1 if head_dim % 4 else 0)
  freqs = jnp.exp(-2 * jnp.arange(nfreq, dtype=jnp.float32) * math.log(10000.0) / (2 * nfreq))
  rows, cols = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32),
                            indexing="ij")
  coords = jnp.stack([rows.reshape(-1), cols.reshape(-1)], axis=-1)  # [HW, 2] row-major tokens
  # Block b uses frequency b // 2 and the row (b even) or column (b odd) coordinate.
  blocks = jnp.arange(head_dim // 2)
  theta = coords[:, blocks % 2] * freqs[blocks // 2][None]  # [HW, d_h/2]
  cos, sin = jnp.cos(theta), jnp.sin(theta)
  rot = jnp.stack([jnp.stack([cos, -sin], -1), jnp.stack([sin, cos], -1)], -2)
  return rot, jnp.swapaxes(rot, -1, -2)


def _apply_pairs(mat: jax.Array, u: jax.Array) -> jax.Array:
  """u <- M u on feature pairs, as elementwise products (faster than an einsum on GPU).

  Args:
    mat: [L, d/2, 2, 2].
    u: [B, L, heads, d].
  """
  mat = mat.astype(u.dtype)
  up = u.reshape(*u.shape[:-1], u.shape[-1] // 2, 2)
  u0, u1 = up[..., 0], up[..., 1]
  m = mat[None, :, None]  # broadcast over batch and heads
  out0 = m[..., 0, 0] * u0 + m[..., 0, 1] * u1
  out1 = m[..., 1, 0] * u0 + m[..., 1, 1] * u1
  return jnp.stack([out0, out1], axis=-1).reshape(u.shape)


class Attention(nnx.Module):
  """Multi-head self-attention over tokens with optional learnable GTA
  (docs/dynamics.md#attention-and-gta).

  J(x) = W_o · MHSA(W_qkv · x). Heads are contiguous channel blocks (the reference interleaves them,
  a fixed permutation absorbed by W_qkv/W_o that only matters when porting weights).
  """

  def __init__(self, ch: int, *, heads: int, rngs: nnx.Rngs, gta: bool = False,
               hw: Sequence[int] | None = None, attn_impl: str | None = None,
               dtype: Dtype = None, param_dtype: Dtype = jnp.float32):
    if ch % heads:
      raise ValueError(f"channels ({ch}) must be divisible by heads ({heads}).")
    self.heads, self.head_dim, self.attn_impl = heads, ch // heads, attn_impl
    self.qkv = linear(ch, 3 * ch, rngs=rngs, dtype=dtype, param_dtype=param_dtype)
    self.out = linear(ch, ch, rngs=rngs, dtype=dtype, param_dtype=param_dtype)
    self.hw = tuple(hw) if gta else None
    if gta:
      if hw is None:
        raise ValueError("GTA needs the token grid hw=(H, W).")
      rot, rot_t = gta_init(hw, self.head_dim)
      self.mat_q, self.mat_k, self.mat_v = (nnx.Param(rot.astype(param_dtype)) for _ in range(3))
      self.mat_o = nnx.Param(rot_t.astype(param_dtype))

  def _mats(self, hw: tuple[int, int]) -> list[jax.Array]:
    mats = [self.mat_q[...], self.mat_k[...], self.mat_v[...], self.mat_o[...]]
    if hw == self.hw:
      return mats
    # A different grid: resize every matrix entry bilinearly over the grid (half-pixel centres,
    # no antialiasing, as torch's interpolate with align_corners=False).
    h0, w0 = self.hw
    return [jax.image.resize(m.reshape(h0, w0, *m.shape[1:]), (*hw, *m.shape[1:]), "bilinear",
                             antialias=False).reshape(hw[0] * hw[1], *m.shape[1:]) for m in mats]

  def __call__(self, x: jax.Array) -> jax.Array:
    """x: [B, H, W, C] (image tokens, row-major) or [B, L, C]; returns the same shape."""
    shape = x.shape
    tokens = x.reshape(shape[0], -1, shape[-1])
    qkv = self.qkv(tokens).reshape(*tokens.shape[:2], 3, self.heads, self.head_dim)
    q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
    if self.hw is not None:
      hw = tuple(shape[1:3]) if len(shape) == 4 else self.hw
      mq, mk, mv, mo = self._mats(hw)
      q, k, v = _apply_pairs(mq, q), _apply_pairs(mk, k), _apply_pairs(mv, v)
    impl, length = compute.attention_plan(q.shape[1], self.heads, self.head_dim, q.dtype,
                                  impl=self.attn_impl)
    o = compute.attend(q, k, v, implementation=impl, length=length)
    if self.hw is not None:
      o = _apply_pairs(mo, o)
    return self.out(o.reshape(tokens.shape)).reshape(shape)


class Omega(nnx.Module):
  """Natural frequencies (docs/dynamics.md#natural-frequencies): ω = ||p|| per channel pair, p
  initialised to ω₀/√2 · (1, 1)."""

  def __init__(self, ch: int, *, init: float, global_omega: bool, learn: bool):
    shape = (2,) if global_omega else (ch // 2, 2)
    value = jnp.full(shape, init / math.sqrt(2.0), jnp.float32)
    self.p = nnx.Param(value) if learn else Buffer(value)

  def __call__(self) -> jax.Array:
    """Returns ω: a scalar (global) or [C/2]."""
    return jnp.linalg.norm(self.p[...], axis=-1)


class ScaleAndBias(nnx.Module):
  """Per-channel c * scale + bias (the reference's "sandb" stimulus normalisation)."""

  def __init__(self, ch: int):
    self.scale = nnx.Param(jnp.ones((ch,), jnp.float32))
    self.bias = nnx.Param(jnp.zeros((ch,), jnp.float32))

  def __call__(self, c: jax.Array) -> jax.Array:
    return c * self.scale[...] + self.bias[...]


def stimulus_norm(kind: str | None, ch: int, n: int, *, rngs: nnx.Rngs):
  """Normalisation applied once to the stimulus c per layer call
  (docs/dynamics.md#stimulus-normalisation)."""
  if kind == "gn":  # one group per oscillator: statistics over its n channels x all positions
    return nnx.GroupNorm(ch, num_groups=ch // n, epsilon=1e-5, use_fast_variance=False, rngs=rngs)
  if kind == "sandb":
    return ScaleAndBias(ch)
  if kind in (None, "none"):
    return None
  raise ValueError(f"Unknown c_norm {kind!r}; expected 'gn', 'sandb' or 'none'.")


class KLayer(nnx.Module):
  """The Kuramoto layer: T weight-tied oscillator updates driven by a coupling J and stimulus c."""

  def __init__(self, ch: int, *, n: int, rngs: nnx.Rngs, connectivity: str = "attn",
               ksize: int = 1, heads: int = 8, gta: bool = True, hw: Sequence[int] | None = None,
               c_norm: str | None = "gn", use_omega: bool = False, init_omega: float = 1.0,
               global_omega: bool = False, learn_omega: bool = True, project: bool = True,
               attn_impl: str | None = None, remat: str | bool = "none", dtype: Dtype = None,
               param_dtype: Dtype = jnp.float32):
    """Creates the layer.

    Args:
      ch: channels C (= K oscillators x n).
      n: oscillator dimension.
      rngs: NNX random streams for parameter init.
      connectivity: "conv" (k x k convolution) or "attn" (multi-head attention, optionally GTA).
      ksize: convolution kernel size (conv only).
      heads: attention heads (attn only).
      gta: geometric transform attention (attn only); needs hw.
      hw: token grid (H, W) at construction (GTA).
      c_norm: "gn", "sandb" or "none" (docs/dynamics.md#stimulus-normalisation).
      use_omega: natural frequencies Ω (needs even n). Without Ω the reference's Ω is the identity,
        so its step x + γ(x + P(y)) renormalised equals x + γ/(1+γ) P(y): this layer applies
        γ/(1+γ) itself (see __call__), so γ always means the reference's γ.
      init_omega, global_omega, learn_omega: Ω options (docs/dynamics.md#natural-frequencies).
      project: tangent projection of the coupling (the reference's apply_proj).
      attn_impl: attention kernel: None or "" (chosen by `compute.attention_plan`), "xla" or "cudnn".
      remat: what the backward pass keeps per step, a `kuramoto.REMAT_POLICIES` name ("none",
        "coupling", "minimal", "full"; True = "full", False = "none").
      dtype: compute dtype of J (the state and energy stay float32).
      param_dtype: parameter dtype.
    """
    if ch % n:
      raise ValueError(f"channels ({ch}) must be a multiple of the oscillator dimension n={n}.")
    if use_omega and n % 2:
      raise ValueError(f"Natural frequencies need an even oscillator dimension, got n={n}.")
    self.n, self.project, self.remat, self.dtype = n, project, remat, dtype
    if connectivity == "conv":
      self.connectivity = coupling_conv(ch, ksize, rngs=rngs, dtype=dtype, param_dtype=param_dtype)
    elif connectivity == "attn":
      self.connectivity = Attention(ch, heads=heads, gta=gta, hw=hw, attn_impl=attn_impl,
                                    rngs=rngs, dtype=dtype, param_dtype=param_dtype)
    else:
      raise ValueError(f"Unknown connectivity {connectivity!r}; expected 'conv' or 'attn'.")
    self.omega = Omega(ch, init=init_omega, global_omega=global_omega,
                       learn=learn_omega) if use_omega else None
    self.c_norm = stimulus_norm(c_norm, ch, n, rngs=rngs)

  def __call__(self, x: jax.Array, c: jax.Array, *, steps: int, gamma: jax.Array,
               return_states: bool = False) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Runs T steps.

    Args:
      x: [B, H, W, C] initial state (normalised inside).
      c: [B, H, W, C] stimulus.
      steps: T.
      gamma: the reference's step size γ. With Ω the update is x + γ(Ωx + P(y)); without Ω the
        reference's Identity Ω makes it N(x + γ(x + P(y))) = N(x + γ/(1+γ) P(y)),
        so the kernel gets γ/(1+γ). Turning Ω on or off therefore never changes what γ means.
      return_states: also return x_1 … x_T.

    Returns:
      x_T [B, H, W, C] float32 and aux {"energies": [T+1, B], "states": [T, B, H, W, C]?}
      (see `kuramoto.integrate`).
    """
    c_hat = self.c_norm(c) if self.c_norm is not None else c
    if self.omega is None:
      gamma = gamma / (1 + gamma)
    return kuramoto.integrate(
        x, c_hat, self.connectivity, n=self.n, steps=steps, gamma=gamma,
        omega=self.omega() if self.omega is not None else None, project_tangent=self.project,
        remat=self.remat, coupling_dtype=self.dtype, return_states=return_states)


class ReadOut(nnx.Module):
  """ReadOutConv (docs/dynamics.md#readout): r_o = || (W * x + b)[o·ro_N:(o+1)·ro_N] ||_2 + β_o."""

  def __init__(self, in_ch: int, out_ch: int, *, ro_n: int, ksize: int = 1, rngs: nnx.Rngs,
               dtype: Dtype = None, param_dtype: Dtype = jnp.float32):
    self.ro_n = ro_n
    self.conv = conv(in_ch, out_ch * ro_n, ksize, rngs=rngs, dtype=dtype, param_dtype=param_dtype)
    self.bias = nnx.Param(jnp.zeros((out_ch,), param_dtype))

  def __call__(self, x: jax.Array) -> jax.Array:
    y = self.conv(x).astype(jnp.float32)
    y = y.reshape(*y.shape[:-1], y.shape[-1] // self.ro_n, self.ro_n)
    return jnp.linalg.norm(y, axis=-1) + self.bias[...]


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


def initial_state(key: jax.Array | None, x_init: jax.Array | None, shape: tuple[int, ...]) -> jax.Array:
  """The random initial oscillators of an AKOrN forward pass: `x_init` when given, else N(0, 1).

  Args:
    key: PRNG key of the draw (unused when x_init is given).
    x_init: the draw itself, [B, ..., C] in our channels-last layout (deterministic forward).
    shape: the expected shape (that of the stimulus c).
  """
  if x_init is not None:
    if tuple(x_init.shape) != tuple(shape):
      raise ValueError(f"x_init has shape {tuple(x_init.shape)}, expected {tuple(shape)} (the "
                       "stimulus' shape, channels last); pass the initial oscillators in our layout.")
    return jnp.asarray(x_init, jnp.float32)
  if key is None:
    raise ValueError("An AKOrN forward needs key= (random initial oscillators) or x_init=.")
  return jax.random.normal(key, shape, jnp.float32)


def run_layers(x: jax.Array, c: jax.Array, klayers: Sequence[KLayer], readouts: Sequence,
               steps: Sequence[int], *, gamma: jax.Array, return_states: bool = False,
               transitions: Sequence | None = None,
               x_maps: Sequence | None = None) -> tuple[jax.Array, jax.Array, dict]:
  """The stacking rule of every AKOrN (docs/dynamics.md#stacking).

  Layer l runs its KLayer for T_l steps from the carried state x with stimulus c, then the next
  stimulus is c = readout_l(x_T) (recomputed, never carried). With `transitions`, the module
  transitions[l-1] is applied to both x and c before layer l > 0 (CIFAR's shared strided conv);
  with `x_maps`, x_maps[l-1] is applied to x alone before layer l > 0 (the objects' use_ro_x).

  Returns:
    (x_T of the last layer, its readout c, aux {"energies": [T_l+1, B] per layer,
    "states": [T_l, B, ...] per layer (with return_states)}).
  """
  energies, states = [], []
  for i, (klayer, readout, t) in enumerate(zip(klayers, readouts, steps)):
    if transitions is not None and i > 0:
      x = transitions[i - 1](x).astype(jnp.float32)
      c = transitions[i - 1](c).astype(jnp.float32)
    if x_maps is not None and i > 0:
      x = x_maps[i - 1](x).astype(jnp.float32)
    x, aux = klayer(x, c, steps=t, gamma=gamma, return_states=return_states)
    c = readout(x)
    energies.append(aux["energies"])
    if return_states:
      states.append(aux["states"])
  out = {"energies": energies}
  if return_states:
    out["states"] = states
  return x, c, out
