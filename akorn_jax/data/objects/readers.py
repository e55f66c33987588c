"""Readers of the original object-discovery releases: one record or file -> {"image", "mask"}."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PIL import Image


if TYPE_CHECKING:
  from akorn_jax.data.objects.builders import MultiObjectConfig


def centre_nearest_indices(size_in: int, size_out: int) -> np.ndarray:
  """Source index of each output pixel of a nearest resize by the pixel-centre rule, the
  reference's CLEVR conversion: floor((i + 1/2) · size_in / size_out) (192 -> 128 keeps rows
  0, 2, 3, 5, 6, 8, ...; the legacy floor(i · scale) rule of imageops.resize_nearest would keep
  0, 1, 3, 4, ...)."""
  return (2 * np.arange(size_out) + 1) * size_in // (2 * size_out)


def process_multi_object(features: dict[str, bytes | np.ndarray],
                         cfg: MultiObjectConfig) -> dict[str, np.ndarray] | None:
  """One decoded record -> {"image", "mask"} per docs/datasets.md#multi-object-datasets, or None
  when the filter drops it."""
  h, w = cfg.source_size
  image = np.frombuffer(features["image"], np.uint8).reshape(h, w, 3)
  slots = np.frombuffer(features["mask"], np.uint8).reshape(-1, h, w)  # [K, H, W] (trailing 1 dropped)
  k = np.arange(len(slots), dtype=np.uint8)[:, None, None]
  labels = (k * (slots == 255)).max(0)  # later slots overwrite earlier ones
  r0, r1, c0, c1 = cfg.crop
  image, labels = image[r0:r1, c0:c1], labels[r0:r1, c0:c1]
  if cfg.max_label is not None and labels.max() > cfg.max_label:
    return None
  rows = centre_nearest_indices(r1 - r0, cfg.out_size)
  cols = centre_nearest_indices(c1 - c0, cfg.out_size)
  return {"image": np.ascontiguousarray(image[rows][:, cols]),
          "mask": np.ascontiguousarray(labels[rows][:, cols])}


def load_clevrtex(path: str, size: int = 128) -> dict[str, np.ndarray]:
  """Reads CLEVRTex image `path` and its `_flat.png` mask; crops the centre square and resizes."""
  image = Image.open(path).convert("RGB")
  mask = Image.open(path[:-4] + "_flat.png")  # palette or grey: raw values are the object ids
  w, h = image.size
  side = int(0.8 * min(h, w))
  top, left = int(round((h - side) / 2)), int(round((w - side) / 2))  # torchvision CenterCrop
  box = (left, top, left + side, top + side)
  image = image.crop(box).resize((size, size), Image.BILINEAR)
  mask = np.asarray(mask.crop(box).resize((size, size), Image.NEAREST))
  return {"image": np.asarray(image, np.uint8), "mask": (mask[..., 0] if mask.ndim == 3 else mask)
          .astype(np.uint8)}
