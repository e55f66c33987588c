"""The last two CIFAR-10-C corruptions, spatter and frost (tfds `cifar10_corrupted` names), in
numpy, written from Hendrycks & Dietterich's (2019) description and our memory of their CIFAR
script; the constants could not be checked offline, so these are "CIFAR-10-C-like" like the
others in `corruptions`.

spatter (severity -> (μ, σ, s, t, w, mud)): a liquid layer N(μ, σ²) per pixel, smoothed by a
Gaussian of σ = s, zeroed below t.
  * water (severities 1-3): edges of the layer (Canny, thresholds 50 / 150 on its uint8 copy) ->
    distance to the nearest edge (Euclidean), truncated at 20, 3x3 box blur, histogram
    equalisation, an emboss-like 3x3 filter [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]] saturated to
    uint8, 3x3 box blur; times the layer, normalised to max 1 and scaled by w: that much pale
    turquoise (175, 238, 238)/255 is added to the image.
  * mud (severities 4-5): the mask layer > t is smoothed by a Gaussian of σ = w and zeroed below
    .8; the image is blended towards mud brown (63, 42, 20)/255 by that mask.
  Deviations: our Canny is a plain numpy one (Sobel 3x3 gradients, non-maximum suppression in
  4 directions, hysteresis by connected components) and our distance transform is exact
  Euclidean (OpenCV's 5x5 mask approximates it).

frost (severity -> (a, b)): a ·x + b · (a random 32 x 32 crop of one of five frost photographs,
scaled to 0.2 of their size). The photographs are the original ones, taken from the
`imagecorruptions` package (Apache-2.0; the optional `frost` extra: pip install akorn_jax[frost]
or pip install imagecorruptions --no-deps): we only read its image files. Without it, frost
raises a clear error naming the install command.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import PIL.Image
import scipy.ndimage

SPATTER = ((0.62, 0.1, 0.7, 0.7, 0.5, 0), (0.65, 0.1, 0.8, 0.7, 0.5, 0),
           (0.65, 0.3, 1.0, 0.69, 0.5, 0), (0.65, 0.1, 0.7, 0.69, 0.6, 1),
           (0.65, 0.1, 0.5, 0.68, 0.6, 1))
FROST = ((1.0, 0.2), (1.0, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45))
FROST_FILES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg")
FROST_INSTALL = "pip install 'akorn_jax[frost]'  (or: pip install imagecorruptions --no-deps)"


# ------------------------------------------------------------------------------------------------
# Small image ops on uint8 / float maps (OpenCV-like borders: reflect-101)
# ------------------------------------------------------------------------------------------------


def box_blur3(a: np.ndarray) -> np.ndarray:
  """3x3 mean, reflect-101 borders (cv2.blur's default)."""
  return scipy.ndimage.uniform_filter(a.astype(np.float64), 3, mode="mirror")


def equalize_hist(a: np.ndarray) -> np.ndarray:
  """Histogram equalisation of a uint8 map (OpenCV's rule: lut = round((cdf - cdf_min) · 255 /
  (N - cdf_min)))."""
  hist = np.bincount(a.reshape(-1), minlength=256)
  cdf = np.cumsum(hist)
  cdf_min = cdf[np.nonzero(hist)[0][0]]
  denom = max(a.size - cdf_min, 1)
  lut = np.clip(np.round((cdf - cdf_min) * 255.0 / denom), 0, 255).astype(np.uint8)
  return lut[a]


def canny(a: np.ndarray, low: float, high: float) -> np.ndarray:
  """Edges (bool) of a uint8 map: Sobel gradients (L1 magnitude, as OpenCV's default),
  non-maximum suppression along the rounded gradient direction, hysteresis: weak edges
  (> low) are kept when connected (8-neighbours) to a strong one (> high)."""
  f = a.astype(np.float64)
  gx = scipy.ndimage.sobel(f, axis=1, mode="mirror")
  gy = scipy.ndimage.sobel(f, axis=0, mode="mirror")
  mag = np.abs(gx) + np.abs(gy)
  angle = (np.rad2deg(np.arctan2(gy, gx)) + 180.0) % 180.0
  pad = np.pad(mag, 1)
  h, w = mag.shape
  shifted = lambda dy, dx: pad[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
  sector = (np.round(angle / 45.0).astype(int)) % 4          # 0: horizontal gradient, 1: 45°, ...
  neighbours = {0: ((0, 1), (0, -1)), 1: ((1, 1), (-1, -1)), 2: ((1, 0), (-1, 0)),
                3: ((1, -1), (-1, 1))}
  keep = np.zeros_like(mag, bool)
  for s, (p, q) in neighbours.items():
    local = (mag >= shifted(*p)) & (mag > shifted(*q))
    keep |= (sector == s) & local
  strong = keep & (mag > high)
  weak = keep & (mag > low)
  labels, _ = scipy.ndimage.label(weak, structure=np.ones((3, 3)))
  good = np.unique(labels[strong])
  return np.isin(labels, good[good > 0])


def _gaussian(a: np.ndarray, sigma: float) -> np.ndarray:
  return scipy.ndimage.gaussian_filter(a, sigma, mode="nearest", truncate=4.0)


# ------------------------------------------------------------------------------------------------
# Corruptions: (images [B, H, W, 3] float in [0, 1], params, numpy Generator) -> images
# ------------------------------------------------------------------------------------------------


def spatter(x: np.ndarray, param, rng: np.random.Generator) -> np.ndarray:
  """Water (mud = 0) or mud (mud = 1) spatter, see the module docstring."""
  loc, scale, sigma, threshold, w, mud = param
  out = []
  for im in np.asarray(x, np.float32):
    layer = _gaussian(rng.normal(loc, scale, im.shape[:2]), sigma)
    layer[layer < threshold] = 0
    if not mud:
      layer8 = (layer * 255).astype(np.uint8)
      edges = canny(layer8, 50, 150)
      dist = scipy.ndimage.distance_transform_edt(~edges) if edges.any() else np.full(
          layer.shape, 20.0)
      dist = np.minimum(dist, 20.0)
      dist = equalize_hist(box_blur3(dist).astype(np.uint8))
      ker = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], np.float64)
      dist = np.clip(np.round(scipy.ndimage.correlate(dist.astype(np.float64), ker, mode="mirror")),
                     0, 255)
      dist = box_blur3(dist.astype(np.uint8)).astype(np.float32)
      m = layer8.astype(np.float32) * dist
      m = m / max(float(m.max()), 1e-12) * w
      color = np.array([175, 238, 238], np.float32) / 255.0
      out.append(np.clip(im + m[..., None] * color, 0.0, 1.0))
    else:
      m = _gaussian((layer > threshold).astype(np.float32), w)
      m[m < 0.8] = 0
      color = np.array([63, 42, 20], np.float32) / 255.0
      out.append(np.clip(im * (1 - m[..., None]) + color * m[..., None], 0.0, 1.0))
  return np.stack(out).astype(np.float32)


