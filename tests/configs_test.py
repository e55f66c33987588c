"""The built-in configs and their loader: every config builds for every option and has the
reference parameter count; one loader for names, files and a run's config.json; typed options."""

import glob
import json
import os
import subprocess
import sys

import pytest
from flax import nnx

from akorn_jax import config_base, config_loader, layers, tasks

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECTIONS = ("data", "model", "optim", "ema", "train", "checkpoint", "mesh", "eval")

# (config file, arg) -> trainable parameters of the reference settings
# (docs/models.md#parameter-counts).
REFERENCE = {
    ("tetrominoes_akorn", None): 278_400, ("tetrominoes_akorn", "conv"): 613_888,
    ("dsprites_akorn", None): 302_976, ("dsprites_akorn", "conv"): 1_007_104,
    ("clevr_akorn", None): 1_167_104, ("clevr_akorn", "conv"): 4_049_920,
    ("clevrtex_akorn", None): 1_167_616, ("clevrtex_akorn", "L=2"): 1_760_256,
    ("clevrtex_akorn", "large"): 6_666_240, ("clevrtex_itrsa", None): 1_168_128,
    ("clevrtex_itrsa", "L=2"): 1_695_232, ("sudoku_akorn", None): 2_940_940,
    ("sudoku_itrsa", None): 2_155_017, ("sudoku_transformer", None): 16_874_505,
    ("cifar_akorn", None): 7_023_760,
    ("cifar_resnet18", None): 11_173_962,  # the standard CIFAR ResNet-18 (not in the reference)
}
FILES = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(ROOT, "configs", "*.py"))
               if not p.endswith(("__init__.py", "_base.py")))


def _get(name, arg):
  return config_loader.load(f"{name}:{arg}" if arg else name)


def test_every_reference_config_is_listed():
  assert {name for name, _ in REFERENCE} == set(FILES) == set(config_loader.builtin_names())


@pytest.mark.parametrize("name", FILES)
def test_config_builds_with_tiny_variant(name):
  for arg in (None, "tiny"):
    c = _get(name, arg)
    c.lock()
    assert all(s in c for s in SECTIONS)
    model = nnx.eval_shape(lambda c=c: tasks.build_model(c, nnx.Rngs(0)))
    assert layers.count_params(model) > 0
    tasks.get_task(c)


@pytest.mark.parametrize("name,arg", sorted(REFERENCE, key=str))
def test_reference_parameter_counts(name, arg):
  c = _get(name, arg)
  model = nnx.eval_shape(lambda: tasks.build_model(c, nnx.Rngs(0)))
  assert layers.count_params(model) == REFERENCE[(name, arg)]


def test_options_are_typed_and_bad_ones_are_named():
  assert config_base.parse_arg("tiny,L=2", tiny=False, L=(1, 2)) == config_base.ConfigArgs(
      tiny=True, L=2)
  assert config_base.parse_arg(None, tiny=False, steps=16).steps == 16
  assert config_base.parse_arg("steps=32", steps=16).steps == 32
  with pytest.raises(ValueError, match=r"Unknown config option 'tinny'.*accepts tiny, L=1\|2"):
    config_base.parse_arg("tinny", tiny=False, L=(1, 2))
  with pytest.raises(ValueError, match="Bad value '3' for 'L'.*one of 1, 2"):
    config_base.parse_arg("L=3", L=(1, 2))
  with pytest.raises(ValueError, match="Bad value 'x' for 'steps'.*an int"):
    config_base.parse_arg("steps=x", steps=16)
  with pytest.raises(ValueError, match="given twice"):
    config_base.parse_arg("tiny,tiny", tiny=False)


def test_loader_names_the_bad_spec():
  with pytest.raises(ValueError, match=r"Config 'clevrtex_akorn:L=3': Bad value '3' for 'L'"):
    config_loader.load("clevrtex_akorn:L=3")
  with pytest.raises(ValueError, match="no built-in config 'sudoku_akron'.*did you mean sudoku_akorn"):
    config_loader.load("sudoku_akron")
  with pytest.raises(ValueError, match="no config file 'nope/x.py'"):
    config_loader.load("nope/x.py")


def test_name_file_and_saved_json_give_the_same_config(tmp_path):
  by_name = config_loader.load("sudoku_akorn:tiny")
  by_path = config_loader.load(os.path.join(ROOT, "configs", "sudoku_akorn.py") + ":tiny")
  assert by_name.to_dict() == by_path.to_dict()
  saved = tmp_path / "config.json"
  saved.write_text(by_name.to_json_best_effort())
  assert json.loads(config_loader.load(str(saved)).to_json()) == json.loads(by_name.to_json())
  # A user's own file builds on a built-in config through the loader.
  mine = tmp_path / "mine.py"
  mine.write_text("from akorn_jax import config_loader\n"
                  "def get_config(arg=None):\n"
                  "  c = config_loader.load('sudoku_akorn:tiny')\n"
                  "  c.model.ch = int(arg or 16)\n"
                  "  return c\n")
  assert config_loader.load(f"{mine}:32").model.ch == 32
  assert config_loader.load(str(mine)).model.ch == 16


def test_validate_rejects_impossible_settings():
  c = config_loader.load("sudoku_akorn:tiny")
  c.data.batch_size = 0
  with pytest.raises(ValueError, match="batch_size=0"):
    config_loader.validate(c)


def test_dry_run_prints_one_json_line():
  out = subprocess.run(
      [sys.executable, "-m", "experiments.train", "--config=tetrominoes_akorn:conv",
       "--dry_run"], cwd=ROOT, capture_output=True, text=True, timeout=300, check=True)
  lines = [l for l in out.stdout.splitlines() if l.strip()]
  assert json.loads(lines[-1]) == {"config": "tetrominoes_akorn:conv", "params": 613_888}
