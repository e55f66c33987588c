r"""Trains one experiment.

  python -m experiments.train --config=configs/<task>_<model>.py:tiny --workdir=runs/<name> \
      [--config.optim.lr=5e-4] [--dry_run] [--distributed]

A run resumes from the latest checkpoint in --workdir. --dry_run builds the model, prints
{"config": ..., "params": <trainable count>} as one JSON line and exits. --distributed (or the usual
JAX_COORDINATOR_ADDRESS / cluster variables) starts multi-host JAX. The driver resolves the task
(akorn_jax.tasks.get_task) and hands it to the trainer (akorn_jax.train.loop), which knows none.
"""

from __future__ import annotations

import difflib
import json
import runpy
import sys

from absl import app, flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file[:arg].",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory (checkpoints, metrics, images).")
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "Build the model, print its parameter count, exit.")
_DISTRIBUTED = flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize().")


def _leaf_keys(config, prefix: str = "") -> list[str]:
  keys = []
  for k, v in config.items():
    keys += _leaf_keys(v, f"{prefix}{k}.") if hasattr(v, "items") else [prefix + k]
  return keys


def _parse_flags(argv: list[str]) -> list[str]:
  """absl parsing, with a one-line error for an unknown config key (ml_collections raises a bare
  AttributeError from deep inside) naming the key and the nearest valid ones. Runs before JAX is
  imported, so a typo costs a fraction of a second."""
  try:
    return flags.FLAGS(argv)
  except AttributeError as e:
    spec = next((a.split("=", 1)[1] for a in argv[1:] if a.startswith("--config=")), None)
    if spec is None:
      raise
    path, _, arg = spec.partition(":")
    get_config = runpy.run_path(path)["get_config"]
    valid = _leaf_keys(get_config(arg) if arg else get_config())
    for arg in argv[1:]:
      key = arg.split("=", 1)[0].removeprefix("--config.")
      if arg.startswith("--config.") and key not in valid:
        near = difflib.get_close_matches(key, valid, n=3, cutoff=0.5)
        sys.exit(f"FATAL: --config.{key}: the config has no key {key!r}"
                 f"{'; did you mean ' + ', '.join(near) + '?' if near else ''} "
                 f"Override only keys that {path} defines.")
    raise SystemExit(f"FATAL: bad --config override: {e}") from e


def main(argv: list[str]) -> None:
  del argv
  # Heavy imports only now that the flags are valid.
  from akorn_jax import tasks  # pylint: disable=g-import-not-at-top
  from akorn_jax.train import loop, restore, sharding  # pylint: disable=g-import-not-at-top

  sharding.maybe_initialize_distributed(_DISTRIBUTED.value)
  config = _CONFIG.value
  task = tasks.get_task(config)
  if _DRY_RUN.value:
    spec = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--config=")),
                config_flags.get_config_filename(flags.FLAGS["config"]))
    params = restore.count_params(restore.abstract_model(config, task.build_model))
    print(json.dumps({"config": spec, "params": params}))
    return
  if not _WORKDIR.value:
    sys.exit("FATAL: --workdir is required to train (a run directory, e.g. runs/<name>).")
  print(json.dumps(loop.train_and_evaluate(config, _WORKDIR.value, task=task)))


if __name__ == "__main__":
  app.run(main, flags_parser=_parse_flags)
