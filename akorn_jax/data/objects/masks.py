"""The mask convention of the object-discovery datasets.

Masks are uint8 `[H, W]`: 0 = background, 1..K = object instance, and 255 = ignore where the source
has overlapping objects (only `shapes`). Evaluation converts 255 to -1, the reference's ignore label.
"""

from __future__ import annotations

import numpy as np

IGNORE = 255  # mask value of pixels covered by more than one object


def eval_labels(mask: np.ndarray) -> np.ndarray:
  """Stored uint8 masks [..., H, W] -> int32 labels with the ignore value 255 mapped to -1."""
  labels = mask.astype(np.int32)
  return np.where(labels == IGNORE, -1, labels)
