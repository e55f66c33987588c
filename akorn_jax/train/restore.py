"""A trained model, out of a run or an exported folder, for inference; and how to count its size.

Three ways a model leaves training, each with one home here:

* **A run directory** (`load_model`): the EMA (or online) weights of the latest orbax checkpoint.
  Only that subtree is read: the model is built abstractly (`nnx.eval_shape`, nothing allocated),
  and neither the optimiser, nor the mesh, nor a jitted initialiser is built. The run's config
  sits beside its checkpoints as `CONFIG_FILE` (`write_config` / `read_config`).
* **An exported folder** (`export_weights` / `load_exported`): the portable format we ship (e.g.
  `akorn_jax/assets/sudoku_akorn/`): `weights.npz` (the flattened nnx state, keys are '/'-joined
  paths such as `klayers/0/connectivity/qkv/kernel`), `config.json` (the model config: "name"
  plus the model's keyword arguments, see `akorn_jax.models.from_config`) and `SHA256SUMS`
  (sha256sum format), checked before anything is loaded. No orbax, no pickle.
* **Its size** (`count_params`): the number of trainable (`nnx.Param`) scalars.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import Any

import flax.nnx as nnx
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from akorn_jax import models
from akorn_jax.data import common as data_common
from akorn_jax.train import checkpoint as ckpt_lib

CONFIG_FILE = "config.json"  # the run's config beside its checkpoints; the model config in exports
WEIGHTS_FILE = "weights.npz"
SUMS_FILE = ckpt_lib.SUMS_FILE

BuildModel = Callable[[ml_collections.ConfigDict, nnx.Rngs], nnx.Module]


# ------------------------------------------------------------------------------------------------
# Size
# ------------------------------------------------------------------------------------------------


def count_params(model: nnx.Module) -> int:
  """The number of trainable (`nnx.Param`) scalars of `model`, concrete or abstract (from
  `nnx.eval_shape` / `abstract_model`: counting then allocates nothing)."""
  return int(sum(np.prod(x.shape, dtype=np.int64)
                 for x in jax.tree.leaves(nnx.state(model, nnx.Param))))


def build_from_config(config: ml_collections.ConfigDict, rngs: nnx.Rngs) -> nnx.Module:
  """The model of an experiment config (`config.model`, see `akorn_jax.models.from_config`); every
  task of `akorn_jax.tasks` builds its model this way."""
  return models.from_config(config.model, rngs=rngs)


def abstract_model(config: ml_collections.ConfigDict,
                   build_model: BuildModel = build_from_config) -> nnx.Module:
  """The model of `config` with `jax.ShapeDtypeStruct`s for arrays: shapes only, no memory."""
  return nnx.eval_shape(lambda: build_model(config, nnx.Rngs(0)))


# ------------------------------------------------------------------------------------------------
# A run directory
# ------------------------------------------------------------------------------------------------


def write_config(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Saves the run's config as `<workdir>/CONFIG_FILE` (atomically, by process 0 only)."""
  if jax.process_index() == 0:
    os.makedirs(workdir, exist_ok=True)
    tmp = os.path.join(workdir, CONFIG_FILE + ".tmp")
    with open(tmp, "w") as f:
      f.write(config.to_json_best_effort(indent=1))
    os.replace(tmp, os.path.join(workdir, CONFIG_FILE))


def read_config(workdir: str) -> ml_collections.ConfigDict:
  """The config a run saved with `write_config`.

  Raises:
    FileNotFoundError: `workdir` holds no CONFIG_FILE (not a run directory, or written by a
      version that did not save it: pass the config file instead).
  """
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"No {CONFIG_FILE} in {workdir!r}; expected the run directory of "
                            "experiments.train, or pass the run's config file instead.")
  with open(path) as f:
    return ml_collections.ConfigDict(json.load(f))


def load_model(config: ml_collections.ConfigDict, workdir: str,
               build_model: BuildModel = build_from_config, *,
               ema: bool = True) -> tuple[nnx.Module, int]:
  """(model in eval mode, step) from the latest checkpoint of the run in `workdir`.

  Reads only the EMA weights (or, with `ema=False`, the online ones) onto this process's first
  device, whatever mesh trained them; the optimiser state is never read.

  Args:
    config: the run's experiment config (e.g. `read_config(workdir)`).
    workdir: the run directory.
    build_model: (config, rngs) -> model, the Task's builder; default `config.model`'s model.
    ema: the EMA model (what every evaluation uses) or the online one.

  Raises:
    FileNotFoundError: `workdir` holds no checkpoint.
  """
  graphdef, params, rest = nnx.split(abstract_model(config, build_model), nnx.Param, ...)
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  weights = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=device),
                         {"params": params, "rest": rest})
  name = "ema" if ema else None
  step, tree = ckpt_lib.restore_subtree(workdir, {name: weights} if name else weights)
  weights = tree[name] if name else tree
  model = nnx.merge(graphdef, weights["params"], weights["rest"])
  model.eval()
  return model, step


