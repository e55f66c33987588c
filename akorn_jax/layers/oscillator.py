"""The oscillator layers: natural frequencies Ω, stimulus normalisation, the Kuramoto layer (T
weight-tied updates of `akorn_jax.kuramoto.integrate`), the readout, the random initial state and the
stacking rule of every AKOrN (docs/dynamics.md).

Oscillators are contiguous n-blocks of the C channels (channels-last).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from akorn_jax import kuramoto
from akorn_jax.layers.basic import Buffer, Dtype, conv
from akorn_jax.layers.coupling import Attention, coupling_conv


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

  `steps` may hold int32 scalar arrays (runtime bounds, `kuramoto.integrate`): then aux has
  "energy_summaries" per layer ({"energy_sum", "energy_last", "energy_final"}, each [B]) instead
  of "energies".

  Returns:
    (x_T of the last layer, its readout c, aux {"energies": [T_l+1, B] per layer,
    "states": [T_l, B, ...] per layer (with return_states)}).
  """
  energies, summaries, states = [], [], []
  for i, (klayer, readout, t) in enumerate(zip(klayers, readouts, steps)):
    if transitions is not None and i > 0:
      x = transitions[i - 1](x).astype(jnp.float32)
      c = transitions[i - 1](c).astype(jnp.float32)
    if x_maps is not None and i > 0:
      x = x_maps[i - 1](x).astype(jnp.float32)
    x, aux = klayer(x, c, steps=t, gamma=gamma, return_states=return_states)
    c = readout(x)
    if "energies" in aux:
      energies.append(aux["energies"])
    else:  # a runtime T (kuramoto.integrate): running energy scores instead of the history
      summaries.append({k: aux[k] for k in ("energy_sum", "energy_last", "energy_final")})
    if return_states:
      states.append(aux["states"])
  out = {"energies": energies}
  if summaries:
    out["energy_summaries"] = summaries
  if return_states:
    out["states"] = states
  return x, c, out
