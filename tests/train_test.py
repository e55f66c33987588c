"""Tests of the trainer (akorn_jax.train.loop) on the toy task of tests/toy.py: sharding and FSDP
give the single-device trajectory, logs and TensorBoard, the NaN stop, the learning-rate schedule,
and loading the trained model back (akorn_jax.train.restore)."""

from __future__ import annotations

import math
import os

import flax.nnx as nnx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import toy
from akorn_jax.train import loop
from akorn_jax.train import restore
from akorn_jax.train import sharding as shard_lib
from akorn_jax.train import state as state_lib


def test_eight_devices_and_fsdp_match_one_device(tmp_path):
  assert jax.device_count() == 8
  mesh = shard_lib.make_mesh(toy.toy_config().mesh)
  batch = shard_lib.global_batch({"x": np.zeros((8, toy.DIM), np.float32)}, mesh)
  assert len({s.device for s in batch["x"].addressable_shards}) == 8
  assert all(s.data.shape == (1, toy.DIM) for s in batch["x"].addressable_shards)

  loop.train_and_evaluate(toy.toy_config(), str(tmp_path / "eight"), task=toy.toy_task())
  loop.train_and_evaluate(toy.toy_config(**{"mesh.data": 1}), str(tmp_path / "one"),
                          task=toy.toy_task())
  eight, one = toy.final_params(str(tmp_path / "eight")), toy.final_params(str(tmp_path / "one"))
  assert eight.keys() == one.keys() and len(eight) == 13  # 5 params, 5 EMA params, 3 EMA rest
  for k in eight:
    np.testing.assert_allclose(eight[k], one[k], atol=1e-5, err_msg=k)
  # Training moved the params and the BatchNorm statistics (so the comparison above has teeth).
  init = loop.setup(toy.toy_config(), toy.toy_task()).init_fn()
  assert not np.allclose(np.asarray(init.params["fc1"]["kernel"][...]),
                         one["['params']['fc1']['kernel'].value"], atol=1e-3)
  assert not np.allclose(one["['ema']['rest']['bn']['mean'].value"], 0.0, atol=1e-3)

  # FSDP: params and their Adam moments split over 'fsdp', same trajectory.
  cfg = toy.toy_config(**{"mesh.fsdp": 2})
  s = loop.setup(cfg, toy.toy_task())
  assert s.mesh.shape == {"data": 4, "fsdp": 2}
  state = s.init_fn()
  kernel = state.params["fc2"]["kernel"][...]  # [10, 3]: the largest dim, 10, goes on fsdp
  assert kernel.sharding.spec == jax.sharding.PartitionSpec("fsdp", None)
  assert state.opt_state[0].mu["fc2"]["kernel"][...].sharding.spec == kernel.sharding.spec
  loop.train_and_evaluate(cfg, str(tmp_path / "fsdp"), task=toy.toy_task())
  fsdp = toy.final_params(str(tmp_path / "fsdp"))
  for k in fsdp:
    np.testing.assert_allclose(fsdp[k], one[k], atol=1e-5, err_msg=k)


def test_tiny_run_writes_metrics_tensorboard_and_progress(tmp_path, capfd):
  from tensorboardX.proto import event_pb2  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path)
  out = loop.train_and_evaluate(toy.toy_config(), workdir, task=toy.toy_task())
  assert {"loss", "accuracy", "grad_norm", "lr", "eval_accuracy"} <= out.keys()
  lines = toy.read_metrics(workdir)
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
  cfg = toy.toy_config(**{"data.shuffle": False, "train.num_steps": 8})
  with pytest.raises(FloatingPointError, match=r"Non-finite loss=nan at step 5"):
    loop.train_and_evaluate(cfg, str(tmp_path), task=toy.toy_task(nan_from=32))
  model, step = restore.load_model(cfg, str(tmp_path), toy.toy_task().build_model)
  assert step == 4
  assert all(np.isfinite(np.asarray(v)).all() for v in jax.tree.leaves(nnx.state(model)))
  assert [m["step"] for m in toy.read_metrics(str(tmp_path))] == [1, 2, 3, 4]


def test_learning_rate_schedule():
  optim = toy.toy_config(**{"optim.warmup_steps": 4, "optim.schedule": "cosine"}).optim
  lr = state_lib.learning_rate(optim, num_steps=14)
  got = [float(lr(jnp.asarray(t))) for t in (0, 3, 4, 9, 14, 20)]
  want = [3e-2 / 4, 3e-2, 3e-2, 3e-2 * 0.5 * (1 + math.cos(math.pi * 0.5)), 0.0, 0.0]
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-9)
  const = state_lib.learning_rate(toy.toy_config().optim, num_steps=14)
  assert float(const(jnp.asarray(0))) == pytest.approx(3e-2)
  with pytest.raises(ValueError, match="'linear'"):
    state_lib.learning_rate(toy.toy_config(**{"optim.schedule": "linear"}).optim, 14)