def frost_folder() -> str:
  """Folder of the frost photographs shipped by `imagecorruptions` (found without importing it,
  so its OpenCV / scikit-image dependencies are not needed)."""
  spec = importlib.util.find_spec("imagecorruptions")
  folders = list(spec.submodule_search_locations or []) if spec else []
  for folder in folders:
    path = os.path.join(folder, "frost")
    if all(os.path.isfile(os.path.join(path, f)) for f in FROST_FILES):
      return path
  raise FileNotFoundError("The frost corruption blends in the original frost photographs, which "
                          "come from the `imagecorruptions` package; it is not installed. Install "
                          f"it with: {FROST_INSTALL}. Or leave frost out of "
                          "config.eval.corruptions.")


_FROST_CACHE: dict[str, np.ndarray] = {}


def _frost_image(name: str) -> np.ndarray:
  if name not in _FROST_CACHE:
    with PIL.Image.open(os.path.join(frost_folder(), name)) as img:
      img = img.convert("RGB")
      small = img.resize((max(1, round(img.width * 0.2)), max(1, round(img.height * 0.2))),
                         PIL.Image.Resampling.BILINEAR)
    _FROST_CACHE[name] = np.asarray(small, np.float32) / 255.0
  return _FROST_CACHE[name]


def frost(x: np.ndarray, param, rng: np.random.Generator) -> np.ndarray:
  """a·x + b·(random crop of a frost photograph), see the module docstring."""
  a, b = param
  x = np.asarray(x, np.float32)
  h, w = x.shape[1:3]
  out = []
  for im in x:
    photo = _frost_image(FROST_FILES[rng.integers(len(FROST_FILES))])
    top = rng.integers(0, photo.shape[0] - h + 1)
    left = rng.integers(0, photo.shape[1] - w + 1)
    out.append(np.clip(a * im + b * photo[top:top + h, left:left + w], 0.0, 1.0))
  return np.stack(out).astype(np.float32)
