"""Evaluation metrics as small pure functions (docs/evaluation.md#fg-ari-and-mbo,
docs/evaluation.md#sudoku, docs/evaluation.md#corruptions-and-calibration).

Object-discovery metrics (FG-ARI, MBO) run per image on the host in numpy: they follow a
data-dependent clustering step that is host-side anyway. Sudoku board metrics use jnp so they also
work inside a jitted, sharded eval step. Label conventions for object masks: 0 is background, -1 is
"ignore" (the datasets' 255), positive integers are objects.
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike


def _flat_pair(true_labels: ArrayLike, pred_labels: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
  true = np.asarray(true_labels).reshape(-1)
  pred = np.asarray(pred_labels).reshape(-1)
  if true.shape != pred.shape:
    raise ValueError(
        f"true_labels has {true.size} entries but pred_labels has {pred.size}; pass label maps of the"
        " same shape (upsample the predicted map to the mask resolution first)."
    )
  return true, pred


def _contingency(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """Counts n_ij of items with label a_i and b_j: [num distinct a, num distinct b] int64."""
  a_ids, a_idx = np.unique(a, return_inverse=True)
  b_ids, b_idx = np.unique(b, return_inverse=True)
  counts = np.bincount(a_idx * len(b_ids) + b_idx, minlength=len(a_ids) * len(b_ids))
  return counts.reshape(len(a_ids), len(b_ids)).astype(np.int64)


def fg_ari(true_labels: ArrayLike, pred_labels: ArrayLike) -> float:
  """Foreground adjusted Rand index of one image (docs/evaluation.md#fg-ari-and-mbo).

  Only pixels whose ground truth is > 0 count (background 0 and ignore -1 are dropped); the predicted
  labels of those pixels are compared with the object ids. Computed from the pair-counting form of
  the contingency table, which equals `sklearn.metrics.adjusted_rand_score` on the foreground pixels.

  Degenerate cases: as in sklearn, a perfect pair agreement (no pair split by one labelling and
  joined by the other) gives 1.0; this includes one object predicted as one cluster and a single
  foreground pixel. An image with no foreground pixel gives NaN (sklearn would say 1.0), so that
  batch means with `np.nanmean` skip it instead of rewarding it.

  Args:
    true_labels: [H, W] or [N] int ground-truth object ids.
    pred_labels: same shape, predicted cluster ids (any integers).

  Returns:
    The FG-ARI in [-1, 1], or NaN without foreground.
  """
  true, pred = _flat_pair(true_labels, pred_labels)
  fg = true > 0
  if not fg.any():
    return float("nan")
  table = _contingency(true[fg], pred[fg])
  n = int(fg.sum())
  # Python ints: the pair counts reach n^4 in the final products and overflow int64 for large images.
  sum_sq = int((table**2).sum())
  true_sq = int((table.sum(1) ** 2).sum())
  pred_sq = int((table.sum(0) ** 2).sum())
  tp = sum_sq - n
  fp = pred_sq - sum_sq  # pairs together in pred, apart in truth
  fn = true_sq - sum_sq  # pairs together in truth, apart in pred
  tn = n * n - fp - fn - sum_sq
  if fp == 0 and fn == 0:
    return 1.0
  return 2.0 * (tp * tn - fn * fp) / ((tp + fn) * (fn + tn) + (tp + fp) * (fp + tn))


def mbo(true_labels: ArrayLike, pred_labels: ArrayLike) -> float:
  """Mean best overlap of one image (docs/evaluation.md#fg-ari-and-mbo).

  For every ground-truth object (labels other than 0 and -1), the best IoU over all predicted
  clusters, averaged over objects. Pixels whose ground truth is -1 are ignored for both labellings;
  predicted clusters that cover background still count in the unions.

  Args:
    true_labels: [H, W] or [N] int ground-truth ids (0 background, -1 ignore).
    pred_labels: same shape, predicted cluster ids.

  Returns:
    The MBO in [0, 1], or NaN when the image has no object.
  """
  true, pred = _flat_pair(true_labels, pred_labels)
  valid = true != -1
  true, pred = true[valid], pred[valid]
  table = _contingency(true, pred)  # [num true ids incl. background, num clusters]
  is_object = np.unique(true) > 0
  if not is_object.any():
    return float("nan")
  inter = table[is_object]  # [objects, clusters]
  union = table[is_object].sum(1, keepdims=True) + table.sum(0, keepdims=True) - inter
  return float((inter / union).max(1).mean())


def _batched(fn, true_labels: ArrayLike, pred_labels: ArrayLike) -> np.ndarray:
  true, pred = np.asarray(true_labels), np.asarray(pred_labels)
  if true.shape != pred.shape or true.ndim < 2:
    raise ValueError(
        f"Expected true and pred label maps of one shape [B, H, W], got {true.shape} and"
        f" {pred.shape}; upsample the predictions to the mask resolution first."
    )
  return np.array([fn(t, p) for t, p in zip(true, pred)], dtype=np.float64)


def fg_ari_batch(true_labels: ArrayLike, pred_labels: ArrayLike) -> np.ndarray:
  """`fg_ari` per image: [B, H, W] x2 -> [B] float64 (NaN for images without foreground)."""
  return _batched(fg_ari, true_labels, pred_labels)


def mbo_batch(true_labels: ArrayLike, pred_labels: ArrayLike) -> np.ndarray:
  """`mbo` per image: [B, H, W] x2 -> [B] float64 (NaN for images without objects)."""
  return _batched(mbo, true_labels, pred_labels)


def _sudoku_digits(logits_or_pred: ArrayLike) -> jax.Array:
  """Predicted digits 1..9 from logits [..., 9, 9, 9] (class k = digit k+1) or digits [..., 9, 9]."""
  x = jnp.asarray(logits_or_pred)
  if x.ndim >= 4 and x.shape[-1] == 9:
    return jnp.argmax(x, axis=-1) + 1
  if x.shape[-2:] != (9, 9):
    raise ValueError(
        f"Expected Sudoku logits [B, 9, 9, 9] or digits [B, 9, 9], got shape {x.shape}."
    )
  return x


def board_accuracy(logits_or_pred: ArrayLike, solution: ArrayLike, puzzle: ArrayLike) -> jax.Array:
  """Fraction of boards solved (docs/evaluation.md#sudoku); jit-compatible.

  A board is solved iff the prediction is right on every blank cell; given cells are not checked.

  Args:
    logits_or_pred: [B, 9, 9, 9] logits (class k means digit k+1) or [B, 9, 9] digits 1..9.
    solution: [B, 9, 9] digits 1..9.
    puzzle: [B, 9, 9] digits 1..9 for given cells, 0 for blanks.

  Returns:
    A float32 scalar array in [0, 1].
  """
  pred, solution, blank = _sudoku_digits(logits_or_pred), jnp.asarray(solution), jnp.asarray(puzzle) == 0
  solved = jnp.all((pred == solution) | ~blank, axis=(-2, -1))
  return jnp.mean(solved.astype(jnp.float32))


def cell_accuracy(logits_or_pred: ArrayLike, solution: ArrayLike, puzzle: ArrayLike) -> jax.Array:
  """Fraction of blank cells predicted right, pooled over the batch; jit-compatible.

  Args and digit convention as in `board_accuracy`.

  Returns:
    A float32 scalar array in [0, 1] (NaN if no cell is blank).
  """
  pred, solution, blank = _sudoku_digits(logits_or_pred), jnp.asarray(solution), jnp.asarray(puzzle) == 0
  correct = jnp.sum((pred == solution) & blank)
  return (correct / jnp.sum(blank)).astype(jnp.float32)


def calibration_bins(probs: ArrayLike, labels: ArrayLike, num_bins: int = 15) -> dict[str, np.ndarray]:
  """Reliability-diagram statistics on equal-width confidence bins.

  Confidence is the max class probability; bin b holds confidences in (edge_b, edge_{b+1}] (the
  first bin also takes 0), the convention of Guo et al. (2017).

  Args:
    probs: [N, K] class probabilities.
    labels: [N] int true classes.
    num_bins: number of equal-width bins on [0, 1].

  Returns:
    dict with `bin_edges` [num_bins + 1], and per bin `accuracy`, `confidence` (means, 0 for an empty
    bin) and `count` [num_bins] int64.
  """
  probs, labels = np.asarray(probs, np.float64), np.asarray(labels).reshape(-1)
  if probs.ndim != 2 or probs.shape[0] != labels.shape[0]:
    raise ValueError(
        f"Expected probs [N, K] and labels [N], got {probs.shape} and {labels.shape}; pass softmax"
        " outputs, one row per example."
    )
  edges = np.linspace(0.0, 1.0, num_bins + 1)
  conf = probs.max(1)
  hit = (probs.argmax(1) == labels).astype(np.float64)
  # side="left" puts a confidence equal to an edge into the bin that edge closes.
  idx = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, num_bins - 1)
  count = np.bincount(idx, minlength=num_bins)
  safe = np.maximum(count, 1)
  return {
      "bin_edges": edges,
      "accuracy": np.bincount(idx, hit, minlength=num_bins) / safe,
      "confidence": np.bincount(idx, conf, minlength=num_bins) / safe,
      "count": count.astype(np.int64),
  }


def expected_calibration_error(probs: ArrayLike, labels: ArrayLike, num_bins: int = 15) -> float:
  """ECE = sum_b |B_b| / N * |acc_b - conf_b| over equal-width confidence bins.

  Args:
    probs: [N, K] class probabilities.
    labels: [N] int true classes.
    num_bins: number of bins (15, the usual choice; the paper's is unknown,
    docs/reference.md#open-points).

  Returns:
    The ECE in [0, 1].
  """
  bins = calibration_bins(probs, labels, num_bins)
  weight = bins["count"] / bins["count"].sum()
  return float(np.sum(weight * np.abs(bins["accuracy"] - bins["confidence"])))
