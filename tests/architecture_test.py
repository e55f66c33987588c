"""The import graph of the package has no upward arrow: the layering below, read from the source.

A module may import modules of its own package and of strictly lower layers, never of its own
layer's other packages or of a higher one; nothing in akorn_jax imports the drivers (experiments),
the configs or the tests. Imports inside functions count too.

  0  kuramoto, metrics, losses, imageops, compute, config_base, progress   (no akorn_jax imports)
  1  layers, data, config_loader       (NNX layers; datasets and pipelines; config files by name)
  2  models, commands                  (every network of the paper; command-line plumbing)
  3  train                             (the task-agnostic trainer, checkpoints, restore, sharding)
  4  evaluate                          (one evaluator per task, sharded over train's mesh helpers)
  5  tasks                             (the registry wiring data, loss and evaluator per task)
  6  benchmark, port                   (tools over the whole stack)
  7  golden                            (golden-value records of the port, built on port)

KNOWN_UPWARD lists the arrows that still point up, each with the reason and its way out; the test
fails on any other.
"""

from __future__ import annotations

import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAYERS = (
    ("kuramoto", "metrics", "losses", "imageops", "compute", "config_base", "progress"),
    ("layers", "data", "config_loader"),
    ("models", "commands"),
    ("train",),
    ("evaluate",),
    ("tasks",),
    ("benchmark", "port"),
    ("golden",),
)
KNOWN_UPWARD: dict[tuple[str, str], str] = {}  # none left
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def _imports(path: str) -> list[str]:
  """Every absolute module name `path` imports ("from a import b" gives a.b: b may be a module)."""
  names = []
  for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
    if isinstance(node, ast.Import):
      names += [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
      names += [f"{node.module}.{a.name}" for a in node.names]
  return names


def _package_modules():
  for folder, _, files in os.walk(os.path.join(ROOT, "akorn_jax")):
    for f in sorted(files):
      if f.endswith(".py"):
        path = os.path.join(folder, f)
        yield path, os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")


def test_every_top_level_module_has_a_layer():
  top = {module.split(".")[1] for _, module in _package_modules() if module.count(".")}
  top -= {"__init__"}
  assert top <= set(RANK), f"add {sorted(top - set(RANK))} to LAYERS (and this docstring)"


def test_no_upward_imports():
  upward = []
  for path, module in _package_modules():
    if not module.count("."):
      continue
    own = module.split(".")[1]
    for name in _imports(path):
      parts = name.split(".")
      if parts[0] in ("experiments", "configs", "tests"):
        upward.append(f"{module} imports {name} (drivers, configs and tests sit above akorn_jax)")
      if parts[0] != "akorn_jax" or len(parts) < 2 or parts[1] == own:
        continue
      target = ".".join(parts[:2])
      if (module, target) in KNOWN_UPWARD:
        continue
      if parts[1] in RANK and RANK[parts[1]] >= RANK[own]:
        upward.append(f"{module} (layer {RANK[own]}) imports {name} (layer {RANK[parts[1]]})")
  assert not upward, "\n".join(upward)
