"""EMA against a direct re-statement of the ema_pytorch 0.7 update rule (docs/training.md#ema)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from akorn_jax.train import ema as ema_lib


class ReferenceEMA:
  """docs/training.md#ema in plain Python: s counts previous update() calls."""

  def __init__(self, weight, *, beta, update_every, update_after_step):
    self.ema, self.s = np.array(weight, np.float64), 0
    self.beta, self.every, self.after = beta, update_every, update_after_step

  def update(self, weight):
    s, self.s = self.s, self.s + 1
    if s % self.every:
      return
    if s <= self.after:
      self.ema = np.array(weight, np.float64)
      return
    d = min(self.beta, 1 - (1 + s - self.after) ** (-2 / 3))
    self.ema = self.ema + (1 - d) * (weight - self.ema)


@pytest.mark.parametrize("beta,every,after", [(0.998, 10, 200), (0.995, 10, 100), (0.9, 3, 7)])
def test_matches_reference_rule(beta, every, after):
  kw = dict(beta=beta, update_every=every, update_after_step=after)
  rng = np.random.default_rng(0)
  weights = rng.normal(size=(400, 5)).astype(np.float32)
  ref = ReferenceEMA(weights[0] * 0 + 7.0, **kw)  # the EMA starts as a copy of the initial model

  @jax.jit
  def step(ema, w, s):
    return ema_lib.ema_update(ema, {"w": w, "count": s}, ema_lib.ema_weight(s, **kw))

  ema = {"w": jnp.full((5,), 7.0), "count": jnp.int32(-1)}
  copies = 0
  for s in range(400):
    ema = step(ema, weights[s], jnp.int32(s))
    before = ref.ema.copy()
    ref.update(weights[s])
    copies += not np.array_equal(before, ref.ema) and np.array_equal(ref.ema, weights[s])
    np.testing.assert_allclose(ema["w"], ref.ema, rtol=2e-5, atol=1e-6, err_msg=f"s={s}")
    assert int(ema["count"]) == s  # non-float leaves are copied every call
  assert copies == after // every + 1  # s = 0, every, ..., <= after copy exactly


def test_weight_values():
  kw = dict(beta=0.998, update_every=10, update_after_step=200)
  w = lambda s: float(ema_lib.ema_weight(s, **kw))
  assert w(0) == 1.0 and w(200) == 1.0 and w(5) == 0.0 and w(211) == 0.0
  assert w(210) == pytest.approx(11 ** (-2 / 3), rel=1e-5)  # 1 - d, d = 1 - (1 + 10)^(-2/3)
  assert w(200_000) == pytest.approx(1 - 0.998, rel=1e-3)  # the decay saturates at beta


def test_copy_is_exact_and_dtype_kept():
  x = jnp.asarray([0.1, 1e-8, 3.3], jnp.bfloat16)
  out = ema_lib.ema_update(jnp.asarray([5.0, -2.0, 1e6], jnp.bfloat16), x, 1.0)
  assert out.dtype == jnp.bfloat16 and np.array_equal(out, x)
  keep = ema_lib.ema_update(x, x * 2, 0.0)
  assert np.array_equal(keep, x)
