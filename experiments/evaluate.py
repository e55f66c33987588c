"""Evaluates a trained run (EMA weights) and writes one JSON file of results.

  akorn-evaluate --workdir=runs/sudoku                 (the run's own config, W/config.json)
  akorn-evaluate --workdir=runs/sudoku --config.eval.num_puzzles=100     (with an override)
  akorn-evaluate --workdir=runs/cifar --robustness
  akorn-evaluate --workdir=runs/tetro --config=tetrominoes_akorn:tiny    (another config)
(`python -m experiments.evaluate ...` in a checkout is the same command.)

Load, run, write: the latest EMA weights of the run (akorn_jax.train.restore), the task's evaluator
built from the config (akorn_jax.tasks.get_evaluator; the trainer's periodic evaluation is its
cheap subset), and one JSON file. Sudoku: board accuracy at T_eval with energy/confidence voting
over K starts, for every set in config.eval.sets (akorn_jax.evaluate.sudoku). Objects: FG-ARI / MBO
with and without up-tiling plus pictures (akorn_jax.evaluate.objects). Classification: clean
accuracy; with --robustness also the attacks of config.eval.attacks (each reported with its
settings, EOT included), AutoAttack `standard` / `rand` (config.eval.autoattack), accuracy vs eps, and accuracy/ECE under corruptions with a
reliability diagram (akorn_jax.evaluate.classification). The JSON is printed and saved as
<workdir>/eval_<step>.json (or --output).
"""

from __future__ import annotations

import json
import os
import sys
import time

from absl import app, flags

from akorn_jax import commands, config_loader

_CONFIG = config_loader.config_flag(help_string=(
    "Default: the run's own <workdir>/config.json. Else a built-in name[:arg], a file.py[:arg] or a "
    "config.json. Override keys with --config.a.b=value."))
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory with checkpoints.", required=True)
_ROBUSTNESS = flags.DEFINE_bool("robustness", False, "Classification: attacks and corruptions.")
_OUTPUT = flags.DEFINE_string("output", None, "JSON output path (default <workdir>/eval_<step>.json).")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the evaluation's random starts and attacks.")
_UNTRAINED = flags.DEFINE_bool("untrained", False, "Evaluate the initial weights (a control) "
                               "instead of the workdir's checkpoint; results go to the workdir.")


def evaluate(config, workdir: str, *, robustness: bool = False, seed: int = 0,
             untrained: bool = False) -> dict:
  """Loads the run's EMA model, runs the task's evaluator, returns a JSON-able dict."""
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from akorn_jax import tasks  # pylint: disable=g-import-not-at-top
  from akorn_jax.train import loop, restore  # pylint: disable=g-import-not-at-top

  evaluator = tasks.get_evaluator(config, **({"robustness": True} if robustness else {}))
  if untrained:  # the model exactly as training would start it (same seed), step 0
    s = loop.setup(config, tasks.get_task(config))
    model, step = loop.ema_model(s, s.init_fn()), 0
  else:
    model, step = restore.load_model(config, workdir)
  out: dict = {"step": step, "workdir": workdir, "date": time.strftime("%Y-%m-%d %H:%M:%S"),
               "device": jax.devices()[0].device_kind}
  res = evaluator.run(model, jax.random.key(seed), workdir=workdir, step=step)
  images = [k for k, v in res.items() if np.ndim(v) == 3]  # also saved under <workdir>/pictures
  out.update({k: v for k, v in res.items() if k not in images})
  if images:
    out["pictures"] = os.path.join(workdir, "pictures")
  plots = write_plots(out, os.path.join(workdir, "pictures"))
  if plots:
    out["plots"] = plots
  return out


def write_plots(result: dict, folder: str) -> list[str]:
  """PNG plots beside the JSON, for the parts of `result` that have one: accuracy vs K per vote
  (each Sudoku set), accuracy vs eps, and ECE per corruption and severity (ours, CIFAR-10-C).
  Returns the paths written."""
  from akorn_jax.evaluate import plots  # pylint: disable=g-import-not-at-top
  todo = []
  for name, value in result.items():
    if isinstance(value, dict) and any(str(k).startswith("acc/K=") for k in value):
      todo.append((plots.plot_voting, value, "voting_" + name.replace("/", "_").replace(":", "_"),
                   name))
  if isinstance(result.get("accuracy_vs_eps"), dict):
    todo.append((plots.plot_accuracy_vs_eps, result["accuracy_vs_eps"], "accuracy_vs_eps", ""))
  for name in ("calibration", "cifar10_c"):
    if isinstance(result.get(name), dict):
      todo.append((plots.plot_ece, result[name], f"ece_{name}", name))
  if todo:
    os.makedirs(folder, exist_ok=True)
  paths = []
  for plot, value, stem, title in todo:
    paths.append(os.path.join(folder, stem + ".png"))
    plot(value, paths[-1], title=title)
  return paths


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
  from akorn_jax import compute  # pylint: disable=g-import-not-at-top
  compute.enable_compilation_cache()
  result = _jsonable(evaluate(_CONFIG.value, _WORKDIR.value, robustness=_ROBUSTNESS.value,
                              seed=_SEED.value, untrained=_UNTRAINED.value))
  path = _OUTPUT.value or os.path.join(_WORKDIR.value, f"eval_{result['step']}.json")
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, "w") as f:
    json.dump(result, f, indent=1)
  print(json.dumps(result))


def _parse_flags(argv: list[str]) -> list[str]:
  """Without --config, the config is the run's own <workdir>/config.json (overrides still apply)."""
  workdir = commands.flag_spec(argv[1:], "workdir")
  if commands.flag_spec(argv[1:], "config") is None and workdir:
    argv = [argv[0], f"--config={os.path.join(workdir, 'config.json')}", *argv[1:]]
  return commands.parse_flags(argv)


def cli() -> None:
  """The `akorn-evaluate` command."""
  app.run(main, flags_parser=_parse_flags)


if __name__ == "__main__":
  cli()
