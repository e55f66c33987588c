"""Ablation runner: trains and evaluates a small grid of model variants of one config, writes one
table (markdown + JSON) and one bar plot.

  python -m experiments.ablate --config=tetrominoes_akorn:cpu --workdir=runs/ablate \
      --grid=base,omega,no_project,n=2,n=8,steps=4,conv,no_readout [--config.train.num_steps=300]

Each cell of `--grid` (comma-separated) is a preset name or `key=value` settings of the model,
joined by `+` (e.g. `omega+n=2`). Presets:
  base        the config as it is
  omega       natural frequencies Ω on with the reference's γ = 1 (γ keeps its meaning: without
              Ω the KLayer steps with γ/(1+γ), the reference's Identity-Ω quirk,
              docs/dynamics.md#step-size)
  no_project  no tangent projection of the coupling
  conv        convolutional coupling (kernel `ksize` of the config) instead of attention
  attn        attention coupling
  no_readout  no readout: the next stimulus / the clustered feature is the oscillator state
  x_map       a learned 1x1 map of x between layers (needs num_layers > 1 to matter)
Every cell trains in <workdir>/<cell> (resuming if it already has a checkpoint) and is evaluated
with the config's protocol; `--untrained` adds the base model at its initial weights as a control.
Outputs: <workdir>/ablation.{json,md,png}.
"""

from __future__ import annotations

import copy
import inspect
import json
import os
import time

from absl import app, flags

PRESETS: dict[str, dict] = {
    "base": {},
    "omega": {"use_omega": True, "gamma": 1.0},
    "no_project": {"project": False},
    "conv": {"connectivity": "conv"},
    "attn": {"connectivity": "attn"},
    "no_readout": {"readout": False},
    "x_map": {"x_map": True},
}


def _value(text: str):
  low = text.lower()
  if low in ("true", "false"):
    return low == "true"
  for cast in (int, float):
    try:
      return cast(text)
    except ValueError:
      pass
  return text


def parse_cell(cell: str, model_config) -> dict:
  """"omega+n=2" -> {"use_omega": True, "gamma": 1.0, "n": 2}; checks keys against the model."""
  from akorn_jax import models  # pylint: disable=g-import-not-at-top

  name = model_config["name"]
  accepted = set(inspect.signature(models.MODELS[name].__init__).parameters) - {"self", "rngs"}
  out = {}
  for part in filter(None, cell.split("+")):
    if "=" in part:
      key, _, value = part.partition("=")
      out[key.strip()] = _value(value.strip())
    elif part in PRESETS:
      out.update(PRESETS[part])
    else:
      raise ValueError(f"Unknown ablation cell {part!r} in {cell!r}; expected a preset "
                       f"{sorted(PRESETS)} or key=value, joined by '+'.")
  unknown = sorted(set(out) - accepted)
  if unknown:
    raise ValueError(f"Cell {cell!r} sets {unknown}, which model {name!r} does not take; its "
                     f"settings are {sorted(accepted)}.")
  return out


def cell_config(config, settings: dict):
  """A copy of `config` with the model settings of one cell."""
  c = copy.deepcopy(config)
  with c.unlocked():
    for key, value in settings.items():
      if key in c.model and isinstance(c.model[key], tuple) and not isinstance(value, tuple):
        value = (value,) * len(c.model[key])
      c.model[key] = value
  return c


def _metrics(out: dict) -> dict:
  return {k.split("/", 1)[1]: float(v) for k, v in out.items()
          if k.startswith("eval/") and isinstance(v, (int, float))}


