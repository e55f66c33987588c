"""What every attack shares: the classifier interface, losses, EOT gradients, projection, jit.

A classifier is a callable `logits_fn(images, key) -> logits`, images [B, H, W, 3] in [0, 1] and
logits [B, K]. The key drives the model's own randomness (AKOrN draws its initial oscillators from
it); deterministic models ignore it. Because such a model is random, every gradient attack takes
`eot`: the loss and its gradient are averaged over `eot` independent keys (Expectation over
Transformation, Athalye et al. 2018), otherwise the attack follows one noisy sample and
overestimates robustness.

Every attack is row-wise: image r's attack reads only row r of the batch, and the random numbers
it draws for the whole batch from one key give row r the same values whatever the batch size
(JAX's partitionable threefry). So an attack can take its batch as a global array split over
devices (`evaluate.common.shard_rows`; `robustness.robust_accuracy` does so for every chunk, with
the model replicated) and padded rows change nothing for the others: the results do not depend on
the device count (tests/evaluate_sharded_test.py).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp

LogitsFn = Callable[[jax.Array, jax.Array], jax.Array]


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Per-example cross-entropy, [B, K] x [B] -> [B]."""
  logp = jax.nn.log_softmax(logits.astype(jnp.float32))
  return -jnp.take_along_axis(logp, labels[:, None], axis=1)[:, 0]


def _true_and_top(logits: jax.Array, labels: jax.Array):
  z = logits.astype(jnp.float32)
  top = -jnp.sort(-z, axis=1)
  z_y = jnp.take_along_axis(z, labels[:, None], axis=1)[:, 0]
  return z, top, z_y


def margin(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """z_y - max_{k != y} z_k, [B]: negative exactly when the example is misclassified."""
  z, _, z_y = _true_and_top(logits, labels)
  other = jnp.max(jnp.where(jax.nn.one_hot(labels, z.shape[1], dtype=bool), -jnp.inf, z), axis=1)
  return z_y - other


def dlr(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Untargeted Difference-of-Logits-Ratio loss of Croce & Hein (2020), to be maximised, [B].

  -(z_y - max_{k≠y} z_k) / (z_π1 - z_π3), π the classes sorted by decreasing logit; invariant to
  shifting and rescaling the logits. Needs K >= 3.
  """
  _, top, _ = _true_and_top(logits, labels)
  return -margin(logits, labels) / (top[:, 0] - top[:, 2] + 1e-12)


def dlr_targeted(logits: jax.Array, labels: jax.Array, targets: jax.Array) -> jax.Array:
  """Targeted DLR loss of Croce & Hein (2020), to be maximised, [B].

  -(z_y - z_t) / (z_π1 - (z_π3 + z_π4) / 2), with π the classes sorted by decreasing logit. Needs
  K >= 4.
  """
  z, top, z_y = _true_and_top(logits, labels)
  z_t = jnp.take_along_axis(z, targets[:, None], axis=1)[:, 0]
  return -(z_y - z_t) / (top[:, 0] - 0.5 * (top[:, 2] + top[:, 3]) + 1e-12)


def eot_value_and_grad(logits_fn: LogitsFn, loss_fn: Callable[[jax.Array], jax.Array],
                       x: jax.Array, key: jax.Array, eot: int):
  """Mean over `eot` keys of per-example loss [B], its input gradient, and the mean logits [B, K].

  A scan (not a vmap) over the keys keeps memory at one forward/backward whatever `eot` is.
  """

  def one(x_, k):
    logits = logits_fn(x_, k)
    losses = loss_fn(logits)
    return jnp.sum(losses), (losses, logits)

  grad_fn = jax.grad(one, has_aux=True)
  if eot == 1:  # The common deterministic case: no scan, a smaller program to compile.
    g, (losses, logits) = grad_fn(x, key)
    return losses, g, logits.astype(jnp.float32)

  def body(carry, k):
    g, (losses, logits) = grad_fn(x, k)
    return jax.tree.map(jnp.add, carry, (losses, g, logits.astype(jnp.float32))), None

  g_shape, (loss_shape, logit_shape) = jax.eval_shape(grad_fn, x, key)
  zeros = (jnp.zeros(loss_shape.shape, jnp.float32), jnp.zeros(g_shape.shape, g_shape.dtype),
           jnp.zeros(logit_shape.shape, jnp.float32))
  (losses, g, logits), _ = jax.lax.scan(body, zeros, jax.random.split(key, eot))
  return losses / eot, g / eot, logits / eot


def eot_logits(logits_fn: LogitsFn, x: jax.Array, key: jax.Array, eot: int) -> jax.Array:
  """Mean logits over `eot` keys, float32 [B, K] (forward passes only)."""
  if eot == 1:
    return logits_fn(x, key).astype(jnp.float32)
  return jax.lax.map(lambda k: logits_fn(x, k).astype(jnp.float32),
                     jax.random.split(key, eot)).mean(0)


def as_pytree(logits_fn):
  """Wraps a plain callable as a `jax.tree_util.Partial` so jit can take it as an argument."""
  if logits_fn is None or isinstance(logits_fn, jax.tree_util.Partial):
    return logits_fn
  return jax.tree_util.Partial(logits_fn)


def jit_attack(*static: str):
  """Jits an attack with `static` keyword options; `logits_fn` is passed as a pytree argument.

  Pass the model as `jax.tree_util.Partial(f, params)` (f(params, images, key)) so its parameters
  are traced arguments rather than constants baked into each compiled attack; a plain callable also
  works and reuses compilations as long as it is the same object.
  """

  def wrap(fn):
    jitted = jax.jit(fn, static_argnames=static)

    @functools.wraps(fn)
    def attack(logits_fn, *args, **kwargs):
      return jitted(as_pytree(logits_fn), *args, **kwargs)

    return attack

  return wrap


@jax.jit
def predict(logits_fn: LogitsFn, images: jax.Array, key: jax.Array) -> jax.Array:
  """Predicted classes [B] of one forward pass (as the deployed model would run)."""
  return jnp.argmax(logits_fn(images, key), axis=1)


def project(x: jax.Array, clean: jax.Array, eps) -> jax.Array:
  """Projection onto the L∞ ball of radius eps around `clean` intersected with [0, 1]."""
  return jnp.clip(jnp.clip(x, clean - eps, clean + eps), 0.0, 1.0)


def batch_where(mask: jax.Array, a: jax.Array, b: jax.Array) -> jax.Array:
  """Per-example select: mask [B] broadcast over the trailing axes of a and b."""
  return jnp.where(mask.reshape((-1,) + (1,) * (a.ndim - 1)), a, b)


def linf_norm(d: jax.Array) -> jax.Array:
  """Per-example L∞ norm [B] of d [B, ...]."""
  return jnp.max(jnp.abs(d.reshape(d.shape[0], -1)), axis=1)
