"""Offline generators of the object-discovery stand-ins: Tetrominoes, Multi-dSprites and Shapes.

Each returns `(images uint8 [N, H, W, 3], masks uint8 [N, H, W])`, deterministic in its seed.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np

from akorn_jax import imageops
from akorn_jax.imageops import IGNORE

# ------------------------------------------------------------------------------------------------
# Tetrominoes
# ------------------------------------------------------------------------------------------------

# The 19 fixed tetrominoes (shape x rotation): I 2, O 1, T 4, S 2, Z 2, J 4, L 4. Rows split by "/".
TETROMINOES = (
    "####", "#/#/#/#",                                  # I
    "##/##",                                            # O
    "###/.#.", ".#/##/.#", ".#./###", "#./##/#.",       # T
    ".##/##.", "#./##/.#",                              # S
    "##./.##", ".#/##/#.",                              # Z
    "#../###", "##/#./#.", "###/..#", ".#/.#/##",       # J
    "..#/###", "#./#./##", "###/#..", "##/.#/.#",       # L
)
TETROMINO_BLOCK = 5  # pixels per block side, as in DeepMind's 35x35 Tetrominoes.
TETROMINO_COLOURS = np.array(  # saturated RGB; the three pieces of an image get distinct colours.
    [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [255, 0, 255], [0, 255, 255]], np.uint8)


def _cells(art: str) -> np.ndarray:
  return np.array([[ch == "#" for ch in row] for row in art.split("/")])


def tetromino_templates(block: int = TETROMINO_BLOCK) -> tuple[np.ndarray, np.ndarray]:
  """Pixel templates of the 19 tetrominoes.

  Returns:
    templates: bool [19, 4*block, 4*block], each shape at the top-left corner.
    sizes: int [19, 2], (height, width) of each shape in pixels.
  """
  side = 4 * block
  templates = np.zeros((len(TETROMINOES), side, side), bool)
  sizes = np.zeros((len(TETROMINOES), 2), int)
  for s, art in enumerate(TETROMINOES):
    pixels = np.kron(_cells(art), np.ones((block, block), bool))
    templates[s, :pixels.shape[0], :pixels.shape[1]] = pixels
    sizes[s] = pixels.shape
  return templates, sizes


def _paste(templates: np.ndarray, which: np.ndarray, top: np.ndarray, left: np.ndarray,
           size: int) -> np.ndarray:
  """Occupancy bool [..., size, size] of templates[which] placed at (top, left) (all [...])."""
  p = templates.shape[-1]
  rows = np.arange(size) - top[..., None]  # [..., size]
  cols = np.arange(size) - left[..., None]
  inside = (((rows >= 0) & (rows < p))[..., :, None]) & (((cols >= 0) & (cols < p))[..., None, :])
  r = np.clip(rows, 0, p - 1)[..., :, None]
  c = np.clip(cols, 0, p - 1)[..., None, :]
  return templates[which[..., None, None], r, c] & inside


def generate_tetrominoes(n: int, seed: int | Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
  """Tetrominoes stand-in: three non-overlapping coloured tetrominoes on black, 32x32.

  Drawn on a 35x35 canvas like DeepMind's set, then cropped to rows/cols 1:33 as in
  docs/datasets.md#multi-object-datasets. Pieces
  are made of 5x5-pixel blocks, placed at any pixel offset that keeps them inside the crop; placements
  that overlap are redrawn for the whole image.

  Args:
    n: number of images.
    seed: numpy seed (an int or a sequence of ints); equal seeds give equal data.

  Returns:
    images: uint8 [n, 32, 32, 3]; masks: uint8 [n, 32, 32] with 0 = background, 1..3 = pieces.
  """
  rng = np.random.default_rng(seed)
  templates, sizes = tetromino_templates()
  which = np.zeros((n, 3), int)
  top = np.zeros((n, 3), int)
  left = np.zeros((n, 3), int)
  occupancy = np.zeros((n, 3, 35, 35), bool)
  todo = np.arange(n)
  while todo.size:
    which[todo] = rng.integers(len(TETROMINOES), size=(todo.size, 3))
    h, w = sizes[which[todo], 0], sizes[which[todo], 1]
    # Offsets within the kept window [1, 33): uniform over the valid positions of each piece.
    top[todo] = 1 + (rng.random((todo.size, 3)) * (33 - h)).astype(int)
    left[todo] = 1 + (rng.random((todo.size, 3)) * (33 - w)).astype(int)
    occupancy[todo] = _paste(templates, which[todo], top[todo], left[todo], 35)
    todo = todo[occupancy[todo].sum(1).max((1, 2)) > 1]
  masks = (occupancy * np.arange(1, 4)[:, None, None]).sum(1).astype(np.uint8)[:, 1:33, 1:33]
  colours = np.argsort(rng.random((n, len(TETROMINO_COLOURS))), axis=1)[:, :3]  # distinct per image
  palette = np.concatenate([np.zeros((n, 1, 3), np.uint8), TETROMINO_COLOURS[colours]], axis=1)
  images = np.take_along_axis(palette, masks.reshape(n, -1, 1).astype(int), axis=1)
  return images.reshape(n, 32, 32, 3), masks


# ------------------------------------------------------------------------------------------------
# Multi-dSprites
# ------------------------------------------------------------------------------------------------


def generate_dsprites(n: int, seed: int | Sequence[int], size: int = 64,
                      max_sprites: int = 5) -> tuple[np.ndarray, np.ndarray]:
  """Multi-dSprites (colored_on_grayscale) stand-in: 2..max_sprites coloured sprites on grey.

  Per image: background grey level U(0, 1); number of sprites uniform in {2, ..., max_sprites}; per
  sprite a shape (square, ellipse, heart), a half-extent U(0.09, 0.19)*size, a rotation U(0, 2pi), a
  centre U(0.15, 0.85)*size and a colour from HSV (hue U(0,1), saturation U(0.6,1), value U(0.6,1)).
  Sprites are painted in order: later ones occlude earlier ones (last painter wins in the mask too), so
  a sprite may be partly or wholly hidden and its label absent.

  Args:
    n: number of images.
    seed: numpy seed (an int or a sequence of ints).
    size: image side.
    max_sprites: largest number of sprites.

  Returns:
    images: uint8 [n, size, size, 3]; masks: uint8 [n, size, size], 0 = background, k = k-th sprite.
  """
  rng = np.random.default_rng(seed)
  count = rng.integers(2, max_sprites + 1, size=n)
  kind = rng.integers(3, size=(n, max_sprites))
  half = rng.uniform(0.09, 0.19, size=(n, max_sprites)) * size
  angle = rng.uniform(0, 2 * np.pi, size=(n, max_sprites))
  centre = rng.uniform(0.15, 0.85, size=(n, max_sprites, 2)) * size
  hsv = np.stack([rng.random((n, max_sprites)), rng.uniform(0.6, 1, (n, max_sprites)),
                  rng.uniform(0.6, 1, (n, max_sprites))], -1)
  colours = np.round(255 * imageops.hsv_to_rgb(hsv)).astype(np.uint8)  # [n, S, 3]
  grey = rng.integers(0, 256, size=n).astype(np.uint8)

  images = np.broadcast_to(grey[:, None, None, None], (n, size, size, 3)).copy()
  masks = np.zeros((n, size, size), np.uint8)
  y, x = (np.mgrid[:size, :size] + 0.5).astype(np.float32)  # pixel centres
  for k in range(max_sprites):
    on = np.flatnonzero(k < count)
    dy = y - centre[on, k, 0, None, None].astype(np.float32)
    dx = x - centre[on, k, 1, None, None].astype(np.float32)
    cos = (np.cos(angle[on, k]) / half[on, k]).astype(np.float32)[:, None, None]
    sin = (np.sin(angle[on, k]) / half[on, k]).astype(np.float32)[:, None, None]
    u, v = cos * dx + sin * dy, cos * dy - sin * dx  # sprite frame, extent about [-1, 1]
    inside = np.empty(u.shape, bool)
    for shape_id, test in enumerate(_SPRITE_TESTS):  # each sprite evaluates only its own shape
      sel = kind[on, k] == shape_id
      inside[sel] = test(u[sel], v[sel])
    masks[on] = np.where(inside, np.uint8(k + 1), masks[on])
    images[on] = np.where(inside[..., None], colours[on, k, None, None, :], images[on])
  return images, masks


def _heart(u: np.ndarray, v: np.ndarray) -> np.ndarray:
  x, y = 1.15 * u, 0.15 - 1.15 * v  # curve (x^2+y^2-1)^3 = x^2 y^3, tip pointing down
  x2 = x * x
  s = x2 + y * y - 1
  return s * s * s <= x2 * y * y * y


_SPRITE_TESTS = (  # square, ellipse, heart in the sprite frame (u, v)
    lambda u, v: np.maximum(np.abs(u), np.abs(v)) <= 0.8,
    lambda u, v: u * u + (v / 0.55)**2 <= 1,
    _heart,
)


# ------------------------------------------------------------------------------------------------
# Shapes (docs/datasets.md#shapes)
# ------------------------------------------------------------------------------------------------

# The four 18x18 outline templates of docs/datasets.md#shapes (triangle, square, circle, diamond),
# side by side.
_SHAPES_ART = """
.................. .................. .................. ..................
.................. .................. .................. ..................
.................. .................. .....#######...... ........#.........
.................. ...##########..... ....#########..... .......###........
........#......... ...##########..... ...###.....###.... ......##.##.......
.......###........ ...##......##..... ..###.......###... .....##...##......
......##.##....... ...##......##..... ..##.........##... ....##.....##.....
.....##...##...... ...##......##..... ..##.........##... ...##.......##....
....##.....##..... ...##......##..... ..##.........##... ..##.........##...
...##.......##.... ...##......##..... ..##.........##... ...##.......##....
..#############... ...##......##..... ..##.........##... ....##.....##.....
.###############.. ...##########..... ..###.......###... .....##...##......
.................. ...##########..... ...###.....###.... ......##.##.......
.................. .................. ....#########..... .......###........
.................. .................. .....#######...... ........#.........
.................. .................. .................. ..................
.................. .................. .................. ..................
.................. .................. .................. ..................
"""
SHAPES_TEMPLATES = np.array(
    [[[ch == "#" for ch in row.split()[t]] for row in _SHAPES_ART.strip().splitlines()]
     for t in range(4)])  # bool [4, 18, 18]; class c in 1..4 is SHAPES_TEMPLATES[c - 1]
SHAPES_SPLITS = {"train": 0, "val": 40_000, "test": 41_000}  # first index of each split in the stream


def generate_shapes(n: int, seed: int = 1234, start: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """Images `start .. start+n-1` of the Shapes stream of docs/datasets.md#shapes.

  One Python `random.Random(seed)` stream drives all images in the order of the reference generator:
  background `uniform(0.1, 0.6)`, count `randint(2, 4)`, then per shape class `randint(1, 4)`, row
  `randint(0, 22)`, column `randint(0, 22)` [call order assumed from the reference's description].
  Images
  before `start` are drawn but not rendered, so splits are index ranges of one stream
  (`SHAPES_SPLITS`). Template pixels set the image to 1.0; a pixel covered by a second shape becomes
  ignore (255) for good. The float grey image is quantised to uint8 and repeated to RGB.

  Returns:
    images: uint8 [n, 40, 40, 3]; masks: uint8 [n, 40, 40], 0 = background, 1..4 = instance,
    255 = overlap (ignore).
  """
  rnd = random.Random(seed)

  def draw():
    background = rnd.uniform(0.1, 0.6)
    shapes = []
    for _ in range(rnd.randint(2, 4)):
      shapes.append((rnd.randint(1, 4), rnd.randint(0, 22), rnd.randint(0, 22)))
    return background, shapes

  for _ in range(start):
    draw()
  images = np.zeros((n, 40, 40), np.float32)
  masks = np.zeros((n, 40, 40), np.uint8)
  for i in range(n):
    background, shapes = draw()
    images[i] = background
    for instance, (cls, row, col) in enumerate(shapes, start=1):
      template = SHAPES_TEMPLATES[cls - 1]
      region = masks[i, row:row + 18, col:col + 18]
      free = region == 0
      region[template & free] = instance
      region[template & ~free] = IGNORE
      images[i, row:row + 18, col:col + 18][template] = 1.0
  images = np.round(images * 255).astype(np.uint8)
  return np.repeat(images[..., None], 3, axis=-1), masks