def run_grid(config, workdir: str, cells: list[str], *, untrained: bool = True,
             seed: int = 0) -> list[dict]:
  """Trains and evaluates every cell; returns one row per cell (and the control first)."""
  from akorn_jax import tasks  # pylint: disable=g-import-not-at-top
  from akorn_jax.train import loop, restore  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top

  def evaluate(c, cell_dir, untrained=False):
    if untrained:  # the model exactly as training would start it (same seed), step 0
      s = loop.setup(c, tasks.get_task(c))
      model, step = loop.ema_model(s, s.init_fn()), 0
    else:
      model, step = restore.load_model(c, cell_dir)
    return tasks.get_evaluator(c).run(model, jax.random.key(seed), workdir=cell_dir, step=step)

  parsed = {cell: parse_cell(cell, config.model) for cell in cells}  # fail before any training
  rows = []
  if untrained:
    c = cell_config(config, parsed.get("base", {}))
    out = evaluate(c, os.path.join(workdir, "untrained"), untrained=True)
    rows.append({"cell": "untrained (base, initial weights)", "settings": {}, "steps": 0,
                 "params": None, "train_s": 0.0, **_metrics(out)})
  for cell, settings in parsed.items():
    c = cell_config(config, settings)
    cell_dir = os.path.join(workdir, cell.replace("=", "").replace("+", "_"))
    params = restore.count_params(restore.abstract_model(c))
    start = time.time()
    train_out = loop.train_and_evaluate(c, cell_dir, task=tasks.get_task(c))
    train_s = time.time() - start
    # The trainer evaluates the final EMA model with the config's protocol; a cell that was
    # already trained (resumed at its last step) is evaluated here instead.
    out = train_out if any(k.startswith("eval/") for k in train_out) else (
        evaluate(c, cell_dir))
    rows.append({"cell": cell, "settings": settings, "steps": int(c.train.num_steps),
                 "params": params, "train_s": round(train_s, 1),
                 "final_loss": float(train_out.get("loss", float("nan"))), **_metrics(out)})
    write_outputs(rows, workdir)  # a partial table survives an interrupted grid
  return rows


def write_outputs(rows: list[dict], workdir: str) -> None:
  """ablation.json (rows), ablation.md (table, x100) and ablation.png (FG-ARI / MBO bars)."""
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "ablation.json"), "w") as f:
    json.dump(rows, f, indent=1)
  metrics = [k for k in ("fg_ari_x1", "mbo_x1", "fg_ari_x4", "mbo_x4", "fg_ari_x2", "mbo_x2")
             if any(k in r for r in rows)]
  head = ["cell", "settings", "params", "steps", *[m.replace("_", " ") for m in metrics],
          "train s"]
  lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
  for r in rows:
    std = lambda m: m.replace("_x", "_std_x")
    vals = [f"{100 * r[m]:.1f}" + (f" ± {100 * r[std(m)]:.1f}" if std(m) in r else "")
            if m in r else "" for m in metrics]
    settings = ", ".join(f"{k}={v}" for k, v in r["settings"].items()) or "-"
    lines.append("| " + " | ".join([r["cell"], settings, f"{r['params']:,}" if r["params"] else "-",
                                    str(r["steps"]), *vals, str(r["train_s"])]) + " |")
  with open(os.path.join(workdir, "ablation.md"), "w") as f:
    f.write("\n".join(lines) + "\n")
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  fig = Figure(figsize=(1.2 + 0.9 * len(rows), 3.2))
  ax = fig.add_subplot()
  shown = [m for m in ("fg_ari_x1", "mbo_x1") if m in metrics]
  width = 0.8 / max(len(shown), 1)
  for j, m in enumerate(shown):
    ax.bar([i + j * width for i in range(len(rows))], [100 * r.get(m, 0.0) for r in rows], width,
           label=m.replace("_x1", "").replace("_", "-").upper())
  ax.set_xticks([i + 0.4 - width / 2 for i in range(len(rows))],
                [r["cell"].split(" ")[0] for r in rows], rotation=30, ha="right")
  ax.set_ylabel("x100")
  ax.legend()
  fig.tight_layout()
  fig.savefig(os.path.join(workdir, "ablation.png"), dpi=100)


def _define_flags():
  """Flags are defined only when run as a script, so tests can import this module next to other
  drivers (absl flags are global)."""
  from akorn_jax import config_loader  # pylint: disable=g-import-not-at-top
  config_loader.config_flag()
  flags.DEFINE_string("workdir", None, "Folder for the cells' runs and the table.", required=True)
  flags.DEFINE_string("grid", "base,omega,no_project,n=2,n=8,conv",
                      "Comma-separated cells: presets or key=value joined by '+'.")
  flags.DEFINE_bool("untrained", True, "Also evaluate the untrained base model.")
  flags.DEFINE_integer("seed", 0, "Evaluation seed (random oscillator starts).")


def main(argv):
  del argv
  fv = flags.FLAGS
  cells = [c.strip() for c in fv.grid.split(",") if c.strip()]
  rows = run_grid(fv.config, fv.workdir, cells, untrained=fv.untrained, seed=fv.seed)
  print(json.dumps(rows))


if __name__ == "__main__":
  from akorn_jax import commands  # pylint: disable=g-import-not-at-top
  _define_flags()
  app.run(main, flags_parser=commands.parse_flags)
