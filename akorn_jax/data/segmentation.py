"""Natural-image object discovery sets: Pascal VOC 2012 and COCO 2017 instance + semantic masks.

Both readers are random-access sources (len, [i]) of examples
  {"image": uint8 [S, S, 3], "mask": int32 [S, S] instances, "class_mask": int32 [S, S] classes}
with 0 = background and -1 = ignore, at S = 256 as in the reference's evaluation:
  * VOC (`val`, 1,449 images): shorter side resized to 256 with **nearest** for the image and both
    label maps (the reference does so), centre crop 256; label 255 (object boundaries) -> -1.
    Instance ids come from SegmentationObject, classes (1..20) from SegmentationClass, both
    palette PNGs whose pixel values are the indices.
  * COCO (`val2017`, 5,000 images): non-crowd annotations of instances_val2017.json; an instance is
    a polygon list or an RLE (uncompressed counts or COCO's compressed string); later annotations
    overwrite earlier ones, and pixels covered by more than one instance are -1 in both maps.
    Classes are COCO category ids. Shorter side resized to 256 (bilinear image, nearest masks),
    centre crop 256.
The evaluation clusters into 4 (VOC) or 7 (COCO) groups and reports MBO against both maps
(MBO_i on `mask`, MBO_c on `class_mask`). No download: see docs/datasets.md for the folder layout.

RLE and polygons are decoded here (no pycocotools): RLE counts alternate background/foreground
runs over the column-major (Fortran-order) pixels, starting with background; the compressed string
stores each count in 5-bit groups, 6 bits per character offset by 48, bit 0x20 = "more groups",
sign from bit 0x10 of the last group, and counts after the second are deltas to the count two
before. Polygons are filled by the even-odd rule at pixel centres, which can differ from
pycocotools' rasteriser by a pixel along edges.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np
from PIL import Image

from akorn_jax import imageops

SIZE = 256


# ------------------------------------------------------------------------------------------------
# COCO mask decoding
# ------------------------------------------------------------------------------------------------


def rle_string_to_counts(s: str | bytes) -> list[int]:
  """Decodes COCO's compressed RLE string into run lengths."""
  data = s.encode() if isinstance(s, str) else s
  counts: list[int] = []
  p = 0
  while p < len(data):
    x, k, more = 0, 0, True
    while more:
      if p >= len(data):
        raise ValueError(f"Truncated COCO RLE string {s!r}: a count's last 6-bit group is missing.")
      c = data[p] - 48
      x |= (c & 0x1F) << (5 * k)
      more = bool(c & 0x20)
      p += 1
      k += 1
      if not more and c & 0x10:
        x |= -1 << (5 * k)
    if len(counts) > 2:
      x += counts[-2]
    counts.append(x)
  return counts


def rle_decode(counts: Sequence[int] | str | bytes, size: Sequence[int]) -> np.ndarray:
  """RLE (counts list or compressed string) of an [h, w] mask -> bool [h, w]."""
  h, w = int(size[0]), int(size[1])
  if isinstance(counts, (str, bytes)):
    counts = rle_string_to_counts(counts)
  counts = np.asarray(counts, np.int64)
  if np.any(counts < 0) or counts.sum() != h * w:
    raise ValueError(f"RLE counts sum to {counts.sum()} (min {counts.min(initial=0)}) but the mask "
                     f"has {h}x{w} = {h * w} pixels; the annotation is corrupt.")
  values = np.arange(len(counts)) % 2 == 1          # runs alternate 0, 1, 0, ...
  flat = np.repeat(values, counts)
  return flat.reshape(w, h).T                         # column-major


