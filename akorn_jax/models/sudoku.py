"""Sudoku AKOrN (docs/models.md#sudoku-akorn).

Boards enter as integer digits `[B, 9, 9]` (0 = blank, 1..9 given); the reference's one-hot input
carries the same information. The stimulus is a learned digit embedding (blank has its own), given
cells start at their embedding and blanks at Gaussian noise; the step size γ is learned.

Parameter count: the reference also defines an unused `x0` parameter ([1, ch, 9, 9]); we omit it,
so the count for the reference settings is 2,940,940 instead of 2,982,412 (41,472 = 81 x 512 fewer).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from akorn_jax import layers


class SudokuAKOrN(nnx.Module):
  """Kuramoto network for Sudoku: 81 cells with attention (GTA over the 9x9 grid) coupling."""

  # `steps` may be a traced int32 scalar (a runtime bound): energy voting compiles one forward
  # pass for every T (evaluate/sudoku.py).
  runtime_steps = True

  def __init__(self, *, rngs: nnx.Rngs, n: int = 4, ch: int = 512, num_layers: int = 1,
               steps: int = 16, heads: int = 8, gamma: float = 1.0, use_omega: bool = True,
               init_omega: float = 0.5, global_omega: bool = True, learn_omega: bool = True,
               attn_impl: str | None = None, remat: bool = False, dtype=None,
               param_dtype=jnp.float32):
    kw = dict(rngs=rngs, dtype=dtype, param_dtype=param_dtype)
    self.steps = steps
    self.embed = nnx.Embed(10, ch, embedding_init=jax.nn.initializers.normal(1.0), rngs=rngs,
                           param_dtype=param_dtype)
    self.gamma = nnx.Param(jnp.asarray(gamma, jnp.float32))
    self.klayers = nnx.List([
        layers.KLayer(ch, n=n, connectivity="attn", heads=heads, gta=True, hw=(9, 9), c_norm=None,
                      use_omega=use_omega, init_omega=init_omega, global_omega=global_omega,
                      learn_omega=learn_omega, attn_impl=attn_impl, remat=remat, **kw)
        for _ in range(num_layers)])
    self.readouts = nnx.List([
        nnx.Sequential(layers.ReadOut(ch, ch, ro_n=n, **kw),
                       layers.Residual(layers.FF(ch, ch, ch, 1, **kw)),
                       layers.NormReLUConv(ch, ch, 1, **kw))
        for _ in range(num_layers)])
    self.out = layers.NormReLUConv(ch, 9, 1, **kw)

  def __call__(self, puzzle: jax.Array, *, key: jax.Array | None = None,
               x_init: jax.Array | None = None, steps: int | None = None,
               return_states: bool = False) -> tuple[jax.Array, dict]:
    """Forward pass.

    Args:
      puzzle: [B, 9, 9] int, 0 = blank, 1..9 = given digit.
      key: PRNG key for the blank cells' initial oscillators.
      x_init: [B, 9, 9, C], the random draw itself instead of key (deterministic forward); as with
        a key, only blank cells start from it, given cells start at their digit embedding.
      steps: T override (test-time extension, e.g. 128): an int, or an int32 scalar array (a
        runtime bound; aux then has "energy_summaries" instead of "energies", see
        `layers.run_layers`).
      return_states: also return the oscillator states.

    Returns:
      logits [B, 9, 9, 9] float32 (class k = digit k+1) and aux with "energies" (one [T+1, B] per
      layer; the last layer's is used for energy voting), "features" (the final readout c before
      the output head, [B, 9, 9, C]) and optionally "states".
    """
    steps = self.steps if steps is None else steps
    c = self.embed(puzzle.astype(jnp.int32)).astype(jnp.float32)  # [B, 9, 9, C]
    given = (puzzle > 0)[..., None]
    x = jnp.where(given, c, layers.initial_state(key, x_init, c.shape))
    _, c, aux = layers.run_layers(x, c, self.klayers, self.readouts,
                                  (steps,) * len(self.klayers), gamma=self.gamma[...],
                                  return_states=return_states)
    aux["features"] = c
    return self.out(c).astype(jnp.float32), aux
