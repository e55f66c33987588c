"""Evaluates a trained run (EMA weights) and writes one JSON file of results.

  python -m experiments.evaluate --config=configs/sudoku_akorn.py --workdir=runs/sudoku
  python -m experiments.evaluate --config=configs/tetrominoes_akorn.py --workdir=runs/tetro
  python -m experiments.evaluate --config=configs/cifar_akorn.py --workdir=runs/cifar --robustness

Sudoku: board accuracy at T_eval with energy/confidence voting over K starts, for every set in
config.eval.sets. Objects: FG-ARI / MBO with and without up-tiling plus pictures. Classification:
clean accuracy; with --robustness also attacks (noise, FGSM, PGD, APGD-CE, APGD-DLR-targeted, all
with EOT over the random oscillator start), accuracy vs eps, and accuracy/ECE under corruptions with
a reliability diagram. The JSON is printed and saved as <workdir>/eval_<step>.json (or --output).
"""

from __future__ import annotations

import json
import os
import time

from absl import app, flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory with checkpoints.", required=True)
_ROBUSTNESS = flags.DEFINE_bool("robustness", False, "Classification: attacks and corruptions.")
_OUTPUT = flags.DEFINE_string("output", None, "JSON output path (default <workdir>/eval_<step>.json).")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the evaluation's random starts and attacks.")
_UNTRAINED = flags.DEFINE_bool("untrained", False, "Evaluate the initial weights (a control) "
                               "instead of the workdir's checkpoint; results go to the workdir.")


def evaluate(config, workdir: str, *, robustness: bool = False, seed: int = 0,
             untrained: bool = False) -> dict:
  """Runs the task's full evaluation; returns a JSON-able dict."""
  import jax  # pylint: disable=g-import-not-at-top
  from akorn_jax import tasks  # pylint: disable=g-import-not-at-top
  from akorn_jax.train import loop, restore  # pylint: disable=g-import-not-at-top

  if untrained:  # the model exactly as training would start it (same seed), step 0
    s = loop.setup(config, tasks.get_task(config))
    model, step = loop.ema_model(s, s.init_fn()), 0
  else:
    model, step = restore.load_model(config, workdir)
  key = jax.random.key(seed)
  out: dict = {"step": step, "workdir": workdir, "date": time.strftime("%Y-%m-%d %H:%M:%S"),
               "device": jax.devices()[0].device_kind}

  if config.task == "sudoku":
    from akorn_jax.evaluate import sudoku as sudoku_eval  # pylint: disable=g-import-not-at-top
    for spec in config.eval.sets:
      puzzles, solutions = tasks.sudoku_boards(spec, config.eval.num_puzzles,
                                               data_dir=config.data.get("data_dir"))
      out[spec] = sudoku_eval.evaluate_voting(
          model, puzzles, solutions, key=key, steps=config.eval.steps,
          num_starts=tuple(config.eval.num_starts), vote_types=tuple(config.eval.vote_types),
          chunk=config.eval.chunk)

  elif config.task == "objects":
    res = tasks.objects_evaluate(model, config, workdir, step, key)
    out.update({k: v for k, v in res.items() if not k.startswith("pictures/")})
    out["pictures"] = os.path.join(workdir, "pictures")

  elif config.task == "classification":
    out.update(tasks.classification_evaluate(model, config, workdir, step, key))
    if robustness:
      out.update(_robustness(model, config, workdir, key))
  return out


