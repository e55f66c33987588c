"""The three task families plugged into the one trainer: data, loss and evaluation per task.

`get_task(config)` returns a `Task` (akorn_jax/train/task.py) for `config.task` in
{"sudoku", "objects", "classification"}. Nothing else differs between tasks.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from akorn_jax import data, losses, metrics
from akorn_jax.train import restore
from akorn_jax.train.task import Task


# ------------------------------------------------------------------------------------------------
# Shared
# ------------------------------------------------------------------------------------------------


build_model = restore.build_from_config  # every task's model is `config.model`'s


def source(config: ml_collections.ConfigDict, split: str):
  return data.open_split(config.data.name, config.data.config, split,
                         data_dir=config.data.get("data_dir"))


def parse_set(spec: str) -> tuple[str, str, str]:
  """"name/config:split" -> (name, config, split)."""
  name_cfg, _, split = spec.partition(":")
  name, _, cfg = name_cfg.partition("/")
  return name, cfg, split or "test"


# ------------------------------------------------------------------------------------------------
# Sudoku
# ------------------------------------------------------------------------------------------------


def sudoku_loss(model: nnx.Module, batch: dict[str, jax.Array], key: jax.Array):
  """Cross-entropy on all 81 cells (SPEC §5.2), plus blank-cell and board accuracy."""
  logits, _ = model(batch["puzzle"], key=key)
  solution = batch["solution"].astype(jnp.int32)
  loss = losses.cross_entropy(logits, solution - 1)
  return loss, {"board_acc": metrics.board_accuracy(logits, solution, batch["puzzle"]),
                "cell_acc": metrics.cell_accuracy(logits, solution, batch["puzzle"])}


def sudoku_boards(spec: str, num: int | None = None, *,
                  data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
  """The first `num` (all if None) boards of a Sudoku set "name/config:split".

  Returns:
    (puzzles, solutions), each int [N, 9, 9] (0 = blank in puzzles).
  """
  name, cfg, split = parse_set(spec)
  src = data.open_split(name, cfg, split, data_dir=data_dir)
  n = len(src) if num is None else min(len(src), num)
  rows = [src[i] for i in range(n)]
  return (np.stack([r["puzzle"] for r in rows]), np.stack([r["solution"] for r in rows]))


def sudoku_evaluate(model: nnx.Module, config: ml_collections.ConfigDict, workdir: str, step: int,
                    key: jax.Array) -> dict[str, float]:
  """Board accuracy (K = 1, training T and T_eval) on the first test set during training."""
  del workdir, step
  from akorn_jax.evaluate import sudoku as sudoku_eval  # pylint: disable=g-import-not-at-top
  puzzles, solutions = sudoku_boards(config.eval.sets[0], config.eval.train_eval_puzzles,
                                     data_dir=config.data.get("data_dir"))
  out = {}
  for steps in sorted({int(config.model.steps), int(config.eval.steps)}):
    res = sudoku_eval.evaluate_voting(model, puzzles, solutions, key=key, steps=steps,
                                      num_starts=(1,), vote_types=("confidence",),
                                      chunk=config.eval.chunk)
    out[f"eval/board_acc_T{steps}"] = res["acc/K=1/confidence"]
  return out


# ------------------------------------------------------------------------------------------------
# Object discovery
# ------------------------------------------------------------------------------------------------


def objects_prepare(batch: dict[str, jax.Array], key: jax.Array) -> dict[str, jax.Array]:
  """uint8 images -> two SimCLR views per image, interleaved (SPEC §5.1), on the accelerator."""
  from akorn_jax.data import augment  # pylint: disable=g-import-not-at-top
  images = batch["image"].astype(jnp.float32) / 255.0
  return {"views": augment.simclr_views(key, images)}


def objects_loss_fn(temperature: float):
  def loss_fn(model: nnx.Module, batch: dict[str, jax.Array], key: jax.Array):
    z, _ = model(batch["views"], key=key)
    return losses.simclr_loss(z, temperature), {}
  return loss_fn


def objects_evaluate(model: nnx.Module, config: ml_collections.ConfigDict, workdir: str,
                     step: int, key: jax.Array) -> dict[str, Any]:
  """FG-ARI / MBO with and without up-tiling, plus mask and phase pictures (SPEC §6.1)."""
  from akorn_jax.evaluate import objects as objects_eval  # pylint: disable=g-import-not-at-top
  from akorn_jax.evaluate import pictures  # pylint: disable=g-import-not-at-top
  from akorn_jax.data import objects as objects_data  # pylint: disable=g-import-not-at-top
  from akorn_jax.data import pipeline  # pylint: disable=g-import-not-at-top

  src = source(config, config.eval.split)
  n = len(src) if not config.eval.num_images else min(len(src), config.eval.num_images)
  feature_fn = _feature_fn(model, key)
  out: dict[str, Any] = {}
  for factor in config.eval.uptile:
    res = objects_eval.evaluate_objects(
        feature_fn, pipeline.eval_batches(_Prefix(src, n), config.data.eval_batch_size),
        psize=config.model.psize, num_clusters=config.eval.num_clusters, uptile_factor=factor,
        pca_dim=config.eval.pca_dim)
    out.update({f"eval/{k}_x{factor}": v for k, v in res.items() if k != "num_images"})

  # Pictures: input, ground truth, predicted masks and the oscillator state over time.
  k = min(config.eval.num_pictures, n)
  if k:
    examples = [src[i] for i in range(k)]
    images = np.stack([e["image"] for e in examples]).astype(np.float32) / 255.0
    _, aux = _jit_forward(model, jnp.asarray(images), key, True)  # one pass: features and states
    pred = objects_eval.upsample_nearest(
        objects_eval.cluster_features(np.asarray(aux["features"]), config.eval.num_clusters,
                                      config.eval.pca_dim),
        images.shape[1:3])
    states = aux["states"][-1]  # last layer: [T, B, h, w, C]
    for i, e in enumerate(examples):
      fig = pictures.object_figure(e["image"], objects_data.eval_labels(e["mask"]), pred[i],
                                   np.asarray(states[:, i]))
      pictures.save_png(os.path.join(workdir, "pictures", f"step{step:07d}_img{i}.png"), fig)
      out[f"pictures/img{i}"] = fig
  return out


class _Prefix:
  """The first n examples of a random-access source."""

  def __init__(self, src, n):
    self.src, self.n = src, n

  def __len__(self):
    return self.n

  def __getitem__(self, i):
    if i >= self.n:
      raise IndexError(i)
    return self.src[i]


@nnx.jit(static_argnums=3)
def _jit_forward(model, images, key, return_states=False):
  return model(images, key=key, return_states=return_states)


def _feature_fn(model: nnx.Module, key: jax.Array):
  """images [B, H, W, 3] in [0, 1] -> final readout features [B, h, w, C] (random x_init by key)."""
  def fn(images):
    return np.asarray(_jit_forward(model, jnp.asarray(images, jnp.float32), key)[1]["features"])
  return fn


# ------------------------------------------------------------------------------------------------
# Classification
# ------------------------------------------------------------------------------------------------


def classification_prepare(augment: bool):
  def prepare(batch: dict[str, jax.Array], key: jax.Array) -> dict[str, jax.Array]:
    from akorn_jax.data import cifar  # pylint: disable=g-import-not-at-top
    images = cifar.train_augment(key, batch["image"]) if augment else (
        batch["image"].astype(jnp.float32) / 255.0)
    return {"image": images, "label": batch["label"]}
  return prepare


def classification_loss(model: nnx.Module, batch: dict[str, jax.Array], key: jax.Array):
  logits, _ = model(batch["image"], key=key)
  acc = jnp.mean(jnp.argmax(logits, -1) == batch["label"])
  return losses.cross_entropy(logits, batch["label"]), {"accuracy": acc}


def classification_evaluate(model: nnx.Module, config: ml_collections.ConfigDict, workdir: str,
                            step: int, key: jax.Array) -> dict[str, float]:
  """Clean test accuracy of the EMA model (the full robustness suite is experiments.evaluate)."""
  del workdir, step
  from akorn_jax.data import pipeline  # pylint: disable=g-import-not-at-top
  src = source(config, "test")
  n = min(len(src), config.eval.num_images)
  correct = 0
  for i, batch in enumerate(pipeline.eval_batches(_Prefix(src, n), config.data.eval_batch_size)):
    images = jnp.asarray(batch["image"], jnp.float32) / 255.0
    logits, _ = _jit_forward(model, images, jax.random.fold_in(key, i))
    correct += int(np.sum(np.argmax(np.asarray(logits), -1) == batch["label"]))
  return {"eval/accuracy": correct / max(n, 1)}


# ------------------------------------------------------------------------------------------------
# Registry
# ------------------------------------------------------------------------------------------------


def get_task(config: ml_collections.ConfigDict) -> Task:
  """The Task for `config.task`: "sudoku", "objects" or "classification", or a task defined
  outside this registry named "module.path:factory", where `factory(config)` returns the Task
  (the module must be importable, e.g. on PYTHONPATH)."""
  if config.task == "sudoku":
    return Task(name="sudoku", build_model=build_model, loss_fn=sudoku_loss, source=source,
                evaluate=sudoku_evaluate)
  if config.task == "objects":
    return Task(name="objects", build_model=build_model,
                loss_fn=objects_loss_fn(config.loss.temperature), source=source,
                prepare_batch=objects_prepare, evaluate=objects_evaluate)
  if config.task == "classification":
    return Task(name="classification", build_model=build_model, loss_fn=classification_loss,
                source=source, prepare_batch=classification_prepare(config.data.augment),
                evaluate=classification_evaluate)
  if ":" in config.task:
    module, _, factory = config.task.partition(":")
    return getattr(importlib.import_module(module), factory)(config)
  raise ValueError(f"Unknown task {config.task!r}; expected 'sudoku', 'objects', "
                   "'classification' or 'module.path:factory' for a task of your own.")
