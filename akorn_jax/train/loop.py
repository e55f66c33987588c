"""The one training loop of every task: `train_and_evaluate(config, workdir, task=...)`.

The loop knows no task: the caller (a driver) passes the `Task` (akorn_jax/train/task.py) that
supplies the data, model, loss and evaluation. Read top to bottom: setup (mesh, optimiser, the
jitted step), state (created sharded, or resumed from the workdir's latest checkpoint together with
the data position), the loop (log, check for NaN, checkpoint, evaluate the EMA model, stop cleanly
on SIGTERM) and the end.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Callable
from typing import Any

import flax.nnx as nnx
import jax
import ml_collections
import numpy as np
import optax

from akorn_jax import compute
from akorn_jax.data import pipeline
from akorn_jax.train import checkpoint as ckpt_lib
from akorn_jax.train import ema as ema_lib
from akorn_jax.train import lock as lock_lib
from akorn_jax.train import logging as log_lib
from akorn_jax.train import restore
from akorn_jax.train import sharding as shard_lib
from akorn_jax.train import state as state_lib
from akorn_jax.train.task import Task


def _local(tree: Any) -> Any:
  """Host numpy copies of replicated arrays (also on multi-host, where they are not fully
  addressable and `jax.device_get` would refuse)."""
  return jax.tree.map(lambda x: np.asarray(x.addressable_data(0)), tree)


@dataclasses.dataclass(frozen=True)
class Setup:
  """What a run derives from its config before touching any data."""
  mesh: jax.sharding.Mesh
  graphdef: nnx.GraphDef
  tx: optax.GradientTransformation
  init_fn: Callable[[], state_lib.TrainState]  # jitted, returns the state already sharded
  abstract_state: state_lib.TrainState  # ShapeDtypeStructs with shardings, the restore target
  shardings: state_lib.TrainState


def epochs_to_steps(config: ml_collections.ConfigDict, num_examples: int) -> int:
  """config.train.epochs passes over `num_examples` in batches of config.data.batch_size (the
  remainder of each pass is dropped, as our pipeline batches)."""
  batches = num_examples // int(config.data.batch_size)
  if batches < 1:
    raise ValueError(f"The training split has {num_examples} examples, fewer than one batch of "
                     f"{config.data.batch_size}; prepare the dataset or lower data.batch_size.")
  return int(config.train.epochs) * batches


def setup(config: ml_collections.ConfigDict, task: Task) -> Setup:
  """Mesh, optimiser and a sharded initialiser for `task`'s model under `config`."""
  mesh = shard_lib.make_mesh(config.mesh)
  tx = state_lib.make_optimizer(config.optim, config.train.num_steps)
  model_key, loop_key = jax.random.split(jax.random.key(config.seed))

  def init() -> state_lib.TrainState:
    return state_lib.init_state(task.build_model(config, nnx.Rngs(model_key)), tx, loop_key)

  graphdef, _, _ = state_lib.split_model(
      nnx.eval_shape(lambda: task.build_model(config, nnx.Rngs(model_key))))
  abstract = jax.eval_shape(init)
  shardings = shard_lib.state_shardings(abstract, mesh)
  abstract = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                          abstract, shardings)
  return Setup(mesh, graphdef, tx, jax.jit(init, out_shardings=shardings), abstract, shardings)


def ema_model(s: Setup, state: state_lib.TrainState) -> nnx.Module:
  """The EMA model of `state` in eval mode."""
  model = nnx.merge(s.graphdef, state.ema["params"], state.ema["rest"])
  model.eval()
  return model


