"""Models: parameter counts under bfloat16 (the one table of tests/param_counts.py; float32 in
configs_test), shapes on odd sizes, explicit-key randomness, gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from akorn_jax import config_loader, models
from akorn_jax.train import restore
from param_counts import PARAMS


@pytest.mark.parametrize("name,arg", sorted(PARAMS, key=str))
def test_compute_dtype_does_not_change_the_parameter_count(name, arg):
  """bfloat16 compute (the benchmark's and GPU runs' setting) keeps every parameter: the count of
  each reference config's model is the table's (configs_test checks it in float32)."""
  c = config_loader.load(f"{name}:{arg}" if arg else name)
  c.model.dtype = "bfloat16"
  assert restore.count_params(restore.abstract_model(c)) == PARAMS[(name, arg)]


def test_unknown_model_names_suggestion():
  with pytest.raises(ValueError, match="did you mean 'sudoku_akorn'"):
    models.build("sudoku_akorm", rngs=nnx.Rngs(0))


def _images(b=3, size=20):
  return jax.random.uniform(jax.random.key(0), (b, size, size, 3))


def test_object_akorn_outputs_and_key_dependence():
  model = models.ObjectAKOrN(rngs=nnx.Rngs(0), ch=12, n=4, heads=3, psize=4, imsize=20, steps=2,
                             num_layers=2, connectivity=("attn", "conv"), ksize=3)
  z, aux = model(_images(), key=jax.random.key(1), return_states=True)
  assert z.shape == (3, 12) and aux["features"].shape == (3, 5, 5, 12)
  assert [e.shape for e in aux["energies"]] == [(3, 3), (3, 3)]
  assert aux["states"][0].shape == (3, 5, 5, 12) and aux["states"][1].shape == (2, 3, 5, 5, 12)
  z_same, _ = model(_images(), key=jax.random.key(1))
  z_other, _ = model(_images(), key=jax.random.key(2))
  np.testing.assert_array_equal(z, z_same)
  assert not np.allclose(z, z_other)
  # Test-time extension of T.
  _, aux = model(_images(), key=jax.random.key(1), steps=5)
  assert aux["energies"][0].shape == (6, 3)


def test_object_akorn_without_gta_uses_positional_maps():
  model = models.ObjectAKOrN(rngs=nnx.Rngs(0), ch=8, heads=2, psize=4, imsize=20, steps=1,
                             gta=False)
  assert model.pemb_x is not None and model.pemb_x.shape == (5, 5, 8)
  z, _ = model(_images(), key=jax.random.key(0))
  assert z.shape == (3, 8)


def test_sudoku_akorn_givens_start_at_embedding_and_shapes():
  model = models.SudokuAKOrN(rngs=nnx.Rngs(0), ch=16, heads=2, steps=2)
  puzzle = jax.random.randint(jax.random.key(3), (3, 9, 9), 0, 10)
  logits, aux = model(puzzle, key=jax.random.key(4), return_states=True)
  assert logits.shape == (3, 9, 9, 9) and aux["energies"][0].shape == (3, 3)
  assert isinstance(model.gamma, nnx.Param)  # Sudoku learns its step size (docs/models.md)
  # With every cell given, the initial state does not depend on the key.
  full = jnp.ones((1, 9, 9), jnp.int32) * 5
  a, _ = model(full, key=jax.random.key(0))
  b, _ = model(full, key=jax.random.key(1))
  np.testing.assert_allclose(a, b, rtol=1e-6)


def test_classifier_akorn_train_eval_and_ensemble():
  model = models.ClassifierAKOrN(rngs=nnx.Rngs(0), ch=4, steps=1)
  imgs = _images(2, 16)
  logits, aux = model(imgs, key=jax.random.key(0))
  assert logits.shape == (2, 10) and len(aux["energies"]) == 3
  model.eval()
  e1, _ = model(imgs, key=jax.random.key(0), ensemble=3)
  assert e1.shape == (2, 10)
  # The transition conv is ONE module shared by x and c (docs/reference.md#quirks, item 7): 2 for
  # 3 stages.
  assert len(model.transitions) == 2


def test_classifier_akorn_mix_has_attention_in_the_last_stage():
  model = models.ClassifierAKOrN(rngs=nnx.Rngs(0), ch=4, steps=1, heads=2, imsize=16,
                                 connectivity=("conv", "conv", "attn"))
  kinds = [type(k.connectivity).__name__ for k in model.klayers]
  assert kinds == ["CouplingConv", "CouplingConv", "Attention"]
  assert model.klayers[2].connectivity.hw == (4, 4)  # 16 px -> 16, 8, 4 grids
  logits, aux = model(_images(2, 16), key=jax.random.key(0))
  assert logits.shape == (2, 10) and bool(jnp.all(jnp.isfinite(logits)))
  with pytest.raises(ValueError, match="connectivity has 2 entries"):
    models.ClassifierAKOrN(rngs=nnx.Rngs(0), ch=4, connectivity=("conv", "attn"))


def test_object_akorn_readout_ablations():
  imgs, key = _images(2, 16), jax.random.key(0)
  kw = dict(ch=16, num_layers=2, steps=2, psize=4, imsize=16, heads=2)
  base = models.ObjectAKOrN(rngs=nnx.Rngs(0), **kw)
  no_ro = models.ObjectAKOrN(rngs=nnx.Rngs(0), readout=False, **kw)
  ro_x = models.ObjectAKOrN(rngs=nnx.Rngs(0), x_map=True, **kw)
  # No readout: 2 ReadOut convs fewer; x_map: one 1x1 conv (16·16 + 16) between the 2 layers.
  ro_params = 2 * (16 * 16 * 4 + 16 * 4 + 16)
  assert restore.count_params(base) - restore.count_params(no_ro) == ro_params
  assert restore.count_params(ro_x) - restore.count_params(base) == 16 * 16 + 16
  _, aux = no_ro(imgs, key=key, return_states=True)
  # Without a readout the clustered feature is the last oscillator state (unit vectors).
  np.testing.assert_allclose(aux["features"], aux["states"][-1][-1], atol=1e-6)
  np.testing.assert_allclose(jnp.linalg.norm(aux["features"].reshape(2, 4, 4, 4, 4), axis=-1), 1,
                             atol=1e-5)
  z_base, _ = base(imgs, key=key)
  z_ro_x, _ = ro_x(imgs, key=key)
  assert z_base.shape == z_ro_x.shape and not np.allclose(z_base, z_ro_x)


def test_vit_classifier_is_deterministic_and_shaped():
  model = models.ViTClassifier(rngs=nnx.Rngs(0), ch=16, num_layers=2, heads=2, imsize=16)
  imgs = _images(3, 16)
  a, _ = model(imgs, key=jax.random.key(0))
  b, _ = model(imgs, key=jax.random.key(1))
  assert a.shape == (3, 10)
  np.testing.assert_array_equal(a, b)
  with pytest.raises(ValueError, match="multiple of psize"):
    models.ViTClassifier(rngs=nnx.Rngs(0), imsize=30)


def test_baselines_shapes():
  vit = models.ObjectViT(rngs=nnx.Rngs(0), ch=8, heads=2, psize=4, imsize=20, steps=2)
  z, aux = vit(_images())
  assert z.shape == (3, 8) and aux["features"].shape == (3, 5, 5, 8)
  tf = models.SudokuTransformer(rngs=nnx.Rngs(0), ch=8, heads=2, steps=2)
  logits, _ = tf(jnp.zeros((2, 9, 9), jnp.int32))
  assert logits.shape == (2, 9, 9, 9)


def test_gradients_are_finite_for_every_model_and_bf16_state_stays_f32():
  cases = [
      (models.ObjectAKOrN(rngs=nnx.Rngs(0), ch=8, heads=2, psize=4, imsize=20, steps=2,
                          dtype=jnp.bfloat16), _images()),
      (models.SudokuAKOrN(rngs=nnx.Rngs(0), ch=8, heads=2, steps=2),
       jnp.zeros((2, 9, 9), jnp.int32).at[:, 0, 0].set(3)),
      (models.ClassifierAKOrN(rngs=nnx.Rngs(0), ch=4, steps=1), _images(2, 16)),
  ]
  for model, inputs in cases:
    @nnx.jit
    def grad_fn(m, inputs):
      def loss(m):
        out, aux = m(inputs, key=jax.random.key(0), return_states=True)
        return jnp.mean(out ** 2), aux
      return nnx.value_and_grad(loss, has_aux=True)(m)
    (_, aux), grads = grad_fn(model, inputs)
    leaves = jax.tree.leaves(grads)
    assert leaves and all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
    assert all(s.dtype == jnp.float32 for s in aux["states"][1:])
