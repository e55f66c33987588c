"""Pure Kuramoto kernels on arrays (no Flax): the oscillator dynamics of AKOrN.

Every neuron is a unit vector on the sphere S^{n-1}. A feature array `x` of shape `[B, ..., C]`
holds K = C / n oscillators per position as **contiguous** blocks of n channels on the last axis
(`x.reshape(..., K, n)`), matching the grouping of the reference implementation
(docs/dynamics.md#conventions).

One discrete Kuramoto update (docs/dynamics.md#the-update, with our decision of
docs/reference.md#differences on Ω) is

    y       = J(x_t) + ĉ                       (coupling plus the normalised stimulus)
    E(x_t)  = -Σ_{positions, channels} x_t ⊙ y    (bookkeeping energy of the pre-update state)
    dx      = Ω x_t + P_{x_t}(y),   P_x(y) = y - <y, x> x   (tangent projection per oscillator)
    x_{t+1} = N(x_t + γ dx)                    (Euler step, then back onto the spheres)

`integrate` scans this update over T steps with `lax.scan`. The coupling J is any function
`x -> J(x)` of the state (a convolution, attention, a matrix, ...), so the kernels compose with
`jit`, `vmap`, `grad`, `jax.checkpoint` and `shard_map` in user code. The oscillator state, its
normalisation and the energy are always float32, also when the coupling computes in bfloat16.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.ad_checkpoint import checkpoint_name
from jax.typing import ArrayLike

Coupling = Callable[[jax.Array], jax.Array]

# torch.nn.functional.normalize's default epsilon, used by the reference
# (docs/dynamics.md#conventions).
NORM_EPS = 1e-12


def _blocks(x: jax.Array, n: int) -> jax.Array:
  """[..., C] -> [..., C/n, n] (contiguous oscillator blocks)."""
  if x.shape[-1] % n:
    raise ValueError(
        f"The channel axis ({x.shape[-1]}) must be a multiple of the oscillator dimension n={n}; "
        "choose channels = K * n.")
  return x.reshape(*x.shape[:-1], x.shape[-1] // n, n)


def _block_sum(a: jax.Array) -> jax.Array:
  """[..., K, n] -> [..., K, 1], the sum within every oscillator block.

  A reduction over the short last axis, not explicit slice sums: on XLA:CPU the reduction lets the
  whole update fuse into the coupling's convolution (4 kernels per step, explicit sums 7;
  results/benchmarks.md).
  """
  return jnp.sum(a, axis=-1, keepdims=True)


def _normalize_blocks(xb: jax.Array) -> jax.Array:
  """[..., K, n] -> the same with unit-norm blocks, v / max(||v||, 1e-12)."""
  return xb / jnp.maximum(jnp.sqrt(_block_sum(xb * xb)), NORM_EPS)


def normalize(x: jax.Array, n: int) -> jax.Array:
  """Projects every oscillator onto its unit sphere: v / max(||v||, 1e-12).

  Args:
    x: [..., C] with C = K * n.
    n: oscillator dimension.

  Returns:
    Array of the same shape and dtype with unit-norm n-blocks.
  """
  return _normalize_blocks(_blocks(x, n)).reshape(x.shape)


def project(y: jax.Array, x: jax.Array, n: int) -> jax.Array:
  """Tangent projection P_x(y) = y - <y, x> x, per oscillator (x assumed unit norm).

  Args:
    y: [..., C] vector field.
    x: [..., C] unit oscillators.
    n: oscillator dimension.

  Returns:
    [..., C], orthogonal to x within every n-block.
  """
  yb, xb = _blocks(y, n), _blocks(x, n)
  return (yb - _block_sum(yb * xb) * xb).reshape(y.shape)


def omega_rotate(x: jax.Array, omega: ArrayLike) -> jax.Array:
  """Natural-frequency term Ωx: rotation of channel pairs (2m, 2m+1) by frequency ω_m
  (docs/dynamics.md#natural-frequencies).

  (Ωx)_{2m} = ω_m x_{2m+1},  (Ωx)_{2m+1} = -ω_m x_{2m}. Ω is antisymmetric, so Ωx is tangent to x
  and the term changes no norm to first order.

  Args:
    x: [..., C] with C even.
    omega: a scalar (one global frequency) or [C/2] (one per pair).

  Returns:
    [..., C].
  """
  if x.shape[-1] % 2:
    raise ValueError(f"Natural frequencies need an even channel count, got C={x.shape[-1]}; "
                     "use an even oscillator dimension n.")
  pairs = x.reshape(*x.shape[:-1], x.shape[-1] // 2, 2)
  omega = jnp.asarray(omega, x.dtype)[..., None] if jnp.ndim(omega) else jnp.asarray(omega, x.dtype)
  rotated = jnp.stack([pairs[..., 1], -pairs[..., 0]], axis=-1) * omega
  return rotated.reshape(x.shape)


def energy(x: jax.Array, y: jax.Array) -> jax.Array:
  """Bookkeeping energy E = -Σ x ⊙ y over every axis but the leading batch axis.

  Args:
    x: [B, ..., C] state.
    y: [B, ..., C] total input J(x) + ĉ.

  Returns:
    [B] float32.
  """
  prod = (x * y).astype(jnp.float32)
  return -jnp.sum(prod.reshape(prod.shape[0], -1), axis=-1)


# `checkpoint_name` of the coupling's output J(x) in every step, for rematerialisation policies.
COUPLING_NAME = "kuramoto_coupling"

# What the backward pass keeps of each step (the rest it recomputes from the carried state):
#   "none"     keep everything (no rematerialisation; fastest, memory O(T) activations),
#   "coupling" keep J(x) and the coupling's matmul/convolution outputs, recompute the elementwise
#              chain (projection, Ω, renormalisation, energy; cheap to recompute, large to keep),
#   "minimal"  keep only J(x) of each step; recompute the coupling's internals too,
#   "full"     keep nothing but the carried state (memory O(1) in T, one extra forward pass).
REMAT_POLICIES = ("none", "coupling", "minimal", "full")


def _remat(body: Callable, remat: str | bool) -> Callable:
  """`body` wrapped in `jax.checkpoint` with the named policy (True = "full", False = "none")."""
  policy = {False: "none", True: "full"}.get(remat, remat) if isinstance(remat, bool) else remat
  if policy not in REMAT_POLICIES:
    raise ValueError(f"Unknown remat policy {remat!r}; expected one of {REMAT_POLICIES}.")
  policies = jax.checkpoint_policies
  if policy == "none":
    return body
  if policy == "full":
    return jax.checkpoint(body)
  keep = policies.save_only_these_names(COUPLING_NAME)
  if policy == "coupling":
    keep = policies.save_from_both_policies(keep, policies.dots_saveable)
  return jax.checkpoint(body, policy=keep)


def _update(x: jax.Array, y: jax.Array, *, n: int, gamma: ArrayLike, omega: ArrayLike | None,
            project_tangent: bool) -> tuple[jax.Array, jax.Array]:
  """The elementwise part of one step, written so XLA fuses it into one kernel: energy, tangent
  projection, Ω, Euler step and renormalisation from the state x and the total input y (float32)."""
  e = energy(x, y)
  xb, yb = _blocks(x, n), _blocks(y, n)
  dx = yb - _block_sum(yb * xb) * xb if project_tangent else yb
  if omega is not None:
    dx = dx + _blocks(omega_rotate(x, omega), n)
  x_next = _normalize_blocks(xb + jnp.asarray(gamma, jnp.float32) * dx)
  return x_next.reshape(x.shape), e


def step(x: jax.Array, c: jax.Array, coupling: Coupling, *, n: int, gamma: ArrayLike,
         omega: ArrayLike | None = None, project_tangent: bool = True,
         coupling_input: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
  """One Kuramoto update.

  Args:
    x: [B, ..., C] float32 state on the spheres.
    c: [B, ..., C] normalised stimulus ĉ (float32).
    coupling: J, a function of the state returning [B, ..., C] (any dtype; cast to float32).
    n: oscillator dimension.
    gamma: step size (scalar, may be a traced/learned value).
    omega: None (no natural frequency), a scalar or [C/2] frequencies.
    project_tangent: apply the tangent projection (the reference's `apply_proj`).
    coupling_input: x already cast to the coupling's compute dtype (default: x itself).

  Returns:
    (x_next [B, ..., C] float32, energy of the pre-update state [B]).
  """
  j = coupling(x if coupling_input is None else coupling_input)
  y = checkpoint_name(j, COUPLING_NAME).astype(jnp.float32) + c
  return _update(x, y, n=n, gamma=gamma, omega=omega, project_tangent=project_tangent)


def integrate(x0: jax.Array, c: jax.Array, coupling: Coupling, *, n: int, steps: int,
              gamma: ArrayLike, omega: ArrayLike | None = None, project_tangent: bool = True,
              remat: str | bool = "none", unroll: int | bool = 1, coupling_dtype=None,
              return_states: bool = False) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Runs T Kuramoto updates with `lax.scan`.

  The initial state is first normalised onto the spheres (the reference's x₀ = N(x)).

  Args:
    x0: [B, ..., C] initial state (any scale; normalised here).
    c: [B, ..., C] normalised stimulus ĉ.
    coupling: J, a function of the state.
    n: oscillator dimension.
    steps: T, number of updates: a Python int (static), or an int32 scalar array, a runtime bound
      (`lax.fori_loop`: every T shares one compilation; forward only, no `return_states`, and the
      energies come as running sums instead of the [T+1, B] history, see Returns).
    gamma: step size γ.
    omega: natural frequencies (None, scalar or [C/2]).
    project_tangent: apply the tangent projection.
    remat: what the backward pass keeps per step, one of REMAT_POLICIES (True = "full").
    unroll: steps per loop iteration of the scan (True: all), as `lax.scan`'s `unroll`.
    coupling_dtype: compute dtype of J (None: float32). The scan carries the state also cast to
      it, computed in the same fused update, so J reads it without a separate conversion.
    return_states: also return every state x_1 … x_T.

  Returns:
    x_T [B, ..., C] float32 and a dict with
      "energies": [T+1, B] float32, E(x_0), …, E(x_T). The reference's list is
        [0, E(x_0), …, E(x_{T-1})] (docs/dynamics.md#energy): that is `energies[:-1]` with a
        leading zero; the energy of the final state, `energies[-1]`, is our addition
        (docs/reference.md#differences).
      "states": [T, B, ..., C] (only with return_states).
    With a runtime `steps`, instead of "energies": "energy_sum" (sum of E(x_0) … E(x_{T-1})),
    "energy_last" (E(x_{T-1})) and "energy_final" (E(x_T)), each [B] float32, kept in the loop
    carry: what energy voting needs, at O(1) memory in T.
  """
  runtime = not isinstance(steps, (int, np.integer))  # a traced T: lax.fori_loop, no history
  if runtime and return_states:
    raise ValueError("return_states needs a static (Python int) number of steps.")
  if not runtime and steps < 1:
    raise ValueError(f"steps must be >= 1, got {steps}.")
  c = c.astype(jnp.float32)
  cast = coupling_dtype is not None and jnp.dtype(coupling_dtype) != jnp.float32

  def carry_of(x):
    return (x, x.astype(coupling_dtype)) if cast else (x, None)

  def one_step(carry):
    x, x_in = carry
    return step(x, c, coupling, n=n, gamma=gamma, omega=omega, project_tangent=project_tangent,
                coupling_input=x_in)

  def final_energy(x, x_in):
    return energy(x, coupling(x if x_in is None else x_in).astype(jnp.float32) + c)

  x0 = normalize(x0.astype(jnp.float32), n)
  if runtime:  # the running scores of energy voting live in the carry: O(1) memory in T
    def loop_body(_, carry):
      state, e_sum, _ = carry
      x_next, e = one_step(state)
      return carry_of(x_next), e_sum + e, e

    zeros = jnp.zeros(x0.shape[:1], jnp.float32)
    (x_final, x_in), e_sum, e_last = jax.lax.fori_loop(
        0, jnp.asarray(steps, jnp.int32), loop_body, (carry_of(x0), zeros, zeros))
    return x_final, {"energy_sum": e_sum, "energy_last": e_last,
                     "energy_final": final_energy(x_final, x_in)}

  def body(carry, _):
    x_next, e = one_step(carry)
    return carry_of(x_next), (e, x_next if return_states else None)

  (x_final, x_in), (energies, states) = jax.lax.scan(_remat(body, remat), carry_of(x0), None,
                                                     length=steps, unroll=unroll)
  aux = {"energies": jnp.concatenate([energies, final_energy(x_final, x_in)[None]], axis=0)}
  if return_states:
    aux["states"] = states
  return x_final, aux
