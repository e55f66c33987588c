"""NNX layers: GTA, attention, stimulus normalisation, readout, positional code, init."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from akorn_jax import kuramoto, layers

B, H, W = 3, 5, 7


def test_gta_init_matches_spec_formula():
  rot, rot_t = layers.gta_init((H, W), head_dim=10)  # d_h % 4 != 0: F = 10 // 4 + 1 = 3
  assert rot.shape == (H * W, 5, 2, 2)
  nfreq = 3
  r, c = 2, 6
  tok = r * W + c  # row-major token order
  for b in range(5):
    freq = 10000.0 ** (-(b // 2) / nfreq)
    theta = (r if b % 2 == 0 else c) * freq
    want = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    np.testing.assert_allclose(rot[tok, b], want, atol=1e-5)
    np.testing.assert_allclose(rot_t[tok, b], want.T, atol=1e-5)
  np.testing.assert_allclose(rot[0], np.broadcast_to(np.eye(2), (5, 2, 2)), atol=1e-6)


def test_gta_attention_is_translation_equivariant_in_scores_at_init():
  # With the rotary init and mat_o = R^T, shifting all tokens' coordinates is invisible to q.k.
  attn = layers.Attention(16, heads=2, gta=True, hw=(H, W), rngs=nnx.Rngs(0))
  mq = attn.mat_q[...]
  q = jax.random.normal(jax.random.key(0), (1, H * W, 2, 8))
  rq = layers.coupling._apply_pairs(mq, q)
  # token (0,0) has identity matrices.
  np.testing.assert_allclose(rq[:, 0], q[:, 0], atol=1e-6)
  # rotations preserve norms.
  np.testing.assert_allclose(jnp.linalg.norm(rq, axis=-1), jnp.linalg.norm(q, axis=-1), rtol=1e-5)


def test_attention_shapes_and_grid_resize():
  attn = layers.Attention(16, heads=4, gta=True, hw=(H, W), rngs=nnx.Rngs(1))
  x = jax.random.normal(jax.random.key(1), (B, H, W, 16))
  assert attn(x).shape == (B, H, W, 16)
  # A different grid resizes the GTA matrices bilinearly.
  x2 = jax.random.normal(jax.random.key(2), (B, 2 * H, 2 * W, 16))
  assert attn(x2).shape == (B, 2 * H, 2 * W, 16)
  mats = attn._mats((2 * H, 2 * W))
  assert mats[0].shape == (4 * H * W, 2, 2, 2)
  # Same grid: the stored matrices are used as they are.
  np.testing.assert_array_equal(attn._mats((H, W))[0], attn.mat_q[...])


def test_attention_matches_direct_computation_without_gta():
  attn = layers.Attention(12, heads=3, rngs=nnx.Rngs(3))
  x = jax.random.normal(jax.random.key(3), (2, 11, 12))
  qkv = x @ attn.qkv.kernel[...] + attn.qkv.bias[...]
  q, k, v = np.split(np.asarray(qkv), 3, axis=-1)
  outs = []
  for h in range(3):
    sl = slice(4 * h, 4 * h + 4)
    s = q[..., sl] @ np.swapaxes(k[..., sl], -1, -2) / 2.0
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    outs.append(p @ v[..., sl])
  want = np.concatenate(outs, -1) @ attn.out.kernel[...] + attn.out.bias[...]
  np.testing.assert_allclose(attn(x), want, rtol=1e-4, atol=1e-5)


def test_group_norm_stimulus_is_per_oscillator():
  n, ch = 4, 12
  norm = layers.stimulus_norm("gn", ch, n, rngs=nnx.Rngs(0))
  c = jax.random.normal(jax.random.key(4), (B, H, W, ch)) * 3 + 1
  out = norm(c)
  blocks = np.asarray(out).reshape(B, H * W, ch // n, n)
  np.testing.assert_allclose(blocks.mean(axis=(1, 3)), 0.0, atol=1e-4)
  np.testing.assert_allclose(blocks.var(axis=(1, 3)), 1.0, rtol=1e-3)
  assert layers.stimulus_norm("none", ch, n, rngs=nnx.Rngs(0)) is None
  with pytest.raises(ValueError, match="c_norm"):
    layers.stimulus_norm("bn", ch, n, rngs=nnx.Rngs(0))


def test_readout_is_group_norm_plus_bias():
  ro = layers.ReadOut(8, 6, ro_n=4, ksize=1, rngs=nnx.Rngs(5))
  ro.bias[...] = jnp.arange(6, dtype=jnp.float32)
  x = jax.random.normal(jax.random.key(5), (B, H, W, 8))
  y = np.asarray(x @ ro.conv.kernel[...][0, 0] + ro.conv.bias[...]).reshape(B, H, W, 6, 4)
  want = np.linalg.norm(y, axis=-1) + np.arange(6)
  np.testing.assert_allclose(ro(x), want, rtol=1e-5, atol=1e-5)


def test_posenc2d_layout():
  pe = layers.posenc2d(8, 3, 5)
  assert pe.shape == (3, 5, 8)
  # Channel 0/1 = sin/cos(col * 1); channel 4/5 = sin/cos(row * 1) (k = 0 frequency is 1).
  np.testing.assert_allclose(pe[1, 3, 0], math.sin(3.0), atol=1e-6)
  np.testing.assert_allclose(pe[1, 3, 1], math.cos(3.0), atol=1e-6)
  np.testing.assert_allclose(pe[2, 3, 4], math.sin(2.0), atol=1e-6)
  np.testing.assert_allclose(pe[2, 3, 2], math.sin(3.0 * 10000 ** -0.5), atol=1e-6)


def test_torch_default_init_bounds():
  conv = layers.conv(6, 10, 3, rngs=nnx.Rngs(0))
  bound = 1 / math.sqrt(6 * 9)
  for p in (conv.kernel[...], conv.bias[...]):
    assert float(jnp.max(jnp.abs(p))) <= bound
    assert float(jnp.max(jnp.abs(p))) > 0.8 * bound  # uniform fills the range


def test_klayer_conv_and_attn_run_and_stay_on_spheres():
  for kw in (dict(connectivity="conv", ksize=3), dict(connectivity="attn", heads=2, hw=(H, W))):
    layer = layers.KLayer(8, n=4, rngs=nnx.Rngs(0), c_norm="gn", use_omega=True, **kw)
    x = jax.random.normal(jax.random.key(6), (B, H, W, 8))
    c = jax.random.normal(jax.random.key(7), (B, H, W, 8))
    xT, aux = layer(x, c, steps=2, gamma=jnp.float32(0.5), return_states=True)
    assert xT.shape == (B, H, W, 8) and aux["energies"].shape == (3, B)
    np.testing.assert_allclose(jnp.linalg.norm(xT.reshape(B, H, W, 2, 4), axis=-1), 1.0,
                               rtol=1e-5)


def test_klayer_rejects_bad_settings():
  with pytest.raises(ValueError, match="multiple of the oscillator dimension"):
    layers.KLayer(10, n=4, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="even oscillator dimension"):
    layers.KLayer(9, n=3, use_omega=True, connectivity="conv", rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="connectivity"):
    layers.KLayer(8, n=4, connectivity="fc", rngs=nnx.Rngs(0))


def test_omega_frozen_is_buffer_and_learnable_is_param():
  frozen = layers.Omega(8, init=0.3, global_omega=False, learn=False)
  learn = layers.Omega(8, init=0.3, global_omega=True, learn=True)
  assert isinstance(frozen.p, layers.Buffer) and isinstance(learn.p, nnx.Param)
  np.testing.assert_allclose(frozen(), np.full(4, 0.3), rtol=1e-6)
  np.testing.assert_allclose(learn(), 0.3, rtol=1e-6)


def test_klayer_uses_the_kernel():
  # The layer is a thin wrapper: identical to calling kuramoto.integrate with its coupling (and,
  # without Ω, with the reference's effective step γ/(1+γ): 0.25 -> 0.2).
  layer = layers.KLayer(8, n=4, connectivity="conv", ksize=3, c_norm=None, rngs=nnx.Rngs(1))
  x = jax.random.normal(jax.random.key(8), (B, H, W, 8))
  c = jax.random.normal(jax.random.key(9), (B, H, W, 8))
  got, _ = layer(x, c, steps=3, gamma=jnp.float32(0.25))
  want, _ = kuramoto.integrate(x, c, layer.connectivity, n=4, steps=3, gamma=0.2)
  np.testing.assert_allclose(got, want, rtol=1e-6)


def test_coupling_conv_gradient_matches_xla():
  layer = layers.coupling_conv(6, 5, rngs=nnx.Rngs(0))
  graphdef, state = nnx.split(layer)
  x = jax.random.normal(jax.random.key(10), (B, H, W, 6))
  dy = jax.random.normal(jax.random.key(11), (B, H, W, 6))

  def ours(x, k, b):
    new = jax.tree.map(lambda v: v, state)  # a copy whose kernel and bias are the traced inputs
    new["kernel"] = nnx.Param(k)
    new["bias"] = nnx.Param(b)
    return jnp.sum(nnx.merge(graphdef, new)(x) * dy)

  def xla(x, k, b):
    y = jax.lax.conv_general_dilated(x, k, (1, 1), ((2, 2), (2, 2)),
                                     dimension_numbers=("NHWC", "HWIO", "NHWC")) + b
    return jnp.sum(y * dy)

  args = (x, layer.kernel[...], layer.bias[...])
  np.testing.assert_allclose(ours(*args), xla(*args), rtol=1e-5)
  g_ours = jax.jit(jax.grad(ours, argnums=(0, 1, 2)))(*args)
  g_xla = jax.grad(xla, argnums=(0, 1, 2))(*args)
  for g1, g2 in zip(g_ours, g_xla):
    np.testing.assert_allclose(g1, g2, rtol=1e-4, atol=1e-4)
  with pytest.raises(ValueError, match="odd kernel size"):
    layers.coupling_conv(6, 4, rngs=nnx.Rngs(0))
