r"""First contact with the kernel: two groups of oscillators, each synchronising within itself.

  python examples/kuramoto_sync.py [--out=/tmp/kuramoto_sync] [--steps=100] [--seed=0]

The synthetic input is one feature vector per oscillator, drawn around two cluster centres (the
"two groups"). A fully connected coupling J is built from the input alone: oscillators with similar
features attract (J_ij > 0), dissimilar ones repel (J_ij < 0). Phases start uniformly at random on
the circle (n = 2: every oscillator is a unit vector in the plane) and each has its own natural
frequency. `akorn_jax.kuramoto.integrate` then runs the dynamics (docs/dynamics.md#the-update):

    x <- N(x + γ (Ω x + P_x(J x)))

The group labels are never given to the dynamics; they only enter through the features. The
script prints the order parameter R = |mean of e^{iθ}| within each group and over all
oscillators at a few steps, and writes

  <out>/phases.png  oscillators (rows, group A on top) x steps (columns), colour = phase: each
                    group's band turns one colour (synchrony), the two colours opposite (repulsion);
  <out>/order.png   R of group A, group B and all oscillators over the steps (needs matplotlib).

R near 1 means a group moves as one; R near 0 means phases spread around the circle (or two equal
groups in anti-phase). Runs in a few seconds on a CPU.
"""

from __future__ import annotations

import argparse
import os

import jax
import jax.numpy as jnp
import numpy as np

from akorn_jax import kuramoto
from akorn_jax.evaluate import plots

N_PER_GROUP = 32  # oscillators per group
FEATURE_DIM = 8


def two_group_input(key: jax.Array, n_per_group: int = N_PER_GROUP, noise: float = 0.5):
  """Synthetic input: features [2 * n_per_group, FEATURE_DIM] around two random centres, and the
  group of each oscillator (0 for the first n_per_group, 1 for the rest; used only for reporting)."""
  k_centres, k_noise = jax.random.split(key)
  centres = jax.random.normal(k_centres, (2, FEATURE_DIM))
  groups = jnp.repeat(jnp.arange(2), n_per_group)
  features = centres[groups] + noise * jax.random.normal(k_noise, (2 * n_per_group, FEATURE_DIM))
  return features, groups


def coupling_from_input(features: jax.Array, strength: float = 2.0) -> jax.Array:
  """Fully connected coupling J [N, N] from feature similarity: the cosine similarity of the
  centred features, scaled by strength / N; no self-coupling."""
  f = features - features.mean(0)
  f = f / jnp.linalg.norm(f, axis=1, keepdims=True)
  j = strength * (f @ f.T) / f.shape[0]
  return j * (1.0 - jnp.eye(f.shape[0]))


def simulate(key: jax.Array, j: jax.Array, *, batch: int = 8, steps: int = 100, gamma: float = 0.5,
             freq_spread: float = 0.05) -> jax.Array:
  """Runs `batch` random initial states through T Kuramoto steps under coupling J.

  Returns:
    phases [T + 1, batch, N] in radians (step 0 = the initial state).
  """
  num = j.shape[0]
  k_x, k_w = jax.random.split(key)
  x0 = jax.random.normal(k_x, (batch, num * 2))  # N oscillators of n = 2 channels, channels-last
  # One natural frequency per oscillator, spread around 0: we watch in the frame that rotates with
  # their mean (a common rotation changes no order parameter and would only stripe the picture).
  omega = freq_spread * jax.random.normal(k_w, (num,))

  def coupling(x):  # J acts on oscillators; each oscillator's 2 channels are coupled alike
    return jnp.einsum("ij,bjd->bid", j, x.reshape(batch, num, 2)).reshape(x.shape)

  _, aux = kuramoto.integrate(x0, jnp.zeros_like(x0), coupling, n=2, steps=steps, gamma=gamma,
                              omega=omega, return_states=True)
  states = jnp.concatenate([kuramoto.normalize(x0, 2)[None], aux["states"]])  # [T+1, B, 2N]
  pairs = states.reshape(steps + 1, batch, num, 2)
  return jnp.arctan2(pairs[..., 1], pairs[..., 0])


def order_parameter(phases: jax.Array) -> jax.Array:
  """R = |mean_i e^{iθ_i}| over the last axis."""
  return jnp.abs(jnp.mean(jnp.exp(1j * phases), axis=-1))


def group_order(phases: jax.Array, groups: jax.Array) -> dict[str, np.ndarray]:
  """Order parameter per group and over all oscillators, [T + 1] each (mean over the batch)."""
  groups = np.asarray(groups)
  out = {f"group {'AB'[g]}": order_parameter(phases[..., groups == g]) for g in (0, 1)}
  out["all"] = order_parameter(phases)
  return {k: np.asarray(v.mean(axis=1)) for k, v in out.items()}


def phase_picture(phases: np.ndarray, scale: int = 4) -> np.ndarray:
  """[T + 1, N] phases -> [N * scale, (T + 1) * scale, 3] uint8, hue = phase (a colour wheel)."""
  hue = (np.asarray(phases).T % (2 * np.pi)) / (2 * np.pi)  # [N, T+1] in [0, 1)
  # Hue -> RGB on a full-saturation, full-value wheel.
  k = (np.array([5.0, 3.0, 1.0]) + hue[..., None] * 6.0) % 6.0
  rgb = 1.0 - np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
  rgb = np.repeat(np.repeat(rgb, scale, axis=0), scale, axis=1)
  return np.round(rgb * 255).astype(np.uint8)


def plot_order(curves: dict[str, np.ndarray], path: str) -> bool:
  """Line plot of the order parameters over steps; False (and a message) without matplotlib."""
  try:
    plots.line_plot(np.arange(len(curves["all"])), curves, path, xlabel="Kuramoto step t",
                    ylabel="order parameter R", title="Synchrony within and across groups",
                    dashed=("all",))
  except ImportError as e:
    print(f"Skipping {path}: {e}")
    return False
  return True


def main(out: str, steps: int = 100, seed: int = 0) -> dict[str, np.ndarray]:
  """Runs the example, prints a table, writes the pictures; returns the order-parameter curves."""
  from PIL import Image  # pylint: disable=g-import-not-at-top

  k_input, k_run = jax.random.split(jax.random.key(seed))
  features, groups = two_group_input(k_input)
  phases = simulate(k_run, coupling_from_input(features), steps=steps)
  curves = group_order(phases, groups)
  print(f"{'step':>6} " + " ".join(f"{name:>9}" for name in curves))
  for t in sorted({0, 5, 10, 20, 50, steps}):
    if t <= steps:
      print(f"{t:>6} " + " ".join(f"{r[t]:9.3f}" for r in curves.values()))
  os.makedirs(out, exist_ok=True)
  Image.fromarray(phase_picture(phases[:, 0])).save(os.path.join(out, "phases.png"))
  plot_order(curves, os.path.join(out, "order.png"))
  print(f"pictures in {out}/")
  return curves


if __name__ == "__main__":
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--out", default="/tmp/kuramoto_sync", help="folder for the PNGs")
  parser.add_argument("--steps", type=int, default=100, help="Kuramoto steps T")
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args()
  main(args.out, args.steps, args.seed)