def make_update_fn(config: ml_collections.ConfigDict, task: Task, s: Setup):
  """The jitted train step `update_fn(state, batch) -> (state, metrics)`, state donated.

  One step: fold the loop key with the step, the task's on-device batch preparation
  (augmentation), forward + loss, grads w.r.t. nnx.Param, optax update, EMA update. The benchmark
  times exactly this function.
  """
  schedule = state_lib.learning_rate(config.optim, int(config.train.num_steps))
  ema_kw = dict(beta=config.ema.beta, update_every=config.ema.update_every,
                update_after_step=config.ema.update_after_step)

  def update_fn(state: state_lib.TrainState,
                batch: dict[str, jax.Array]) -> tuple[state_lib.TrainState, dict[str, jax.Array]]:
    key = jax.random.fold_in(state.rng, state.step)
    aug_key, loss_key = jax.random.split(key)
    if task.prepare_batch is not None:
      batch = task.prepare_batch(batch, aug_key)

    def loss_fn(params: nnx.State) -> tuple[jax.Array, Any]:
      model = nnx.merge(s.graphdef, params, state.rest, copy=True)
      loss, metrics = task.loss_fn(model, batch, loss_key)
      return loss, (metrics, state_lib.split_model(model)[2])  # BatchNorm may have updated rest

    (loss, (metrics, rest)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    updates, opt_state = s.tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    # ema_pytorch's update() runs after the optimiser step with s = previous calls = state.step.
    w = ema_lib.ema_weight(state.step, **ema_kw)
    ema = {"params": ema_lib.ema_update(state.ema["params"], params, w),
           "rest": ema_lib.ema_update(state.ema["rest"], rest, w)}
    metrics = {"loss": loss, **metrics, "grad_norm": optax.global_norm(grads),
               "lr": schedule(state.step)}
    new_state = state_lib.TrainState(step=state.step + 1, params=params, rest=rest,
                                     opt_state=opt_state, ema=ema, rng=state.rng)
    return new_state, metrics

  return jax.jit(update_fn, donate_argnums=0,
                 out_shardings=(s.shardings, shard_lib.replicated(s.mesh)))


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       task: Task,
                       allow_model_change: bool = False) -> dict[str, float]:
  """Trains `task` under `config`, resuming from `workdir` when it holds a checkpoint.

  Args:
    config: the locked experiment config (keys: seed, data, optim, ema, train, checkpoint, mesh).
    workdir: run directory: checkpoints/, metrics.jsonl, tb/ and whatever the evaluator writes.
    task: what to train (data, model, loss, evaluation); drivers take it from
      `akorn_jax.tasks.get_task(config)`. The trainer itself knows no task.
    allow_model_change: resume although a `model.*` key differs from the config the run saved;
      the change must keep every array's shape (e.g. `model.steps`), or no checkpoint restores.

  Returns:
    The metrics of the last step and of the final evaluation.

  Raises:
    FloatingPointError: a logged or checkpointed step has a non-finite metric.
    SystemExit: code 0 after saving, when SIGTERM arrived.
    lock.WorkdirLockedError: another trainer holds `workdir` (nothing was touched).
    ConfigMismatchError: `workdir` holds a run of another model (nothing was touched).
    checkpoint.CheckpointError: `workdir` has checkpoints but none restores (nothing was moved).
  """
  # One trainer per workdir: taken before anything is written, released however this ends.
  lock = lock_lib.WorkdirLock(workdir) if jax.process_index() == 0 else None
  if lock is not None:
    lock.acquire()
  try:
    return _train_and_evaluate(config, workdir, task, allow_model_change)
  finally:
    if lock is not None:
      lock.release()


class ConfigMismatchError(ValueError):
  """A restart's config changes the model of the run in its workdir (named in the message)."""


def _check_restart(config: ml_collections.ConfigDict, workdir: str, allow_model_change: bool):
  """Compares `config` with the config saved by the run already in `workdir` (when it has
  checkpoints): a changed `model.*` key is refused unless allowed; other changes are logged."""
  path = os.path.join(workdir, restore.CONFIG_FILE)
  if not (os.path.isfile(path) and os.path.isdir(os.path.join(workdir, ckpt_lib.SUBDIR))):
    return

  def flat(tree, prefix=""):
    out = {}
    for k, v in tree.items():
      out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k: v})
    return out

  with open(path, encoding="utf-8") as f:
    saved = flat(json.load(f))
  new = flat(json.loads(config.to_json_best_effort()))
  changed = [f"{k}: {saved.get(k, '(absent)')!r} -> {new.get(k, '(absent)')!r}"
             for k in sorted(set(saved) | set(new)) if saved.get(k) != new.get(k)]
  model = [c for c in changed if c.startswith("model.")]
  if model and not allow_model_change:
    raise ConfigMismatchError(
        f"Workdir {workdir!r} holds a run of another model: {'; '.join(model)}. Its "
        f"{restore.CONFIG_FILE} and checkpoints are left as they are. Resume with the run's own "
        "config (--config=<workdir>/config.json), use another --workdir, or pass "
        "--allow_model_change (Python: allow_model_change=True) for a change that keeps every "
        "shape, such as model.steps.")
  if changed:
    logging.warning("Resuming %s with a changed config: %s", workdir, "; ".join(changed))


