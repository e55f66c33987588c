"""A small real classifier for the attack tests: a 2-layer MLP trained on scikit-learn's digits
(8x8 images repeated to 3 channels, in [0, 1]) in a couple of seconds."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.datasets import load_digits

from akorn_jax.evaluate import attacks


def mlp(params, images):
  h = jax.nn.relu(images.reshape(images.shape[0], -1) @ params["w1"] + params["b1"])
  return h @ params["w2"] + params["b2"]


def train(*, num_train: int, num_test: int, hidden: int, out_scale: float, steps: int):
  """(params, test images [num_test, 8, 8, 3], test labels): Adam 1e-2 for `steps` full-batch
  steps on the first `num_train` digits of a fixed permutation; the test digits follow them."""
  data = load_digits()
  images = np.repeat((data.images / 16.0).astype(np.float32)[..., None], 3, axis=-1)
  labels = data.target.astype(np.int32)
  perm = np.random.default_rng(0).permutation(len(labels))
  train_idx, test_idx = perm[:num_train], perm[num_train:num_train + num_test]
  k1, k2 = jax.random.split(jax.random.key(0))
  params = {"w1": jax.random.normal(k1, (192, hidden)) / np.sqrt(192), "b1": jnp.zeros(hidden),
            "w2": jax.random.normal(k2, (hidden, 10)) / out_scale, "b2": jnp.zeros(10)}
  opt = optax.adam(1e-2)
  x_train, y_train = jnp.asarray(images[train_idx]), jnp.asarray(labels[train_idx])

  def step(carry, _):
    params, state = carry
    loss = lambda p: attacks.cross_entropy(mlp(p, x_train), y_train).mean()
    updates, state = opt.update(jax.grad(loss)(params), state)
    return (optax.apply_updates(params, updates), state), None

  (params, _), _ = jax.jit(lambda c: jax.lax.scan(step, c, length=steps))((params, opt.init(params)))
  return params, images[test_idx], labels[test_idx]
