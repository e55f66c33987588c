"""Object-discovery datasets: offline generators and readers of the original releases (SPEC §7.1-§7.3).

Every dataset yields examples `{"image": uint8 [H, W, 3], "mask": uint8 [H, W]}`. Mask values:
0 = background, 1..K = object instance, and 255 = ignore where the source has overlapping objects
(only `shapes`). Evaluation converts 255 to -1, the reference's ignore label (`eval_labels`).

Builders (all array_record, no TensorFlow; open them with `common.source` / `common.build`):

* `TetrominoesGenerated`, `DspritesGenerated`, `Shapes`: generated here from a seed, auto-preparable,
  configs `full` and `tiny`.
* `MultiObject` (configs `tetrominoes`, `multi_dsprites`, `clevr6`): the DeepMind multi-object-datasets
  TFRecords, read by the small pure-Python TFRecord/protobuf reader below.
* `Clevrtex` (configs `full`, `outd`, `camo`): the CLEVRTex PNG release.

Real datasets are never downloaded: the user places the original files in a manual directory.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import random
import re
import struct
from collections.abc import Iterator, Sequence

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

_ZLIB = tfds.features.Encoding.ZLIB  # masks and flat backgrounds compress several-fold.
IGNORE = 255  # mask value of pixels covered by more than one object


def eval_labels(mask: np.ndarray) -> np.ndarray:
  """Stored uint8 masks [..., H, W] -> int32 labels with the ignore value 255 mapped to -1."""
  labels = mask.astype(np.int32)
  return np.where(labels == IGNORE, -1, labels)


def _features(height: int, width: int) -> tfds.features.FeaturesDict:
  return tfds.features.FeaturesDict({
      "image": tfds.features.Tensor(shape=(height, width, 3), dtype=np.uint8, encoding=_ZLIB),
      "mask": tfds.features.Tensor(shape=(height, width), dtype=np.uint8, encoding=_ZLIB),
  })


# ------------------------------------------------------------------------------------------------
# Tetrominoes generator
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

  Drawn on a 35x35 canvas like DeepMind's set, then cropped to rows/cols 1:33 as in SPEC §7.1. Pieces
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
# Multi-dSprites generator
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
  colours = np.round(255 * _hsv_to_rgb_np(hsv)).astype(np.uint8)  # [n, S, 3]
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


def _hsv_to_rgb_np(hsv: np.ndarray) -> np.ndarray:
  h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
  k = (np.array([5.0, 3.0, 1.0]) + 6 * h[..., None]) % 6
  return v[..., None] - (v * s)[..., None] * np.clip(np.minimum(k, 4 - k), 0, 1)


# ------------------------------------------------------------------------------------------------
# Shapes generator (SPEC §7.3)
# ------------------------------------------------------------------------------------------------

# The four 18x18 outline templates of SPEC §7.3 (triangle, square, circle, diamond), side by side.
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
  """Images `start .. start+n-1` of the Shapes stream of SPEC §7.3.

  One Python `random.Random(seed)` stream drives all images in the order of the reference generator:
  background `uniform(0.1, 0.6)`, count `randint(2, 4)`, then per shape class `randint(1, 4)`, row
  `randint(0, 22)`, column `randint(0, 22)` [call order assumed from the SPEC's description]. Images
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


# ------------------------------------------------------------------------------------------------
# Builders of the generated datasets
# ------------------------------------------------------------------------------------------------

_CHUNK = 500  # images generated per numpy call (bounds memory); part of the seed, do not change.


@dataclasses.dataclass
class GeneratedConfig(tfds.core.BuilderConfig):
  """Sizes of a generated dataset; split s uses numpy seed (seed, s, chunk index)."""
  train_size: int = 60_000
  test_size: int = 320
  seed: int = 0


_GENERATED_CONFIGS = [
    GeneratedConfig(name="full", description="60,000 train / 320 test, like the DeepMind split."),
    GeneratedConfig(name="tiny", train_size=256, test_size=32, description="For tests and demos."),
]


class _Generated(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Shared body of the numpy-generated builders; subclasses set `_generate` and `_SIZE`."""
  VERSION = tfds.core.Version("1.0.0")
  BUILDER_CONFIGS = _GENERATED_CONFIGS
  _SIZE = 0

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(builder=self, features=_features(self._SIZE, self._SIZE),
                                 disable_shuffling=True)

  def _split_generators(self, dl_manager):
    cfg = self.builder_config
    return {"train": self._generate_examples(cfg.train_size, 0),
            "test": self._generate_examples(cfg.test_size, 1)}

  def _generate_examples(self, n: int, split_id: int):
    for chunk, start in enumerate(range(0, n, _CHUNK)):
      images, masks = self._generate(min(_CHUNK, n - start), (self.builder_config.seed, split_id, chunk))
      for i, (image, mask) in enumerate(zip(images, masks)):
        yield start + i, {"image": image, "mask": mask}


class TetrominoesGenerated(_Generated):
  """Generated Tetrominoes (see `generate_tetrominoes`), 32x32."""
  _SIZE = 32
  _generate = staticmethod(generate_tetrominoes)


class DspritesGenerated(_Generated):
  """Generated Multi-dSprites colored_on_grayscale (see `generate_dsprites`), 64x64."""
  _SIZE = 64
  _generate = staticmethod(generate_dsprites)


@dataclasses.dataclass
class ShapesConfig(tfds.core.BuilderConfig):
  """Split sizes of Shapes; each split is the first `size` images of its SPEC range."""
  train_size: int = 40_000
  val_size: int = 1_000
  test_size: int = 1_000


class Shapes(tfds.core.GeneratorBasedBuilder):
  """The Shapes dataset of SPEC §7.3 (see `generate_shapes`), 40x40, splits train/val/test."""
  VERSION = tfds.core.Version("1.0.0")
  BUILDER_CONFIGS = [
      ShapesConfig(name="full", description="40,000 train / 1,000 val / 1,000 test (SPEC §7.3)."),
      ShapesConfig(name="tiny", train_size=256, val_size=32, test_size=32, description="Tests, demos."),
  ]

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(builder=self, features=_features(40, 40), disable_shuffling=True)

  def _split_generators(self, dl_manager):
    cfg = self.builder_config
    sizes = {"train": cfg.train_size, "val": cfg.val_size, "test": cfg.test_size}
    return {split: self._generate_examples(SHAPES_SPLITS[split], n) for split, n in sizes.items()}

  def _generate_examples(self, start: int, n: int):
    images, masks = generate_shapes(n, start=start)
    for i in range(n):
      yield start + i, {"image": images[i], "mask": masks[i]}


# ------------------------------------------------------------------------------------------------
# TFRecord and tf.train.Example decoding without TensorFlow
# ------------------------------------------------------------------------------------------------


def _crc32c_table() -> list[int]:
  table = []
  for i in range(256):
    crc = i
    for _ in range(8):
      crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    table.append(crc)
  return table


_CRC32C_TABLE = _crc32c_table()


def masked_crc32c(data: bytes) -> int:
  """TFRecord's masked CRC-32C (Castagnoli) of `data` (pure Python: use on short strings)."""
  crc = 0xFFFFFFFF
  for byte in data:
    crc = _CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
  crc ^= 0xFFFFFFFF
  return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def read_tfrecord(path: str) -> Iterator[bytes]:
  """Yields the records of a TFRecord file, GZIP-compressed or not (detected from the magic bytes).

  Framing: uint64 length, uint32 masked CRC of the length, data, uint32 masked CRC of the data. The
  length CRC is checked (it catches a wrong compression guess or a truncated file); the data CRC is
  not, since pure-Python CRC over megabyte records would dominate the conversion time.
  """
  with open(path, "rb") as raw:
    gzipped = raw.read(2) == b"\x1f\x8b"
  with (gzip.open if gzipped else open)(path, "rb") as f:
    index = 0
    while header := f.read(12):
      if len(header) < 12:
        raise ValueError(f"{path}: truncated header of record {index}; re-copy the file.")
      length_bytes, length_crc = header[:8], struct.unpack("<I", header[8:])[0]
      if masked_crc32c(length_bytes) != length_crc:
        raise ValueError(f"{path}: bad length CRC at record {index}; is this a TFRecord file?")
      (length,) = struct.unpack("<Q", length_bytes)
      data = f.read(length)
      if len(data) < length or len(f.read(4)) < 4:
        raise ValueError(f"{path}: record {index} is truncated; re-copy the file.")
      yield data
      index += 1


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
  value = shift = 0
  while True:
    byte = buf[pos]
    pos += 1
    value |= (byte & 0x7F) << shift
    if byte < 0x80:
      return value, pos
    shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
  """Yields (field number, wire type, value) of a protobuf message; value is bytes for wire type 2."""
  pos = 0
  while pos < len(buf):
    key, pos = _varint(buf, pos)
    number, wire = key >> 3, key & 7
    if wire == 0:
      value, pos = _varint(buf, pos)
    elif wire == 1:
      value, pos = struct.unpack_from("<Q", buf, pos)[0], pos + 8
    elif wire == 2:
      length, pos = _varint(buf, pos)
      value, pos = buf[pos:pos + length], pos + length
    elif wire == 5:
      value, pos = struct.unpack_from("<I", buf, pos)[0], pos + 4
    else:
      raise ValueError(f"Unsupported protobuf wire type {wire} (field {number}).")
    yield number, wire, value


def _bytes_list(buf: bytes) -> bytes:
  # The multi-object datasets store pixels as one 1-byte string per value: each is the 3 bytes
  # (tag 0x0A, length 1, value), so a numpy stride reads a whole image at once.
  arr = np.frombuffer(buf, np.uint8)
  if arr.size % 3 == 0 and (arr[0::3] == 0x0A).all() and (arr[1::3] == 1).all():
    return arr[2::3].tobytes()
  return b"".join(value for number, wire, value in _fields(buf) if number == 1 and wire == 2)


def _float_list(buf: bytes) -> np.ndarray:
  parts = [np.frombuffer(v, "<f4") if wire == 2 else np.array([v], "<u4").view("<f4")
           for number, wire, v in _fields(buf) if number == 1]
  return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def _int64_list(buf: bytes) -> np.ndarray:
  values = []
  for number, wire, v in _fields(buf):
    if number != 1:
      continue
    if wire == 2:  # packed
      pos = 0
      while pos < len(v):
        x, pos = _varint(v, pos)
        values.append(x)
    else:
      values.append(v)
  return np.array([x - (1 << 64) if x >= 1 << 63 else x for x in values], np.int64)


def parse_example(data: bytes) -> dict[str, bytes | np.ndarray]:
  """Decodes a serialised tf.train.Example.

  Returns:
    feature name -> value: a bytes_list gives its strings concatenated (the multi-object datasets
    store raw pixel bytes either as one string or as one string per byte), a float_list a float32
    array, an int64_list an int64 array.
  """
  out = {}
  for number, _, features in _fields(data):
    if number != 1:  # Example.features
      continue
    for number, _, entry in _fields(features):
      if number != 1:  # Features.feature (map entries)
        continue
      name, feature = "", b""
      for number, _, value in _fields(entry):
        if number == 1:
          name = value.decode()
        elif number == 2:
          feature = value
      decoders = {1: _bytes_list, 2: _float_list, 3: _int64_list}
      out[name] = np.zeros(0, np.float32)  # a Feature with no kind set
      for number, _, value in _fields(feature):
        out[name] = decoders[number](value)
  return out


# ------------------------------------------------------------------------------------------------
# DeepMind multi-object datasets (SPEC §7.1)
# ------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class MultiObjectConfig(tfds.core.BuilderConfig):
  """One multi-object dataset: source file, geometry and split sizes (SPEC §7.1)."""
  file: str = ""
  source_size: tuple[int, int] = (35, 35)  # (H, W) of the TFRecord images
  crop: tuple[int, int, int, int] = (1, 33, 1, 33)  # rows [r0, r1), cols [c0, c1)
  out_size: int = 32  # nearest resize of the crop to out_size x out_size (no-op when equal)
  max_label: int | None = None  # drop images with a larger label (CLEVR6)
  eval_size: int = 64
  test_size: int = 320
  val_size: int = 10_000
  train_size: int = 60_000


_GCS = "gs://multi-object-datasets"


class MultiObject(tfds.core.GeneratorBasedBuilder):
  """DeepMind multi-object datasets converted as in SPEC §7.1; splits eval, test, val, train.

  The user copies the TFRecord file into the manual dir. Pixel label = index of the last mask slot
  equal to 255 (slot 0 = background). Records are taken in file order after the CLEVR6 filter: the
  first `eval_size` -> eval, the next `test_size` -> test, then val, then up to `train_size` -> train.
  CLEVR6 resizes image and labels with PyTorch's legacy nearest rule (source index floor(i * 192/128))
  and drops a record when its cropped labels exceed 6 (the filter is applied before the resize, an
  assumption: the SPEC does not say which).
  """
  VERSION = tfds.core.Version("1.0.0")
  BUILDER_CONFIGS = [
      MultiObjectConfig(name="tetrominoes", file="tetrominoes_train.tfrecords"),
      MultiObjectConfig(name="multi_dsprites", file="multi_dsprites_colored_on_grayscale.tfrecords",
                        source_size=(64, 64), crop=(0, 64, 0, 64), out_size=64),
      MultiObjectConfig(name="clevr6", file="clevr_with_masks_train.tfrecords",
                        source_size=(240, 320), crop=(29, 221, 64, 256), out_size=128, max_label=6,
                        train_size=70_000),
  ]
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      f"Copy the TFRecord file from {_GCS} into the manual dir, e.g.\n"
      f"  gsutil cp {_GCS}/tetrominoes/tetrominoes_train.tfrecords <manual_dir>/\n"
      f"  gsutil cp {_GCS}/multi_dsprites/multi_dsprites_colored_on_grayscale.tfrecords <manual_dir>/\n"
      f"  gsutil cp {_GCS}/clevr_with_masks/clevr_with_masks_train.tfrecords <manual_dir>/")

  def _info(self) -> tfds.core.DatasetInfo:
    size = self.builder_config.out_size
    return tfds.core.DatasetInfo(builder=self, features=_features(size, size), disable_shuffling=True)

  def _split_generators(self, dl_manager):
    cfg = self.builder_config
    path = os.path.join(dl_manager.manual_dir, cfg.file)
    if not os.path.exists(path):
      raise FileNotFoundError(f"Expected the original file {path!r} for multi_object/{cfg.name}. "
                              f"{self.MANUAL_DOWNLOAD_INSTRUCTIONS}")
    bounds, start = {}, 0
    for split, n in [("eval", cfg.eval_size), ("test", cfg.test_size), ("val", cfg.val_size),
                     ("train", cfg.train_size)]:
      bounds[split] = (start, start + n)
      start += n
    return {split: self._generate_examples(path, lo, hi) for split, (lo, hi) in bounds.items()}

  def _generate_examples(self, path: str, lo: int, hi: int):
    cfg = self.builder_config
    kept = 0
    for index, record in enumerate(read_tfrecord(path)):
      if kept >= hi:
        return
      if cfg.max_label is None and kept < lo:  # without a filter, earlier records need no decoding
        kept += 1
        continue
      example = process_multi_object(parse_example(record), cfg)
      if example is None:
        continue
      if kept >= lo:
        yield index, example
      kept += 1


def process_multi_object(features: dict[str, bytes | np.ndarray],
                         cfg: MultiObjectConfig) -> dict[str, np.ndarray] | None:
  """One decoded record -> {"image", "mask"} per SPEC §7.1, or None when the filter drops it."""
  h, w = cfg.source_size
  image = np.frombuffer(features["image"], np.uint8).reshape(h, w, 3)
  slots = np.frombuffer(features["mask"], np.uint8).reshape(-1, h, w)  # [K, H, W] (trailing 1 dropped)
  k = np.arange(len(slots), dtype=np.uint8)[:, None, None]
  labels = (k * (slots == 255)).max(0)  # later slots overwrite earlier ones
  r0, r1, c0, c1 = cfg.crop
  image, labels = image[r0:r1, c0:c1], labels[r0:r1, c0:c1]
  if cfg.max_label is not None and labels.max() > cfg.max_label:
    return None
  rows = np.arange(cfg.out_size) * (r1 - r0) // cfg.out_size
  cols = np.arange(cfg.out_size) * (c1 - c0) // cfg.out_size
  return {"image": np.ascontiguousarray(image[rows][:, cols]),
          "mask": np.ascontiguousarray(labels[rows][:, cols])}


# ------------------------------------------------------------------------------------------------
# CLEVRTex (SPEC §7.2)
# ------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class ClevrtexConfig(tfds.core.BuilderConfig):
  """A CLEVRTex variant and its splits as [lo, hi) fractions of the sorted ids."""
  variant: str = "full"
  splits: tuple[tuple[str, float, float], ...] = (("test", 0.0, 0.1), ("val", 0.1, 0.2),
                                                  ("train", 0.2, 1.0))


class Clevrtex(tfds.core.GeneratorBasedBuilder):
  """CLEVRTex at 128x128 (SPEC §7.2): centre square crop of side int(0.8 min(H, W)), then resize.

  The image is resized bilinearly with PIL, the flat mask (0 = background, 1..10 objects) with nearest.
  `outd` has one split `test` (the whole set); `camo` has `test` = the first 10% of the sorted ids.
  """
  VERSION = tfds.core.Version("1.0.0")
  BUILDER_CONFIGS = [
      ClevrtexConfig(name="full"),
      ClevrtexConfig(name="outd", variant="outd", splits=(("test", 0.0, 1.0),)),
      ClevrtexConfig(name="camo", variant="camo", splits=(("test", 0.0, 0.1),)),
  ]
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Download clevrtex_full_part{1..5}.tar.gz, clevrtex_outd.tar.gz and clevrtex_camo.tar.gz from "
      "https://www.robots.ox.ac.uk/~vgg/data/clevrtex/ and extract them under the manual dir (any "
      "folder depth): files CLEVRTEX_{variant}_{6-digit id}.png and ..._flat.png.")

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(builder=self, features=_features(128, 128), disable_shuffling=True)

  def _split_generators(self, dl_manager):
    cfg = self.builder_config
    pattern = re.compile(rf"CLEVRTEX_{cfg.variant}_(\d{{6}})\.png")
    found = {}
    for root, _, names in os.walk(dl_manager.manual_dir):
      for name in names:
        if match := pattern.fullmatch(name):
          found[int(match.group(1))] = os.path.join(root, name)
    if not found:
      raise FileNotFoundError(f"No CLEVRTEX_{cfg.variant}_NNNNNN.png under {dl_manager.manual_dir!r}. "
                              f"{self.MANUAL_DOWNLOAD_INSTRUCTIONS}")
    paths = [found[i] for i in sorted(found)]
    n = len(paths)
    return {split: self._generate_examples(paths[int(lo * n):int(hi * n)])
            for split, lo, hi in cfg.splits}

  def _generate_examples(self, paths: list[str]):
    for path in paths:
      yield os.path.basename(path)[:-4], load_clevrtex(path)


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
