"""Tests for akorn_jax.metrics against sklearn, hand-computed cases and direct loops."""

import jax
import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from akorn_jax import metrics


def _sklearn_fg_ari(true, pred):
  true, pred = np.ravel(true), np.ravel(pred)
  return adjusted_rand_score(true[true > 0], pred[true > 0])


@pytest.mark.parametrize("seed", range(4))
def test_fg_ari_matches_sklearn_on_random_maps(seed):
  rng = np.random.default_rng(seed)
  true = rng.integers(-1, 5, size=(5, 7))
  pred = rng.integers(0, 3 + seed, size=(5, 7))
  assert metrics.fg_ari(true, pred) == pytest.approx(_sklearn_fg_ari(true, pred), abs=1e-12)


def test_fg_ari_matches_sklearn_on_partly_right_map():
  rng = np.random.default_rng(7)
  true = np.repeat(np.arange(4), 30)
  pred = np.where(rng.random(120) < 0.8, true, rng.integers(0, 4, 120))  # mostly right
  ari = metrics.fg_ari(true, pred)
  assert 0.2 < ari < 1.0
  assert ari == pytest.approx(_sklearn_fg_ari(true, pred), abs=1e-12)


def test_fg_ari_hand_cases():
  true = np.array([[0, 1, 1], [2, 2, -1]])
  # Same partition of the foreground under other ids; background and ignore pixels are free.
  assert metrics.fg_ari(true, np.array([[9, 4, 4], [7, 7, 4]])) == 1.0
  # Foreground pixels {1, 1, 2, 2} all in one cluster: ARI 0 (sklearn's value too).
  assert metrics.fg_ari(true, np.zeros_like(true)) == pytest.approx(0.0)
  assert metrics.fg_ari(true, np.array([[0, 0, 1], [0, 1, 5]])) == pytest.approx(-0.5)
  # Degenerate: one object, one cluster -> 1.0 as in sklearn; no foreground -> NaN.
  assert metrics.fg_ari(np.array([0, 3, 3, -1]), np.array([1, 2, 2, 0])) == 1.0
  assert np.isnan(metrics.fg_ari(np.array([0, 0, -1]), np.array([1, 2, 3])))


def test_fg_ari_is_invariant_to_relabelling():
  rng = np.random.default_rng(3)
  true = rng.integers(0, 4, size=(5, 7))
  pred = rng.integers(0, 5, size=(5, 7))
  perm = rng.permutation(5) + 10
  assert metrics.fg_ari(true, perm[pred]) == pytest.approx(metrics.fg_ari(true, pred), abs=1e-12)
  # Permuting pixels consistently leaves it unchanged too.
  order = rng.permutation(35)
  assert metrics.fg_ari(true.ravel()[order], pred.ravel()[order]) == pytest.approx(metrics.fg_ari(true, pred))


def test_fg_ari_batch_and_shape_error():
  rng = np.random.default_rng(0)
  true = rng.integers(0, 4, size=(3, 5, 7))
  true[1] = 0  # no foreground
  pred = rng.integers(0, 4, size=(3, 5, 7))
  got = metrics.fg_ari_batch(true, pred)
  assert got.shape == (3,)
  assert np.isnan(got[1])
  np.testing.assert_allclose(got[[0, 2]], [_sklearn_fg_ari(true[i], pred[i]) for i in (0, 2)], atol=1e-12)
  with pytest.raises(ValueError, match="same shape"):
    metrics.fg_ari(true[0], pred[0, :4])


def test_mbo_hand_computed():
  true = np.array([1, 1, 1, 2, 2, 0, 0, -1])
  pred = np.array([0, 0, 1, 1, 1, 1, 2, 0])
  # Valid pixels are 0..6 (pixel 7 is ignore, so cluster 0 is {0, 1}).
  # Object 1 = {0, 1, 2}: IoU with cluster 0 = 2/3, cluster 1 = {2, 3, 4, 5} -> 1/6; best 2/3.
  # Object 2 = {3, 4}: IoU with cluster 1 = 2/4 (its background pixel 5 counts in the union).
  assert metrics.mbo(true, pred) == pytest.approx((2 / 3 + 1 / 2) / 2)
  assert metrics.mbo(true.reshape(2, 4), pred.reshape(2, 4)) == pytest.approx(7 / 12)


