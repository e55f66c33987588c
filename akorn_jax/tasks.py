"""The task registry: which data, loss, on-device preparation and evaluator each experiment uses.

`get_task(config)` returns the `Task` (akorn_jax/train/task.py) the trainer runs for `config.task`
in {"sudoku", "objects", "classification"} (or "module:factory" for a task of your own);
`get_evaluator(config)` returns the task's full evaluator (akorn_jax/evaluate/), the one
experiments.evaluate runs, of which the trainer's periodic evaluation is the cheap subset. Nothing
else differs between tasks: the model is always `config.model`'s and the data `config.data`'s.
"""

from __future__ import annotations

import functools
import importlib

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from akorn_jax import data, imageops, losses, metrics
from akorn_jax.data import augment, cifar
from akorn_jax.evaluate import classification as classification_eval
from akorn_jax.evaluate import objects as objects_eval
from akorn_jax.evaluate import sudoku as sudoku_eval
from akorn_jax.train import restore
from akorn_jax.train.task import Task

EVALUATORS = {"sudoku": sudoku_eval.Evaluator, "objects": objects_eval.Evaluator,
              "classification": classification_eval.Evaluator}

build_model = restore.build_from_config  # every task's model is `config.model`'s


def source(config: ml_collections.ConfigDict, split: str):
  """`split` of the experiment's dataset (`config.data`)."""
  return data.from_config(config.data, split)


# ------------------------------------------------------------------------------------------------
# Losses and on-device preparation
# ------------------------------------------------------------------------------------------------


def sudoku_loss(model: nnx.Module, batch: dict[str, jax.Array], key: jax.Array):
  """Cross-entropy on all 81 cells (docs/training.md#sudoku), plus blank-cell and board accuracy."""
  logits, _ = model(batch["puzzle"], key=key)
  solution = batch["solution"].astype(jnp.int32)
  loss = losses.cross_entropy(logits, solution - 1)
  return loss, {"board_acc": metrics.board_accuracy(logits, solution, batch["puzzle"]),
                "cell_acc": metrics.cell_accuracy(logits, solution, batch["puzzle"])}


def objects_prepare(batch: dict[str, jax.Array], key: jax.Array, *,
                    hflip: bool = False) -> dict[str, jax.Array]:
  """uint8 images -> two SimCLR views per image, interleaved (docs/training.md#objects), on the
  accelerator; `hflip` (config.data.hflip, ImageNet pre-training only) adds random horizontal
  flips."""
  images = imageops.to_float(batch["image"])
  return {"views": augment.simclr_views(key, images, hflip=hflip)}


def objects_loss_fn(temperature: float):
  def loss_fn(model: nnx.Module, batch: dict[str, jax.Array], key: jax.Array):
    z, _ = model(batch["views"], key=key)
    return losses.simclr_loss(z, temperature), {}
  return loss_fn


def classification_prepare(augment_images: bool):
  """uint8 images -> AugMix + crop/flip (`augment_images`) or plain floats in [0, 1]."""
  def prepare(batch: dict[str, jax.Array], key: jax.Array) -> dict[str, jax.Array]:
    images = (cifar.train_augment(key, batch["image"]) if augment_images
              else imageops.to_float(batch["image"]))
    return {"image": images, "label": batch["label"]}
  return prepare


def classification_loss(model: nnx.Module, batch: dict[str, jax.Array], key: jax.Array):
  logits, _ = model(batch["image"], key=key)
  acc = jnp.mean(jnp.argmax(logits, -1) == batch["label"])
  return losses.cross_entropy(logits, batch["label"]), {"accuracy": acc}


# ------------------------------------------------------------------------------------------------
# Registry
# ------------------------------------------------------------------------------------------------


def get_evaluator(config: ml_collections.ConfigDict, **options):
  """The evaluator of `config.task`, built from the config: `.run(model, key, *, workdir, step)`
  returns named metrics. `options` go to its constructor: `periodic=True` for the trainer's cheap
  subset, `robustness=True` for the classification robustness suite."""
  if config.task not in EVALUATORS:
    raise ValueError(f"Unknown task {config.task!r}; expected one of {sorted(EVALUATORS)} (or "
                     "'module.path:factory' for a task of your own, which has no evaluator here).")
  if options.get("robustness") and config.task != "classification":
    raise ValueError(f"robustness=True is for the classification task, not {config.task!r}.")
  return EVALUATORS[config.task](config, **options)


def get_task(config: ml_collections.ConfigDict) -> Task:
  """The Task for `config.task`: "sudoku", "objects" or "classification", or a task defined
  outside this registry named "module.path:factory", where `factory(config)` returns the Task
  (the module must be importable, e.g. on PYTHONPATH)."""
  if ":" in config.task:
    module, _, factory = config.task.partition(":")
    return getattr(importlib.import_module(module), factory)(config)
  evaluate = get_evaluator(config, periodic=True).run
  if config.task == "sudoku":
    return Task(name="sudoku", build_model=build_model, loss_fn=sudoku_loss, source=source,
                evaluate=evaluate)
  if config.task == "objects":
    return Task(name="objects", build_model=build_model,
                loss_fn=objects_loss_fn(config.loss.temperature), source=source,
                prepare_batch=functools.partial(objects_prepare,
                                                hflip=bool(config.data.get("hflip", False))),
                evaluate=evaluate)
  return Task(name="classification", build_model=build_model, loss_fn=classification_loss,
              source=source, prepare_batch=classification_prepare(config.data.augment),
              evaluate=evaluate)
