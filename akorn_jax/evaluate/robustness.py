"""Adversarial robustness of image classifiers: L∞ attacks with EOT, robust accuracy, eps sweeps.

A classifier is a callable `logits_fn(images, key) -> logits`, images [B, H, W, 3] in [0, 1] and
logits [B, K]. The key drives the model's own randomness (AKOrN draws its initial oscillators from
it, SPEC §9.1.3); deterministic models ignore it. Because such a model is random, every gradient
attack takes `eot`: the loss and its gradient are averaged over `eot` independent keys
(Expectation over Transformation, Athalye et al. 2018), otherwise the attack follows one noisy
sample and overestimates robustness.

Attacks return adversarial images; `robust_accuracy` scores them with one fresh forward pass, as
the deployed model would run. Every attack is jitted; eps and step sizes are traced, so sweeps do
not recompile. Pass the model as `jax.tree_util.Partial(f, params)` (f(params, images, key)) so its
parameters are traced arguments rather than constants baked into each compiled attack; a plain
callable also works and reuses compilations as long as it is the same object.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from akorn_jax import progress
from akorn_jax.evaluate import common

LogitsFn = Callable[[jax.Array, jax.Array], jax.Array]


# ------------------------------------------------------------------------------------------------
# Losses and EOT gradients
# ------------------------------------------------------------------------------------------------


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Per-example cross-entropy, [B, K] x [B] -> [B]."""
  logp = jax.nn.log_softmax(logits.astype(jnp.float32))
  return -jnp.take_along_axis(logp, labels[:, None], axis=1)[:, 0]


def dlr_targeted(logits: jax.Array, labels: jax.Array, targets: jax.Array) -> jax.Array:
  """Targeted Difference-of-Logits-Ratio loss of Croce & Hein (2020), to be maximised, [B].

  -(z_y - z_t) / (z_π1 - (z_π3 + z_π4) / 2), with π the classes sorted by decreasing logit; the
  ratio makes the loss invariant to shifting and rescaling the logits. Needs K >= 4.
  """
  z = logits.astype(jnp.float32)
  top = -jnp.sort(-z, axis=1)
  z_y = jnp.take_along_axis(z, labels[:, None], axis=1)[:, 0]
  z_t = jnp.take_along_axis(z, targets[:, None], axis=1)[:, 0]
  return -(z_y - z_t) / (top[:, 0] - 0.5 * (top[:, 2] + top[:, 3]) + 1e-12)