def test_mbo_perfect_and_degenerate():
  true = np.array([[0, 1, 1], [2, 2, -1]])
  assert metrics.mbo(true, np.array([[5, 3, 3], [8, 8, 0]])) == 1.0
  # One cluster over everything valid: object 1 IoU 2/5, object 2 IoU 2/5.
  assert metrics.mbo(true, np.zeros_like(true)) == pytest.approx(0.4)
  assert np.isnan(metrics.mbo(np.array([0, 0, -1]), np.array([0, 1, 1])))
  got = metrics.mbo_batch(np.stack([true, np.zeros_like(true)]), np.zeros((2, 2, 3), int))
  assert got[0] == pytest.approx(0.4) and np.isnan(got[1])


def _boards():
  rng = np.random.default_rng(0)
  solution = rng.integers(1, 10, size=(3, 9, 9))
  puzzle = np.where(rng.random((3, 9, 9)) < 0.5, 0, solution)
  puzzle[:, 0, 0], puzzle[:, 0, 1] = solution[:, 0, 0], 0  # (0,0) given, (0,1) blank everywhere
  pred = solution.copy()
  pred[1, 0, 0] = pred[1, 0, 0] % 9 + 1  # wrong on a given cell: still solved
  pred[2, 0, 1] = pred[2, 0, 1] % 9 + 1  # wrong on a blank cell: not solved
  return pred, solution, puzzle


def test_board_and_cell_accuracy_from_digits_and_logits():
  pred, solution, puzzle = _boards()
  logits = jax.nn.one_hot(pred - 1, 9) * 3.0 + 0.1 * np.random.default_rng(1).random((3, 9, 9, 9))
  blanks = int((puzzle == 0).sum())
  for x in (pred, logits):
    assert float(metrics.board_accuracy(x, solution, puzzle)) == pytest.approx(2 / 3)
    assert float(metrics.cell_accuracy(x, solution, puzzle)) == pytest.approx((blanks - 1) / blanks)
  for i, solved in enumerate([1.0, 1.0, 0.0]):  # per board: given cells are not checked
    assert float(metrics.board_accuracy(pred[i : i + 1], solution[i : i + 1], puzzle[i : i + 1])) == solved
  jitted = jax.jit(metrics.board_accuracy)(logits, solution, puzzle)
  assert float(jitted) == pytest.approx(2 / 3)


def test_board_accuracy_rejects_bad_shape():
  with pytest.raises(ValueError, match="9, 9"):
    metrics.board_accuracy(np.zeros((2, 8, 8)), np.zeros((2, 8, 8)), np.zeros((2, 8, 8)))


def _loop_ece(probs, labels, num_bins):
  edges = np.linspace(0, 1, num_bins + 1)
  total = 0.0
  for b in range(num_bins):
    members = [
        i for i in range(len(labels))
        if (edges[b] < probs[i].max() <= edges[b + 1]) or (b == 0 and probs[i].max() == 0)
    ]
    if members:
      acc = np.mean([probs[i].argmax() == labels[i] for i in members])
      conf = np.mean([probs[i].max() for i in members])
      total += len(members) / len(labels) * abs(acc - conf)
  return total


@pytest.mark.parametrize("num_bins", [15, 7])
def test_ece_matches_direct_loop(num_bins):
  rng = np.random.default_rng(num_bins)
  logits = rng.normal(size=(211, 5)) * 2.0
  probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
  labels = rng.integers(0, 5, size=211)
  ece = metrics.expected_calibration_error(probs, labels, num_bins)
  assert ece > 0.05
  assert ece == pytest.approx(_loop_ece(probs, labels, num_bins), abs=1e-12)


def test_ece_bin_edges_and_calibration_bins():
  # Confidences sit exactly on edges 0.4 and 0.8 (5 bins): they belong to the bins they close.
  probs = np.array([[0.4, 0.3, 0.3], [0.8, 0.1, 0.1], [0.1, 0.1, 0.8], [0.2, 0.8, 0.0]])
  labels = np.array([0, 1, 2, 1])
  bins = metrics.calibration_bins(probs, labels, num_bins=5)
  np.testing.assert_array_equal(bins["count"], [0, 1, 0, 3, 0])
  np.testing.assert_allclose(bins["accuracy"], [0, 1, 0, 2 / 3, 0])
  np.testing.assert_allclose(bins["confidence"], [0, 0.4, 0, 0.8, 0])
  np.testing.assert_allclose(bins["bin_edges"], np.linspace(0, 1, 6))
  expected = 0.25 * 0.6 + 0.75 * abs(2 / 3 - 0.8)
  assert metrics.expected_calibration_error(probs, labels, 5) == pytest.approx(expected)
  assert expected == pytest.approx(_loop_ece(probs, labels, 5))
  # A perfectly calibrated, always-confident model has ECE 0.
  assert metrics.expected_calibration_error(np.eye(4), np.arange(4)) == 0.0
