"""Object-discovery AKOrN (docs/models.md#object-akorn): patchify -> L x [KLayer -> ReadOut] ->
SimCLR projector.

The clustered feature for evaluation is the final readout c (docs/reference.md#quirks item 2),
returned in
`aux["features"]`.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from akorn_jax import layers


class Identity(nnx.Module):
  """No readout: the stimulus of the next layer is the oscillator state itself."""

  def __call__(self, x: jax.Array) -> jax.Array:
    return x


class ObjectAKOrN(nnx.Module):
  """AKOrN for unsupervised object discovery, trained with SimCLR.

  Readout ablations (the reference's `no_ro` and `use_ro_x`): `readout=False` drops the readout,
  so the next stimulus and the clustered feature are the oscillator state x_T itself; `x_map=True`
  passes x through a learned 1x1 convolution (a linear map of x) between layers, so layer l > 1
  starts from a mixed copy of the previous state (no effect with one layer).

  Step size: `gamma` is the reference's γ (1.0 in every object run). With Ω disabled the reference
  steps with x + γ(x + P(y)), an effective step γ/(1+γ) = 0.5 for γ = 1 (docs/dynamics.md#step-size); the KLayer
  applies that conversion itself, so turning Ω on in an ablation keeps γ's meaning.
  """

  def __init__(self, *, rngs: nnx.Rngs, n: int = 4, ch: int = 256, num_layers: int = 1,
               steps: int | Sequence[int] = 8, psize: int = 8, imsize: int = 128,
               connectivity: str | Sequence[str] = "attn", ksize: int = 1, heads: int = 8,
               gta: bool = True, c_norm: str | None = "gn", gamma: float = 1.0,
               use_omega: bool = False, init_omega: float = 0.01, global_omega: bool = False,
               learn_omega: bool = False, project: bool = True, maxpool: bool = True,
               readout: bool = True, x_map: bool = False,
               attn_impl: str | None = None, remat: bool = False, dtype=None,
               param_dtype=jnp.float32):
    if imsize % psize:
      raise ValueError(f"imsize ({imsize}) must be a multiple of psize ({psize}).")
    self.n, self.psize, self.maxpool = n, psize, maxpool
    self.steps = layers.as_tuple(steps, num_layers, "steps")
    grid = (imsize // psize, imsize // psize)
    kw = dict(rngs=rngs, dtype=dtype, param_dtype=param_dtype)
    self.patchify = layers.conv(3, ch, psize, stride=psize, padding=0, **kw)
    # Without GTA the reference adds learnable sinusoidal maps to x_init and c
    # (docs/dynamics.md#positional-code).
    pe = layers.posenc2d(ch, *grid) if not gta else None
    self.pemb_x = nnx.Param(pe) if pe is not None else None
    self.pemb_c = nnx.Param(pe) if pe is not None else None
    self.gamma = layers.Buffer(jnp.asarray(gamma, jnp.float32))
    self.klayers = nnx.List([
        layers.KLayer(ch, n=n, connectivity=j, ksize=ksize, heads=heads, gta=gta, hw=grid,
                      c_norm=c_norm, use_omega=use_omega, init_omega=init_omega,
                      global_omega=global_omega, learn_omega=learn_omega, project=project,
                      attn_impl=attn_impl, remat=remat, **kw)
        for j in layers.as_tuple(connectivity, num_layers, "connectivity")])
    self.readouts = nnx.List([layers.ReadOut(ch, ch, ro_n=n, ksize=1, **kw) if readout
                              else Identity() for _ in range(num_layers)])
    self.x_maps = nnx.List([layers.conv(ch, ch, 1, **kw) for _ in range(num_layers - 1)]
                           ) if x_map else None
    self.head1 = layers.linear(ch, 4 * ch, **kw)
    self.head2 = layers.linear(4 * ch, ch, **kw)

  def __call__(self, images: jax.Array, *, key: jax.Array | None = None,
               x_init: jax.Array | None = None, steps: Sequence[int] | int | None = None,
               return_states: bool = False) -> tuple[jax.Array, dict]:
    """Forward pass.

    Args:
      images: [B, H, W, 3] in [0, 1].
      key: PRNG key for the random initial oscillators x_init ~ N(0, 1).
      x_init: [B, h, w, C], the initial draw itself instead of key (deterministic forward); the
        positional maps (no GTA) are added to it as to a random draw.
      steps: override T per layer (test-time extension).
      return_states: also return every oscillator state.

    Returns:
      z [B, C] projector output, and aux with "features" (final readout c, [B, h, w, C]),
      "energies" (one [T+1, B] per layer), "states" (x_init then [T, B, h, w, C] per layer).
    """
    steps = self.steps if steps is None else layers.as_tuple(steps, len(self.klayers), "steps")
    c = self.patchify((images - 0.5) / 0.5).astype(jnp.float32)  # [B, h, w, C]
    x = layers.initial_state(key, x_init, c.shape)
    if self.pemb_x is not None:
      x, c = x + self.pemb_x[...], c + self.pemb_c[...]
    x_init = x
    _, c, aux = layers.run_layers(x, c, self.klayers, self.readouts, steps, gamma=self.gamma[...],
                                  return_states=return_states, x_maps=self.x_maps)
    pooled = jnp.max(c, axis=(1, 2)) if self.maxpool else jnp.mean(c, axis=(1, 2))
    z = self.head2(jax.nn.relu(self.head1(pooled)))
    aux["features"] = c
    if return_states:
      aux["states"] = [x_init] + aux["states"]
    return z.astype(jnp.float32), aux
