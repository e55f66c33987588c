"""Pictures for object discovery: oscillator states and masks as RGB, one composed figure, PNG output.

Plain numpy tiling (no matplotlib) so figures are cheap to make inside eval and training loops and
can go straight to TensorBoard or a PNG file.
"""

import os

import numpy as np
from PIL import Image

from akorn_jax import imageops

# Fixed, mutually distinct colours (matplotlib's tab10 then a few extras); label l gets entry l % 16.
_PALETTE = np.array(
    [
        (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
        (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
        (0, 0, 128), (128, 128, 0), (0, 128, 128), (255, 215, 0), (0, 0, 0), (170, 255, 195),
    ],
    dtype=np.uint8,
)
_IGNORE_RGB = np.array((255, 255, 255), np.uint8)
_GAP = 2  # white pixels between panels


def state_to_rgb(states: np.ndarray) -> np.ndarray:
  """Colours oscillator states by their top-3 principal components.

  The PCA is fitted jointly over all steps and positions, and each component is min-max scaled over
  all of them, so a colour means the same state at every step.

  Args:
    states: [T, h, w, C] states (C = K * n, flattened oscillators).

  Returns:
    [T, h, w, 3] uint8.
  """
  states = np.asarray(states, np.float64)
  t, h, w, c = states.shape
  x = states.reshape(-1, c)
  x = x - x.mean(0)
  _, vecs = np.linalg.eigh(x.T @ x)  # eigenvalues ascending
  proj = x @ vecs[:, ::-1][:, :3]
  proj = np.pad(proj, ((0, 0), (0, 3 - proj.shape[1])))  # C < 3: missing components stay constant
  lo, hi = proj.min(0), proj.max(0)
  rgb = (proj - lo) / np.where(hi > lo, hi - lo, 1.0)
  return np.round(rgb * 255).astype(np.uint8).reshape(t, h, w, 3)


def mask_to_rgb(labels: np.ndarray) -> np.ndarray:
  """Colours a label map with a fixed palette: [H, W] int -> [H, W, 3] uint8; -1 (ignore) is white."""
  labels = np.asarray(labels)
  rgb = _PALETTE[np.mod(labels, len(_PALETTE))]
  rgb[labels < 0] = _IGNORE_RGB
  return rgb


def object_figure(
    image: np.ndarray, true_mask: np.ndarray, pred_mask: np.ndarray, states: np.ndarray
) -> np.ndarray:
  """One row of panels: input, ground truth, prediction, then the state at every step.

  Masks and states are upsampled (nearest) to the image size; panels are separated by white gaps.

  Args:
    image: [H, W, 3] uint8, or float in [0, 1].
    true_mask: [H', W'] int ground-truth ids (-1 ignore).
    pred_mask: [H'', W''] int predicted clusters.
    states: [T, h, w, C] oscillator states over steps.

  Returns:
    [H, (T + 3) * W + (T + 2) * gap, 3] uint8 (gap = 2 pixels).
  """
  image = imageops.to_uint8(image)
  size = image.shape[:2]
  panels = [image] + [imageops.resize_nearest(mask_to_rgb(m), size) for m in (true_mask, pred_mask)]
  panels += [imageops.resize_nearest(s, size) for s in state_to_rgb(states)]
  gap = np.full((size[0], _GAP, 3), 255, np.uint8)
  return np.concatenate([p for panel in panels for p in (panel, gap)][:-1], axis=1)


def save_png(path: str, array: np.ndarray) -> None:
  """Writes an [H, W, 3] or [H, W] image (uint8, or float in [0, 1]) as a PNG, creating parent directories."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  Image.fromarray(imageops.to_uint8(array)).save(path, format="PNG")
