"""The toy task and config of the trainer tests: a 2-layer classifier with BatchNorm on 40 random
examples, small enough to train in a second on a CPU. It exercises everything the trainer handles
for a real task (trainable params, BatchNorm statistics, a frozen buffer, on-device augmentation,
an evaluator returning scalars and an image) without any model or data of the paper.

  python -m experiments.train --config=tests/toy.py --workdir=/tmp/toy   (with tests/ on PYTHONPATH)

Used by train_test, restore_test, checkpoint_test, distributed_test and train_driver_test.
"""

from __future__ import annotations

import functools
import json
import os

import flax.nnx as nnx
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from akorn_jax.evaluate import common as eval_common
from akorn_jax.train import checkpoint as ckpt_lib
from akorn_jax.train import loop
from akorn_jax.train import state as state_lib
from akorn_jax.train.task import Task

DIM, HIDDEN, CLASSES, N = 6, 10, 3, 40


class Frozen(nnx.Variable):
  """A non-trainable constant (stands in for the owner's layers.Buffer)."""


class ToyModel(nnx.Module):
  """Linear -> BatchNorm -> relu -> Linear, scaled inputs by a frozen buffer."""

  def __init__(self, *, rngs: nnx.Rngs):
    self.scale = Frozen(jnp.linspace(0.5, 1.5, DIM))
    # No bias before BatchNorm: its true gradient is 0 and Adam would amplify round-off noise.
    self.fc1 = nnx.Linear(DIM, HIDDEN, use_bias=False, rngs=rngs)
    self.bn = nnx.BatchNorm(HIDDEN, momentum=0.9, rngs=rngs)
    self.fc2 = nnx.Linear(HIDDEN, CLASSES, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.fc2(jax.nn.relu(self.bn(self.fc1(x * self.scale[...]))))


class ToySource:
  """N random-access examples {'x': float32 [DIM], 'y': int32 []}; rows >= nan_from hold NaN."""

  def __init__(self, nan_from: int = N):
    rng = np.random.default_rng(0)
    self.x = rng.normal(size=(N, DIM)).astype(np.float32)
    self.y = (self.x @ rng.normal(size=(DIM, CLASSES))).argmax(-1).astype(np.int32)
    self.x[nan_from:] = np.nan

  def __len__(self) -> int:
    return N

  def __getitem__(self, i: int) -> dict[str, np.ndarray]:
    return {"x": self.x[i], "y": self.y[i]}


def _loss(model: ToyModel, batch: dict[str, jax.Array], key: jax.Array):
  x = batch["x"] + 0.01 * jax.random.normal(key, batch["x"].shape)  # uses the step key
  logits = model(x)
  loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"]).mean()
  return loss, {"accuracy": (logits.argmax(-1) == batch["y"]).mean()}


def _prepare(batch: dict[str, jax.Array], key: jax.Array) -> dict[str, jax.Array]:
  sign = jnp.where(jax.random.bernoulli(key, 0.5, (batch["x"].shape[0], 1)), 1.0, -1.0)
  return {**batch, "x": batch["x"] * sign}


@functools.cache
def _jit_logits(graphdef: nnx.GraphDef):
  return jax.jit(lambda state, x: nnx.merge(graphdef, state)(x))


def _evaluate(model, key, *, workdir, step):
  """Accuracy on the 40 examples, sharded like the real evaluators (evaluate/common.py): the rows
  split over every device of every process, so it also runs on several processes."""
  del workdir, key
  src = ToySource()
  graphdef, state = nnx.split(model)
  logits = eval_common.sharded_call(_jit_logits(graphdef), state, src.x, batch_argnums=(1,))
  image = np.zeros((5, 7, 3), np.uint8)
  return {"eval_accuracy": float((logits.argmax(-1) == src.y).mean()), "eval_step": step,
          "eval_image": image}


def toy_task(nan_from: int = N) -> Task:
  """The toy task; its rows >= `nan_from` hold NaN (to test the trainer's NaN stop)."""
  return Task(name="toy", build_model=lambda config, rngs: ToyModel(rngs=rngs), loss_fn=_loss,
              source=lambda config, split: ToySource(nan_from), prepare_batch=_prepare,
              evaluate=_evaluate)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The complete trainer config of the toy task (also a config file for the drivers)."""
  del arg
  c = ml_collections.ConfigDict()
  c.task = "toy:from_config"  # `akorn_jax.tasks.get_task` imports this module's from_config
  c.seed = 3
  c.data = dict(batch_size=8, num_workers=0, shuffle=True)
  c.optim = dict(lr=3e-2, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0, clip_norm=None,
                 warmup_steps=0, schedule="constant")
  c.ema = dict(beta=0.9, update_every=2, update_after_step=1)
  c.train = dict(num_steps=3, log_every=1, eval_every=0, log_images=True, profile_steps="")
  c.checkpoint = dict(every_steps=2, max_to_keep=2)
  c.mesh = dict(data=-1, fsdp=1)
  return c


def toy_config(**overrides) -> ml_collections.ConfigDict:
  """`get_config()` with overrides given as dotted keys, e.g. {'mesh.data': 1}; locked."""
  c = get_config()
  for key, value in overrides.items():
    node = c
    *path, last = key.split(".")
    for p in path:
      node = node[p]
    node[last] = value
  c.lock()
  return c


def from_config(config: ml_collections.ConfigDict) -> Task:
  """The task of `get_config()`, found by `akorn_jax.tasks.get_task` through config.task."""
  del config
  return toy_task()


def restore_latest(workdir: str) -> tuple[int, state_lib.TrainState, dict]:
  """(step, train state, data position) of the latest checkpoint of a toy run in `workdir`."""
  ckpt = ckpt_lib.Checkpointer(workdir, every_steps=0, max_to_keep=None)
  step = ckpt.latest_step()
  assert step is not None, f"no checkpoint in {workdir}"
  state, data_state = ckpt.restore(step, loop.setup(toy_config(), toy_task()).abstract_state)
  ckpt.close()
  return step, state, data_state


def final_params(workdir: str) -> dict:
  """Flat {path: numpy array} of the latest checkpoint's params and EMA."""
  _, state, _ = restore_latest(workdir)
  flat = jax.tree_util.tree_flatten_with_path({"params": state.params, "ema": state.ema})[0]
  return {jax.tree_util.keystr(k): np.asarray(v) for k, v in flat}


def read_metrics(workdir: str) -> list[dict]:
  with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as f:
    return [json.loads(line) for line in f]
