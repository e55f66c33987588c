"""The train state and the optimiser.

Functional NNX: a model is split once into its static `graphdef`, its trainable `nnx.Param` state
and the `rest` (BatchNorm statistics, constant buffers, RNG counters). Only `params` is optimised;
`rest` is carried through the step (BatchNorm updates it) and checkpointed, and both are averaged
into the EMA.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.nnx as nnx
import jax
import jax.numpy as jnp
import ml_collections
import optax

from akorn_jax.train import tied_gta


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class TrainState:
  """Everything a step reads and writes; a pytree, donated to the jitted step.

  Attributes:
    step: int32 scalar, the number of optimiser steps taken.
    params: `nnx.Param` state of the online model.
    rest: every other variable of the online model.
    opt_state: optax state of `params`.
    ema: {'params': ..., 'rest': ...}, the EMA model (docs/training.md#ema).
    rng: typed PRNG key of the loop; step t uses `fold_in(rng, t)`.
  """
  step: jax.Array
  params: nnx.State
  rest: nnx.State
  opt_state: Any
  ema: dict[str, nnx.State]
  rng: jax.Array


def learning_rate(optim: ml_collections.ConfigDict, num_steps: int) -> optax.Schedule:
  """Linear warm-up from lr / warmup_steps to lr (the reference's LinearWarmupScheduler), then
  constant or cosine decay to 0 at `num_steps`."""
  if optim.schedule not in ("constant", "cosine"):
    raise ValueError(f"config.optim.schedule={optim.schedule!r}; expected 'constant' or 'cosine'.")
  lr, warmup = float(optim.lr), int(optim.warmup_steps)

  def schedule(count: jax.Array) -> jax.Array:
    factor = jnp.minimum(1.0, (count + 1) / max(warmup, 1))
    if optim.schedule == "cosine":
      frac = jnp.clip((count - warmup) / max(num_steps - warmup, 1), 0.0, 1.0)
      factor = factor * 0.5 * (1.0 + jnp.cos(jnp.pi * frac))
    return lr * factor

  return schedule


def make_optimizer(optim: ml_collections.ConfigDict,
                   num_steps: int) -> optax.GradientTransformation:
  """Adam (AdamW when weight_decay > 0), optionally after global-norm clipping; with
  `optim.tie_gta` the GTA matrices move tied as in the reference (akorn_jax/train/tied_gta.py)."""
  lr = learning_rate(optim, num_steps)
  kw = dict(b1=optim.b1, b2=optim.b2, eps=optim.eps)
  tx = (optax.adamw(lr, weight_decay=optim.weight_decay, **kw) if optim.weight_decay > 0
        else optax.adam(lr, **kw))
  if optim.clip_norm is not None:
    tx = optax.chain(optax.clip_by_global_norm(optim.clip_norm), tx)
  if optim.get("tie_gta", False):
    tx = tied_gta.tie_gta(tx)
  return tx


def split_model(model: nnx.Module) -> tuple[nnx.GraphDef, nnx.State, nnx.State]:
  """(graphdef, params, rest): trainable `nnx.Param` state and every other variable."""
  return nnx.split(model, nnx.Param, ...)


def init_state(model: nnx.Module, tx: optax.GradientTransformation, rng: jax.Array) -> TrainState:
  """The state at step 0; the EMA starts as a copy of the model (ema_pytorch deep-copies it)."""
  _, params, rest = split_model(model)
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, rest=rest,
                    opt_state=tx.init(params), ema={"params": params, "rest": rest}, rng=rng)