def _eot_value_and_grad(logits_fn: LogitsFn, loss_fn: Callable[[jax.Array], jax.Array],
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


def _as_pytree(logits_fn):
  """Wraps a plain callable as a `jax.tree_util.Partial` so jit can take it as an argument."""
  if logits_fn is None or isinstance(logits_fn, jax.tree_util.Partial):
    return logits_fn
  return jax.tree_util.Partial(logits_fn)


def _jit_attack(*static: str):
  """Jits an attack with `static` keyword options; `logits_fn` is passed as a pytree argument."""

  def wrap(fn):
    jitted = jax.jit(fn, static_argnames=static)

    @functools.wraps(fn)
    def attack(logits_fn, *args, **kwargs):
      return jitted(_as_pytree(logits_fn), *args, **kwargs)

    return attack

  return wrap


@jax.jit
def _predict(logits_fn: LogitsFn, images: jax.Array, key: jax.Array) -> jax.Array:
  return jnp.argmax(logits_fn(images, key), axis=1)


def _project(x: jax.Array, clean: jax.Array, eps) -> jax.Array:
  """Projection onto the L∞ ball of radius eps around `clean` intersected with [0, 1]."""
  return jnp.clip(jnp.clip(x, clean - eps, clean + eps), 0.0, 1.0)


# ------------------------------------------------------------------------------------------------
# Attacks: (logits_fn, images [B,H,W,3], labels [B], key, *, eps, ...) -> adversarial images
# ------------------------------------------------------------------------------------------------


@_jit_attack()
def random_sign(logits_fn: LogitsFn | None, images: ArrayLike, labels: ArrayLike, key: jax.Array, *,
                eps: float) -> jax.Array:
  """Random-sign noise x + eps·sign(N(0, 1)), clamped to [0, 1] (the reference's random attack).

  The model and labels are unused; the signature matches the other attacks.
  """
  del logits_fn, labels
  images = jnp.asarray(images, jnp.float32)
  return jnp.clip(images + eps * jnp.sign(jax.random.normal(key, images.shape)), 0.0, 1.0)


@_jit_attack("eot")
def fgsm(logits_fn: LogitsFn, images: ArrayLike, labels: ArrayLike, key: jax.Array, *, eps: float,
         eot: int = 1) -> jax.Array:
  """Fast Gradient Sign Method: one step of size eps along the sign of the (EOT) CE gradient."""
  images, labels = jnp.asarray(images, jnp.float32), jnp.asarray(labels, jnp.int32)
  _, g, _ = _eot_value_and_grad(logits_fn, lambda z: cross_entropy(z, labels), images, key, eot)
  return jnp.clip(images + eps * jnp.sign(g), 0.0, 1.0)


@_jit_attack("steps", "random_start", "eot")
def pgd_linf(logits_fn: LogitsFn, images: ArrayLike, labels: ArrayLike, key: jax.Array, *,
             eps: float, step_size: float | None = None, steps: int = 20, random_start: bool = False,
             eot: int = 1) -> jax.Array:
  """Projected gradient ascent on the CE loss in the L∞ ball (Madry et al. 2018).

  Defaults are the reference's training-time check (SPEC §5.3): step eps/3, 20 iterations, no
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
    x = _project(x + jax.random.uniform(key_start, x.shape, minval=-eps, maxval=eps), images, eps)

  def body(i, x):
    _, g, _ = _eot_value_and_grad(logits_fn, lambda z: cross_entropy(z, labels), x,
                                  jax.random.fold_in(key_loop, i), eot)
    return _project(x + step_size * jnp.sign(g), images, eps)

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

  x0 = _project(images + jax.random.uniform(key_start, images.shape, minval=-eps, maxval=eps),
                images, eps)
  f0, g0, z0 = _eot_value_and_grad(logits_fn, loss_fn, x0, jax.random.fold_in(key_loop, 0), eot)
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
    z = _project(s["x"] + eta * jnp.sign(s["g"]), images, eps)
    x_new = _project(s["x"] + mom * (z - s["x"]) + (1 - mom) * (s["x"] - s["x_prev"]), images, eps)
    f, g, logits = _eot_value_and_grad(logits_fn, loss_fn, x_new,
                                       jax.random.fold_in(key_loop, k + 1), eot)
    wrong = jnp.argmax(logits, axis=1) != labels
    first = wrong & ~s["found"]
    better = f > s["f_max"]
    sel = lambda m, a, c: jnp.where(m.reshape((-1,) + (1,) * (a.ndim - 1)), a, c)
    n = dict(
        x_prev=s["x"], x=x_new, f=f, g=g,
        x_max=sel(better, x_new, s["x_max"]), f_max=jnp.maximum(f, s["f_max"]),
        g_max=sel(better, g, s["g_max"]),
        x_adv=sel(first, x_new, s["x_adv"]), found=s["found"] | wrong,
        increases=s["increases"] + (f > s["f"]))
    cond1 = n["increases"] < rho * length
    cond2 = ~s["halved_last"] & (n["f_max"] <= s["f_max_last"])
    halve = ckpt & (cond1 | cond2)
    n["eta"] = jnp.where(halve, s["eta"] / 2, s["eta"])
    # A halving restarts from the best point with its gradient and no momentum.
    n["x"] = sel(halve, n["x_max"], n["x"])
    n["x_prev"] = sel(halve, n["x_max"], n["x_prev"])
    n["g"] = sel(halve, n["g_max"], n["g"])
    n["increases"] = jnp.where(ckpt, 0.0, n["increases"])
    n["f_max_last"] = jnp.where(ckpt, n["f_max"], s["f_max_last"])
    n["halved_last"] = jnp.where(ckpt, halve, s["halved_last"])
    return n, None

  xs = (jnp.arange(steps), jnp.asarray(is_ckpt), jnp.asarray(interval))
  s, _ = jax.lax.scan(body, state, xs)
  return jnp.where(s["found"].reshape(bshape), s["x_adv"], s["x_max"])


@_jit_attack("steps", "eot")
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


@_jit_attack("steps", "eot", "num_targets")
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
  clean_logits = jax.lax.map(lambda k: logits_fn(images, k).astype(jnp.float32),
                             jax.random.split(key_rank, eot)).mean(0)
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


ATTACKS: dict[str, Callable[..., jax.Array]] = {
    "random_sign": random_sign,
    "fgsm": fgsm,
    "pgd": pgd_linf,
    "apgd_ce": apgd_ce,
    "apgd_t": apgd_t,
}


# ------------------------------------------------------------------------------------------------
# Evaluation
# ------------------------------------------------------------------------------------------------


def _chunks(n: int, chunk_size: int):
  for start in range(0, n, chunk_size):
    yield start, min(start + chunk_size, n)


def _pad(a: np.ndarray, size: int) -> np.ndarray:
  """Pads the batch axis to `size` by repeating the last row, so every chunk has one shape."""
  return a if a.shape[0] == size else np.concatenate([a, np.repeat(a[-1:], size - a.shape[0], 0)])


def _resolve(name: str) -> Callable[..., jax.Array]:
  if name not in ATTACKS:
    raise ValueError(f"Unknown attack {name!r}; expected one of {sorted(ATTACKS)}.")
  return ATTACKS[name]


def robust_accuracy(logits_fn: LogitsFn, images: ArrayLike, labels: ArrayLike, key: jax.Array, *,
                    attacks: Sequence[str] = ("fgsm", "pgd", "apgd_ce", "apgd_t"),
                    eps: float = 8 / 255, eot: int = 1,
                    options: Mapping[str, Mapping] | None = None,
                    chunk_size: int = 256,
                    mesh: jax.sharding.Mesh | None = None) -> dict[str, float]:
  """Clean accuracy, accuracy under each attack and the per-example worst case over attacks.

  Args:
    logits_fn: classifier, see the module docstring.
    images: [N, H, W, 3] clean images in [0, 1].
    labels: [N] int true classes.
    key: base key; every chunk and attack folds in its own.
    attacks: names from `ATTACKS`.
    eps: L∞ radius given to every attack.
    eot: EOT samples for the gradient attacks (random_sign ignores it).
    options: per-attack keyword overrides, e.g. {"pgd": {"steps": 50}, "random_sign":
      {"eps": 64/255}}.
    chunk_size: examples per jitted call (rounded up to a multiple of the devices); the last
      chunk is padded so nothing recompiles.
    mesh: devices every chunk is split over (default: all); the results do not depend on it.

  Returns:
    dict with "clean", one entry per attack and "worst" (correct only if correct clean and under
    every attack), all accuracies in [0, 1].
  """
  images, labels = np.asarray(images, np.float32), np.asarray(labels, np.int32)
  options = dict(options or {})
  fns = {name: _resolve(name) for name in attacks}
  correct = {name: [] for name in ("clean", *attacks)}
  # Every chunk is split over the devices of the mesh (sharded evaluation, evaluate/common.py).
  mesh = mesh or common.default_mesh()
  logits_fn = common.replicate(_as_pytree(logits_fn), mesh)
  size = common.rows_per_call(min(chunk_size, len(images)), mesh.size)
  chunks = list(_chunks(len(images), size))
  for c, (lo, hi) in enumerate(progress.track(chunks, desc=f"attacks {', '.join(attacks)}",
                                              unit="chunk")):
    x, y = common.shard_rows((_pad(images[lo:hi], size), _pad(labels[lo:hi], size)), mesh)
    k_chunk = jax.random.fold_in(key, c)
    correct["clean"].append(
        common.to_host(_predict(logits_fn, x, jax.random.fold_in(k_chunk, 0)) == y)[:hi - lo])
    for a, (name, fn) in enumerate(fns.items(), start=1):
      kwargs = {"eps": eps} | ({} if name == "random_sign" else {"eot": eot})
      kwargs |= options.get(name, {})
      k_attack, k_eval = jax.random.split(jax.random.fold_in(k_chunk, a))
      x_adv = fn(logits_fn, x, y, k_attack, **kwargs)
      correct[name].append(common.to_host(_predict(logits_fn, x_adv, k_eval) == y)[:hi - lo])
  per_example = {name: np.concatenate(v) for name, v in correct.items()}
  result = {name: float(v.mean()) for name, v in per_example.items()}
  result["worst"] = float(np.logical_and.reduce(list(per_example.values())).mean())
  return result


def accuracy_vs_eps(logits_fn: LogitsFn, images: ArrayLike, labels: ArrayLike, key: jax.Array, *,
                    eps_values: Sequence[float] = (0.0, 2 / 255, 4 / 255, 8 / 255, 16 / 255,
                                                   32 / 255, 64 / 255, 128 / 255),
                    attack: str = "pgd", eot: int = 1, options: Mapping | None = None,
                    tolerance: float = 0.03, chunk_size: int = 256) -> dict:
  """Accuracy under one attack over growing eps: a gradient-masking sanity check.

  An honest attack on an honest model loses accuracy as eps grows and ends at or below chance
  (1/K) once eps is large. A curve that rises or stays above chance points to gradient masking or
  a broken attack (Carlini et al. 2019, "On evaluating adversarial robustness").

  Args:
    logits_fn: classifier, see the module docstring.
    images: [N, H, W, 3] clean images in [0, 1].
    labels: [N] int true classes.
    key: base key (the same for every eps, so only eps changes along the curve).
    eps_values: increasing radii; the last should be large (>= 0.25 for [0, 1] images).
    attack: a name from `ATTACKS`.
    eot: EOT samples of the attack.
    options: keyword overrides for the attack.
    tolerance: slack for both checks, in accuracy (absorbs sampling noise of a random model).
    chunk_size: examples per jitted call.

  Returns:
    dict with "eps" and "accuracy" lists, "chance" (1/K), "monotone" (no rise beyond tolerance),
    "reaches_chance" (last accuracy <= chance + tolerance) and "gradient_masking_suspected"
    (either check failed).
  """
  eps_values = [float(e) for e in eps_values]
  if any(b < a for a, b in zip(eps_values, eps_values[1:])):
    raise ValueError(f"eps_values must be increasing, got {eps_values}; sort them.")
  images = np.asarray(images, np.float32)
  num_classes = jax.eval_shape(logits_fn, jax.ShapeDtypeStruct(images[:1].shape, jnp.float32),
                               key).shape[-1]
  acc = [robust_accuracy(logits_fn, images, labels, key, attacks=(attack,), eps=e, eot=eot,
                         options={attack: options or {}}, chunk_size=chunk_size)[attack]
         for e in progress.track(eps_values, desc=f"{attack} accuracy vs eps", unit="eps")]
  chance = 1.0 / num_classes
  monotone = all(b <= a + tolerance for a, b in zip(acc, acc[1:]))
  reaches = acc[-1] <= chance + tolerance
  return {"eps": eps_values, "accuracy": acc, "chance": chance, "monotone": monotone,
          "reaches_chance": reaches, "gradient_masking_suspected": not (monotone and reaches)}
