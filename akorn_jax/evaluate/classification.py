"""The image-classification (CIFAR-10) `Evaluator` of the trainer and of experiments.evaluate.

Clean accuracy always; with `robustness=True` the whole suite of the paper's robustness section,
built from `akorn_jax.evaluate.robustness` (attacks) and `akorn_jax.evaluate.calibration`
(accuracy and ECE under corruptions, reliability diagram):

* robust accuracy under each attack of `eval.attacks` (names of `robustness.ATTACKS`: random_sign
  noise at eps 64/255, fgsm, pgd with `eval.pgd_steps`, apgd_ce, apgd_t), all at L∞ radius
  `eval.eps` with `eval.eot` samples of Expectation over Transformation over the random oscillator
  start, and the per-example worst case;
* accuracy against PGD over growing eps (`eval.eps_sweep`), which flags gradient masking;
* accuracy and ECE under our synthetic corruptions `eval.corruptions` at
  `eval.corruption_severities`, and a reliability diagram of the clean predictions
  (<workdir>/pictures/reliability_clean.png);
* accuracy and ECE on the real CIFAR-10-C (every corruption at those severities) when it is
  prepared, else a note saying so.

Every pass over images goes through `Evaluator._probs` (one batch loop), except the attacks, which
batch themselves. The model is called as `model(images, key=key)` (plus `ensemble=` when
`eval.ensemble` > 1); its key draws the random initial oscillators.
"""

from __future__ import annotations

import functools
import os

import flax.nnx as nnx
import jax
import numpy as np

from akorn_jax import data, imageops
from akorn_jax.data import common, pipeline
from akorn_jax.evaluate import calibration
from akorn_jax.evaluate import robustness as attacks_lib

RANDOM_SIGN_EPS = 64 / 255  # the noise "attack" of the paper's robustness table


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
  also {"robust", "accuracy_vs_eps", "calibration", "cifar10_c", "reliability_diagram"} (see the
  module docstring). The trainer (`periodic=True`) runs clean accuracy only.
  """

  def __init__(self, config, *, periodic: bool = False, robustness: bool = False):
    if periodic and robustness:
      raise ValueError("The robustness suite is not a periodic evaluation; run it with "
                       "experiments.evaluate --robustness.")
    e = config.eval
    self.data_config = config.data
    self.batch_size, self.num_images = int(config.data.eval_batch_size), int(e.num_images)
    self.ensemble = int(e.ensemble)
    self.robustness = robustness
    if robustness:
      unknown = sorted(set(e.attacks) - set(attacks_lib.ATTACKS))
      if unknown:
        raise ValueError(f"config.eval.attacks has unknown attacks {unknown}; expected names of "
                         f"akorn_jax.evaluate.robustness.ATTACKS: {sorted(attacks_lib.ATTACKS)}.")
      self.attacks, self.eps, self.eot = tuple(e.attacks), float(e.eps), int(e.eot)
      self.pgd_steps, self.eps_sweep = int(e.pgd_steps), tuple(e.eps_sweep)
      self.corruptions = tuple(e.corruptions)
      self.severities = tuple(e.corruption_severities)

  # ---------------------------------------------------------------------------------------------
  # The one batch loop
  # ---------------------------------------------------------------------------------------------

  def _probs(self, model: nnx.Module, source, key: jax.Array) -> tuple[np.ndarray, np.ndarray]:
    """(softmax probabilities [N, K], labels [N]) of the first `num_images` examples of
    `source` (uint8 images); batch i draws its random start from fold_in(key, i)."""
    graphdef, state = nnx.split(model)
    probs_fn = _jit_probs(graphdef, self.ensemble)
    probs, labels = [], []
    for i, batch in enumerate(pipeline.eval_batches(source, self.batch_size, self.num_images)):
      images = imageops.to_float(batch["image"])
      probs.append(np.asarray(probs_fn(state, images, jax.random.fold_in(key, i))))
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
    out["robust"] = attacks_lib.robust_accuracy(
        logits_fn, images, labels, jax.random.fold_in(key, 1), attacks=self.attacks,
        eps=self.eps, eot=self.eot,
        options={"pgd": {"steps": self.pgd_steps}, "random_sign": {"eps": RANDOM_SIGN_EPS}})
    out["accuracy_vs_eps"] = attacks_lib.accuracy_vs_eps(
        logits_fn, images, labels, jax.random.fold_in(key, 2), eps_values=self.eps_sweep,
        eot=self.eot, options={"steps": self.pgd_steps})
    probs_fn = functools.partial(_jit_probs(graphdef, self.ensemble), state)
    out["calibration"] = calibration.calibration_report(
        probs_fn, images, labels, jax.random.fold_in(key, 3), corruptions=self.corruptions,
        severities=self.severities)
    out["cifar10_c"] = self._cifar10_c(model, jax.random.fold_in(key, 5))
    os.makedirs(os.path.join(workdir, "pictures"), exist_ok=True)
    out["reliability_diagram"] = calibration.reliability_diagram(
        probs, labels, os.path.join(workdir, "pictures", "reliability_clean.png"))
    return out

  def _cifar10_c(self, model: nnx.Module, key: jax.Array) -> dict | str:
    """Accuracy and ECE on the real CIFAR-10-C, every corruption at our severities (the report
    format of `calibration.cifar10_c_report`); or "not prepared: ..." when it is not on disk."""
    graphdef, state = nnx.split(model)
    probs_fn = functools.partial(_jit_probs(graphdef, self.ensemble), state)
    try:
      return calibration.cifar10_c_report(
          probs_fn, key, severities=self.severities, num_images=self.num_images,
          data_dir=self.data_config.get("data_dir"), chunk_size=self.batch_size)
    except common.DatasetNotPreparedError as e:
      return f"not prepared: {e}"

