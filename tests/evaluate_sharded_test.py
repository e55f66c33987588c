"""Sharded evaluation of every evaluator: a batch split over 8 fake CPU devices (padded to a
multiple of 8) gives the numbers of one device. Batches of 13 and 21 rows exercise the padding."""

import functools

import flax.nnx as nnx
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

import digits as digits_lib

from akorn_jax import config_loader, tasks
from akorn_jax.evaluate import attacks
from akorn_jax.evaluate import classification
from akorn_jax.evaluate import common
from akorn_jax.evaluate import objects
from akorn_jax.evaluate import robustness
from akorn_jax.train import sharding as shard_lib

TOL = dict(rtol=1e-5, atol=1e-6)


def _one_device() -> jax.sharding.Mesh:
  return shard_lib.make_mesh(ml_collections.ConfigDict({"data": 1, "fsdp": 1}))


def _model(name: str, **model):
  config = config_loader.load(name)
  for k, v in model.items():
    config.model[k] = v
  built = tasks.build_model(config, nnx.Rngs(0))
  built.eval()
  return config, built


@functools.partial(jax.jit, static_argnums=1)
def _draws(key: jax.Array, b: int) -> dict[str, jax.Array]:
  """The kinds of draw our models and attacks make for a batch of b rows."""
  return {
      "normal": jax.random.normal(key, (b, 3, 5, 4)),
      "uniform": jax.random.uniform(key, (b, 5, 7, 3), minval=-0.1, maxval=0.1),
      "randint": jax.random.randint(key, (b, 1, 1, 1), 0, 5),
      "rademacher": jax.random.rademacher(key, (b, 1, 7, 3), jnp.float32),
      "split_then_normal": jax.random.normal(jax.random.split(key, 2)[1], (b, 6)),
  }


def test_draws_are_prefix_stable():
  """Padding adds rows after row r: each draw gives row r the same numbers whatever the batch size
  (partitionable threefry), which `common.sharded_call` relies on."""
  assert jax.config.jax_threefry_partitionable
  short, padded = _draws(jax.random.key(0), 13), _draws(jax.random.key(0), 16)
  for name in short:
    np.testing.assert_array_equal(short[name], padded[name][:13], err_msg=name)


# ------------------------------------------------------------------------------------------------
# Classification: the clean-accuracy pass of the trainer and of experiments.evaluate
# ------------------------------------------------------------------------------------------------


def test_classification_probs_on_eight_devices_equal_one_device():
  config, model = _model("cifar_akorn:tiny", ch=4, num_layers=1, ksizes=(9,))
  config.data.eval_batch_size, config.eval.num_images = 11, 22  # 16 rows on 8 devices, 11 on one
  rng = np.random.default_rng(0)
  source = [{"image": rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), "label": np.int64(i % 10)}
            for i in range(25)]
  key = jax.random.key(1)
  eight, labels = classification.Evaluator(config)._probs(model, source, key)
  one, labels_one = classification.Evaluator(config, mesh=_one_device())._probs(model, source, key)
  assert eight.shape == (22, 10) and len(common.default_mesh().devices.flat) == 8
  np.testing.assert_array_equal(labels, labels_one)
  np.testing.assert_allclose(eight, one, **TOL)


# ------------------------------------------------------------------------------------------------
# Attacks with EOT on scikit-learn's digits (the setting of robustness_test.py)
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits():
  """A 2-layer MLP on 8x8x3 digits with a random term drawn from the key (so EOT matters), 45 test
  images (padded to 48 on 8 devices)."""
  params, x, y = digits_lib.train(num_train=1000, num_test=45, hidden=32, out_scale=6.0, steps=150)
  noisy = jax.tree_util.Partial(
      lambda p, x, key: digits_lib.mlp(p, x) + 0.3 * x.reshape(x.shape[0], -1)
      @ jax.random.rademacher(key, (192, 10), jnp.float32) / np.sqrt(192), params)
  return noisy, x, y


def test_pgd_with_eot_on_eight_devices_equals_one_device(digits):
  """The adversarial images themselves: the jitted attack given batches split over the mesh."""
  logits_fn, x, y = digits
  key = jax.random.key(2)
  adv = {}
  for name, mesh in (("eight", common.default_mesh()), ("one", _one_device())):
    rows = common.rows_per_call(len(x), mesh.size)  # 48 rows on 8 devices, 45 on one
    idx = np.minimum(np.arange(rows), len(x) - 1)
    xs, ys = common.shard_rows((x[idx], y[idx]), mesh)
    # The options of the robust_accuracy test below, so both share one compilation.
    out = attacks.pgd_linf(common.replicate(logits_fn, mesh), xs, ys, key, eps=0.1, steps=3,
                           eot=2)
    assert len(out.sharding.device_set) == mesh.size
    adv[name] = common.to_host(out)[:len(x)]
  np.testing.assert_allclose(adv["eight"], adv["one"], **TOL)
  assert np.abs(adv["eight"] - x).max() <= 0.1 + 1e-6 and not np.allclose(adv["eight"], x)


def test_robust_accuracy_on_eight_devices_equals_one_device(digits):
  """PGD with EOT and FAB-T (sorts, cumulative sums, argsorts along the image axes) through the
  chunk loop of robust_accuracy (chunks padded to 48 rows on 8 devices, 45 on one)."""
  logits_fn, x, y = digits
  kw = dict(attacks=("pgd:eot=2,steps=3", "fab_t:steps=3,num_targets=2"), eps=0.1, chunk_size=45)
  eight = robustness.robust_accuracy(logits_fn, x, y, jax.random.key(3), **kw)
  one = robustness.robust_accuracy(logits_fn, x, y, jax.random.key(3), mesh=_one_device(), **kw)
  assert eight == one and eight["pgd:eot=2,steps=3"] < eight["clean"]


# ------------------------------------------------------------------------------------------------
# Objects: features (with up-tiling) and FG-ARI / MBO
# ------------------------------------------------------------------------------------------------


def test_object_features_and_fg_ari_on_eight_devices_equal_one_device():
  _, model = _model("tetrominoes_akorn:tiny", ch=8, heads=2, steps=2)
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (11, 32, 32, 3), dtype=np.uint8)  # 16 rows on 8 devices, 11 on one
  masks = rng.integers(0, 4, (11, 32, 32), dtype=np.int32)
  key = jax.random.key(5)
  feats, scores = {}, {}
  for name, mesh in (("eight", None), ("one", _one_device())):
    feats[name] = objects.model_features(model, key, mesh=mesh)(images.astype(np.float32) / 255)
    # Up-tiling x2: four crops per batch, each its own call (and random start).
    scores[name] = objects.evaluate_objects(
        objects.model_features(model, key, mesh=mesh), [{"image": images, "mask": masks}],
        psize=4, num_clusters=4, uptile_factor=2, pca_dim=8)
  assert feats["eight"].shape == (11, 8, 8, 8) and scores["eight"]["num_images"] == 11
  np.testing.assert_allclose(feats["eight"], feats["one"], **TOL)
  for k in scores["one"]:
    np.testing.assert_allclose(scores["eight"][k], scores["one"][k], **TOL, err_msg=k)
