"""Training losses as pure functions."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def simclr_loss(z: jax.Array, temperature: float = 0.1) -> jax.Array:
  """NT-Xent over interleaved view pairs (docs/training.md#objects), on the whole global batch.

  Args:
    z: [2B, D] embeddings; rows 2i and 2i+1 are the two views of image i.
    temperature: τ (0.1 in every reference run).

  Returns:
    Scalar loss: cosine logits / τ, self-similarity masked, each view's target is its partner,
    cross-entropy averaged over the 2B rows.
  """
  z = z.astype(jnp.float32)
  z = z / jnp.maximum(jnp.linalg.norm(z, axis=-1, keepdims=True), 1e-12)
  za, zb = z[0::2], z[1::2]
  zz = jnp.concatenate([za, zb], axis=0)  # [2B, D]: all first views, then all second views
  logits = zz @ zz.T / temperature
  n2 = zz.shape[0]
  logits = jnp.where(jnp.eye(n2, dtype=bool), -1e8, logits)
  targets = (jnp.arange(n2) + n2 // 2) % n2
  return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, targets))


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Mean softmax cross-entropy; logits [..., K], integer labels [...]."""
  return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(
      logits.astype(jnp.float32), labels.astype(jnp.int32)))
