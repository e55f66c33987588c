"""Adversarial robustness of image classifiers: robust accuracy, the AutoAttack protocols, eps sweeps.

The attacks live in `akorn_jax.evaluate.attacks` (a classifier is `logits_fn(images, key) ->
logits`; the key drives the model's randomness, e.g. AKOrN's random initial oscillators). Here
they are run over a dataset in fixed-size chunks and scored with one fresh forward pass, as the
deployed model would run.

An attack is named by a label `name[:option=value,...]`, e.g. "pgd" or "pgd:eot=20,steps=50";
results are keyed by label and every result carries the exact settings used ("settings"), so an
EOT count is always reported beside its number.

AutoAttack (Croce & Hein 2020) comes in two versions, named as the community names them:
  standard: APGD-CE, APGD-T (targeted DLR, 9 targets), FAB-T (9 targets), Square (5,000 queries),
            no EOT (one forward pass per gradient/query);
  rand:     APGD-CE and APGD-DLR, each gradient averaged over 20 random draws of the model (EOT),
            the version meant for randomised defences such as AKOrN's random initial state.
Each runs its attacks in sequence on the points still robust; the robust accuracy is the fraction
of points that survive all of them.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from akorn_jax import progress
from akorn_jax.evaluate import common
from akorn_jax.evaluate.attacks import (ATTACKS, LogitsFn, apgd_checkpoints, cross_entropy, dlr,
                                        dlr_targeted, predict)
from akorn_jax.evaluate.attacks.common import as_pytree

PROTOCOLS: dict[str, tuple[tuple[str, dict], ...]] = {
    "standard": (("apgd_ce", {"steps": 100, "eot": 1}),
                 ("apgd_t", {"steps": 100, "num_targets": 9, "eot": 1}),
                 ("fab_t", {"steps": 100, "num_targets": 9, "eot": 1}),
                 ("square", {"queries": 5000, "eot": 1})),
    "rand": (("apgd_ce", {"steps": 100, "eot": 20}),
             ("apgd_dlr", {"steps": 100, "eot": 20})),
}

__all__ = ["ATTACKS", "PROTOCOLS", "accuracy_vs_eps", "apgd_checkpoints", "autoattack",
           "cross_entropy", "dlr", "dlr_targeted", "parse_attack", "robust_accuracy"]


def _value(text: str):
  for cast in (int, float):
    try:
      return cast(text)
    except ValueError:
      pass
  return {"true": True, "false": False}.get(text.lower(), text)


def parse_attack(label: str) -> tuple[str, dict]:
  """"pgd:eot=20,steps=50" -> ("pgd", {"eot": 20, "steps": 50}); the name must be in ATTACKS."""
  name, _, opts = label.partition(":")
  if name not in ATTACKS:
    raise ValueError(f"Unknown attack {name!r} in {label!r}; expected one of {sorted(ATTACKS)}, "
                     "optionally followed by ':option=value,...'.")
  options = {}
  for item in filter(None, opts.split(",")):
    key, eq, value = item.partition("=")
    if not eq:
      raise ValueError(f"Attack option {item!r} in {label!r} is not 'option=value'.")
    options[key.strip()] = _value(value.strip())
  return name, options


def _chunks(n: int, chunk_size: int):
  for start in range(0, n, chunk_size):
    yield start, min(start + chunk_size, n)


def _pad(a: np.ndarray, size: int) -> np.ndarray:
  """Pads the batch axis to `size` by repeating the last row, so every chunk has one shape."""
  return a if a.shape[0] == size else np.concatenate([a, np.repeat(a[-1:], size - a.shape[0], 0)])


def _settings(name: str, eps: float, eot: int, *option_dicts) -> dict:
  """Every keyword the attack gets: eps, eot where it takes one, then the overrides in order."""
  params = inspect.signature(ATTACKS[name]).parameters
  kwargs = {"eps": eps} | ({"eot": eot} if "eot" in params else {})
  for opts in option_dicts:
    kwargs |= dict(opts or {})
  unknown = sorted(set(kwargs) - set(params))
  if unknown:
    raise ValueError(f"Attack {name!r} has no option(s) {unknown}; its options are "
                     f"{sorted(k for k in params if k not in ('logits_fn', 'images', 'labels', 'key'))}.")
  return kwargs


def robust_accuracy(logits_fn: LogitsFn, images: ArrayLike, labels: ArrayLike, key: jax.Array, *,
                    attacks: Sequence[str] = ("fgsm", "pgd", "apgd_ce", "apgd_t"),
                    eps: float = 8 / 255, eot: int = 1,
                    options: Mapping[str, Mapping] | None = None, cascade: bool = False,
                    chunk_size: int = 256, mesh: jax.sharding.Mesh | None = None) -> dict:
  """Clean accuracy, accuracy under each attack and the per-example worst case over attacks.

  Args:
    logits_fn: classifier, see `akorn_jax.evaluate.attacks.common`.
    images: [N, H, W, 3] clean images in [0, 1].
    labels: [N] int true classes.
    key: base key; every chunk and attack folds in its own.
    attacks: attack labels `name[:option=value,...]`, names from `ATTACKS`.
    eps: L∞ radius given to every attack.
    eot: default EOT samples of the attacks that take it (a label's `eot=` wins).
    options: per-name keyword overrides applied before the label's own, e.g. {"pgd": {"steps":
      50}, "random_sign": {"eps": 64/255}}.
    cascade: AutoAttack's order: an attack only needs to break the points that survived the
      previous ones, and its entry is the accuracy that *remains* after it (cumulative); chunks
      with no surviving point skip it. Without cascade every attack is scored on its own.
    chunk_size: examples per jitted call (rounded up to a multiple of the devices); the last
      chunk is padded so nothing recompiles.
    mesh: devices every chunk is split over (default: all); the results do not depend on it.

  Returns:
    dict with "clean", one accuracy per label, "worst" (correct clean and under every attack),
    all in [0, 1], and "settings": {label: every keyword the attack ran with}.
  """
  images, labels = np.asarray(images, np.float32), np.asarray(labels, np.int32)
  options = dict(options or {})
  parsed = {label: parse_attack(label) for label in attacks}
  settings = {label: _settings(name, eps, eot, options.get(name), opts)
              for label, (name, opts) in parsed.items()}
  correct = {name: [] for name in ("clean", *attacks)}
  # Every chunk is split over the devices of the mesh (sharded evaluation, evaluate/common.py).
  mesh = mesh or common.default_mesh()
  logits_fn = common.replicate(as_pytree(logits_fn), mesh)
  size = common.rows_per_call(min(chunk_size, len(images)), mesh.size)
  chunks = list(_chunks(len(images), size))
  for c, (lo, hi) in enumerate(progress.track(chunks, desc=f"attacks {', '.join(attacks)}",
                                              unit="chunk")):
    x, y = common.shard_rows((_pad(images[lo:hi], size), _pad(labels[lo:hi], size)), mesh)
    k_chunk = jax.random.fold_in(key, c)
    alive = common.to_host(predict(logits_fn, x, jax.random.fold_in(k_chunk, 0)) == y)
    correct["clean"].append(alive[:hi - lo])
    for a, label in enumerate(attacks, start=1):
      if cascade and not alive[:hi - lo].any():
        correct[label].append(np.zeros(hi - lo, bool))
        continue
      k_attack, k_eval = jax.random.split(jax.random.fold_in(k_chunk, a))
      x_adv = ATTACKS[parsed[label][0]](logits_fn, x, y, k_attack, **settings[label])
      ok = common.to_host(predict(logits_fn, x_adv, k_eval) == y)
      if cascade:
        alive = alive & ok
        ok = alive
      correct[label].append(ok[:hi - lo])
  per_example = {name: np.concatenate(v) for name, v in correct.items()}
  result = {name: float(v.mean()) for name, v in per_example.items()}
  result["worst"] = float(np.logical_and.reduce(list(per_example.values())).mean())
  result["settings"] = settings
  return result


def autoattack(logits_fn: LogitsFn, images: ArrayLike, labels: ArrayLike, key: jax.Array, *,
               version: str = "standard", eps: float = 8 / 255,
               overrides: Mapping[str, Mapping] | None = None, chunk_size: int = 256,
               mesh: jax.sharding.Mesh | None = None) -> dict:
  """Robust accuracy under AutoAttack's `standard` or `rand` version (see the module docstring).

  Args:
    logits_fn, images, labels, key: as in `robust_accuracy`.
    version: "standard" or "rand".
    eps: L∞ radius (CIFAR-10: 8/255).
    overrides: per-attack option changes (smaller budgets for tests); they appear in "settings".
    chunk_size: examples per jitted call.
    mesh: devices every chunk is split over (default: all); the results do not depend on it.

  Returns:
    dict with "version", "clean", "robust" (survives every attack), the accuracy remaining after
    each attack in order (keyed by name) and "settings" (every option of every attack, EOT
    included).
  """
  if version not in PROTOCOLS:
    raise ValueError(f"Unknown AutoAttack version {version!r}; expected one of {sorted(PROTOCOLS)}.")
  overrides = dict(overrides or {})
  unknown = sorted(set(overrides) - {name for name, _ in PROTOCOLS[version]})
  if unknown:
    raise ValueError(f"overrides name attacks {unknown} that the {version!r} version does not run "
                     f"({[name for name, _ in PROTOCOLS[version]]}).")
  names = tuple(name for name, _ in PROTOCOLS[version])
  opts = {name: dict(o) | dict(overrides.get(name, {})) for name, o in PROTOCOLS[version]}
  res = robust_accuracy(logits_fn, images, labels, key, attacks=names, eps=eps, options=opts,
                        cascade=True, chunk_size=chunk_size, mesh=mesh)
  res["robust"] = res.pop("worst")
  return {"version": version, **res}


def accuracy_vs_eps(logits_fn: LogitsFn, images: ArrayLike, labels: ArrayLike, key: jax.Array, *,
                    eps_values: Sequence[float] = (0.0, 2 / 255, 4 / 255, 8 / 255, 16 / 255,
                                                   32 / 255, 64 / 255, 128 / 255),
                    attack: str = "pgd", eot: int = 1, options: Mapping | None = None,
                    tolerance: float = 0.03, chunk_size: int = 256,
                    mesh: jax.sharding.Mesh | None = None) -> dict:
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
    attack: an attack label (see `parse_attack`).
    eot: EOT samples of the attack.
    options: keyword overrides for the attack.
    tolerance: slack for both checks, in accuracy (absorbs sampling noise of a random model).
    chunk_size: examples per jitted call.
    mesh: as in `robust_accuracy`.

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
  runs = [robust_accuracy(logits_fn, images, labels, key, attacks=(attack,), eps=e, eot=eot,
                          options={parse_attack(attack)[0]: options or {}}, chunk_size=chunk_size,
                          mesh=mesh)
          for e in progress.track(eps_values, desc=f"{attack} accuracy vs eps", unit="eps")]
  acc = [r[attack] for r in runs]
  chance = 1.0 / num_classes
  monotone = all(b <= a + tolerance for a, b in zip(acc, acc[1:]))
  reaches = acc[-1] <= chance + tolerance
  settings = {k: v for k, v in runs[-1]["settings"][attack].items() if k != "eps"}
  return {"eps": eps_values, "accuracy": acc, "attack": attack, "settings": settings,
          "chance": chance, "monotone": monotone,
          "reaches_chance": reaches, "gradient_masking_suspected": not (monotone and reaches)}
