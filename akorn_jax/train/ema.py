"""Exponential moving average of the weights with the ema_pytorch 0.7 schedule
(docs/training.md#ema).

ema_pytorch keeps a counter s of previous `update()` calls and, after every optimiser step:

* skips unless s % update_every == 0;
* copies the online weights while s <= update_after_step (the very first call, s = 0, copies too);
* otherwise moves ema <- ema + (1 - d)(theta - ema) with the warm-up decay
  d = min(beta, 1 - (1 + s - update_after_step)^(-2/3)).

Everything here is a pure function of the counter, so the rule runs inside the jitted step without
Python branches: `ema_weight` gives the fraction w of the way to move towards theta (0 = keep,
1 = copy) and `ema_update` applies it to every float leaf (integer and key leaves are copied, the
way ema_pytorch copies non-float buffers).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

_POWER = 2.0 / 3.0  # ema_pytorch's default `power`; with inv_gamma = 1 and min_value = 0.


def ema_weight(count: jax.typing.ArrayLike, *, beta: float, update_every: int,
               update_after_step: int) -> jax.Array:
  """The step size w of one EMA update call, ema <- ema + w (theta - ema).

  Args:
    count: s, the number of previous update calls (= the 0-based optimiser step), int scalar.
    beta: the maximal decay.
    update_every: updates happen only when s % update_every == 0.
    update_after_step: until this counter the EMA copies the weights.

  Returns:
    float32 scalar: 0 (no update), 1 (copy) or 1 - d with the warm-up decay d.
  """
  s = jnp.asarray(count, jnp.float32)
  decay = jnp.minimum(beta, 1.0 - (1.0 + s - update_after_step) ** -_POWER)
  w = jnp.where(s <= update_after_step, 1.0, 1.0 - decay)
  return jnp.where(jnp.asarray(count) % update_every == 0, w, 0.0).astype(jnp.float32)


def ema_update(ema: Any, online: Any, weight: jax.typing.ArrayLike) -> Any:
  """Moves every float leaf of `ema` the fraction `weight` towards `online`; copies the others."""

  def leaf(e: jax.Array, x: jax.Array) -> jax.Array:
    if not jnp.issubdtype(e.dtype, jnp.floating):
      return x
    w = jnp.asarray(weight, e.dtype)
    # An exact copy at w == 1 (not e + (x - e), which rounds), as ema_pytorch's copy_ does.
    return jnp.where(w == 1, x, e + w * (x - e))

  return jax.tree.map(leaf, ema, online)
