"""Tests of akorn_jax.evaluate.robustness on a small MLP trained on scikit-learn's real digits."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.datasets import load_digits

import digits as digits_lib

from akorn_jax.evaluate import robustness as rb
from akorn_jax.evaluate import attacks

NUM_EVAL = 150
EPS = 0.15
# One static configuration for every test, so each attack compiles once per model.
OPTIONS = {"pgd": {"steps": 10}, "apgd_ce": {"steps": 10}, "apgd_dlr": {"steps": 10},
           "apgd_t": {"steps": 10, "num_targets": 3}, "fab_t": {"steps": 20, "num_targets": 3},
           "square": {"queries": 300}}


_mlp = digits_lib.mlp


@pytest.fixture(scope="module")
def digits():
  """A 2-layer MLP on 8x8x3 digit images in [0, 1], trained here in a couple of seconds."""
  params, x, y = digits_lib.train(num_train=1400, num_test=NUM_EVAL, hidden=64, out_scale=8.0,
                                  steps=300)
  logits_fn = jax.tree_util.Partial(lambda p, x, key: _mlp(p, x), params)
  return logits_fn, x, y, params


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
    if name != "fab_t":  # FAB's points are as small as it can make them, not on the ball's edge.
      assert np.abs(adv - x).max() > EPS / 2, name


def test_attack_strength_ordering(digits, adversarial):
  logits_fn, x, y, _ = digits
  acc = {name: _acc(logits_fn, adv, y) for name, adv in adversarial.items()}
  assert acc["random_sign"] > 0.8, acc
  assert acc["pgd"] < 0.2, acc
  assert acc["fgsm"] > acc["pgd"] + 0.05, acc
  assert acc["apgd_ce"] <= acc["pgd"] + 0.03, acc
  assert acc["apgd_t"] <= acc["pgd"] + 0.03, acc
  assert acc["apgd_dlr"] <= acc["pgd"] + 0.05, acc
  assert acc["fab_t"] < 0.3, acc
  assert acc["square"] < 0.5, acc  # 300 queries of a random search: weaker, but far below clean


def test_robust_accuracy_reports_worst_case(digits, adversarial):
  logits_fn, x, y, _ = digits
  res = rb.robust_accuracy(logits_fn, x, y, jax.random.key(2), attacks=tuple(rb.ATTACKS), eps=EPS,
                           options=OPTIONS, chunk_size=NUM_EVAL)
  assert set(res) == {"clean", "worst", "settings", *rb.ATTACKS}
  assert res["settings"]["pgd"] == {"eps": EPS, "eot": 1, "steps": 10}
  assert res["settings"]["random_sign"] == {"eps": EPS}
  assert res["clean"] == pytest.approx(_acc(logits_fn, x, y))
  assert res["pgd"] < 0.2 and res["fgsm"] > res["pgd"]
  # Worst case is the per-example conjunction, so it can be below every single attack.
  assert res["worst"] <= min(v for k, v in res.items() if k not in ("worst", "settings"))
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
  assert whole == chunked and whole["fgsm"] < whole["clean"]


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
  with pytest.raises(ValueError, match="steps"):
    rb.robust_accuracy(logits_fn, x, y, jax.random.key(0), attacks=("pgd:stpes=3",))
  with pytest.raises(ValueError, match="option=value"):
    rb.parse_attack("pgd:eot")


def test_attack_labels_carry_their_settings(digits):
  logits_fn, x, y, _ = digits
  assert rb.parse_attack("pgd:eot=20,steps=5,step_size=0.01") == (
      "pgd", {"eot": 20, "steps": 5, "step_size": 0.01})
  res = rb.robust_accuracy(logits_fn, x[:32], y[:32], jax.random.key(8),
                           attacks=("fgsm", "fgsm:eot=2"), eps=EPS, chunk_size=32)
  assert res["settings"] == {"fgsm": {"eps": EPS, "eot": 1}, "fgsm:eot=2": {"eps": EPS, "eot": 2}}
  # A deterministic model: EOT averages identical gradients, so the attack is unchanged.
  assert res["fgsm"] == res["fgsm:eot=2"] < res["clean"]


def test_square_needs_no_gradients(digits):
  logits_fn, x, y, params = digits
  np_params = jax.tree.map(np.asarray, params)

  def host_mlp(images):  # numpy on the host: jax cannot differentiate through it
    h = np.maximum(images.reshape(images.shape[0], -1) @ np_params["w1"] + np_params["b1"], 0)
    return (h @ np_params["w2"] + np_params["b2"]).astype(np.float32)

  def opaque(images, key):
    del key
    return jax.pure_callback(host_mlp, jax.ShapeDtypeStruct((images.shape[0], 10), jnp.float32),
                             images)

  with pytest.raises(Exception):  # proof that the model has no gradient at all
    jax.grad(lambda z: opaque(z, None).sum())(jnp.asarray(x[:2]))
  adv = np.asarray(rb.ATTACKS["square"](opaque, x, y, jax.random.key(9), eps=EPS, queries=300))
  assert np.abs(adv - x).max() <= EPS + 1e-6
  assert _acc(logits_fn, adv, y) < _acc(logits_fn, x, y) - 0.4


def test_square_sees_through_masked_gradients(digits):
  _, x, y, params = digits
  masked = jax.tree_util.Partial(lambda p, x, key: _mlp(p, jax.lax.stop_gradient(x)), params)
  res = rb.robust_accuracy(masked, x, y, jax.random.key(10), attacks=("pgd", "square"), eps=EPS,
                           options=OPTIONS, chunk_size=NUM_EVAL)
  assert res["pgd"] > 0.8 and res["square"] < res["pgd"] - 0.4, res


def test_square_sides_follow_the_schedule():
  sides = attacks.square_sides(10000, 32, 32, p_init=0.8)
  assert len(sides) == 9999
  assert sides[0] == round((0.8 * 1024) ** 0.5) == 29
  assert sides[20] == round((0.4 * 1024) ** 0.5)  # halved after 10 of 10,000
  assert sides[-1] == 1 and np.all(np.diff(sides) <= 0)


def test_linf_step_to_hyperplane_is_the_exact_minimum():
  from scipy.optimize import linprog
  rng = np.random.default_rng(0)
  d = 12
  x = rng.uniform(0, 1, (6, d)).astype(np.float32)
  w = rng.normal(size=(6, d)).astype(np.float32)
  b = np.array([0.3, -0.5, 1.0, -0.05, 0.0, 40.0], np.float32)  # the last is out of the box's reach
  got = np.asarray(attacks.linf_step_to_hyperplane(jnp.asarray(x), jnp.asarray(w),
                                                       jnp.asarray(b)))
  assert np.all(x + got >= -1e-6) and np.all(x + got <= 1 + 1e-6)
  for i in range(5):
    # variables (δ, t): minimise t, w·δ = b, |δ_j| <= t, -x <= δ <= 1 - x
    eye = np.eye(d)
    a_ub = np.block([[eye, -np.ones((d, 1))], [-eye, -np.ones((d, 1))]])
    lp = linprog(np.r_[np.zeros(d), 1.0], A_ub=a_ub, b_ub=np.zeros(2 * d),
                 A_eq=np.r_[w[i], 0.0][None], b_eq=[b[i]],
                 bounds=[(-x[i, j], 1 - x[i, j]) for j in range(d)] + [(0, None)])
    np.testing.assert_allclose(w[i] @ got[i], b[i], atol=1e-4)
    np.testing.assert_allclose(np.abs(got[i]).max(), lp.fun, rtol=1e-4, atol=1e-6)
  # Unreachable: go as far as the box allows in the useful direction.
  np.testing.assert_allclose(x[5] + got[5], (np.sign(w[5]) > 0).astype(np.float32), atol=1e-6)


def test_fab_t_finds_the_minimal_norm_on_a_linear_model():
  from scipy.optimize import linprog
  data = load_digits()
  images = np.repeat((data.images / 16.0).astype(np.float32)[..., None], 3, axis=-1)[:20]
  labels = data.target.astype(np.int32)[:20]
  w = np.random.default_rng(1).normal(size=(192, 10)).astype(np.float32) * 0.3
  linear = jax.tree_util.Partial(lambda w, x, key: x.reshape(x.shape[0], -1) @ w, jnp.asarray(w))
  x_fab, norm = attacks.fab_t_minimal(linear, images, labels, jax.random.key(0), steps=60,
                                         num_targets=9)
  x_fab, norm = np.asarray(x_fab), np.asarray(norm)
  flat = images.reshape(20, -1)
  pred = np.argmax(flat @ w, 1)
  for i in np.flatnonzero(pred == labels):
    best = np.inf  # exact: min over targets t of the smallest L∞ step with z_t >= z_y in the box
    for t in range(10):
      if t == labels[i]:
        continue
      g = w[:, t] - w[:, labels[i]]
      a_ub = np.block([[np.eye(192), -np.ones((192, 1))], [-np.eye(192), -np.ones((192, 1))],
                       [-g[None], np.zeros((1, 1))]])
      lp = linprog(np.r_[np.zeros(192), 1.0], A_ub=a_ub, b_ub=np.r_[np.zeros(384), flat[i] @ g],
                   bounds=[(-v, 1 - v) for v in flat[i]] + [(0, None)])
      if lp.status == 0:
        best = min(best, lp.fun)
    assert np.argmax(x_fab[i].reshape(-1) @ w) != labels[i]
    np.testing.assert_allclose(np.abs(x_fab[i] - images[i]).max(), norm[i], rtol=1e-5)
    assert best - 1e-4 <= norm[i] <= best * 1.05 + 1e-4, (i, norm[i], best)


def test_fab_t_points_are_small_and_adversarial(digits, adversarial):
  logits_fn, x, y, _ = digits
  x_min, norm = attacks.fab_t_minimal(logits_fn, x, y, jax.random.key(1), steps=20,
                                         num_targets=3)
  x_min, norm = np.asarray(x_min), np.asarray(norm)
  found = np.isfinite(norm)
  assert found.mean() > 0.9
  pred = np.argmax(logits_fn(x_min, jax.random.key(0)), 1)
  assert np.all(pred[found] != y[found])
  # Minimal points: most lie well inside the ball PGD needs the whole of.
  assert np.median(norm[found]) < EPS / 2
  # fab_t keeps exactly the points within eps.
  within = norm <= EPS
  np.testing.assert_allclose(adversarial["fab_t"][within], x_min[within])
  np.testing.assert_allclose(adversarial["fab_t"][~within], x[~within])


def test_autoattack_versions(digits):
  logits_fn, x, y, _ = digits
  small = {"apgd_ce": {"steps": 10}, "apgd_t": {"steps": 10, "num_targets": 3},
           "fab_t": {"steps": 10, "num_targets": 3}, "square": {"queries": 100}}
  std = rb.autoattack(logits_fn, x, y, jax.random.key(11), version="standard", eps=EPS,
                      overrides=small, chunk_size=NUM_EVAL)
  order = ["clean", "apgd_ce", "apgd_t", "fab_t", "square"]
  accs = [std[k] for k in order]
  assert all(b <= a for a, b in zip(accs, accs[1:])), std  # cumulative: never rises
  assert std["robust"] == std["square"] < 0.2
  assert std["settings"]["square"] == {"eps": EPS, "eot": 1, "queries": 100, }
  rand = rb.autoattack(logits_fn, x, y, jax.random.key(12), version="rand", eps=EPS,
                       overrides={"apgd_ce": {"steps": 5, "eot": 2}, "apgd_dlr": {"steps": 5}},
                       chunk_size=NUM_EVAL)
  assert rand["settings"]["apgd_dlr"] == {"eps": EPS, "eot": 20, "steps": 5}
  assert rand["settings"]["apgd_ce"]["eot"] == 2
  assert rand["robust"] < 0.3
  with pytest.raises(ValueError, match="standard"):
    rb.autoattack(logits_fn, x, y, jax.random.key(0), version="plus")
  with pytest.raises(ValueError, match="square"):
    rb.autoattack(logits_fn, x, y, jax.random.key(0), version="rand", overrides={"square": {}})
