"""Invariants of the pure Kuramoto kernels (STYLE.md: test invariants, not only golden numbers)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from akorn_jax import kuramoto

B, H, W, N = 3, 5, 7, 4
C = 3 * N  # K = 3 oscillators per position


def _rand(key, shape=(B, H, W, C)):
  return jax.random.normal(jax.random.key(key), shape, jnp.float32)


def _oscillator_norms(x, n=N):
  return jnp.linalg.norm(x.reshape(*x.shape[:-1], -1, n), axis=-1)


def _conv_coupling(key, ch=C):
  w = jax.random.normal(jax.random.key(key), (3, 3, ch, ch)) * 0.2

  def coupling(x):
    return jax.lax.conv_general_dilated(x, w.astype(x.dtype), (1, 1), "SAME",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))
  return coupling


def test_normalize_gives_unit_oscillators_and_handles_zero():
  x = _rand(0).at[0, 0, 0, :N].set(0.0)
  y = kuramoto.normalize(x, N)
  norms = _oscillator_norms(y)
  np.testing.assert_allclose(norms[0, 1:], 1.0, rtol=1e-6)
  assert float(norms[0, 0, 0, 0]) == 0.0  # zero stays zero instead of NaN (eps 1e-12)
  assert bool(jnp.all(jnp.isfinite(y)))


def test_normalize_groups_contiguous_blocks():
  # Channel block [k n, (k+1) n) is one oscillator: scaling one block must not change the others.
  x = _rand(1)
  x2 = x.at[..., :N].multiply(5.0)
  np.testing.assert_allclose(kuramoto.normalize(x, N), kuramoto.normalize(x2, N), atol=1e-6)


def test_projection_is_orthogonal_to_state_and_idempotent():
  x = kuramoto.normalize(_rand(2), N)
  y = _rand(3)
  p = kuramoto.project(y, x, N)
  inner = jnp.sum((p * x).reshape(B, H, W, -1, N), axis=-1)
  np.testing.assert_allclose(inner, 0.0, atol=1e-5)
  np.testing.assert_allclose(kuramoto.project(p, x, N), p, atol=1e-5)


@pytest.mark.parametrize("omega", [0.7, np.linspace(0.1, 2.0, C // 2)])
def test_omega_is_tangent_and_scales_pairs(omega):
  x = kuramoto.normalize(_rand(4), N)
  ox = kuramoto.omega_rotate(x, jnp.asarray(omega, jnp.float32))
  # Tangent to every pair (hence to every oscillator) ...
  pair_inner = jnp.sum((ox * x).reshape(B, H, W, -1, 2), axis=-1)
  np.testing.assert_allclose(pair_inner, 0.0, atol=1e-6)
  # ... and |Ωx| = ω |x| per pair: a pure rotation generator.
  pair_norm = jnp.linalg.norm(x.reshape(B, H, W, -1, 2), axis=-1)
  rot_norm = jnp.linalg.norm(ox.reshape(B, H, W, -1, 2), axis=-1)
  np.testing.assert_allclose(rot_norm, pair_norm * np.asarray(omega), rtol=1e-5, atol=1e-6)
  # Direction convention of docs/dynamics.md#natural-frequencies: (Ωx)_0 = ω x_1, (Ωx)_1 = -ω x_0.
  w0 = np.asarray(omega).reshape(-1)[0]
  np.testing.assert_allclose(ox[..., 0], w0 * x[..., 1], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(ox[..., 1], -w0 * x[..., 0], rtol=1e-5, atol=1e-6)


def test_omega_rejects_odd_channels():
  with pytest.raises(ValueError, match="even"):
    kuramoto.omega_rotate(jnp.ones((2, 3)), 1.0)


def test_channel_count_must_divide():
  with pytest.raises(ValueError, match="multiple of the oscillator dimension n=4"):
    kuramoto.normalize(jnp.ones((2, 6)), 4)


def test_integrate_states_unit_norm_and_energy_bookkeeping():
  coupling = _conv_coupling(5)
  x0, c = _rand(6), _rand(7)
  xT, aux = kuramoto.integrate(x0, c, coupling, n=N, steps=4, gamma=0.3, omega=0.5,
                               return_states=True)
  states = aux["states"]
  assert states.shape == (4, B, H, W, C) and aux["energies"].shape == (5, B)
  np.testing.assert_allclose(_oscillator_norms(states), 1.0, rtol=1e-5)
  np.testing.assert_array_equal(states[-1], xT)
  # Energies are E(x_0) ... E(x_T) of the pre-update states, recomputed directly here.
  xs = [kuramoto.normalize(x0, N)] + list(states)
  want = [-jnp.sum((x * (coupling(x) + c)).reshape(B, -1), -1) for x in xs]
  np.testing.assert_allclose(aux["energies"], jnp.stack(want), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("steps", [1, 4])
def test_runtime_steps_run_the_same_dynamics_with_running_energy_scores(steps):
  # T as a traced int32 (one compilation for every T): the same final state as the scan, and the
  # running scores equal what the [T+1, B] history gives.
  coupling = _conv_coupling(5)
  x0, c = _rand(6), _rand(7)
  x_ref, aux_ref = kuramoto.integrate(x0, c, coupling, n=N, steps=steps, gamma=0.3, omega=0.5)
  run = jax.jit(lambda t: kuramoto.integrate(x0, c, coupling, n=N, steps=t, gamma=0.3, omega=0.5))
  x_rt, aux_rt = run(np.int32(steps))
  assert set(aux_rt) == {"energy_sum", "energy_last", "energy_final"}
  np.testing.assert_allclose(x_rt, x_ref, rtol=1e-5, atol=1e-6)
  e = aux_ref["energies"]
  np.testing.assert_allclose(aux_rt["energy_final"], e[-1], rtol=1e-5, atol=1e-4)
  np.testing.assert_allclose(aux_rt["energy_last"], e[-2], rtol=1e-5, atol=1e-4)
  np.testing.assert_allclose(aux_rt["energy_sum"], e[:-1].sum(0), rtol=1e-5, atol=1e-3)
  run(np.int32(steps + 3))
  assert run._cache_size() == 1  # another T, no new compilation
  with pytest.raises(ValueError, match="static"):
    kuramoto.integrate(x0, c, coupling, n=N, steps=jnp.int32(2), gamma=0.3, return_states=True)


def test_step_matches_the_update_equation():
  coupling = _conv_coupling(8)
  x = kuramoto.normalize(_rand(9), N)
  c = _rand(10)
  got, _ = kuramoto.step(x, c, coupling, n=N, gamma=0.25, omega=1.5)
  y = coupling(x) + c
  xb, yb = x.reshape(B, H, W, -1, N), y.reshape(B, H, W, -1, N)
  proj = yb - np.sum(yb * xb, -1, keepdims=True) * xb
  pairs = np.asarray(x).reshape(B, H, W, -1, 2)
  om = np.stack([pairs[..., 1], -pairs[..., 0]], -1).reshape(B, H, W, -1, N) * 1.5
  new = xb + 0.25 * (proj + om)
  new = new / np.linalg.norm(new, axis=-1, keepdims=True)
  np.testing.assert_allclose(got, new.reshape(x.shape), rtol=1e-5, atol=1e-5)


def test_lyapunov_energy_non_increasing_for_symmetric_coupling():
  # With symmetric J, Ω = 0 and a small step, E = -1/2 x^T J x - c^T x is a Lyapunov function.
  d = 5 * C
  a = jax.random.normal(jax.random.key(11), (d, d)) / np.sqrt(d)
  j = (a + a.T) / 2
  c = jax.random.normal(jax.random.key(12), (2, d)) * 0.5

  def coupling(x):
    return x @ j

  def lyapunov(x):
    return -0.5 * jnp.sum((x @ j) * x, -1) - jnp.sum(c * x, -1)

  _, aux = kuramoto.integrate(jax.random.normal(jax.random.key(13), (2, d)), c, coupling, n=N,
                              steps=60, gamma=0.02, return_states=True)
  energies = jax.vmap(lyapunov)(aux["states"])  # [T, 2]
  diffs = np.diff(np.asarray(energies), axis=0)
  assert np.all(diffs <= 1e-5), diffs.max()
  assert energies[-1].sum() < energies[0].sum() - 0.1  # and it actually moves


def test_jit_equals_eager_and_traces_once():
  traces = []
  coupling = _conv_coupling(14)

  def fn(x0, c, gamma):
    traces.append(1)
    return kuramoto.integrate(x0, c, coupling, n=N, steps=3, gamma=gamma)

  jitted = jax.jit(fn)
  for seed in range(3):
    x0, c = _rand(20 + seed), _rand(30 + seed)
    gamma = jnp.float32(0.1 * (seed + 1))
    (xj, auxj), (xe, auxe) = jitted(x0, c, gamma), fn(x0, c, gamma)
    np.testing.assert_allclose(xj, xe, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(auxj["energies"], auxe["energies"], rtol=1e-4, atol=1e-3)
  assert len(traces) == 1 + 3  # one jit trace for all three calls, plus three eager calls


def test_gradients_finite_and_equal_under_every_remat_policy_and_unroll():
  coupling_w = jax.random.normal(jax.random.key(40), (3, 3, C, C)) * 0.2
  x0, c = _rand(41), _rand(42)

  def loss(w, gamma, remat, unroll):
    def coupling(x):
      return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                          dimension_numbers=("NHWC", "HWIO", "NHWC"))
    xT, aux = kuramoto.integrate(x0, c, coupling, n=N, steps=4, gamma=gamma, omega=0.3,
                                 remat=remat, unroll=unroll)
    return jnp.sum(xT * c) + 1e-3 * jnp.sum(aux["energies"])

  grad = jax.jit(jax.grad(loss, argnums=(0, 1)), static_argnums=(2, 3))
  g1 = grad(coupling_w, 0.5, "none", 1)
  assert float(jnp.abs(g1[1])) > 0  # the step size is learnable (Sudoku learns γ)
  for remat, unroll in [(True, 1), ("coupling", 2), ("minimal", 1), ("full", True)]:
    g2 = grad(coupling_w, 0.5, remat, unroll)
    for a, b in zip(g1, g2):
      assert bool(jnp.all(jnp.isfinite(a)))
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=f"{remat} {unroll}")
  with pytest.raises(ValueError, match="Unknown remat policy 'dots'"):
    grad(coupling_w, 0.5, "dots", 1)


def test_remat_policy_keeps_the_coupling_output_and_drops_elementwise_intermediates():
  # Residuals saved for the backward pass of a scan with matmul coupling: "none" keeps the
  # elementwise chain, "coupling"/"minimal" keep J(x) per step but not the chain, "full" only x.
  w = jax.random.normal(jax.random.key(43), (C, C)) * 0.2
  x0, c = _rand(44), _rand(45)

  def saved_bytes(remat):
    def loss(w):
      xT, _ = kuramoto.integrate(x0, c, lambda x: x @ w, n=N, steps=6, gamma=0.5, omega=0.3,
                                 remat=remat)
      return jnp.sum(xT * c)
    _, vjp_fn = jax.vjp(loss, w)  # a pytree whose leaves are the saved residuals
    return sum(a.size * a.dtype.itemsize for a in jax.tree.leaves(vjp_fn))

  sizes = {p: saved_bytes(p) for p in kuramoto.REMAT_POLICIES}
  per_step, inputs = x0.nbytes * 6, c.nbytes + w.nbytes  # one float32 state per step; c and w
  assert sizes["full"] == per_step + inputs  # the carried states
  assert sizes["minimal"] == sizes["coupling"] == 2 * per_step + inputs  # and J(x) (no dots here)
  assert sizes["none"] > 3 * per_step + inputs


def test_bfloat16_carry_for_a_bfloat16_coupling():
  w = jax.random.normal(jax.random.key(46), (C, C)) * 0.2
  seen = []

  def coupling(x):
    seen.append(x.dtype)
    return x.astype(jnp.bfloat16) @ w.astype(jnp.bfloat16)

  x0, c = _rand(47), _rand(48)
  xb, auxb = kuramoto.integrate(x0, c, coupling, n=N, steps=3, gamma=0.5,
                                coupling_dtype=jnp.bfloat16)
  assert set(seen) == {jnp.dtype(jnp.bfloat16)} and xb.dtype == jnp.float32
  x32, aux32 = kuramoto.integrate(x0, c, coupling, n=N, steps=3, gamma=0.5)
  np.testing.assert_array_equal(xb, x32)  # the coupling casts the same values itself
  np.testing.assert_array_equal(auxb["energies"], aux32["energies"])


def test_bfloat16_coupling_keeps_float32_state():
  w = jax.random.normal(jax.random.key(50), (3, 3, C, C)) * 0.2

  def coupling(x):
    return jax.lax.conv_general_dilated(x.astype(jnp.bfloat16), w.astype(jnp.bfloat16), (1, 1),
                                        "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))

  xT, aux = kuramoto.integrate(_rand(51), _rand(52), coupling, n=N, steps=3, gamma=0.5,
                               return_states=True)
  assert xT.dtype == jnp.float32 and aux["energies"].dtype == jnp.float32
  assert aux["states"].dtype == jnp.float32
  np.testing.assert_allclose(_oscillator_norms(xT), 1.0, rtol=1e-5)


def test_vmap_over_a_batch_of_systems():
  # The kernel composes with vmap: solving 2 systems vmapped == solving each alone.
  coupling = _conv_coupling(60)
  x0 = jax.random.normal(jax.random.key(61), (2, B, H, W, C))
  c = jax.random.normal(jax.random.key(62), (2, B, H, W, C))

  def solve(x, cc):
    return kuramoto.integrate(x, cc, coupling, n=N, steps=2, gamma=0.4)[0]

  batched = jax.vmap(solve)(x0, c)
  np.testing.assert_allclose(batched[1], solve(x0[1], c[1]), rtol=1e-5, atol=1e-5)


def test_steps_must_be_positive():
  with pytest.raises(ValueError, match="steps must be >= 1"):
    kuramoto.integrate(_rand(0), _rand(1), lambda x: x, n=N, steps=0, gamma=1.0)
