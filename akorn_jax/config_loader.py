"""The one way to get an experiment config: `load("sudoku_akorn:tiny")`.

A config spec is one of
  * `NAME[:ARG]`: a built-in config, the file configs/NAME.py of this repository (shipped in the
    wheel as the package `akorn_jax.configs`), e.g. `sudoku_akorn:tiny`, `clevrtex_akorn:L=2`;
  * `PATH.py[:ARG]`: any Python file with `get_config(arg=None)`, e.g. `my_configs/big.py:tiny`
    (a path into the built-in folder, such as `configs/sudoku_akorn.py`, is the built-in config);
  * `PATH.json`: the config a run saved (`<workdir>/config.json`), to evaluate or resume it.

ARG is parsed by the config itself with `config_base.parse_arg`, into typed values; a bad one is an
error naming it and the values allowed. A user's config file builds on a built-in one with
`config_loader.load("sudoku_akorn:tiny")` and edits the result.

Every driver (train, evaluate, sudoku, benchmark, demo) and script loads configs here. The absl
drivers define their `--config` flag with `config_flag()` (overrides such as `--config.optim.lr=1e-4`
work as with ml_collections' config_flags) and parse their command line with
`akorn_jax.commands.parse_flags`, which turns an unknown override into a one-line error and calls
`validate` on the final config.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Callable

import ml_collections
from absl import flags
from ml_collections import config_flags

from akorn_jax import config_base

BUILTIN_PACKAGE = "akorn_jax.configs"


# ------------------------------------------------------------------------------------------------
# Built-in configs
# ------------------------------------------------------------------------------------------------


def _builtin_package():
  """The package of the built-in configs: installed as `akorn_jax.configs` (the wheel, an editable
  install), or, in a checkout, the folder configs/ beside akorn_jax/, registered under that name."""
  if BUILTIN_PACKAGE in sys.modules:
    return sys.modules[BUILTIN_PACKAGE]
  try:
    return importlib.import_module(BUILTIN_PACKAGE)
  except ModuleNotFoundError as e:
    if e.name != BUILTIN_PACKAGE:
      raise
  folder = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")
  init = os.path.join(folder, "__init__.py")
  if not os.path.isfile(init):
    raise ModuleNotFoundError(f"No built-in configs: neither the package {BUILTIN_PACKAGE} nor "
                              f"{folder} exists. Reinstall akorn_jax.", name=BUILTIN_PACKAGE)
  spec = importlib.util.spec_from_file_location(BUILTIN_PACKAGE, init,
                                                submodule_search_locations=[folder])
  module = importlib.util.module_from_spec(spec)
  sys.modules[BUILTIN_PACKAGE] = module
  spec.loader.exec_module(module)
  return module


def builtin_dir() -> str:
  """The folder of the built-in config files."""
  return os.path.dirname(os.path.abspath(_builtin_package().__file__))


def builtin_names() -> list[str]:
  """Names of the built-in configs (files named *_base.py hold shared parts and are not configs)."""
  return sorted(f[:-3] for f in os.listdir(builtin_dir())
                if f.endswith(".py") and f != "__init__.py" and not f.endswith("_base.py"))


# ------------------------------------------------------------------------------------------------
# Loading
# ------------------------------------------------------------------------------------------------


def split_spec(spec: str) -> tuple[str, str | None]:
  """"name_or_path[:arg]" -> (name_or_path, arg or None)."""
  where, sep, arg = spec.partition(":")
  return where, (arg if sep and arg else None)


def load(spec: str, *, check: bool = True) -> ml_collections.ConfigDict:
  """The (unlocked) config of `spec` (see the module docstring); `check`: run `validate`.

  Raises:
    ValueError: an unknown built-in name, a missing file, a bad `:arg`, or a config that `validate`
      rejects; the message names the spec.
  """
  where, arg = split_spec(spec)
  if where.endswith(".json"):
    if arg is not None:
      raise ValueError(f"Config {spec!r}: a saved run config ({where}) takes no ':{arg}'.")
    config = _load_json(where)
  else:
    get_config = _get_config_fn(where, spec)
    try:
      config = get_config(arg) if arg is not None else get_config()
    except ValueError as e:  # a bad :arg, reported by config_base.parse_arg
      raise ValueError(f"Config {spec!r}: {e}") from None
    if config is None:
      raise ValueError(f"Config {spec!r}: get_config() returned None; it must return the config.")
    if not isinstance(config, ml_collections.ConfigDict):
      config = ml_collections.ConfigDict(config)
  if check:
    validate(config)
  return config


def _load_json(path: str) -> ml_collections.ConfigDict:
  if not os.path.isfile(path):
    raise ValueError(f"No saved config {path!r}; a training run writes <workdir>/config.json.")
  with open(path, encoding="utf-8") as f:
    return ml_collections.ConfigDict(_tuples(json.load(f)))


def _tuples(tree):
  """JSON lists back to the tuples the configs hold (so `--config.eval.sets=...` overrides work)."""
  if isinstance(tree, dict):
    return {k: _tuples(v) for k, v in tree.items()}
  if isinstance(tree, list):
    return tuple(_tuples(v) for v in tree)
  return tree


def _get_config_fn(where: str, spec: str) -> Callable:
  """`get_config` of a built-in name or a config file path."""
  is_path = where.endswith(".py") or os.sep in where or "/" in where
  if not is_path:
    names = builtin_names()
    if where not in names:
      near = difflib.get_close_matches(where, names, n=3, cutoff=0.5)
      raise ValueError(
          f"Config {spec!r}: no built-in config {where!r}"
          f"{' (did you mean ' + ', '.join(near) + '?)' if near else ''}. Built-in configs: "
          f"{', '.join(names)}; or give a path to your own file, e.g. my_config.py:ARG.")
    return importlib.import_module(f"{BUILTIN_PACKAGE}.{where}").get_config
  if not os.path.isfile(where):
    raise ValueError(f"Config {spec!r}: no config file {where!r} (from {os.getcwd()}); expected a "
                     f"Python file with get_config(arg=None), or a built-in name such as "
                     f"sudoku_akorn:tiny.")
  path = os.path.abspath(where)
  if os.path.dirname(path) == builtin_dir():  # configs/NAME.py of a checkout: the built-in config
    return importlib.import_module(f"{BUILTIN_PACKAGE}.{os.path.basename(path)[:-3]}").get_config
  name = "_akorn_config_" + "".join(c if c.isalnum() else "_" for c in path)
  module_spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  if not callable(getattr(module, "get_config", None)):
    raise ValueError(f"Config {spec!r}: {where} defines no get_config(arg=None).")
  return module.get_config


def validate(config: ml_collections.ConfigDict) -> None:
  """Fails early (before any compilation) on settings that cannot work.

  Called by `load` and, after command-line overrides, by `akorn_jax.commands.parse_flags`. The checks are cheap and
  need no device or data.

  Raises:
    ValueError: naming the setting, its value and what to do.
  """
  for section in ("data", "train"):
    if section not in config:
      raise ValueError(f"The config has no {section!r} section; build it on "
                       "akorn_jax.config_base.base_config(task) or a built-in config.")
  num_steps = config.train.get("num_steps", 0)
  if not isinstance(num_steps, int) or num_steps < 0:
    raise ValueError(f"config.train.num_steps={num_steps!r}; expected an int >= 0.")
  batch = config.data.get("batch_size", 1)
  if not isinstance(batch, int) or batch < 1:
    raise ValueError(f"config.data.batch_size={batch!r}; expected an int >= 1.")
  # (section, key, smallest allowed, what the value means): ints only, None not allowed unless said.
  for section, key, least, meaning in (
      ("train", "log_every", 1, "log every this many steps"),
      ("train", "eval_every", 0, "evaluate every this many steps; 0 = only at the end"),
      ("checkpoint", "every_steps", 0, "save every this many steps; 0 = only at the end"),
      ("checkpoint", "max_to_keep", 1, "how many checkpoints to keep; None = all")):
    if section not in config or key not in config[section]:
      continue
    value = config[section][key]
    if value is None and key == "max_to_keep":
      continue
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
      raise ValueError(f"config.{section}.{key}={value!r}; expected an int >= {least} ({meaning}).")
  if config.train.get("profile_steps"):
    try:
      config_base.parse_step_range(config.train.profile_steps)
    except ValueError as e:
      raise ValueError(f"config.train.profile_steps: {e}") from None


# ------------------------------------------------------------------------------------------------
# absl flags
# ------------------------------------------------------------------------------------------------


class _SpecParser(flags.ArgumentParser):
  """Parses `--config=SPEC` with `load` (ml_collections' parser takes file paths only)."""

  def parse(self, argument):
    if not isinstance(argument, str):  # already a config (a default given as a ConfigDict)
      return argument
    config = load(argument, check=False)  # validated after the overrides, in commands.parse_flags
    config.lock()
    return config

  def flag_type(self):
    return "config"


def config_flag(name: str = "config", default: str | None = None,
                help_string: str = "Config: a built-in name[:arg] (e.g. sudoku_akorn:tiny), a "
                "file.py[:arg], or a run's config.json. Override keys with --config.a.b=value.",
                ) -> flags.FlagHolder:
  """Defines the `--config` flag of an absl driver; its value is the locked, overridden config."""
  holder = config_flags.DEFINE_config_file(name, default, help_string, lock_config=True)
  flags.FLAGS[name].parser = _SpecParser()
  return holder