def polygon_mask(polygons: Sequence[Sequence[float]], height: int, width: int) -> np.ndarray:
  """Union of polygons [x0, y0, x1, y1, ...] (pixel coordinates) -> bool [height, width].

  A pixel is inside when its centre (x + 0.5, y + 0.5) is inside by the even-odd rule.
  """
  mask = np.zeros((height, width), bool)
  ys = np.arange(height)[:, None] + 0.5
  xs = np.arange(width)[None, :] + 0.5
  for poly in polygons:
    pts = np.asarray(poly, np.float64).reshape(-1, 2)
    if len(pts) < 3:
      continue
    inside = np.zeros((height, width), bool)
    x0, y0 = pts[:, 0], pts[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    for ax, ay, bx, by in zip(x0, y0, x1, y1):
      if ay == by:
        continue
      crosses = (ay > ys) != (by > ys)                # the edge spans this row's centre
      x_at = ax + (ys - ay) * (bx - ax) / (by - ay)
      inside ^= crosses & (xs < x_at)
    mask |= inside
  return mask


def annotation_mask(segmentation, height: int, width: int) -> np.ndarray:
  """One COCO `segmentation` (polygon list or RLE dict) -> bool [height, width]."""
  if isinstance(segmentation, list):
    return polygon_mask(segmentation, height, width)
  if isinstance(segmentation, dict) and "counts" in segmentation:
    return rle_decode(segmentation["counts"], segmentation.get("size", (height, width)))
  raise ValueError(f"Unknown COCO segmentation {str(segmentation)[:80]!r}; expected a polygon "
                   "list or an RLE dict with 'counts' and 'size'.")


# ------------------------------------------------------------------------------------------------
# Resizing (shorter side to SIZE, centre crop)
# ------------------------------------------------------------------------------------------------


def _resize_shorter(img: Image.Image, size: int, resample) -> Image.Image:
  w, h = img.size
  scale = size / min(w, h)
  return img.resize((max(size, round(w * scale)), max(size, round(h * scale))), resample)


def _center_crop(a: np.ndarray, size: int) -> np.ndarray:
  top, left = (a.shape[0] - size) // 2, (a.shape[1] - size) // 2
  return a[top:top + size, left:left + size]


def resize_and_crop(image: np.ndarray, maps: Sequence[np.ndarray], *, size: int = SIZE,
                    image_resample=Image.BILINEAR) -> tuple[np.ndarray, list[np.ndarray]]:
  """Shorter side to `size` (image with `image_resample`, label maps nearest), centre crop."""
  img = _center_crop(np.asarray(_resize_shorter(Image.fromarray(image), size, image_resample)), size)
  out = []
  for m in maps:
    # int32 maps with -1: PIL "I" mode keeps them exactly under nearest resizing.
    r = _resize_shorter(Image.fromarray(m.astype(np.int32), mode="I"), size, Image.NEAREST)
    out.append(_center_crop(np.asarray(r, np.int32), size))
  return img, out


# ------------------------------------------------------------------------------------------------
# Sources
# ------------------------------------------------------------------------------------------------


class VOCSegmentation:
  """Pascal VOC 2012 segmentation split as a random-access source (see the module docstring).

  Args:
    root: the `VOC2012` folder (JPEGImages/, SegmentationObject/, SegmentationClass/,
      ImageSets/Segmentation/<split>.txt).
    split: "val" (the reference's evaluation set), "train" or "trainval".
    size: output side.
  """

  def __init__(self, root: str, split: str = "val", *, size: int = SIZE):
    ids_file = os.path.join(root, "ImageSets", "Segmentation", f"{split}.txt")
    if not os.path.isfile(ids_file):
      raise FileNotFoundError(f"{ids_file} not found: root={root!r} must be the VOC2012 folder of "
                              "the VOC devkit (see docs/datasets.md).")
    with open(ids_file) as f:
      self.ids = [line.strip() for line in f if line.strip()]
    self.root, self.size = root, size

  def __len__(self) -> int:
    return len(self.ids)

  def __getitem__(self, i: int) -> dict[str, np.ndarray]:
    name = self.ids[i]
    image = np.asarray(Image.open(os.path.join(self.root, "JPEGImages", f"{name}.jpg")).convert("RGB"))
    maps = []
    for folder in ("SegmentationObject", "SegmentationClass"):
      with Image.open(os.path.join(self.root, folder, f"{name}.png")) as png:
        if png.mode != "P":
          raise ValueError(f"{folder}/{name}.png has mode {png.mode!r}; VOC label maps are palette "
                           "('P') PNGs whose pixel values are the ids.")
        m = np.asarray(png, np.int32)
      maps.append(imageops.ignore_to_minus_one(m))
    image, (mask, classes) = resize_and_crop(image, maps, size=self.size,
                                             image_resample=Image.NEAREST)
    return {"image": image, "mask": mask, "class_mask": classes}


class COCOSegmentation:
  """COCO instances as a random-access source (see the module docstring).

  Args:
    annotations: path of instances_<split>.json.
    images: folder of the split's images (file_name of each image entry).
    size: output side.
  """

  def __init__(self, annotations: str, images: str, *, size: int = SIZE):
    with open(annotations) as f:
      data = json.load(f)
    for key in ("images", "annotations"):
      if key not in data:
        raise ValueError(f"{annotations} has no {key!r} list; expected a COCO instances JSON.")
    self.images_dir, self.size = images, size
    self.images = sorted(data["images"], key=lambda im: im["id"])
    self.anns: dict[int, list] = {im["id"]: [] for im in self.images}
    for a in data["annotations"]:  # file order: later annotations overwrite earlier ones
      if not a.get("iscrowd", 0) and a["image_id"] in self.anns:
        self.anns[a["image_id"]].append(a)

  def __len__(self) -> int:
    return len(self.images)

  def masks(self, i: int) -> tuple[np.ndarray, np.ndarray]:
    """Full-resolution (instance, class) int32 maps of image i."""
    im = self.images[i]
    h, w = im["height"], im["width"]
    inst, cls = np.zeros((h, w), np.int32), np.zeros((h, w), np.int32)
    cover = np.zeros((h, w), np.int32)
    for k, a in enumerate(self.anns[im["id"]], start=1):
      m = annotation_mask(a["segmentation"], h, w)
      inst[m], cls[m] = k, a["category_id"]
      cover += m
    inst[cover > 1] = -1
    cls[cover > 1] = -1
    return inst, cls

  def __getitem__(self, i: int) -> dict[str, np.ndarray]:
    path = os.path.join(self.images_dir, self.images[i]["file_name"])
    image = np.asarray(Image.open(path).convert("RGB"))
    image, (mask, classes) = resize_and_crop(image, self.masks(i), size=self.size)
    return {"image": image, "mask": mask, "class_mask": classes}
