"""Tests of the trainer (akorn_jax.train.loop) on a toy task; the toy task lives here and is shared
with the other trainer tests (checkpoint, distributed, driver)."""

from __future__ import annotations

import json
import math
import os

import flax.nnx as nnx
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from akorn_jax.train import checkpoint as ckpt_lib
from akorn_jax.train import loop
from akorn_jax.train import sharding as shard_lib
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


def _evaluate(model, config, workdir, step, key):
  del workdir, key
  src = ToySource()
  logits = model(jnp.asarray(src.x))
  image = np.zeros((5, 7, 3), np.uint8)
  return {"eval_accuracy": float((logits.argmax(-1) == src.y).mean()), "eval_step": step,
          "eval_image": image}


def toy_task(nan_from: int = N) -> Task:
  return Task(name="toy", build_model=lambda config, rngs: ToyModel(rngs=rngs), loss_fn=_loss,
              source=lambda config, split: ToySource(nan_from), prepare_batch=_prepare,
              evaluate=_evaluate)


def toy_config(**overrides) -> ml_collections.ConfigDict:
  """A complete trainer config; overrides are dotted keys, e.g. {'mesh.data': 1}."""
  c = ml_collections.ConfigDict()
  c.seed = 3
  c.data = dict(batch_size=8, num_workers=0, shuffle=True)
  c.optim = dict(lr=3e-2, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0, clip_norm=None,
                 warmup_steps=0, schedule="constant")
  c.ema = dict(beta=0.9, update_every=2, update_after_step=1)
  c.train = dict(num_steps=3, log_every=1, eval_every=0, log_images=True, profile_steps="")
  c.checkpoint = dict(every_steps=2, max_to_keep=2)
  c.mesh = dict(data=-1, fsdp=1)
  for key, value in overrides.items():
    node = c
    *path, last = key.split(".")
    for p in path:
      node = node[p]
    node[last] = value
  c.lock()
  return c


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


def test_eight_devices_and_fsdp_match_one_device(tmp_path):
  assert jax.device_count() == 8
  mesh = shard_lib.make_mesh(toy_config().mesh)
  batch = shard_lib.global_batch({"x": np.zeros((8, DIM), np.float32)}, mesh)
  assert len({s.device for s in batch["x"].addressable_shards}) == 8
  assert all(s.data.shape == (1, DIM) for s in batch["x"].addressable_shards)

  loop.train_and_evaluate(toy_config(), str(tmp_path / "eight"), task=toy_task())
  loop.train_and_evaluate(toy_config(**{"mesh.data": 1}), str(tmp_path / "one"), task=toy_task())
  eight, one = final_params(str(tmp_path / "eight")), final_params(str(tmp_path / "one"))
  assert eight.keys() == one.keys() and len(eight) == 13  # 5 params, 5 EMA params, 3 EMA rest
  for k in eight:
    np.testing.assert_allclose(eight[k], one[k], atol=1e-5, err_msg=k)
  # Training moved the params and the BatchNorm statistics (so the comparison above has teeth).
  init = loop.setup(toy_config(), toy_task()).init_fn()
  assert not np.allclose(np.asarray(init.params["fc1"]["kernel"][...]),
                         one["['params']['fc1']['kernel'].value"], atol=1e-3)
  assert not np.allclose(one["['ema']['rest']['bn']['mean'].value"], 0.0, atol=1e-3)

  # FSDP: params and their Adam moments split over 'fsdp', same trajectory.
  cfg = toy_config(**{"mesh.fsdp": 2})
  s = loop.setup(cfg, toy_task())
  assert s.mesh.shape == {"data": 4, "fsdp": 2}
  state = s.init_fn()
  kernel = state.params["fc2"]["kernel"][...]  # [10, 3]: the largest dim, 10, goes on fsdp
  assert kernel.sharding.spec == jax.sharding.PartitionSpec("fsdp", None)
  assert state.opt_state[0].mu["fc2"]["kernel"][...].sharding.spec == kernel.sharding.spec
  loop.train_and_evaluate(cfg, str(tmp_path / "fsdp"), task=toy_task())
  fsdp = final_params(str(tmp_path / "fsdp"))
  for k in fsdp:
    np.testing.assert_allclose(fsdp[k], one[k], atol=1e-5, err_msg=k)


def test_tiny_run_writes_metrics_tensorboard_and_progress(tmp_path, capfd):
  from tensorboardX.proto import event_pb2  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path)
  out = loop.train_and_evaluate(toy_config(), workdir, task=toy_task())
  assert {"loss", "accuracy", "grad_norm", "lr", "eval_accuracy"} <= out.keys()
  lines = read_metrics(workdir)
  assert [m["step"] for m in lines if "loss" in m] == [1, 2, 3]
  assert all(math.isfinite(m["loss"]) for m in lines if "loss" in m)
  assert lines[-1] == {"step": 3, "eval_accuracy": out["eval_accuracy"], "eval_step": 3.0}

  (events_file,) = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(workdir, "tb"))
                    for f in fs if "tfevents" in f]
  tags, images = {}, []
  with open(events_file, "rb") as f:
    data = f.read()
  pos = 0
  while pos < len(data):  # TFRecord framing: u64 length, u32 crc, payload, u32 crc
    length = int.from_bytes(data[pos:pos + 8], "little")
    event = event_pb2.Event.FromString(data[pos + 12:pos + 12 + length])
    pos += 16 + length
    for v in event.summary.value:
      if v.HasField("image"):
        images.append(v.tag)
      else:
        tags.setdefault(v.tag, []).append((event.step, v.simple_value))
  assert [s for s, _ in tags["loss"]] == [1, 2, 3]
  np.testing.assert_allclose([v for _, v in tags["loss"]],
                             [m["loss"] for m in lines if "loss" in m], rtol=1e-6)
  assert images == ["eval_image"]
  err = capfd.readouterr().err
  assert "3/3" in err and "steps/s" in err and "\r" not in err  # not a terminal: plain lines


def test_nan_loss_stops_and_last_checkpoint_loads(tmp_path):
  # Unshuffled batches of 8 over 40 rows: rows >= 32 are NaN, so step 5 is the first bad step.
  cfg = toy_config(**{"data.shuffle": False, "train.num_steps": 8})
  with pytest.raises(FloatingPointError, match=r"Non-finite loss=nan at step 5"):
    loop.train_and_evaluate(cfg, str(tmp_path), task=toy_task(nan_from=32))
  model, step = loop.load_model(cfg, str(tmp_path), task=toy_task())
  assert step == 4
  assert all(np.isfinite(np.asarray(v)).all() for v in jax.tree.leaves(nnx.state(model)))
  assert [m["step"] for m in read_metrics(str(tmp_path))] == [1, 2, 3, 4]


def test_learning_rate_schedule():
  optim = toy_config(**{"optim.warmup_steps": 4, "optim.schedule": "cosine"}).optim
  lr = state_lib.learning_rate(optim, num_steps=14)
  got = [float(lr(jnp.asarray(t))) for t in (0, 3, 4, 9, 14, 20)]
  want = [3e-2 / 4, 3e-2, 3e-2, 3e-2 * 0.5 * (1 + math.cos(math.pi * 0.5)), 0.0, 0.0]
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-9)
  const = state_lib.learning_rate(toy_config().optim, num_steps=14)
  assert float(const(jnp.asarray(0))) == pytest.approx(3e-2)
  with pytest.raises(ValueError, match="'linear'"):
    state_lib.learning_rate(toy_config(**{"optim.schedule": "linear"}).optim, 14)
