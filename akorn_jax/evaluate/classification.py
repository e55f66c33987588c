"""The image-classification (CIFAR-10) `Evaluator` of the trainer and of experiments.evaluate.

Clean accuracy always; with `robustness=True` the whole suite of the paper's robustness section,
built from `akorn_jax.evaluate.robustness` (attacks) and `akorn_jax.evaluate.calibration`
(accuracy and ECE under corruptions, reliability diagram):

* robust accuracy under each attack label of `eval.attacks` (`name[:option=value,...]`, names of
  `robustness.ATTACKS`, e.g. "random_sign:eps=0.25098039", "pgd:steps=20,eot=20"), all at L∞
  radius `eval.eps`, with `eval.eot` samples of Expectation over Transformation over the random
  oscillator start unless the label sets its own; every result carries the settings it ran with;
* robust accuracy under each AutoAttack version of `eval.autoattack` ("standard": APGD-CE,
  APGD-T, FAB-T, Square; "rand": APGD-CE and APGD-DLR with EOT 20), with
  `eval.autoattack_overrides` (smaller budgets, reported in the settings);
* accuracy against `eval.sweep_attack` over growing eps (`eval.eps_sweep`), which flags gradient
  masking;
* accuracy and ECE under our synthetic corruptions `eval.corruptions` at
  `eval.corruption_severities` (frost is skipped, with the reason in "skipped_corruptions", when
  the optional imagecorruptions package with its photographs is not installed), and a reliability
  diagram of the clean predictions
  (<workdir>/pictures/reliability_clean.png);
* accuracy and ECE on the real CIFAR-10-C (every corruption at those severities) when it is
  prepared, else a note saying so.

Every pass over images goes through `Evaluator._probs` (one batch loop), except the attacks, which
batch themselves. The model is called as `model(images, key=key)` (plus `ensemble=` when
`eval.ensemble` > 1); its key draws the random initial oscillators. Every pass splits its batch over
the devices of the evaluator's mesh (default: all; evaluate/common.py) with the weights replicated,
and gives the numbers of one device.
"""

from __future__ import annotations

import functools
import os
import sys

import flax.nnx as nnx
import jax
import numpy as np

from akorn_jax import data, imageops
from akorn_jax.data import common, pipeline
from akorn_jax.evaluate import calibration, spatter_frost
from akorn_jax.evaluate import common as eval_common
from akorn_jax.evaluate import robustness as attacks_lib

@functools.cache
def _logits_fn(graphdef: nnx.GraphDef, ensemble: int):
  """f(state, images, key) -> logits; cached per architecture so attacks compile once."""
  kw = {"ensemble": ensemble} if ensemble > 1 else {}

  def fn(state, images, key):
    return nnx.merge(graphdef, state)(images, key=key, **kw)[0]

  return fn


@functools.cache
def _jit_probs(graphdef: nnx.GraphDef, ensemble: int):
  logits = _logits_fn(graphdef, ensemble)
  return jax.jit(lambda state, images, key: jax.nn.softmax(logits(state, images, key), -1))


