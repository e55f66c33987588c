"""Sharded evaluation (akorn_jax.evaluate.common): 8 fake CPU devices give the numbers of one."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from akorn_jax.evaluate import common
from akorn_jax.train import sharding as shard_lib


def _one_device():
  return shard_lib.make_mesh(ml_collections.ConfigDict({"data": 1, "fsdp": 1}))


@jax.jit
def _noisy(w, x, key):
  """Row-wise model with randomness drawn for the whole batch from one key (as our models do)."""
  noise = jax.random.normal(key, (x.shape[0], w.shape[1]))
  return {"y": jnp.tanh(x @ w) + 0.1 * noise, "top": jnp.argmax(x @ w, axis=-1)}


def test_sharded_call_on_eight_devices_equals_one_device():
  assert len(common.default_mesh().devices.flat) == 8
  w = jax.random.normal(jax.random.key(0), (16, 6))
  x = np.asarray(jax.random.normal(jax.random.key(1), (13, 16)))  # 13 rows: 3 padding rows
  key = jax.random.key(2)
  eight = common.sharded_call(_noisy, w, x, key, batch_argnums=(1,))
  one = common.sharded_call(_noisy, w, x, key, batch_argnums=(1,), mesh=_one_device())
  plain = jax.tree.map(np.asarray, _noisy(w, x, key))
  for k in plain:
    assert eight[k].shape[0] == 13 and isinstance(eight[k], np.ndarray)
    np.testing.assert_array_equal(eight[k], one[k])
    np.testing.assert_array_equal(eight[k], plain[k])
  with pytest.raises(ValueError, match="one leading batch size"):
    common.sharded_call(_noisy, w, x, key, batch_argnums=(0, 1))


@jax.jit
def _row_fn(w, key, rows):
  keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(rows["id"])
  noise = jax.vmap(lambda k: jax.random.normal(k, (w.shape[1],)))(keys)
  return {"y": jnp.tanh(rows["x"] @ w) + noise}


def test_sharded_map_is_independent_of_chunk_and_devices():
  w = jax.random.normal(jax.random.key(3), (8, 4))
  rows = {"x": np.asarray(jax.random.normal(jax.random.key(4), (37, 8))),
          "id": np.arange(37, dtype=np.int32)}
  key = jax.random.key(5)
  times = []
  ref = common.sharded_map(_row_fn, rows, chunk=37, mesh=_one_device(), args=(w, key))
  for chunk, mesh in ((5, None), (24, None), (64, None), (1, _one_device())):
    out = common.sharded_map(_row_fn, rows, chunk=chunk, mesh=mesh, args=(w, key),
                             chunk_times=times)
    assert out["y"].shape == (37, 4)
    np.testing.assert_array_equal(out["y"], ref["y"], err_msg=f"chunk {chunk}")
  # Chunks of at least 2 rows per device: 5 -> 16 rows, 24, 64 -> 40 (all rows), 1 -> 2.
  assert len(times) == 3 + 2 + 1 + 19
  with pytest.raises(ValueError, match="positive number of rows"):
    common.sharded_map(_row_fn, rows, chunk=0, args=(w, key))


def test_auto_chunk_and_row_bytes():
  mesh = common.default_mesh()
  w = jnp.ones((64, 64))
  f = jax.jit(lambda w, x: jnp.tanh(x @ w) @ w)
  one, two = (common.row_bytes(f, w, jax.ShapeDtypeStruct((n, 64), jnp.float32)) for n in (1, 2))
  # x @ w, tanh, @ w and the jit's output (counted again: an upper bound): 4 float32 rows of 64.
  assert two - one == 4 * 64 * 4
  chunk = common.auto_chunk(two - one, mesh)
  assert chunk % 8 == 0 and 8 <= chunk <= 8192
  assert common.auto_chunk(10 ** 15, mesh) == 16  # never below two rows per device
  assert common.auto_chunk(1, mesh, cap=100) == 96


def test_attacks_with_eot_on_eight_devices_equal_one_device():
  from akorn_jax.evaluate import robustness  # pylint: disable=g-import-not-at-top
  w = jax.random.normal(jax.random.key(6), (4 * 4 * 3, 5))
  images = np.asarray(jax.random.uniform(jax.random.key(7), (21, 4, 4, 3)))
  labels = np.asarray(jax.random.randint(jax.random.key(8), (21,), 0, 5))

  def logits_fn(x, key):  # a random model: EOT averages over its noise
    logits = x.reshape(len(x), -1) @ w
    return logits + 0.5 * jax.random.normal(key, logits.shape)

  kw = dict(attacks=("fgsm", "pgd"), eps=0.1, eot=2, options={"pgd": {"steps": 3}},
            chunk_size=16)
  eight = robustness.robust_accuracy(logits_fn, images, labels, jax.random.key(9), **kw)
  one = robustness.robust_accuracy(logits_fn, images, labels, jax.random.key(9), mesh=_one_device(),
                                   **kw)
  assert eight == one and set(eight) == {"clean", "fgsm", "pgd", "worst", "settings"}
  assert eight["pgd"] <= eight["clean"]


def test_calibration_on_eight_devices_equal_one_device():
  from akorn_jax.evaluate import calibration  # pylint: disable=g-import-not-at-top
  w = jax.random.normal(jax.random.key(10), (8 * 8 * 3, 4))
  images = np.asarray(jax.random.uniform(jax.random.key(11), (13, 8, 8, 3)))
  labels = np.asarray(jax.random.randint(jax.random.key(12), (13,), 0, 4))

  @jax.jit
  def probs_fn(x, key):  # a random model
    logits = x.reshape(len(x), -1) @ w + jax.random.normal(key, (len(x), 4))
    return jax.nn.softmax(logits, -1)

  kw = dict(corruptions=("gaussian_noise", "contrast"), severities=(1, 3), chunk_size=6)
  eight = calibration.calibration_report(probs_fn, images, labels, jax.random.key(13), **kw)
  one = calibration.calibration_report(probs_fn, images, labels, jax.random.key(13),
                                       mesh=_one_device(), **kw)
  assert eight == one and set(eight["corruptions"]) == {"gaussian_noise", "contrast"}
