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
    "peak_mem_gb": (float, type(None)), "step_mem_gb": (float, type(None)), "remat": bool,
    "attn_impl": (str, type(None)), "devices": int, "steps": int, "warmup": int,
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


@pytest.mark.parametrize("name", list(benchmark.ITEMS))
def test_every_item_reports_every_field(name):
  record = driver.run_item(name, scale="tiny", steps=2, warmup=1)
  _check_record(record, name)
  item = benchmark.ITEMS[name]
  config = benchmark.configure(item, driver.base_config(item), scale="tiny")
  assert record["params"] == restore.count_params(restore.abstract_model(config))
  assert record["attn_impl"] == ("xla" if name.startswith(("sudoku", "clevrtex")) else None)
  assert record["mfu"] is None and record["device"] == "cpu"  # CPU has no peak in the table


def test_driver_prints_one_json_line_on_two_devices():
  out = subprocess.run(
      [sys.executable, "-m", "experiments.benchmark", "--suite=sudoku_eval_T128", "--scale=tiny",
       "--steps=2", "--warmup=1", "--devices=2"],
      capture_output=True, text=True, check=True, timeout=300,
      cwd=os.path.join(os.path.dirname(__file__), ".."))
  lines = out.stdout.splitlines()
  assert len(lines) == 1, out.stdout
  _check_record(json.loads(lines[0]), "sudoku_eval_T128", devices=2)


@pytest.mark.parametrize("steps", [1, 3])
def test_count_flops_counts_every_scan_step(steps):
  b, d = 5, 24
  x, w = jnp.ones((b, d)), jnp.ones((d, d))

  @jax.jit
  def f(x, w):
    return jax.lax.scan(lambda x, _: (x @ w, None), x, None, length=steps)[0]

  # XLA adds a few scalar flops (loop counters) to the 2·B·D·D of each matmul.
  assert benchmark.count_flops(f, x, w) == pytest.approx(2 * b * d * d * steps, rel=1e-3)
  if steps > 1:
    # The compiled step's own analysis counts the loop body once: why count_flops exists. And
    # the unrolled trace stayed out of f's cache: f still compiles to a loop.
    compiled = f.lower(x, w).compile()
    assert compiled.cost_analysis()["flops"] == pytest.approx(2 * b * d * d, rel=1e-3)
    assert "while" in compiled.as_text()


def test_peak_table():
  assert benchmark.peak_tflops("NVIDIA H200", "bfloat16") == 989.4
  assert benchmark.peak_tflops("NVIDIA H100 PCIe", "float32") == 378.0
  assert benchmark.peak_tflops("NVIDIA A100-SXM4-80GB", "bfloat16") == 312.0
  assert benchmark.peak_tflops("TPU v5 lite", "bfloat16") == 197.0
  assert benchmark.peak_tflops("TPU v5", "float32") == 459.0
  assert benchmark.peak_tflops("TPU v6 lite", "bfloat16") == 918.0
  assert benchmark.peak_tflops("cpu", "float32") is None


def test_configure_sizes_and_errors():
  item = benchmark.ITEMS["clevrtex_L2_train"]
  config = benchmark.configure(item, driver.base_config(item), scale="cpu", dtype="bfloat16",
                               remat=True, attn_impl="xla", devices=2)
  assert (config.model.ch, config.model.steps, config.model.imsize) == (64, 8, 64)
  assert config.data.batch_size == 32  # 64 views = 32 images
  assert (config.model.dtype, config.model.remat) == ("bfloat16", True)
  assert config.model.attn_impl == "xla"
  assert (config.mesh.data, config.mesh.fsdp, config.model.num_layers) == (2, 1, 2)
  sudoku = benchmark.ITEMS["sudoku_train"]
  with pytest.raises(ValueError, match="devices cannot split"):
    benchmark.configure(sudoku, driver.base_config(sudoku), scale="tiny", devices=3)
  with pytest.raises(ValueError, match="Unknown benchmark item 'sudoku'"):
    benchmark.get_item("sudoku")


def test_hlo_cost_analysis_matches_lowered_cost_analysis():
  # The fallback for plugin backends (CUDA), where Lowered.cost_analysis() returns None, must
  # give the same count as the built-in analysis does on the CPU.
  x, w = jnp.ones((5, 24)), jnp.ones((24, 24))
  lowered = jax.jit(lambda x, w: jnp.tanh(x @ w) @ w).lower(x, w)
  assert benchmark.hlo_cost_analysis(lowered)["flops"] == lowered.cost_analysis()["flops"] > 0
