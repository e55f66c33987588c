"""Tests of the speed suite: every item runs at the tiny scale and reports every field; the flop
count covers all Kuramoto steps; the MFU table and the argument checks."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest

from akorn_jax import benchmark
from akorn_jax.train import restore
from experiments import benchmark as driver

FIELDS = {
    "config": str, "mode": str, "scale": str, "dtype": str, "device": str, "batch": int,
    "median_step_s": float, "min_step_s": float, "examples_per_s": float, "compile_s": float,
    "params": int, "flops_per_step": float, "tflops_per_s": float, "mfu": (float, type(None)),
    "peak_mem_gb": (float, type(None)), "step_mem_gb": (float, type(None)), "remat": (str, type(None)),
    "attn_impl": (str, type(None)), "devices": int, "steps": int, "warmup": int,
    "kernels_per_loop_step": list,
}


def _check_record(record: dict, name: str, devices: int = 1) -> None:
  assert set(FIELDS) <= set(record), set(FIELDS) - set(record)
  for key, types in FIELDS.items():
    assert isinstance(record[key], types), (key, record[key])
  item = benchmark.ITEMS[name]
  assert (record["config"], record["mode"], record["scale"]) == (name, item.mode, "tiny")
  assert record["batch"] == item.sizes["tiny"].batch
  assert record["devices"] == devices
  assert 0 < record["min_step_s"] <= record["median_step_s"]
  assert record["examples_per_s"] == pytest.approx(record["batch"] / record["median_step_s"])
  assert record["flops_per_step"] > 0 and record["params"] > 0
  assert record["tflops_per_s"] == pytest.approx(
      record["flops_per_step"] / record["median_step_s"] / 1e12)
  json.dumps(record)  # plain JSON types only


STEP_ITEMS = [name for name, item in benchmark.ITEMS.items() if item.mode != "loop"]
# The two dearest items (30 s and 16 s of compilation on 2 cores) run with `make test-slow`; their
# models are compiled and trained in the default suite by models_test / tasks_test.
SLOW_ITEMS = ("cifar_train", "clevrtex_L2_train")


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_ITEMS else n
                                  for n in STEP_ITEMS])
def test_every_item_reports_every_field(name):
  record = driver.run_item(name, scale="tiny", steps=2, warmup=1)
  _check_record(record, name)
  item = benchmark.ITEMS[name]
  config = benchmark.configure(item, driver.base_config(item), scale="tiny")
  assert record["params"] == restore.count_params(restore.abstract_model(config))
  assert record["attn_impl"] == ("xla" if name.startswith(("sudoku", "clevrtex")) else None)
  assert record["mfu"] is None and record["device"] == "cpu"  # CPU has no peak in the table


def test_loop_item_times_the_trainers_loop():
  record = driver.run_item("sudoku_loop", scale="tiny", steps=3, warmup=1)
  assert (record["config"], record["mode"], record["batch"]) == ("sudoku_loop", "loop", 4)
  assert 0 < record["min_step_s"] <= record["median_step_s"] < record["wall_s"]
  assert record["steps_per_s"] == pytest.approx(1 / record["median_step_s"])
  assert record["steps"] == 3 and record["dtype"] == "float32"
  json.dumps(record)


def test_driver_prints_one_json_line_on_two_devices():
  out = subprocess.run(
      [sys.executable, "-m", "experiments.benchmark", "--suite=sudoku_eval_T128", "--scale=tiny",
       "--steps=2", "--warmup=1", "--devices=2"],
      capture_output=True, text=True, check=True, timeout=300,
      cwd=os.path.join(os.path.dirname(__file__), ".."))
  lines = out.stdout.splitlines()
  assert len(lines) == 1, out.stdout
  _check_record(json.loads(lines[0]), "sudoku_eval_T128", devices=2)


def test_kernels_per_loop_step_counts_each_scan_body():
  x, w = jnp.ones((5, 24)), jnp.ones((24, 24))

  def f(x, w):
    return jax.lax.scan(lambda x, _: (jnp.tanh(x @ w), None), x, None, length=4)[0].sum()

  forward = benchmark.kernels_per_loop_step(jax.jit(f).lower(x, w).compile().as_text())
  assert len(forward) == 1 and 1 <= forward[0] <= 4  # the matmul (+ tanh), the loop counter
  train = jax.jit(jax.grad(f, argnums=1)).lower(x, w).compile().as_text()
  assert len(benchmark.kernels_per_loop_step(train)) == 2  # the forward and the backward scan
  assert benchmark.kernels_per_loop_step(jax.jit(jnp.tanh).lower(x).compile().as_text()) == []


def test_configure_sizes_and_errors():
  item = benchmark.ITEMS["clevrtex_L2_train"]
  config = benchmark.configure(item, driver.base_config(item), scale="cpu", dtype="bfloat16",
                               remat="coupling", attn_impl="xla", devices=2)
  assert (config.model.ch, config.model.steps, config.model.imsize) == (64, 8, 64)
  assert config.data.batch_size == 32  # 64 views = 32 images
  assert (config.model.dtype, config.model.remat) == ("bfloat16", "coupling")
  assert config.model.attn_impl == "xla"
  assert (config.mesh.data, config.mesh.fsdp, config.model.num_layers) == (2, 1, 2)
  # Without overrides the item runs as the config does: "auto" compute, the layers' attention.
  config = benchmark.configure(item, driver.base_config(item), scale="cpu")
  assert (config.model.dtype, config.model.attn_impl) == ("auto", "")
  assert benchmark.resolved_dtype(config) == "float32"  # on this CPU
  assert benchmark.resolved_attention(config) == "xla"
  sudoku = benchmark.ITEMS["sudoku_train"]
  with pytest.raises(ValueError, match="devices cannot split"):
    benchmark.configure(sudoku, driver.base_config(sudoku), scale="tiny", devices=3)
  with pytest.raises(ValueError, match="Unknown benchmark item 'sudoku'"):
    benchmark.get_item("sudoku")
