"""Tests of akorn_jax.evaluate.robustness on a small MLP trained on scikit-learn's real digits."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from sklearn.datasets import load_digits

from akorn_jax.evaluate import robustness as rb

NUM_EVAL = 150
EPS = 0.15
# One static configuration for every test, so each attack compiles once per model.
OPTIONS = {"pgd": {"steps": 10}, "apgd_ce": {"steps": 10}, "apgd_t": {"steps": 10, "num_targets": 3}}


def _mlp(params, images):
  h = jax.nn.relu(images.reshape(images.shape[0], -1) @ params["w1"] + params["b1"])
  return h @ params["w2"] + params["b2"]


@pytest.fixture(scope="module")
def digits():
  """A 2-layer MLP on 8x8x3 digit images in [0, 1], trained here in a couple of seconds."""
  data = load_digits()
  images = np.repeat((data.images / 16.0).astype(np.float32)[..., None], 3, axis=-1)
  labels = data.target.astype(np.int32)
  perm = np.random.default_rng(0).permutation(len(labels))
  train, test = perm[:1400], perm[1400:1400 + NUM_EVAL]
  k1, k2 = jax.random.split(jax.random.key(0))
  params = {"w1": jax.random.normal(k1, (192, 64)) / np.sqrt(192), "b1": jnp.zeros(64),
            "w2": jax.random.normal(k2, (64, 10)) / 8.0, "b2": jnp.zeros(10)}
  opt = optax.adam(1e-2)

  x_train, y_train = jnp.asarray(images[train]), jnp.asarray(labels[train])

  def step(carry, _):
    params, state = carry
    loss = lambda p: rb.cross_entropy(_mlp(p, x_train), y_train).mean()
    updates, state = opt.update(jax.grad(loss)(params), state)
    return (optax.apply_updates(params, updates), state), None

  (params, _), _ = jax.jit(lambda c: jax.lax.scan(step, c, length=300))((params, opt.init(params)))
  logits_fn = jax.tree_util.Partial(lambda p, x, key: _mlp(p, x), params)
  return logits_fn, images[test], labels[test], params


def _acc(logits_fn, x, y):
  return float(np.mean(np.argmax(logits_fn(x, jax.random.key(0)), 1) == y))


def test_clean_accuracy_is_high(digits):
  logits_fn, x, y, _ = digits
  assert _acc(logits_fn, x, y) > 0.9


@pytest.fixture(scope="module")
def adversarial(digits):
  """Adversarial images of every attack for the digits test set, with the same keys as below."""
  logits_fn, x, y, _ = digits
  # eot is passed as robust_accuracy passes it, so the compiled attacks are shared with it.
  return {name: np.asarray(fn(logits_fn, x, y, jax.random.key(1), eps=EPS,
                              **({} if name == "random_sign" else {"eot": 1}),
                              **OPTIONS.get(name, {})))
          for name, fn in rb.ATTACKS.items()}


def test_attacks_stay_in_ball_and_range(digits, adversarial):
  _, x, _, _ = digits
  for name, adv in adversarial.items():
    assert adv.shape == x.shape and adv.dtype == np.float32, name
    assert adv.min() >= 0.0 and adv.max() <= 1.0, name
    assert np.abs(adv - x).max() <= EPS + 1e-6, name
    assert np.abs(adv - x).max() > EPS / 2, name


def test_attack_strength_ordering(digits, adversarial):
  logits_fn, x, y, _ = digits
  acc = {name: _acc(logits_fn, adv, y) for name, adv in adversarial.items()}
  assert acc["random_sign"] > 0.8, acc
  assert acc["pgd"] < 0.2, acc
  assert acc["fgsm"] > acc["pgd"] + 0.05, acc
  assert acc["apgd_ce"] <= acc["pgd"] + 0.03, acc
  assert acc["apgd_t"] <= acc["pgd"] + 0.03, acc


def test_robust_accuracy_reports_worst_case(digits, adversarial):
  logits_fn, x, y, _ = digits
  res = rb.robust_accuracy(logits_fn, x, y, jax.random.key(2), attacks=tuple(rb.ATTACKS), eps=EPS,
                           options=OPTIONS, chunk_size=NUM_EVAL)
  assert set(res) == {"clean", "worst", *rb.ATTACKS}
  assert res["clean"] == pytest.approx(_acc(logits_fn, x, y))
  assert res["pgd"] < 0.2 and res["fgsm"] > res["pgd"]
  # Worst case is the per-example conjunction, so it can be below every single attack.
  assert res["worst"] <= min(v for k, v in res.items() if k != "worst")
  correct = np.ones(len(y), bool)
  for adv in adversarial.values():
    correct &= np.argmax(logits_fn(adv, jax.random.key(0)), 1) == y
  assert abs(res["worst"] - correct.mean()) < 0.1


def test_chunking_does_not_change_deterministic_results(digits):
  logits_fn, x, y, _ = digits
  kw = dict(attacks=("fgsm",), eps=EPS)
  whole = rb.robust_accuracy(logits_fn, x, y, jax.random.key(3), chunk_size=NUM_EVAL, **kw)
  # 150 = 64 + 64 + 22: the last chunk is padded and the padding must not be counted.
  chunked = rb.robust_accuracy(logits_fn, x, y, jax.random.key(7), chunk_size=64, **kw)
  assert whole == chunked


def test_dlr_targeted_matches_direct_formula():
  z = jnp.array([[3.0, 1.0, 2.0, -1.0, 0.5]])
  # sorted: 3, 2, 1, 0.5; y = 0, t = 2: -(3 - 2) / (3 - (1 + 0.5) / 2)
  got = rb.dlr_targeted(z, jnp.array([0]), jnp.array([2]))
  np.testing.assert_allclose(got, [-1.0 / 2.25], rtol=1e-6)
  # Invariant to shift and positive scale of the logits.
  np.testing.assert_allclose(rb.dlr_targeted(5 * z + 7, jnp.array([0]), jnp.array([2])), got,
                             rtol=1e-5)


def test_apgd_checkpoints():
  w = rb.apgd_checkpoints(100)
  # p = 0, .22, .41, .57, .70, .80, .87, .93, .99 (gaps shrink by .03 down to .06).
  np.testing.assert_array_equal(w, [0, 22, 41, 57, 70, 80, 87, 93, 99])


def test_eot_strengthens_attack_on_randomised_model(digits):
  _, x, y, params = digits
  # A randomised model: a random linear term whose input gradient is mostly noise, so one sample
  # points the attack in a poor direction and averaging 8 recovers the model's own gradient.
  noisy = jax.tree_util.Partial(
      lambda p, x, key: _mlp(p, x) + x.reshape(x.shape[0], -1)
      @ jax.random.rademacher(key, (192, 10), jnp.float32), params)
  kw = dict(attacks=("pgd",), eps=0.1, options=OPTIONS, chunk_size=NUM_EVAL)
  one = rb.robust_accuracy(noisy, x, y, jax.random.key(4), eot=1, **kw)["pgd"]
  eight = rb.robust_accuracy(noisy, x, y, jax.random.key(4), eot=8, **kw)["pgd"]
  assert eight < one - 0.04, (one, eight)


def test_accuracy_vs_eps_falls_to_chance(digits):
  logits_fn, x, y, _ = digits
  res = rb.accuracy_vs_eps(logits_fn, x, y, jax.random.key(5), eps_values=(0.0, 0.05, 0.1, 0.3),
                           options=OPTIONS["pgd"], chunk_size=NUM_EVAL)
  assert res["accuracy"][0] > 0.9 and res["accuracy"][-1] <= 0.1 + 0.03
  assert res["monotone"] and res["reaches_chance"] and not res["gradient_masking_suspected"]


def test_accuracy_vs_eps_flags_masked_gradients(digits):
  _, x, y, params = digits
  # A model that hides its input gradient: the attack is blind, accuracy never falls.
  masked = jax.tree_util.Partial(lambda p, x, key: _mlp(p, jax.lax.stop_gradient(x)), params)
  res = rb.accuracy_vs_eps(masked, x, y, jax.random.key(6), eps_values=(0.0, 0.1, 0.3),
                           options=OPTIONS["pgd"], chunk_size=NUM_EVAL)
  assert res["gradient_masking_suspected"]


def test_unknown_attack_names_choices(digits):
  logits_fn, x, y, _ = digits
  with pytest.raises(ValueError, match="apgd_ce"):
    rb.robust_accuracy(logits_fn, x, y, jax.random.key(0), attacks=("pgdd",))
