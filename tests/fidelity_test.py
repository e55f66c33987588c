"""Fidelity to the reference: tied GTA updates, γ without Ω, PyTorch normalisation statistics."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx

from akorn_jax import kuramoto, layers, models
from akorn_jax.train import restore
from akorn_jax.train import state as state_lib
from akorn_jax.train import tied_gta


def _gta_model():
  return models.ObjectAKOrN(rngs=nnx.Rngs(0), ch=8, heads=2, psize=4, imsize=12, steps=2)


def _grads(model, seed):
  images = jax.random.uniform(jax.random.key(seed), (2, 12, 12, 3))

  def loss(m):
    z, _ = m(images, key=jax.random.key(seed + 1))
    return jnp.sum(z ** 2)

  return nnx.grad(loss)(model)


def _mats(params):
  c = params["klayers"][0]["connectivity"]
  return [np.asarray(c[n][...]) for n in tied_gta.GTA_NAMES]


def test_tied_gta_matches_the_reference_update_rule():
  model = _gta_model()
  _, params, _ = state_lib.split_model(model)
  plain, tied = optax.adam(1e-2), tied_gta.tie_gta(optax.adam(1e-2))
  s_plain, s_tied = plain.init(params), tied.init(params)
  q0, k0, v0, o0 = _mats(params)
  np.testing.assert_array_equal(q0, k0)
  np.testing.assert_array_equal(q0, np.swapaxes(o0, -1, -2))
  for step in range(3):  # several steps: Adam's four moment estimates must stay separate
    nnx.update(model, params)
    grads = nnx.state(_grads(model, step), nnx.Param)
    u_plain, s_plain = plain.update(grads, s_plain, params)
    u_tied, s_tied = tied.update(grads, s_tied, params)
    uq, uk, uv, uo = _mats(u_plain)
    # The reference: one tensor S receives the four updates (o's transposed).
    want = _mats(params)[0] + uq + uk + uv + np.swapaxes(uo, -1, -2)
    params = optax.apply_updates(params, u_tied)
    q, k, v, o = _mats(params)
    np.testing.assert_allclose(q, want, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(q, k)
    np.testing.assert_array_equal(q, v)
    np.testing.assert_array_equal(q, np.swapaxes(o, -1, -2))
    # Other parameters get the plain Adam update.
    np.testing.assert_array_equal(u_tied["head1"]["kernel"][...], u_plain["head1"]["kernel"][...])


def test_tie_gta_is_a_config_setting_and_counts_stay_the_reference_ones():
  optim = ml_collections.ConfigDict(dict(lr=1e-3, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0,
                                         clip_norm=None, warmup_steps=0, schedule="constant",
                                         tie_gta=True))
  tx = state_lib.make_optimizer(optim, 10)
  model = _gta_model()
  _, params, _ = state_lib.split_model(model)
  updates, _ = tx.update(nnx.state(_grads(model, 0), nnx.Param), tx.init(params), params)
  q, k, v, o = _mats(optax.apply_updates(params, updates))
  np.testing.assert_array_equal(q, k)
  np.testing.assert_array_equal(q, np.swapaxes(o, -1, -2))
  from configs import objects_base, sudoku_akorn  # pylint: disable=g-import-not-at-top
  assert sudoku_akorn.get_config().optim.tie_gta
  assert objects_base.object_config.__name__  # the object configs set it in the shared base
  # Four matrices per attention layer are still counted (the reference's count).
  assert restore.count_params(model) == restore.count_params(_gta_model())


def test_gamma_without_omega_is_the_reference_step():
  # Reference: x <- N(x + γ(x + P(y))) (its Ω is the identity when off); ours applies γ/(1+γ).
  layer = layers.KLayer(8, n=4, connectivity="conv", ksize=3, c_norm=None, rngs=nnx.Rngs(1))
  x = kuramoto.normalize(jax.random.normal(jax.random.key(2), (2, 5, 7, 8)), 4)
  c = jax.random.normal(jax.random.key(3), (2, 5, 7, 8))
  gamma = 1.0
  y = layer.connectivity(x) + c
  want = kuramoto.normalize(x + gamma * (x + kuramoto.project(y, x, 4)), 4)
  got, _ = layer(x, c, steps=1, gamma=jnp.float32(gamma))
  np.testing.assert_allclose(got, want, atol=2e-6)
  # With Ω on, γ is the plain step size (Ω replaces the identity term).
  layer_w = layers.KLayer(8, n=4, connectivity="conv", ksize=3, c_norm=None, use_omega=True,
                          init_omega=0.7, rngs=nnx.Rngs(1))
  want_w, _ = kuramoto.integrate(x, c, layer_w.connectivity, n=4, steps=1, gamma=gamma,
                                 omega=layer_w.omega())
  got_w, _ = layer_w(x, c, steps=1, gamma=jnp.float32(gamma))
  np.testing.assert_allclose(got_w, want_w, atol=1e-6)


def test_object_configs_state_the_reference_gamma():
  from configs import tetrominoes_akorn  # pylint: disable=g-import-not-at-top
  c = tetrominoes_akorn.get_config()
  assert c.model.gamma == 1.0 and not c.model.use_omega
  assert models.ObjectAKOrN.__init__.__kwdefaults__["gamma"] == 1.0


def test_norms_use_two_pass_variance():
  # A large mean against a small spread: one-pass E[x²] - E[x]² loses everything in float32.
  x = 1e4 + jax.random.normal(jax.random.key(0), (4, 3, 3, 8))
  want = (x - x.mean(axis=(0, 1, 2))) / jnp.sqrt(x.var(axis=(0, 1, 2)) + 1e-5)
  bn = layers.norm_layer("bn", 8, rngs=nnx.Rngs(0))
  np.testing.assert_allclose(bn(x), want, atol=2e-3)
  gn = layers.stimulus_norm("gn", 8, 4, rngs=nnx.Rngs(0))
  xs = x.reshape(4, 3, 3, 2, 4)
  want_g = ((xs - xs.mean(axis=(1, 2, 4), keepdims=True))
            / jnp.sqrt(xs.var(axis=(1, 2, 4), keepdims=True) + 1e-5)).reshape(x.shape)
  np.testing.assert_allclose(gn(x), want_g, atol=2e-3)
  assert not gn.use_fast_variance and not bn.use_fast_variance


def test_batchnorm_running_variance_is_unbiased_as_pytorch():
  x = jax.random.normal(jax.random.key(1), (2, 3, 3, 4)) * 3 + 1
  bn = layers.norm_layer("bn", 4, rngs=nnx.Rngs(0))
  bn(x)
  n = 2 * 3 * 3
  batch_var = np.asarray(x).reshape(n, 4).var(axis=0, ddof=1)
  np.testing.assert_allclose(bn.var[...], 0.9 * 1.0 + 0.1 * batch_var, rtol=1e-5)
  np.testing.assert_allclose(bn.mean[...], 0.1 * np.asarray(x).reshape(n, 4).mean(0), rtol=1e-5)
  bn.use_running_average = True  # eval mode: running statistics
  np.testing.assert_allclose(bn(x), (x - bn.mean[...]) / jnp.sqrt(bn.var[...] + 1e-5), atol=1e-5)


def test_augmix_magnitudes_use_torchvisions_ten_bins():
  from akorn_jax.data import augment  # pylint: disable=g-import-not-at-top
  table, signed = augment._magnitudes(32, 32)
  ops = list(augment.AUGMIX_OPS)
  assert table.shape == (13, 10)
  np.testing.assert_allclose(table[ops.index("shear_x")], np.linspace(0, 0.3, 10), rtol=1e-6)
  np.testing.assert_allclose(table[ops.index("rotate")][:3], [0, 30 / 9, 60 / 9], rtol=1e-6)
  np.testing.assert_array_equal(table[ops.index("posterize")], [4, 4, 3, 3, 2, 2, 1, 1, 0, 0])
  assert signed[ops.index("rotate")] and not signed[ops.index("posterize")]


def test_corruption_constants_are_cifars_and_names_map_to_tfds():
  from akorn_jax.data import cifar  # pylint: disable=g-import-not-at-top
  from akorn_jax.evaluate import corruptions  # pylint: disable=g-import-not-at-top
  reg = corruptions._REGISTRY
  assert reg["motion_blur"][1] == ((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5))
  # CIFAR-10-C values (not ImageNet-C / Tiny-ImageNet-C) of the others.
  assert reg["gaussian_noise"][1] == (0.04, 0.06, 0.08, 0.09, 0.10)
  assert reg["shot_noise"][1] == (500, 250, 100, 75, 50)
  assert reg["impulse_noise"][1] == (0.01, 0.02, 0.03, 0.05, 0.07)
  assert reg["contrast"][1] == (0.75, 0.5, 0.4, 0.3, 0.15)
  assert reg["brightness"][1] == (0.05, 0.1, 0.15, 0.2, 0.3)
  assert reg["jpeg_compression"][1] == (80, 65, 58, 50, 40)
  assert reg["pixelate"][1] == (0.95, 0.9, 0.85, 0.75, 0.65)
  assert reg["defocus_blur"][1] == ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1))
  assert reg["fog"][1] == ((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75))
  tfds_names = set(cifar.CIFAR10_C_CORRUPTIONS + cifar.CIFAR10_C_EXTRA)
  assert set(corruptions.TFDS_NAMES) == set(corruptions.CORRUPTIONS)
  assert set(corruptions.TFDS_NAMES.values()) <= tfds_names
  assert corruptions.TFDS_NAMES["glass_blur"] == "frosted_glass_blur"
  assert corruptions.TFDS_NAMES["elastic_transform"] == "elastic"


def test_clevr_step_count_follows_the_images_kept():
  from configs import clevr_akorn  # pylint: disable=g-import-not-at-top
  from akorn_jax.train import loop  # pylint: disable=g-import-not-at-top
  c = clevr_akorn.get_config()
  assert c.train.epochs == 300
  # e.g. 49,483 training images kept by the CLEVR6 filter, batch 256: 193 steps per epoch.
  assert loop.epochs_to_steps(c, 49_483) == 300 * (49_483 // c.data.batch_size)
  c.data.batch_size = 10**6
  import pytest  # pylint: disable=g-import-not-at-top
  with pytest.raises(ValueError, match="fewer than one batch"):
    loop.epochs_to_steps(c, 5)


def test_object_evaluation_draws_a_fresh_initial_state_per_call():
  from akorn_jax.evaluate import objects as objects_eval  # pylint: disable=g-import-not-at-top
  model = models.ObjectAKOrN(rngs=nnx.Rngs(0), ch=8, heads=2, psize=4, imsize=8, steps=2)
  model.eval()
  images = np.asarray(jax.random.uniform(jax.random.key(0), (2, 8, 8, 3)))
  fn = objects_eval.model_features(model, jax.random.key(7))
  first, second = fn(images), fn(images)  # e.g. two batches, or two up-tiling crops
  assert not np.allclose(first, second)
  again = objects_eval.model_features(model, jax.random.key(7))
  np.testing.assert_array_equal(again(images), first)  # reproducible from the key
