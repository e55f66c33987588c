"""The trainer's interface to a task: what a task hands the trainer (a model builder, a loss, a data
source, optional augmentation and evaluation). `akorn_jax.tasks.get_task(config)` returns one per
experiment; the trainer never looks further."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import flax.nnx as nnx
import jax
import ml_collections

Batch = dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class Task:
  """A training task.

  Attributes:
    name: short name, used in logs.
    build_model: (config, rngs) -> model in train mode. Variables: `nnx.Param` (trained),
      `nnx.BatchStat` and any other `nnx.Variable` (carried, checkpointed, EMA-averaged if float).
    loss_fn: (model, batch, key) -> (scalar loss, dict of scalar metrics). Runs inside the jitted
      step on the global batch (sharded on the data axis); may update `nnx.BatchStat`s. `key` is
      a typed PRNG key already folded with the step.
    source: (config, split) -> random-access source of single examples (len, __getitem__ -> dict
      of numpy arrays).
    prepare_batch: optional on-device transform (augmentation) of the raw batch inside the jitted
      step, (batch, key) -> batch.
    evaluate: optional (model, key, *, workdir, step) -> dict, the periodic evaluation (for the
      tasks of `akorn_jax.tasks`, the `run` of their evaluator in akorn_jax/evaluate/, built from
      the config). Called on every process with the EMA model in eval mode, every
      `config.train.eval_every` steps and at the end. Values are scalars, or uint8 [H, W, 3]
      images that are written to TensorBoard when `config.train.log_images`.
  """
  name: str
  build_model: Callable[[ml_collections.ConfigDict, nnx.Rngs], nnx.Module]
  loss_fn: Callable[[nnx.Module, Batch, jax.Array], tuple[jax.Array, dict[str, jax.Array]]]
  source: Callable[[ml_collections.ConfigDict, str], Any]
  prepare_batch: Callable[[Batch, jax.Array], Batch] | None = None
  evaluate: Callable[..., dict[str, float]] | None = None