def _train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, task: Task,
                        allow_model_change: bool) -> dict[str, float]:
  """`train_and_evaluate` once the workdir is locked."""
  _check_restart(config, workdir, allow_model_change)
  if config.train.get("epochs", 0) > 0:  # the step count follows the examples actually kept
    config.train.num_steps = epochs_to_steps(config, len(task.source(config, "train")))
  num_steps = int(config.train.num_steps)

  # ----------------------------------------------------------------------------------------------
  # Setup: mesh, optimiser, the jitted step.
  # ----------------------------------------------------------------------------------------------
  s = setup(config, task)
  if config.data.batch_size % s.mesh.size:
    raise ValueError(f"config.data.batch_size={config.data.batch_size} must divide by the "
                     f"{s.mesh.size} devices of the mesh; pick a multiple or set config.mesh.data.")
  update_fn = make_update_fn(config, task, s)

  # ----------------------------------------------------------------------------------------------
  # State: resume from the workdir's latest checkpoint, else initialise (already sharded).
  # ----------------------------------------------------------------------------------------------
  checkpointer = ckpt_lib.Checkpointer(workdir, every_steps=config.checkpoint.every_steps,
                                       max_to_keep=config.checkpoint.max_to_keep)
  try:
    state, data_state = checkpointer.restore_or_init(s.init_fn, s.abstract_state)
  except BaseException:
    checkpointer.close()
    raise
  # Only now, after a successful restore or a fresh start: a failed restart keeps the run's config.
  restore.write_config(config, workdir)
  step = int(_local(state.step))
  data_iter = pipeline.train_iterator(
      task.source(config, "train"), batch_size=config.data.batch_size, seed=config.seed,
      shuffle=config.data.shuffle, num_workers=config.data.num_workers)
  if data_state is not None:
    data_iter.set_state(data_state)
  writer = log_lib.MetricWriter(workdir, total_steps=num_steps, initial_step=step,
                                batch_size=int(config.data.batch_size),
                                profile_steps=config.train.get("profile_steps", ""))
  preemption = ckpt_lib.PreemptionFlag()

  def evaluate() -> dict[str, float]:
    if task.evaluate is None:
      return {}
    with writer.untimed():
      out = task.evaluate(ema_model(s, state),
                          jax.random.fold_in(jax.random.key(config.seed), step),
                          workdir=workdir, step=step)
    images = {k: v for k, v in out.items() if np.ndim(v) == 3}
    if config.train.log_images:
      writer.write_images(step, images)
    scalars = {k: float(v) for k, v in out.items() if k not in images}
    writer.write_scalars(step, scalars)
    return scalars

  # ----------------------------------------------------------------------------------------------
  # Loop.
  # ----------------------------------------------------------------------------------------------
  results: dict[str, float] = {}
  in_flight = None  # metrics of the previous step
  compute_dtype = compute.dtype_name(config.model.get("dtype")) if "model" in config else "float32"
  try:
    while step < num_steps:
      batch = shard_lib.global_batch(next(data_iter), s.mesh)
      if in_flight is None:  # once: XLA's flop count of the step, for MFU (where the peak is known)
        writer.count_flops(update_fn, state, batch, dtype=compute_dtype)
      state, metrics = update_fn(state, batch)
      # Keep at most one step queued behind the running one: the device never idles, the host
      # cannot run ahead (holding batches in memory), and the progress bar counts real steps.
      if in_flight is not None:
        jax.block_until_ready(in_flight)
      in_flight = metrics
      step += 1
      writer.step(step, metrics)  # interval sums on device, progress, profiler
      last = step == num_steps
      stop = preemption.reached(step)
      log = step % config.train.log_every == 0 or last
      save = checkpointer.due(step) or last or stop
      if log or save:
        # The NaN check (on the interval's means: a NaN in any of its steps shows) runs before any
        # save, so a checkpoint never holds a diverged state.
        log_lib.check_finite(step, writer.means(_local))
      if log:
        results = writer.log(step, _local)  # interval means, steps/s, examples/s, MFU
      if save:
        checkpointer.save(step, state, data_iter.get_state())
      if stop:
        raise SystemExit(0)
      if last or (config.train.eval_every and step % config.train.eval_every == 0):
        results.update(evaluate())
  # ----------------------------------------------------------------------------------------------
  # End: finish pending saves (also on errors, so the last good checkpoint completes).
  # ----------------------------------------------------------------------------------------------
  finally:
    preemption.restore()
    checkpointer.close()
    writer.close()
    if hasattr(data_iter, "close"):
      data_iter.close()
  return results