# ------------------------------------------------------------------------------------------------
# An exported folder: weights.npz + config.json + SHA256SUMS
# ------------------------------------------------------------------------------------------------


def export_weights(model: nnx.Module, model_config: Mapping[str, Any], folder: str) -> None:
  """Writes `model`'s state (e.g. the EMA weights) and its model config to `folder`.

  Args:
    model: the model to export.
    model_config: what rebuilds it with `akorn_jax.models.from_config` ("name" + keywords).
    folder: created if missing; weights.npz, config.json and SHA256SUMS are overwritten.
  """
  os.makedirs(folder, exist_ok=True)
  arrays = {"/".join(map(str, path)): np.asarray(var[...])
            for path, var in nnx.to_flat_state(nnx.state(model))}
  np.savez(os.path.join(folder, WEIGHTS_FILE), **arrays)
  with open(os.path.join(folder, CONFIG_FILE), "w") as f:
    json.dump(dict(model_config), f, indent=2, sort_keys=True)
    f.write("\n")
  ckpt_lib.write_checksums(folder)  # the same SHA256SUMS format as a checkpoint step's


def verify_checksums(folder: str) -> None:
  """Checks weights.npz and config.json of an exported folder against its SHA256SUMS.

  Raises:
    FileNotFoundError: a file is missing.
    ValueError: a file's SHA-256 differs from the recorded one, or a file is not listed.
  """
  for name in (SUMS_FILE, WEIGHTS_FILE, CONFIG_FILE):
    if not os.path.isfile(os.path.join(folder, name)):
      raise FileNotFoundError(f"No {name} in {folder!r}; expected an exported checkpoint "
                              f"({WEIGHTS_FILE}, {CONFIG_FILE}, {SUMS_FILE}) written by "
                              "export_weights.")
  try:
    ckpt_lib.verify_checksums(folder)
  except ValueError as e:
    raise ValueError(f"{folder!r}: {e}. The folder is corrupt or was modified; restore it "
                     "(reinstall the package or export again). Refusing to load it.") from e


def load_exported(folder: str) -> tuple[nnx.Module, dict[str, Any]]:
  """Loads a folder written by `export_weights`, after checking its SHA-256 sums.

  Returns:
    (model in eval mode, model config).

  Raises:
    FileNotFoundError, ValueError: missing files, a checksum mismatch, or weights that do not fit
      the config's model (missing/extra arrays or wrong shapes, each named).
  """
  verify_checksums(folder)
  with open(os.path.join(folder, CONFIG_FILE)) as f:
    model_config = json.load(f)
  graphdef, abstract = nnx.split(
      nnx.eval_shape(lambda: models.from_config(model_config, rngs=nnx.Rngs(0))))
  flat = nnx.to_flat_state(abstract)
  arrays = data_common.read_npz(os.path.join(folder, WEIGHTS_FILE))
  expected = {"/".join(map(str, path)): var.get_value() for path, var in flat}  # ShapeDtypeStructs
  if set(expected) != set(arrays):
    raise ValueError(f"{folder!r}: weights do not match model {model_config['name']!r} built from "
                     f"{CONFIG_FILE}: missing {sorted(set(expected) - set(arrays))}, unexpected "
                     f"{sorted(set(arrays) - set(expected))}. Export the weights and config "
                     "together.")
  for name, spec in expected.items():
    if arrays[name].shape != spec.shape:
      raise ValueError(f"{folder!r}: array {name!r} has shape {arrays[name].shape}, the model "
                       f"built from {CONFIG_FILE} expects {spec.shape}. Export weights and config "
                       "together.")
  state = nnx.from_flat_state(
      [(path, var.replace(jnp.asarray(arrays[name], spec.dtype)))
       for (path, var), (name, spec) in zip(flat, expected.items())])
  model = nnx.merge(graphdef, state)
  model.eval()
  return model, model_config
