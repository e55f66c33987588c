"""examples/: the Kuramoto synchronisation example runs and its oscillators really synchronise."""

import importlib.util
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def sync():
  spec = importlib.util.spec_from_file_location(
      "kuramoto_sync", os.path.join(ROOT, "examples", "kuramoto_sync.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_groups_synchronise_within_and_not_across(sync):
  features, groups = sync.two_group_input(jax.random.key(1))
  phases = sync.simulate(jax.random.key(2), sync.coupling_from_input(features), batch=4, steps=60)
  r = sync.group_order(phases, groups)
  for g in ("group A", "group B"):
    assert r[g][0] < 0.5, (g, r[g][0])      # random start: phases spread out
    assert r[g][-1] > 0.95, (g, r[g][-1])   # synchronised
  assert r["all"][-1] < 0.2, r["all"][-1]   # the two groups do not merge into one


def test_without_coupling_nothing_synchronises(sync):
  """The control: the same run with J = 0 stays incoherent, so the rise above is the coupling's."""
  features, groups = sync.two_group_input(jax.random.key(1))
  j = jnp.zeros((features.shape[0],) * 2)
  r = sync.group_order(sync.simulate(jax.random.key(2), j, batch=4, steps=60), groups)
  assert max(r["group A"][-1], r["group B"][-1]) < 0.5


def test_coupling_attracts_within_and_repels_across(sync):
  features, groups = sync.two_group_input(jax.random.key(3))
  j = np.asarray(sync.coupling_from_input(features))
  same = np.asarray(groups)[:, None] == np.asarray(groups)[None, :]
  off_diag = ~np.eye(len(j), dtype=bool)
  assert np.allclose(j, j.T) and np.all(np.diag(j) == 0)
  assert j[same & off_diag].mean() > 0 > j[~same].mean()


def test_main_writes_the_pictures(sync, tmp_path):
  curves = sync.main(str(tmp_path), steps=30)
  assert set(curves) == {"group A", "group B", "all"} and len(curves["all"]) == 31
  from PIL import Image
  with Image.open(tmp_path / "phases.png") as im:
    assert im.size == (31 * 4, 64 * 4)
  try:
    import matplotlib  # noqa: F401
  except ImportError:
    return
  assert (tmp_path / "order.png").stat().st_size > 0