class Evaluator:
  """Accuracy (and, with `robustness`, the robustness suite) of a classifier on CIFAR-10 test.

  `run` returns {"eval/accuracy"} on the first `eval.num_images` test images; with `robustness`
  also {"robust", "autoattack_<version>", "accuracy_vs_eps", "calibration", "cifar10_c", "reliability_diagram"} (see the
  module docstring). The trainer (`periodic=True`) runs clean accuracy only.
  """

  def __init__(self, config, *, periodic: bool = False, robustness: bool = False,
               mesh: jax.sharding.Mesh | None = None):
    """`mesh`: the devices every batch is split over (default: all, chosen at `run`)."""
    if periodic and robustness:
      raise ValueError("The robustness suite is not a periodic evaluation; run it with "
                       "experiments.evaluate --robustness.")
    e = config.eval
    self.data_config = config.data
    self.batch_size, self.num_images = int(config.data.eval_batch_size), int(e.num_images)
    self.ensemble = int(e.ensemble)
    self.robustness, self._mesh = robustness, mesh
    if robustness:
      for label in (*e.attacks, e.sweep_attack):
        attacks_lib.parse_attack(label)  # a clear error naming a bad label, before any work
      unknown = sorted(set(e.autoattack) - set(attacks_lib.PROTOCOLS))
      if unknown:
        raise ValueError(f"config.eval.autoattack has unknown versions {unknown}; expected some of "
                         f"{sorted(attacks_lib.PROTOCOLS)}.")
      self.attacks, self.eps, self.eot = tuple(e.attacks), float(e.eps), int(e.eot)
      self.autoattack = tuple(e.autoattack)
      self.autoattack_overrides = {k: dict(v) for k, v in dict(e.autoattack_overrides).items()}
      self.sweep_attack, self.eps_sweep = str(e.sweep_attack), tuple(e.eps_sweep)
      self.corruptions = tuple(e.corruptions)
      self.severities = tuple(e.corruption_severities)

  # ---------------------------------------------------------------------------------------------
  # The one batch loop
  # ---------------------------------------------------------------------------------------------

  @property
  def mesh(self) -> jax.sharding.Mesh:
    """The devices every batch is split over."""
    return self._mesh or eval_common.default_mesh()

  def _probs_fn(self, model: nnx.Module):
    """`probs_fn(images, key) -> probs` (calibration.ProbsFn) with the weights on every device."""
    graphdef, state = nnx.split(model)
    return functools.partial(_jit_probs(graphdef, self.ensemble),
                             eval_common.replicate(state, self.mesh))

  def _probs(self, model: nnx.Module, source, key: jax.Array) -> tuple[np.ndarray, np.ndarray]:
    """(softmax probabilities [N, K], labels [N]) of the first `num_images` examples of
    `source` (uint8 images); batch i draws its random start from fold_in(key, i).

    Each batch is split over the mesh (the last one padded); row r draws the same start whatever
    the padding, so the probabilities do not depend on the device count.
    """
    probs_fn, mesh = self._probs_fn(model), self.mesh  # the mesh is built once, not per batch
    probs, labels = [], []
    for i, batch in enumerate(pipeline.eval_batches(source, self.batch_size, self.num_images)):
      images = imageops.to_float(batch["image"])
      probs.append(eval_common.sharded_call(probs_fn, images, jax.random.fold_in(key, i),
                                            batch_argnums=(0,), mesh=mesh))
      labels.append(np.asarray(batch["label"]))
    return np.concatenate(probs).astype(np.float64), np.concatenate(labels)

  # ---------------------------------------------------------------------------------------------
  # Run
  # ---------------------------------------------------------------------------------------------

  def run(self, model: nnx.Module, key: jax.Array, *, workdir: str | None = None,
          step: int | None = None) -> dict:
    """Scores `model` (in eval mode); the reliability diagram needs `workdir`."""
    del step
    test = data.from_config(self.data_config, "test")
    probs, labels = self._probs(model, test, key)
    out = {"eval/accuracy": float(np.mean(probs.argmax(-1) == labels))}
    if not self.robustness:
      return out
    if workdir is None:
      raise ValueError("The robustness suite writes a reliability diagram; pass a workdir.")
    rows = pipeline.stack(test, self.num_images)
    images = np.asarray(imageops.to_float(rows["image"]))
    labels = rows["label"].astype(np.int32)
    graphdef, state = nnx.split(model)
    logits_fn = jax.tree_util.Partial(_logits_fn(graphdef, self.ensemble), state)
    mesh = self.mesh
    out["robust"] = attacks_lib.robust_accuracy(
        logits_fn, images, labels, jax.random.fold_in(key, 1), attacks=self.attacks,
        eps=self.eps, eot=self.eot, mesh=mesh)
    for i, version in enumerate(self.autoattack):
      names = {name for name, _ in attacks_lib.PROTOCOLS[version]}
      out[f"autoattack_{version}"] = attacks_lib.autoattack(
          logits_fn, images, labels, jax.random.fold_in(jax.random.fold_in(key, 6), i),
          version=version, eps=self.eps,
          overrides={k: v for k, v in self.autoattack_overrides.items() if k in names}, mesh=mesh)
    out["accuracy_vs_eps"] = attacks_lib.accuracy_vs_eps(
        logits_fn, images, labels, jax.random.fold_in(key, 2), eps_values=self.eps_sweep,
        attack=self.sweep_attack, eot=self.eot, mesh=mesh)
    probs_fn = self._probs_fn(model)
    corruptions, skipped = self._available_corruptions()
    if skipped:
      out["skipped_corruptions"] = skipped
    out["calibration"] = calibration.calibration_report(
        probs_fn, images, labels, jax.random.fold_in(key, 3), corruptions=corruptions,
        severities=self.severities, mesh=mesh)
    out["cifar10_c"] = self._cifar10_c(model, jax.random.fold_in(key, 5))
    os.makedirs(os.path.join(workdir, "pictures"), exist_ok=True)
    out["reliability_diagram"] = calibration.reliability_diagram(
        probs, labels, os.path.join(workdir, "pictures", "reliability_clean.png"))
    return out

  def _available_corruptions(self) -> tuple[tuple[str, ...], dict[str, str]]:
    """`eval.corruptions` less frost when its photographs (the optional imagecorruptions package)
    are missing; the skipped ones map to the reason, which is also printed."""
    if "frost" not in self.corruptions:
      return self.corruptions, {}
    try:
      spatter_frost.frost_folder()
    except FileNotFoundError as e:
      print(f"Skipping the frost corruption: {e}", file=sys.stderr)
      return tuple(c for c in self.corruptions if c != "frost"), {"frost": str(e)}
    return self.corruptions, {}

  def _cifar10_c(self, model: nnx.Module, key: jax.Array) -> dict | str:
    """Accuracy and ECE on the real CIFAR-10-C, every corruption at our severities (the report
    format of `calibration.cifar10_c_report`); or "not prepared: ..." when it is not on disk."""
    try:
      return calibration.cifar10_c_report(
          self._probs_fn(model), key, severities=self.severities, num_images=self.num_images,
          data_dir=self.data_config.get("data_dir"), chunk_size=self.batch_size, mesh=self.mesh)
    except common.DatasetNotPreparedError as e:
      return f"not prepared: {e}"

