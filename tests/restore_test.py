"""Tests of akorn_jax.train.restore: loading a run's EMA weights without an optimiser, the run's
saved config, counting parameters, and the exported-weights format (npz + SHA-256)."""

from __future__ import annotations

import json
import os

import flax.nnx as nnx
import jax
import numpy as np
import pytest

import toy
from akorn_jax.models import SudokuAKOrN
from akorn_jax.train import checkpoint as ckpt_lib
from akorn_jax.train import loop
from akorn_jax.train import restore

TINY = dict(ch=16, heads=2, steps=2)


@pytest.fixture(scope="module")
def tiny_model():
  return SudokuAKOrN(rngs=nnx.Rngs(0), **TINY)


def test_restore_reads_ema_or_online_weights_and_the_run_config(tmp_path):
  workdir = str(tmp_path)
  cfg = toy.toy_config()
  loop.train_and_evaluate(cfg, workdir, task=toy.toy_task())
  saved = toy.final_params(workdir)  # the whole checkpoint, as saved
  build = toy.toy_task().build_model
  for ema, prefix in ((True, "['ema']['params']"), (False, "['params']")):  # keys of final_params
    model, step = restore.load_model(cfg, workdir, build, ema=ema)
    assert step == 3 and model.bn.use_running_average  # eval mode
    np.testing.assert_array_equal(np.asarray(model.fc1.kernel[...]),
                                  saved[prefix + "['fc1']['kernel'].value"])
  # The two differ after 3 steps with beta = 0.9, so the check above tells them apart.
  assert not np.allclose(saved["['ema']['params']['fc1']['kernel'].value"],
                         saved["['params']['fc1']['kernel'].value"])
  assert restore.read_config(workdir).to_dict() == cfg.to_dict()
  with pytest.raises(FileNotFoundError, match="No checkpoint"):
    restore.load_model(cfg, str(tmp_path / "empty"), build)


def test_count_params_counts_trainable_scalars_without_allocating():
  abstract = restore.abstract_model(toy.toy_config(), toy.toy_task().build_model)
  assert isinstance(abstract.fc1.kernel.get_value(), jax.ShapeDtypeStruct)
  # fc1 (no bias), BatchNorm scale and bias, fc2 with bias; the frozen `scale` is not trainable.
  want = toy.DIM * toy.HIDDEN + 2 * toy.HIDDEN + toy.HIDDEN * toy.CLASSES + toy.CLASSES
  assert restore.count_params(abstract) == want
  assert restore.count_params(toy.ToyModel(rngs=nnx.Rngs(0))) == want


def test_export_and_load_round_trip(tiny_model, tmp_path):
  folder = str(tmp_path / "export")
  config = {"name": "sudoku_akorn", "dtype": "float32", "attn_impl": "", **TINY}
  restore.export_weights(tiny_model, config, folder)
  assert sorted(os.listdir(folder)) == ["SHA256SUMS", "config.json", "weights.npz"]
  with np.load(os.path.join(folder, "weights.npz")) as z:
    assert "klayers/0/connectivity/qkv/kernel" in z.files
  model, loaded_config = restore.load_exported(folder)
  assert loaded_config == config
  assert type(model) is SudokuAKOrN and model.steps == TINY["steps"]
  jax.tree.map(np.testing.assert_array_equal, nnx.state(model), nnx.state(tiny_model))


def test_load_refuses_tampered_or_mismatched_weights(tiny_model, tmp_path):
  folder = str(tmp_path / "export")
  config = {"name": "sudoku_akorn", **TINY}
  restore.export_weights(tiny_model, config, folder)
  weights = os.path.join(folder, "weights.npz")
  data = bytearray(open(weights, "rb").read())
  data[-100] ^= 1
  with open(weights, "wb") as f:
    f.write(data)
  with pytest.raises(ValueError, match="SHA-256 mismatch.*weights.npz"):
    restore.load_exported(folder)
  # A config that does not fit the weights, with consistent checksums, names the bad array.
  restore.export_weights(tiny_model, config, folder)
  with open(os.path.join(folder, "config.json"), "w") as f:
    json.dump({**config, "ch": 32, "heads": 4}, f)
  ckpt_lib.write_checksums(folder)  # consistent sums over the edited config
  with pytest.raises(ValueError, match="has shape"):
    restore.load_exported(folder)
  os.remove(os.path.join(folder, "SHA256SUMS"))
  with pytest.raises(FileNotFoundError, match="No SHA256SUMS"):
    restore.load_exported(folder)
