"""The built-in configs and their loader: every config builds for every option and has the
reference parameter count of tests/param_counts.py (the numbers README.md quotes); one loader for
names, files and a run's config.json; typed options."""

import glob
import json
import os
import re
import subprocess
import sys

import pytest

from akorn_jax import config_base, config_loader, tasks
from akorn_jax.train import restore
from param_counts import PARAMS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECTIONS = ("data", "model", "optim", "ema", "train", "checkpoint", "mesh", "eval")

FILES = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(ROOT, "configs", "*.py"))
               if not p.endswith(("__init__.py", "_base.py")))


def _get(name, arg):
  return config_loader.load(f"{name}:{arg}" if arg else name)


def test_every_reference_config_is_listed():
  assert {name for name, _ in PARAMS} == set(FILES) == set(config_loader.builtin_names())


@pytest.mark.parametrize("name", FILES)
def test_config_builds_with_tiny_variant(name):
  for arg in (None, "tiny"):
    c = _get(name, arg)
    c.lock()
    assert all(s in c for s in SECTIONS)
    assert restore.count_params(restore.abstract_model(c)) > 0
    tasks.get_task(c)


@pytest.mark.parametrize("name,arg", sorted(PARAMS, key=str))
def test_reference_parameter_counts(name, arg):
  assert restore.count_params(restore.abstract_model(_get(name, arg))) == PARAMS[(name, arg)]


def test_readme_table_quotes_the_reference_counts():
  """README.md's table of configs: its parameter column holds exactly the numbers of PARAMS."""
  quoted = []
  with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
    for line in f:
      if line.startswith("| `configs/"):
        counts = line.split("|")[3].split("(")[0]  # "278,400 / 613,888", before any remark
        quoted += [int(n.replace(",", "")) for n in re.findall(r"\d[\d,]*\d", counts)]
  assert sorted(quoted) == sorted(PARAMS.values())


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
