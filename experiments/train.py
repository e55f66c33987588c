r"""Trains one experiment.

  akorn-train --config=sudoku_akorn:tiny --workdir=runs/<name> [--config.optim.lr=5e-4] \
      [--dry_run] [--distributed] [--profile_steps=10:15] [--verbosity=0]
  python -m experiments.train --config=configs/sudoku_akorn.py:tiny ...   (in a checkout)

--config is a built-in config name[:options] (configs/), a path to your own config file[:options],
or a run's config.json (akorn_jax.config_loader). A run resumes from the latest checkpoint in
--workdir. --dry_run builds the model, prints {"config": ..., "params": <trainable count>} as one
JSON line and exits. --distributed (or a launcher that starts several processes: srun, mpirun, a
TPU pod, JAX_COORDINATOR_ADDRESS) starts multi-host JAX. metrics.jsonl and TensorBoard (<workdir>/tb)
get the means of each log interval with steps/s, examples/s and MFU (where the chip's peak is
known); progress is a bar on a terminal, else one plain line per log. Library INFO logs are off
unless --verbosity=0. The driver resolves the task (akorn_jax.tasks.get_task) and hands it to the
trainer (akorn_jax.train.loop), which knows none.
"""

from __future__ import annotations

import json
import sys

from absl import app, flags

from akorn_jax import commands, config_base, config_loader

_CONFIG = config_loader.config_flag()
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory (checkpoints, metrics, images).")
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "Build the model, print its parameter count, exit.")
_DISTRIBUTED = flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize().")
_ALLOW_MODEL_CHANGE = flags.DEFINE_bool(
    "allow_model_change", False, "Resume although a model.* key differs from the run's "
    "config.json; the change must keep every array's shape (e.g. model.steps).")
_PROFILE = flags.DEFINE_string("profile_steps", None, "A:B writes a jax profiler trace of the steps "
                               "after step A up to step B into <workdir>/tb (TensorBoard's profile "
                               "tab), e.g. 10:15.")


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments {argv[1:]}; every option is a --flag.")
  if _CONFIG.value is None:
    raise app.UsageError("--config is required, e.g. --config=sudoku_akorn:tiny (built-in configs: "
                         f"{', '.join(config_loader.builtin_names())}) or --config=my_config.py.")
  config = _CONFIG.value
  if _PROFILE.value:
    try:
      config_base.parse_step_range(_PROFILE.value)
    except ValueError as e:
      raise app.UsageError(f"--profile_steps: {e}") from None
    with config.unlocked():
      config.train.profile_steps = _PROFILE.value
  # Heavy imports only now that the flags are valid.
  from akorn_jax import compute, tasks  # pylint: disable=g-import-not-at-top
  from akorn_jax.train import loop, restore, sharding  # pylint: disable=g-import-not-at-top

  sharding.maybe_initialize_distributed(_DISTRIBUTED.value)
  compute.enable_compilation_cache()
  task = tasks.get_task(config)
  if _DRY_RUN.value:
    spec = flags.FLAGS["config"].config_filename
    params = restore.count_params(restore.abstract_model(config, task.build_model))
    print(json.dumps({"config": spec, "params": params}))
    return
  if not _WORKDIR.value:
    sys.exit("FATAL: --workdir is required to train (a run directory, e.g. runs/<name>).")
  from akorn_jax.train import checkpoint, lock  # pylint: disable=g-import-not-at-top
  try:
    results = loop.train_and_evaluate(config, _WORKDIR.value, task=task,
                                      allow_model_change=_ALLOW_MODEL_CHANGE.value)
  except (lock.WorkdirLockedError, loop.ConfigMismatchError, checkpoint.CheckpointError) as e:
    sys.exit(f"FATAL: {e}")  # a refusal that touched nothing: one message, no traceback
  print(json.dumps(results))


def cli() -> None:
  """The `akorn-train` command."""
  app.run(main, flags_parser=commands.parse_flags)


if __name__ == "__main__":
  cli()
