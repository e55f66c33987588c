"""The couplings J of a Kuramoto layer: a k x k convolution (with a hand-written backward for
the kernel gradient) and multi-head attention with optional geometric transform attention (GTA).
The attention kernel (cuDNN or XLA, padding where cuDNN refuses a length) is chosen by
`akorn_jax.compute.attention_plan`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from akorn_jax import compute
from akorn_jax.layers.basic import Dtype, linear, torch_uniform


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
