"""Square Attack in L∞ (Andriushchenko, Croce, Flammarion & Hein, ECCV 2020): no gradients.

A random search that only queries the model's outputs, hence AutoAttack's check against gradient
masking: if Square finds adversarial points that gradient attacks miss, the gradients are lying.

Start from vertical stripes: every column of every channel gets +eps or −eps at random. Each
iteration picks, per image, a random square window of side h and sets the perturbation there to
+eps or −eps per channel (at random); the candidate is kept if it lowers the margin loss
z_y − max_{k≠y} z_k, and an image stops changing once that margin is negative (misclassified).
The side shrinks on a fixed schedule: h = round(sqrt(p · H · W)), p starting at p_init (0.8 in
L∞) and halved after 10, 50, 200, 500, 1000, 2000, 4000, 6000 and 8000 of 10,000 queries
(rescaled to the query budget). One query = one forward pass per image; `queries` counts the
initial one.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from akorn_jax.evaluate.attacks.common import (LogitsFn, batch_where, eot_logits, jit_attack,
                                               margin, project)

_HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


def square_sides(queries: int, height: int, width: int, p_init: float = 0.8) -> np.ndarray:
  """Side length of the square of every iteration (queries − 1 of them), from the p schedule."""
  it = np.arange(1, max(queries, 1))
  scaled = (it * 10000) // max(queries, 1)
  p = p_init / 2.0 ** np.sum(scaled[:, None] > np.asarray(_HALVINGS)[None, :], axis=1)
  side = np.round(np.sqrt(p * height * width)).astype(np.int32)
  return np.clip(side, 1, max(min(height, width) - 1, 1))


@jit_attack("queries", "eot")
def square(logits_fn: LogitsFn, images: ArrayLike, labels: ArrayLike, key: jax.Array, *,
           eps: float, queries: int = 5000, p_init: float = 0.8, eot: int = 1) -> jax.Array:
  """Square Attack (untargeted, margin loss, L∞), forward passes only.

  Args:
    logits_fn: classifier, see `common`; only called forward.
    images: [B, H, W, C] clean images in [0, 1].
    labels: [B] int true classes.
    key: drives the random search and the model's randomness.
    eps: L∞ radius.
    queries: forward passes per image (AutoAttack: 5,000).
    p_init: initial fraction of pixels in the square (AutoAttack L∞: 0.8).
    eot: logits averaged over this many samples per query (AutoAttack: 1).

  Returns:
    [B, H, W, C] adversarial images within eps of `images`, in [0, 1].
  """
  images, labels = jnp.asarray(images, jnp.float32), jnp.asarray(labels, jnp.int32)
  b, height, width, ch = images.shape
  sides = jnp.asarray(square_sides(queries, height, width, p_init))
  key_init, key_q0, key_loop = jax.random.split(key, 3)
  stripes = eps * jax.random.rademacher(key_init, (b, 1, width, ch), jnp.float32)
  x = project(images + stripes, images, eps)
  m = margin(eot_logits(logits_fn, x, key_q0, eot), labels)
  rows = jnp.arange(height)[None, :, None, None]
  cols = jnp.arange(width)[None, None, :, None]

  def body(i, s):
    x, m = s
    k_r, k_c, k_v, k_q = jax.random.split(jax.random.fold_in(key_loop, i), 4)
    h = sides[i]
    r = jax.random.randint(k_r, (b, 1, 1, 1), 0, height - h + 1)
    c = jax.random.randint(k_c, (b, 1, 1, 1), 0, width - h + 1)
    window = (rows >= r) & (rows < r + h) & (cols >= c) & (cols < c + h)
    values = 2 * eps * jax.random.rademacher(k_v, (b, 1, 1, ch), jnp.float32)
    x_new = project(x + jnp.where(window, values, 0.0), images, eps)
    m_new = margin(eot_logits(logits_fn, x_new, k_q, eot), labels)
    accept = (m_new < m) & (m >= 0)
    return batch_where(accept, x_new, x), jnp.where(accept, m_new, m)

  x, _ = jax.lax.fori_loop(0, queries - 1, body, (x, m))
  return x
