"""Every config file builds, for every variant, and its model has the reference parameter count of
tests/param_counts.py, the numbers README.md quotes."""

import glob
import json
import os
import re
import subprocess
import sys

import pytest

from akorn_jax import tasks
from akorn_jax.config_base import parse_arg
from akorn_jax.train import restore
from param_counts import PARAMS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECTIONS = ("data", "model", "optim", "ema", "train", "checkpoint", "mesh", "eval")

FILES = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(ROOT, "configs", "*.py"))
               if not p.endswith(("__init__.py", "objects_base.py")))


def _get(name, arg):
  module = __import__(f"configs.{name}", fromlist=["get_config"])
  return module.get_config(arg)


def test_every_reference_config_is_listed():
  assert {name for name, _ in PARAMS} == set(FILES)


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


def test_unknown_variant_is_a_clear_error():
  with pytest.raises(ValueError, match="Unknown config variant 'tinny'"):
    parse_arg("tinny", {"tiny"})


def test_dry_run_prints_one_json_line():
  out = subprocess.run(
      [sys.executable, "-m", "experiments.train", "--config=configs/tetrominoes_akorn.py:conv",
       "--dry_run"], cwd=ROOT, capture_output=True, text=True, timeout=300, check=True)
  lines = [l for l in out.stdout.splitlines() if l.strip()]
  assert json.loads(lines[-1]) == {"config": "configs/tetrominoes_akorn.py:conv", "params": 613_888}
