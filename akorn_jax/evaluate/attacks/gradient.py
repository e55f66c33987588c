"""Gradient attacks in the L∞ ball: random sign noise, FGSM, PGD, APGD-CE / -DLR / -T (with EOT).

Every attack has the signature (logits_fn, images [B,H,W,3], labels [B], key, *, eps, ...) and
returns adversarial images within eps of `images`, in [0, 1]; see `common` for the classifier
interface and EOT. Every attack is jitted; eps and step sizes are traced, so sweeps do not recompile.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from akorn_jax.evaluate.attacks.common import (LogitsFn, batch_where, cross_entropy, dlr,
                                               dlr_targeted, eot_logits, eot_value_and_grad,
                                               jit_attack, project)

@jit_attack()
def random_sign(logits_fn: LogitsFn | None, images: ArrayLike, labels: ArrayLike, key: jax.Array, *,
                eps: float) -> jax.Array:
  """Random-sign noise x + eps·sign(N(0, 1)), clamped to [0, 1] (the reference's random attack).

  The model and labels are unused; the signature matches the other attacks.
  """
  del logits_fn, labels
  images = jnp.asarray(images, jnp.float32)
  return jnp.clip(images + eps * jnp.sign(jax.random.normal(key, images.shape)), 0.0, 1.0)


@jit_attack("eot")
def fgsm(logits_fn: LogitsFn, images: ArrayLike, labels: ArrayLike, key: jax.Array, *, eps: float,
         eot: int = 1) -> jax.Array:
  """Fast Gradient Sign Method: one step of size eps along the sign of the (EOT) CE gradient."""
  images, labels = jnp.asarray(images, jnp.float32), jnp.asarray(labels, jnp.int32)
  _, g, _ = eot_value_and_grad(logits_fn, lambda z: cross_entropy(z, labels), images, key, eot)
  return jnp.clip(images + eps * jnp.sign(g), 0.0, 1.0)


@jit_attack("steps", "random_start", "eot")
def pgd_linf(logits_fn: LogitsFn, images: ArrayLike, labels: ArrayLike, key: jax.Array, *,
             eps: float, step_size: float | None = None, steps: int = 20, random_start: bool = False,
             eot: int = 1) -> jax.Array:
  """Projected gradient ascent on the CE loss in the L∞ ball (Madry et al. 2018).

  Defaults are the reference's training-time check (docs/training.md#cifar-10): step eps/3, 20 iterations, no
  random start. Returns the last iterate, as the reference does.

  Args:
    logits_fn: classifier, see the module docstring.
    images: [B, H, W, 3] clean images in [0, 1].
    labels: [B] int true classes.
    key: drives the random start and the model's randomness.
    eps: L∞ radius.
    step_size: ascent step; None means eps / 3.
    steps: number of iterations.
    random_start: start from a uniform point of the eps-ball instead of the clean image.
    eot: gradient samples averaged per iteration.

  Returns:
    [B, H, W, 3] adversarial images within eps of `images`, in [0, 1].
  """
  images, labels = jnp.asarray(images, jnp.float32), jnp.asarray(labels, jnp.int32)
  step_size = eps / 3 if step_size is None else step_size
  key_start, key_loop = jax.random.split(key)
  x = images
  if random_start:
    x = project(x + jax.random.uniform(key_start, x.shape, minval=-eps, maxval=eps), images, eps)

  def body(i, x):
    _, g, _ = eot_value_and_grad(logits_fn, lambda z: cross_entropy(z, labels), x,
                                  jax.random.fold_in(key_loop, i), eot)
    return project(x + step_size * jnp.sign(g), images, eps)

  return jax.lax.fori_loop(0, steps, body, x)


def apgd_checkpoints(steps: int) -> np.ndarray:
  """Iterations at which APGD may halve its step size, w_j = ceil(p_j · steps).

  p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06) (Croce & Hein 2020, §3.2):
  checkpoints start far apart and get denser, with gaps no shorter than 6% of the budget.
  """
  p = [0.0, 0.22]
  while p[-1] + max(p[-1] - p[-2] - 0.03, 0.06) <= 1.0:
    p.append(p[-1] + max(p[-1] - p[-2] - 0.03, 0.06))
  # Rounding first keeps float error (0.22 + 0.19 + 0.16 > 0.57) from bumping a ceiling.
  return np.unique(np.ceil(np.round(np.asarray(p) * steps, 6)).astype(np.int64))


def _apgd(logits_fn: LogitsFn, loss_fn, images, labels, key, eps, steps: int, eot: int):
  """APGD (Croce & Hein 2020, Alg. 1) maximising `loss_fn(logits)` [B]; returns images [B,H,W,3].

  Step size η starts at 2·eps and is halved per example at the checkpoints when (1) the loss rose
  in fewer than ρ = 0.75 of the steps since the last checkpoint, or (2) η was not halved at the last
  checkpoint and the best loss has not improved since; a halving restarts from the best point. The
  update has momentum α = 0.75 except on the first step. We start from a uniform point of the
  eps-ball, as AutoAttack does, and return the first misclassified iterate (by the EOT-mean logits)
  or else the highest-loss one.
  """
  rho, alpha = 0.75, 0.75
  bshape = (-1,) + (1,) * (images.ndim - 1)
  key_start, key_loop = jax.random.split(key)
  ckpts = apgd_checkpoints(steps)
  is_ckpt = np.isin(np.arange(1, steps + 1), ckpts[1:])
  # Length of the interval that ends at each checkpoint, for condition (1).
  interval = np.zeros(steps, np.float32)
  interval[ckpts[1:] - 1] = np.diff(ckpts)

  x0 = project(images + jax.random.uniform(key_start, images.shape, minval=-eps, maxval=eps),
                images, eps)
  f0, g0, z0 = eot_value_and_grad(logits_fn, loss_fn, x0, jax.random.fold_in(key_loop, 0), eot)
  wrong0 = jnp.argmax(z0, axis=1) != labels
  b = images.shape[0]
  state = dict(
      x=x0, x_prev=x0, f=f0, g=g0, eta=jnp.full((b,), 2.0 * eps, jnp.float32),
      x_max=x0, f_max=f0, g_max=g0, x_adv=x0, found=wrong0,
      increases=jnp.zeros((b,), jnp.float32), f_max_last=f0, halved_last=jnp.zeros((b,), bool))

  def body(s, inputs):
    k, ckpt, length = inputs
    mom = jnp.where(k == 0, 1.0, alpha)
    eta = s["eta"].reshape(bshape)
    z = project(s["x"] + eta * jnp.sign(s["g"]), images, eps)
    x_new = project(s["x"] + mom * (z - s["x"]) + (1 - mom) * (s["x"] - s["x_prev"]), images, eps)
    f, g, logits = eot_value_and_grad(logits_fn, loss_fn, x_new,
                                       jax.random.fold_in(key_loop, k + 1), eot)
    wrong = jnp.argmax(logits, axis=1) != labels
    first = wrong & ~s["found"]
    better = f > s["f_max"]
    n = dict(
        x_prev=s["x"], x=x_new, f=f, g=g,
        x_max=batch_where(better, x_new, s["x_max"]), f_max=jnp.maximum(f, s["f_max"]),
        g_max=batch_where(better, g, s["g_max"]),
        x_adv=batch_where(first, x_new, s["x_adv"]), found=s["found"] | wrong,
        increases=s["increases"] + (f > s["f"]))
    cond1 = n["increases"] < rho * length
    cond2 = ~s["halved_last"] & (n["f_max"] <= s["f_max_last"])
    halve = ckpt & (cond1 | cond2)
    n["eta"] = jnp.where(halve, s["eta"] / 2, s["eta"])
    # A halving restarts from the best point with its gradient and no momentum.
    n["x"] = batch_where(halve, n["x_max"], n["x"])
    n["x_prev"] = batch_where(halve, n["x_max"], n["x_prev"])
    n["g"] = batch_where(halve, n["g_max"], n["g"])
    n["increases"] = jnp.where(ckpt, 0.0, n["increases"])
    n["f_max_last"] = jnp.where(ckpt, n["f_max"], s["f_max_last"])
    n["halved_last"] = jnp.where(ckpt, halve, s["halved_last"])
    return n, None

  xs = (jnp.arange(steps), jnp.asarray(is_ckpt), jnp.asarray(interval))
  s, _ = jax.lax.scan(body, state, xs)
  return jnp.where(s["found"].reshape(bshape), s["x_adv"], s["x_max"])


@jit_attack("steps", "eot")
def apgd_ce(logits_fn: LogitsFn, images: ArrayLike, labels: ArrayLike, key: jax.Array, *,
            eps: float, steps: int = 100, eot: int = 1) -> jax.Array:
  """APGD on the cross-entropy loss (AutoAttack's first attack), one restart.

  Args:
    logits_fn: classifier, see the module docstring.
    images: [B, H, W, 3] clean images in [0, 1].
    labels: [B] int true classes.
    key: drives the random start and the model's randomness.
    eps: L∞ radius.
    steps: iterations (AutoAttack uses 100).
    eot: gradient samples averaged per iteration (AutoAttack's "rand" version uses 20).

  Returns:
    [B, H, W, 3] adversarial images.
  """
  images, labels = jnp.asarray(images, jnp.float32), jnp.asarray(labels, jnp.int32)
  return _apgd(logits_fn, lambda z: cross_entropy(z, labels), images, labels, key, eps, steps, eot)


@jit_attack("steps", "eot")
def apgd_dlr(logits_fn: LogitsFn, images: ArrayLike, labels: ArrayLike, key: jax.Array, *,
             eps: float, steps: int = 100, eot: int = 1) -> jax.Array:
  """APGD on the untargeted DLR loss (the second attack of AutoAttack's "rand" version).

  Same arguments as `apgd_ce`; needs K >= 3 classes.
  """
  images, labels = jnp.asarray(images, jnp.float32), jnp.asarray(labels, jnp.int32)
  return _apgd(logits_fn, lambda z: dlr(z, labels), images, labels, key, eps, steps, eot)


@jit_attack("steps", "eot", "num_targets")
def apgd_t(logits_fn: LogitsFn, images: ArrayLike, labels: ArrayLike, key: jax.Array, *,
           eps: float, steps: int = 100, eot: int = 1, num_targets: int = 9) -> jax.Array:
  """Targeted APGD on the DLR loss (AutoAttack's APGD-T).

  Runs one APGD per target class, the 2nd, 3rd, ... highest classes of the clean EOT-mean logits,
  and keeps for each example the first run that misclassifies it (else the last run's point).

  Args:
    logits_fn: classifier with K >= 4 classes, see the module docstring.
    images: [B, H, W, 3] clean images in [0, 1].
    labels: [B] int true classes.
    key: drives the random starts and the model's randomness.
    eps: L∞ radius.
    steps: iterations per target (AutoAttack uses 100).
    eot: gradient samples averaged per iteration.
    num_targets: target classes tried, at most K - 1 (AutoAttack uses 9).

  Returns:
    [B, H, W, 3] adversarial images.
  """
  images, labels = jnp.asarray(images, jnp.float32), jnp.asarray(labels, jnp.int32)
  key_rank, key_eval, key_runs = jax.random.split(key, 3)
  clean_logits = eot_logits(logits_fn, images, key_rank, eot)
  num_classes = clean_logits.shape[1]
  if num_classes < 4 or not 1 <= num_targets < num_classes:
    raise ValueError(f"apgd_t needs K >= 4 classes and 1 <= num_targets < K, got K={num_classes} and "
                     f"num_targets={num_targets}; use apgd_ce for fewer classes.")
  order = jnp.argsort(-clean_logits, axis=1)
  bshape = (-1,) + (1,) * (images.ndim - 1)

  def body(carry, r):
    x_best, done = carry
    targets = order[:, r]
    x = _apgd(logits_fn, lambda z: dlr_targeted(z, labels, targets), images, labels,
              jax.random.fold_in(key_runs, r), eps, steps, eot)
    wrong = jnp.argmax(logits_fn(x, jax.random.fold_in(key_eval, r)), axis=1) != labels
    x_best = jnp.where(done.reshape(bshape), x_best, x)
    return (x_best, done | wrong), None

  (x_best, _), _ = jax.lax.scan(body, (images, jnp.zeros(images.shape[0], bool)),
                                jnp.arange(1, num_targets + 1))
  return x_best


