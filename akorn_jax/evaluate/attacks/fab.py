"""FAB-T: the targeted Fast Adaptive Boundary attack in L∞ (Croce & Hein, ICML 2020).

FAB looks for the adversarial point of *smallest* L∞ norm, not merely one inside the eps-ball.
At the current point x it linearises the boundary between the true class y and a target t,
  π = {z : f(x) + ∇f(x)·(z − x) = 0},  f = z_t − z_y,
and computes the minimal-L∞ step onto π that stays in the image box [0, 1], both from x (δ) and
from the clean image x₀ (δ₀). The next point mixes the two, biased towards the clean image so the
result stays small, with a slight overshoot η:
  x ← clip((1 − α)(x + η δ) + α (x₀ + η δ₀)),   α = min(‖δ‖ / (‖δ‖ + ‖δ₀‖), α_max).
Whenever x is misclassified it is recorded if it is the smallest so far, and x is pulled back
towards x₀ (x ← (1 − β) x₀ + β x) so the search continues closer to the clean image. One run per
target class (the 2nd, 3rd, ... highest classes of the clean logits), starting at x₀ (AutoAttack's
"standard" version: 9 targets, 100 iterations, one restart); the smallest adversarial point over all
targets wins.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from akorn_jax.evaluate.attacks.common import (LogitsFn, batch_where, eot_logits,
                                               eot_value_and_grad, jit_attack, linf_norm)


def linf_step_to_hyperplane(x: jax.Array, w: jax.Array, b: jax.Array) -> jax.Array:
  """Smallest-L∞ step δ with w·δ = b and x + δ in [0, 1], per example.

  With room cap_i in the useful direction sign(w_i b) (1 − x_i upwards, x_i downwards), a step of
  L∞ size t achieves |w·δ| = g(t) = Σ_i |w_i| min(t, cap_i), increasing and piecewise linear in t.
  Sorting the caps gives g at each breakpoint; t is found exactly on the first piece where g reaches
  |b|. If even t = max cap cannot reach |b| (the box blocks the hyperplane), the step goes as far as
  the box allows.

  Args:
    x: [B, ...] points in [0, 1].
    w: [B, ...] hyperplane normals.
    b: [B] required inner products.

  Returns:
    [B, ...] steps δ.
  """
  shape = x.shape
  x, w = x.reshape(shape[0], -1), w.reshape(shape[0], -1)
  direction = jnp.sign(w) * jnp.sign(b)[:, None]
  cap = jnp.where(direction > 0, 1.0 - x, x)
  a = jnp.abs(w)
  order = jnp.argsort(cap, axis=1)
  c_s, a_s = jnp.take_along_axis(cap, order, 1), jnp.take_along_axis(a, order, 1)
  acc = jnp.cumsum(a_s * c_s, axis=1)            # Σ_{j<=k} a_j c_j
  weight = jnp.cumsum(a_s, axis=1)               # Σ_{j<=k} a_j
  total = weight[:, -1:]
  g = acc + c_s * (total - weight)               # g at each breakpoint c_k
  target = jnp.abs(b)[:, None]
  reached = g >= target
  k = jnp.argmax(reached, axis=1)[:, None]       # first breakpoint where g >= |b|
  acc_before = jnp.where(k > 0, jnp.take_along_axis(acc, jnp.maximum(k - 1, 0), 1), 0.0)
  weight_before = jnp.where(k > 0, jnp.take_along_axis(weight, jnp.maximum(k - 1, 0), 1), 0.0)
  t = (target - acc_before) / jnp.maximum(total - weight_before, 1e-30)
  t = jnp.where(jnp.any(reached, axis=1, keepdims=True), t, c_s[:, -1:])
  return (direction * jnp.minimum(t, cap)).reshape(shape)


def _fab_one_target(logits_fn, images, labels, targets, key, steps, eot, alpha_max, eta, beta):
  """One FAB run towards `targets` [B]; returns the smallest adversarial points and their norms."""
  x0 = images
  flat = lambda v: v.reshape(v.shape[0], -1)

  def f_fn(z):
    z = z.astype(jnp.float32)
    return (jnp.take_along_axis(z, targets[:, None], 1) - jnp.take_along_axis(z, labels[:, None], 1))[:, 0]

  def body(i, s):
    x, best, best_norm = s
    k_grad, k_eval = jax.random.split(jax.random.fold_in(key, i))
    f, w, _ = eot_value_and_grad(logits_fn, f_fn, x, k_grad, eot)
    d_x = linf_step_to_hyperplane(x, w, -f)
    d_0 = linf_step_to_hyperplane(x0, w, -(f + jnp.sum(flat(w) * flat(x0 - x), axis=1)))
    n_x, n_0 = linf_norm(d_x), linf_norm(d_0)
    alpha = jnp.minimum(n_x / jnp.maximum(n_x + n_0, 1e-12), alpha_max).reshape((-1,) + (1,) * (x.ndim - 1))
    x_new = jnp.clip((1 - alpha) * (x + eta * d_x) + alpha * (x0 + eta * d_0), 0.0, 1.0)
    wrong = jnp.argmax(eot_logits(logits_fn, x_new, k_eval, eot), axis=1) != labels
    norm = linf_norm(x_new - x0)
    better = wrong & (norm < best_norm)
    best = batch_where(better, x_new, best)
    best_norm = jnp.where(better, norm, best_norm)
    x = batch_where(wrong, (1 - beta) * x0 + beta * x_new, x_new)
    return x, best, best_norm

  init = (x0, x0, jnp.full(x0.shape[:1], jnp.inf, jnp.float32))
  _, best, best_norm = jax.lax.fori_loop(0, steps, body, init)
  return best, best_norm


@jit_attack("steps", "num_targets", "eot")
def fab_t_minimal(logits_fn: LogitsFn, images: ArrayLike, labels: ArrayLike, key: jax.Array, *,
                  steps: int = 100, num_targets: int = 9, eot: int = 1, alpha_max: float = 0.1,
                  eta: float = 1.05, beta: float = 0.9) -> tuple[jax.Array, jax.Array]:
  """The smallest L∞ adversarial points FAB-T finds, whatever their size.

  Args:
    logits_fn: classifier, see `common`.
    images: [B, H, W, 3] clean images in [0, 1].
    labels: [B] int true classes.
    key: drives the model's randomness.
    steps: iterations per target (AutoAttack: 100).
    num_targets: target classes tried, at most K - 1 (AutoAttack: 9).
    eot: samples averaged per gradient and per decision (AutoAttack's FAB uses 1).
    alpha_max, eta, beta: bias towards the clean image, overshoot, pull-back (paper values).

  Returns:
    (points [B, H, W, 3], their L∞ distances [B]; inf and the clean image where none was found).
  """
  images, labels = jnp.asarray(images, jnp.float32), jnp.asarray(labels, jnp.int32)
  key_rank, key_runs = jax.random.split(key)
  clean_logits = eot_logits(logits_fn, images, key_rank, eot)
  num_classes = clean_logits.shape[1]
  if not 1 <= num_targets < num_classes:
    raise ValueError(f"fab_t needs 1 <= num_targets < K, got K={num_classes} and "
                     f"num_targets={num_targets}; lower num_targets.")
  order = jnp.argsort(-clean_logits, axis=1)

  def body(carry, r):
    best, best_norm = carry
    x, norm = _fab_one_target(logits_fn, images, labels, order[:, r], jax.random.fold_in(key_runs, r),
                              steps, eot, alpha_max, eta, beta)
    better = norm < best_norm
    return (batch_where(better, x, best), jnp.where(better, norm, best_norm)), None

  init = (images, jnp.full(images.shape[:1], jnp.inf, jnp.float32))
  (best, best_norm), _ = jax.lax.scan(body, init, jnp.arange(1, num_targets + 1))
  return best, best_norm


def fab_t(logits_fn: LogitsFn, images: ArrayLike, labels: ArrayLike, key: jax.Array, *,
          eps: float, steps: int = 100, num_targets: int = 9, eot: int = 1) -> jax.Array:
  """FAB-T as AutoAttack uses it: the smallest adversarial point if it lies within eps, else the
  clean image. Arguments as `fab_t_minimal`; returns [B, H, W, 3] images within eps of `images`."""
  x, norm = fab_t_minimal(logits_fn, images, labels, key, steps=steps, num_targets=num_targets,
                          eot=eot)
  return batch_where(norm <= eps, x, jnp.asarray(images, jnp.float32))
