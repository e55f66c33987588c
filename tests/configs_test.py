"""Every config file builds, for every variant, and its model has the reference parameter count."""

import glob
import json
import os
import subprocess
import sys

import pytest
from flax import nnx

from akorn_jax import tasks
from akorn_jax.train import restore
from akorn_jax.config_base import parse_arg

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECTIONS = ("data", "model", "optim", "ema", "train", "checkpoint", "mesh", "eval")

# (config file, arg) -> trainable parameters of the reference settings (SPEC §4.7).
REFERENCE = {
    ("tetrominoes_akorn", None): 278_400, ("tetrominoes_akorn", "conv"): 613_888,
    ("dsprites_akorn", None): 302_976, ("dsprites_akorn", "conv"): 1_007_104,
    ("clevr_akorn", None): 1_167_104, ("clevr_akorn", "conv"): 4_049_920,
    ("clevrtex_akorn", None): 1_167_616, ("clevrtex_akorn", "L=2"): 1_760_256,
    ("clevrtex_akorn", "large"): 6_666_240, ("clevrtex_itrsa", None): 1_168_128,
    ("clevrtex_itrsa", "L=2"): 1_695_232, ("sudoku_akorn", None): 2_940_940,
    ("sudoku_itrsa", None): 2_155_017, ("sudoku_transformer", None): 16_874_505,
    ("cifar_akorn", None): 7_023_760,
    ("cifar_resnet18", None): 11_173_962,  # the standard CIFAR ResNet-18 (not in SPEC §4.7)
}
FILES = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(ROOT, "configs", "*.py"))
               if not p.endswith(("__init__.py", "objects_base.py")))


def _get(name, arg):
  module = __import__(f"configs.{name}", fromlist=["get_config"])
  return module.get_config(arg)


def test_every_reference_config_is_listed():
  assert {name for name, _ in REFERENCE} == set(FILES)


@pytest.mark.parametrize("name", FILES)
def test_config_builds_with_tiny_variant(name):
  for arg in (None, "tiny"):
    c = _get(name, arg)
    c.lock()
    assert all(s in c for s in SECTIONS)
    model = nnx.eval_shape(lambda c=c: tasks.build_model(c, nnx.Rngs(0)))
    assert restore.count_params(model) > 0
    tasks.get_task(c)


@pytest.mark.parametrize("name,arg", sorted(REFERENCE, key=str))
def test_reference_parameter_counts(name, arg):
  c = _get(name, arg)
  model = nnx.eval_shape(lambda: tasks.build_model(c, nnx.Rngs(0)))
  assert restore.count_params(model) == REFERENCE[(name, arg)]


def test_unknown_variant_is_a_clear_error():
  with pytest.raises(ValueError, match="Unknown config variant 'tinny'"):
    parse_arg("tinny", {"tiny"})


def test_dry_run_prints_one_json_line():
  out = subprocess.run(
      [sys.executable, "-m", "experiments.train", "--config=configs/tetrominoes_akorn.py:conv",
       "--dry_run"], cwd=ROOT, capture_output=True, text=True, timeout=300, check=True)
  lines = [l for l in out.stdout.splitlines() if l.strip()]
  assert json.loads(lines[-1]) == {"config": "configs/tetrominoes_akorn.py:conv", "params": 613_888}
