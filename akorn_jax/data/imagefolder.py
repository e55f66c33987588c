"""An ImageNet-style folder of class subfolders as a random-access source, for SimCLR
pre-training on natural images (the paper pre-trains AKOrN on ImageNet for Pascal VOC / COCO).

Layout: <root>/<split>/<class>/<image>.{JPEG,jpg,jpeg,png} (the ImageNet train/val layout after
the usual val re-foldering). Each example is {"image": uint8 [S, S, 3], "label": int32}: the
shorter side resized to S (bilinear) and the centre S x S crop, S = 256 by default, the
reference's ImageNet view size. SimCLR views (random resized crop, colour jitter, grey, flip) are
then made on the accelerator from these squares by the objects task. No download: see
docs/datasets.md.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

EXTENSIONS = (".jpeg", ".jpg", ".png")


class ImageFolder:
  """Random-access source over <root>/<split>/<class>/* images (sorted classes and files)."""

  def __init__(self, root: str, split: str = "train", *, size: int = 256):
    folder = os.path.join(root, split)
    if not os.path.isdir(folder):
      raise FileNotFoundError(f"{folder} is not a folder: expected <root>/<split>/<class>/<images> "
                              f"with root={root!r}, split={split!r} (see docs/datasets.md).")
    self.classes = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))
    self.files: list[tuple[str, int]] = []
    for label, cls in enumerate(self.classes):
      names = sorted(n for n in os.listdir(os.path.join(folder, cls))
                     if n.lower().endswith(EXTENSIONS))
      self.files += [(os.path.join(folder, cls, n), label) for n in names]
    if not self.files:
      raise FileNotFoundError(f"No images ({', '.join(EXTENSIONS)}) in the class folders of "
                              f"{folder}.")
    self.size = size

  def __len__(self) -> int:
    return len(self.files)

  def __getitem__(self, i: int) -> dict[str, np.ndarray]:
    path, label = self.files[i]
    with Image.open(path) as img:
      img = img.convert("RGB")
      w, h = img.size
      scale = self.size / min(w, h)
      img = img.resize((max(self.size, round(w * scale)), max(self.size, round(h * scale))),
                       Image.BILINEAR)
    a = np.asarray(img)
    top, left = (a.shape[0] - self.size) // 2, (a.shape[1] - self.size) // 2
    return {"image": np.ascontiguousarray(a[top:top + self.size, left:left + self.size]),
            "label": np.int32(label)}