def _robustness(model, config, workdir: str, key) -> dict:
  """Attacks with EOT over the random oscillator start, eps sweep, corruptions and calibration."""
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from flax import nnx  # pylint: disable=g-import-not-at-top

  from akorn_jax import tasks  # pylint: disable=g-import-not-at-top
  from akorn_jax.evaluate import corruptions, robustness  # pylint: disable=g-import-not-at-top

  src = tasks.source(config, "test")
  n = min(len(src), config.eval.num_images)
  images = np.stack([src[i]["image"] for i in range(n)]).astype(np.float32) / 255.0
  labels = np.asarray([src[i]["label"] for i in range(n)], np.int32)
  graphdef, state = nnx.split(model)

  kw = {"ensemble": config.eval.ensemble} if config.eval.ensemble > 1 else {}

  def logits_fn(x, k):
    return nnx.merge(graphdef, state)(x, key=k, **kw)[0]

  attacks = tuple(a.replace("apgd_dlr", "apgd_t").replace("noise", "random_sign")
                  for a in config.eval.attacks)
  opts = {"pgd": {"steps": config.eval.pgd_steps}, "random_sign": {"eps": 64 / 255}}
  res = {"robust": robustness.robust_accuracy(
      logits_fn, images, labels, jax.random.fold_in(key, 1), attacks=attacks, eps=config.eval.eps,
      eot=config.eval.eot, options=opts)}
  res["accuracy_vs_eps"] = robustness.accuracy_vs_eps(
      logits_fn, images, labels, jax.random.fold_in(key, 2), eps_values=tuple(config.eval.eps_sweep),
      eot=config.eval.eot, options={"steps": config.eval.pgd_steps})
  probs_fn = jax.jit(lambda x, k: jax.nn.softmax(logits_fn(x, k), -1))
  res["calibration"] = corruptions.calibration_report(
      probs_fn, images, labels, jax.random.fold_in(key, 3),
      corruptions=tuple(config.eval.corruptions),
      severities=tuple(config.eval.corruption_severities))
  probs = np.asarray(probs_fn(images, jax.random.fold_in(key, 4)))
  os.makedirs(os.path.join(workdir, "pictures"), exist_ok=True)
  res["cifar10_c"] = _cifar10_c(probs_fn, config, jax.random.fold_in(key, 5))
  res["reliability_diagram"] = corruptions.reliability_diagram(
      probs, labels, os.path.join(workdir, "pictures", "reliability_clean.png"))
  return res


def _cifar10_c(probs_fn, config, key) -> dict | str:
  """Accuracy and ECE on the real CIFAR-10-C (15 corruptions x severities) when it is prepared."""
  import numpy as np  # pylint: disable=g-import-not-at-top

  from akorn_jax import metrics  # pylint: disable=g-import-not-at-top
  from akorn_jax.data import cifar, common  # pylint: disable=g-import-not-at-top

  out = {}
  for name in cifar.CIFAR10_C_CORRUPTIONS:
    for severity in config.eval.corruption_severities:
      try:
        src = cifar.cifar10_c(name, severity, data_dir_=config.data.get("data_dir"))
      except common.DatasetNotPreparedError as e:
        return f"not prepared: {e}"
      n = min(len(src), config.eval.num_images)
      images = np.stack([src[i]["image"] for i in range(n)]).astype(np.float32) / 255.0
      labels = np.asarray([src[i]["label"] for i in range(n)])
      probs = np.concatenate([np.asarray(probs_fn(images[i:i + 500], key))
                              for i in range(0, n, 500)])
      out[f"{name}_{severity}"] = {
          "accuracy": float(np.mean(probs.argmax(-1) == labels)),
          "ece": metrics.expected_calibration_error(probs, labels)}
  out["mean"] = {m: float(np.mean([v[m] for v in out.values()])) for m in ("accuracy", "ece")}
  return out


def _jsonable(obj):
  if isinstance(obj, dict):
    return {str(k): _jsonable(v) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return [_jsonable(v) for v in obj]
  if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:
    return obj.item()
  if hasattr(obj, "tolist"):
    return obj.tolist()
  return obj


def main(argv):
  del argv
  result = _jsonable(evaluate(_CONFIG.value, _WORKDIR.value, robustness=_ROBUSTNESS.value,
                              seed=_SEED.value, untrained=_UNTRAINED.value))
  path = _OUTPUT.value or os.path.join(_WORKDIR.value, f"eval_{result['step']}.json")
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, "w") as f:
    json.dump(result, f, indent=1)
  print(json.dumps(result))


if __name__ == "__main__":
  app.run(main)
