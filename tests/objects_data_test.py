"""Tests of akorn_jax.data.objects: generators, generated builders, TFRecord/Example decoding, and the
MultiObject / Clevrtex readers run on tiny files written here in the original formats."""

import gzip
import struct

import numpy as np
import pytest
from PIL import Image

from akorn_jax import imageops
from akorn_jax.data import common
from akorn_jax.data import objects

# ------------------------------------------------------------------------------------------------
# Generators
# ------------------------------------------------------------------------------------------------


def test_shapes_templates_match_spec():
  np.testing.assert_array_equal(objects.SHAPES_TEMPLATES.sum((1, 2)), [48, 64, 76, 44])
  square = np.zeros((18, 18), bool)
  square[3:13, 3:13] = True
  square[5:11, 5:11] = False
  np.testing.assert_array_equal(objects.SHAPES_TEMPLATES[1], square)
  r, c = np.mgrid[:18, :18]
  d2 = (r - 8)**2 + (c - 8)**2  # skimage disk: strictly inside the radius
  np.testing.assert_array_equal(objects.SHAPES_TEMPLATES[2], (d2 < 49) & ~(d2 < 25))
  np.testing.assert_array_equal(objects.SHAPES_TEMPLATES[3], objects.SHAPES_TEMPLATES[3].T)  # diamond


def _cells(art):
  return np.array([[ch == "#" for ch in row] for row in art.split("/")])


def test_tetromino_set_is_the_19_fixed_tetrominoes():
  shapes = [_cells(a) for a in objects.TETROMINOES]
  keys = {(s.shape, s.tobytes()) for s in shapes}
  assert len(shapes) == 19 and len(keys) == 19
  assert all(s.sum() == 4 for s in shapes)
  for s in shapes:  # closed under rotation, so every rotation of every piece is present
    r = np.rot90(s)
    assert (r.shape, r.tobytes()) in keys
  templates, sizes = objects.tetromino_templates()
  assert templates.shape == (19, 20, 20)
  np.testing.assert_array_equal(templates.sum((1, 2)), 100)
  np.testing.assert_array_equal(sizes, [np.array(s.shape) * 5 for s in shapes])


def test_generate_tetrominoes():
  images, masks = objects.generate_tetrominoes(40, seed=3)
  assert images.shape == (40, 32, 32, 3) and masks.shape == (40, 32, 32)
  assert images.dtype == np.uint8 and masks.dtype == np.uint8
  again, _ = objects.generate_tetrominoes(40, seed=3)
  other, _ = objects.generate_tetrominoes(40, seed=4)
  np.testing.assert_array_equal(images, again)
  assert (images != other).any()
  templates, _ = objects.tetromino_templates()
  for image, mask in zip(images, masks):
    np.testing.assert_array_equal(np.bincount(mask.ravel(), minlength=4)[1:], [100] * 3)
    assert (image[mask == 0] == 0).all()
    colours = set()
    for k in (1, 2, 3):
      pixels = np.unique(image[mask == k], axis=0)
      assert len(pixels) == 1 and pixels[0].max() == 255  # one saturated colour per piece
      colours.add(pixels[0].tobytes())
      rows, cols = np.nonzero(mask == k)
      piece = (mask == k)[rows.min():rows.min() + 20, cols.min():cols.min() + 20]
      piece = np.pad(piece, ((0, 20 - piece.shape[0]), (0, 20 - piece.shape[1])))
      assert any((piece == t).all() for t in templates)  # a whole tetromino, not clipped
    assert len(colours) == 3


def test_generate_dsprites():
  images, masks = objects.generate_dsprites(60, seed=1)
  assert images.shape == (60, 64, 64, 3) and masks.shape == (60, 64, 64)
  np.testing.assert_array_equal(images, objects.generate_dsprites(60, seed=1)[0])
  counts = []
  for image, mask in zip(images, masks):
    background = image[mask == 0]
    assert len(np.unique(background, axis=0)) == 1
    assert background[0, 0] == background[0, 1] == background[0, 2]  # grey
    labels = np.unique(mask[mask > 0])
    assert 1 <= len(labels) and labels.max() <= 5
    for k in labels:
      assert len(np.unique(image[mask == k], axis=0)) == 1
    counts.append(labels.max())
  assert set(counts) >= {3, 4, 5}  # sprite counts vary


def test_generate_shapes():
  images, masks = objects.generate_shapes(60)
  assert images.shape == (60, 40, 40, 3) and masks.shape == (60, 40, 40)
  np.testing.assert_array_equal(images[..., 0], images[..., 2])
  later_images, later_masks = objects.generate_shapes(10, start=50)
  np.testing.assert_array_equal(later_images, images[50:])
  np.testing.assert_array_equal(later_masks, masks[50:])
  assert (masks == objects.IGNORE).any()
  labels = imageops.ignore_to_minus_one(masks)
  assert labels.dtype == np.int32 and labels.min() == -1
  np.testing.assert_array_equal(labels == -1, masks == 255)
  np.testing.assert_array_equal(labels[masks != 255], masks[masks != 255])
  pixel_counts = {48: 0, 64: 1, 76: 2, 44: 3}  # distinct, so a whole shape reveals its class
  whole = 0
  for image, mask in zip(images[..., 0], masks):
    np.testing.assert_array_equal(image[mask > 0], 255)
    background = image[mask == 0]
    assert len(np.unique(background)) == 1 and 0.1 * 255 <= background[0] <= 0.6 * 255
    labels = set(np.unique(mask)) - {0, objects.IGNORE}
    assert labels <= {1, 2, 3, 4}
    if (mask == objects.IGNORE).any():
      continue  # overlapping shapes lose pixels to the ignore label
    for k in labels:  # without overlaps every instance is a whole template
      here = mask == k
      template = objects.SHAPES_TEMPLATES[pixel_counts[here.sum()]]
      rows, cols = np.nonzero(here)
      trows, tcols = np.nonzero(template)
      top, left = rows.min() - trows.min(), cols.min() - tcols.min()
      np.testing.assert_array_equal(here[top:top + 18, left:left + 18], template)
      whole += 1
  assert whole > 20


# ------------------------------------------------------------------------------------------------
# Generated builders
# ------------------------------------------------------------------------------------------------


def test_generated_builders(tmp_path):
  builder = common.build(objects.TetrominoesGenerated, config="tiny", data_dir_=str(tmp_path))
  train, test = builder.as_data_source("train"), builder.as_data_source("test")
  assert (len(train), len(test)) == (256, 32)
  expected, expected_masks = objects.generate_tetrominoes(32, seed=(0, 1, 0))
  np.testing.assert_array_equal(test[5]["image"], expected[5])
  np.testing.assert_array_equal(test[31]["mask"], expected_masks[31])
  assert train[0]["image"].shape == (32, 32, 3) and train[0]["mask"].dtype == np.uint8
  assert (train[0]["image"] != test[0]["image"]).any()  # different seeds per split

  dsprites = common.source(objects.DspritesGenerated, "test", config="tiny", data_dir_=str(tmp_path),
                           auto_prepare=True)
  np.testing.assert_array_equal(dsprites[7]["image"], objects.generate_dsprites(32, (0, 1, 0))[0][7])

  shapes = common.build(objects.Shapes, config="tiny", data_dir_=str(tmp_path))
  lengths = {s: len(shapes.as_data_source(s)) for s in ("train", "val", "test")}
  assert lengths == {"train": 256, "val": 32, "test": 32}
  images, masks = objects.generate_shapes(2, start=41_000)
  np.testing.assert_array_equal(shapes.as_data_source("test")[1]["image"], images[1])
  np.testing.assert_array_equal(shapes.as_data_source("test")[1]["mask"], masks[1])


# ------------------------------------------------------------------------------------------------
# TFRecord writer and tf.train.Example encoder (test-only, written from the format descriptions)
# ------------------------------------------------------------------------------------------------


def _varint(value):
  value &= (1 << 64) - 1  # negative int64 as two's complement
  out = bytearray()
  while True:
    byte = value & 0x7F
    value >>= 7
    if value:
      out.append(byte | 0x80)
    else:
      out.append(byte)
      return bytes(out)


def _field(number, payload):
  return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _feature(value, packed=True):
  if isinstance(value, list):  # bytes_list
    return _field(1, b"".join(_field(1, v) for v in value))
  if value.dtype == np.float32:
    if packed:
      return _field(2, _field(1, value.astype("<f4").tobytes()))
    return _field(2, b"".join(_varint(1 << 3 | 5) + struct.pack("<f", v) for v in value))
  if packed:
    return _field(3, _field(1, b"".join(_varint(int(v)) for v in value)))
  return _field(3, b"".join(_varint(1 << 3) + _varint(int(v)) for v in value))


def _example(features, packed=True):
  entries = b"".join(_field(1, _field(1, k.encode()) + _field(2, _feature(v, packed)))
                     for k, v in features.items())
  return _field(1, entries)


def _write_tfrecord(path, records, compress=True):
  with (gzip.open if compress else open)(path, "wb") as f:
    for data in records:
      length = struct.pack("<Q", len(data))
      f.write(length + struct.pack("<I", objects.masked_crc32c(length)) + data +
              struct.pack("<I", objects.masked_crc32c(data)))


def test_masked_crc32c_known_value():
  crc = 0xE3069283  # CRC-32C of b"123456789" (the standard check value)
  masked = (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF
  assert objects.masked_crc32c(b"123456789") == masked


@pytest.mark.parametrize("packed", [True, False])
def test_parse_example(packed):
  features = {
      "one_string": [b"hello world"],
      "pixels": [bytes([v]) for v in (0, 10, 255, 7)],  # one string per byte, like DeepMind's files
      "strings": [b"ab", b"", b"cde"],
      "floats": np.array([1.5, -2.25, 3e9], np.float32),
      "ints": np.array([0, -1, 300, -(2**40)], np.int64),
  }
  parsed = objects.parse_example(_example(features, packed))
  assert parsed["one_string"] == b"hello world"
  assert parsed["pixels"] == bytes([0, 10, 255, 7])
  assert parsed["strings"] == b"abcde"
  np.testing.assert_array_equal(parsed["floats"], features["floats"])
  np.testing.assert_array_equal(parsed["ints"], features["ints"])
  assert parsed["ints"].dtype == np.int64


@pytest.mark.parametrize("compress", [True, False])
def test_read_tfrecord(tmp_path, compress):
  records = [b"", b"x" * 1000, bytes(range(256))]
  path = str(tmp_path / "r.tfrecords")
  _write_tfrecord(path, records, compress)
  assert list(objects.read_tfrecord(path)) == records
  with open(path, "wb") as f:
    f.write(b"not a tfrecord file")
  with pytest.raises(ValueError, match="CRC"):
    list(objects.read_tfrecord(path))


def test_truncated_gzip_tfrecord_is_named(tmp_path):
  path = str(tmp_path / "r.tfrecords")
  _write_tfrecord(path, [b"x" * 5000, bytes(range(256)) * 40], compress=True)
  data = open(path, "rb").read()
  with open(path, "wb") as f:
    f.write(data[:len(data) // 2])  # a copy cut short: gzip raises a bare EOFError
  with pytest.raises(ValueError, match=r"r\.tfrecords: the gzip stream is damaged or truncated"):
    list(objects.read_tfrecord(path))


@pytest.mark.parametrize("compress", [True, False])
def test_crafted_record_length_is_refused_without_allocating(tmp_path, compress):
  path = str(tmp_path / "r.tfrecords")
  length = struct.pack("<Q", 2**62)  # with a valid CRC: only the length itself is absurd
  with (gzip.open if compress else open)(path, "wb") as f:
    f.write(length + struct.pack("<I", objects.masked_crc32c(length)) + b"tiny")
  message = "record 0 claims 4611686018427387904 bytes" if not compress else "record 0 is truncated"
  with pytest.raises(ValueError, match=message):
    list(objects.read_tfrecord(path))


# ------------------------------------------------------------------------------------------------
# MultiObject
# ------------------------------------------------------------------------------------------------


def _multi_object_record(rng, h, w, slots, one_byte_strings, force_label=None):
  image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
  masks = np.where(rng.random((slots, h, w, 1)) < 0.3, 255, 0).astype(np.uint8)
  masks[:, :, :, 0] = np.where(rng.random((slots, h, w)) < 0.05, 128, masks[..., 0])  # soft edges
  masks[7:] = 0  # at most 6 objects (CLEVR6) unless forced below
  if force_label is not None:
    label, (row, col) = force_label
    masks[label:, row, col] = 0
    masks[label, row, col] = 255
  expected = np.zeros((h, w), np.uint8)
  for k in range(slots):  # later slots overwrite earlier ones
    expected[masks[k, :, :, 0] == 255] = k
  if one_byte_strings:
    feats = {"image": [bytes([v]) for v in image.ravel()], "mask": [bytes([v]) for v in masks.ravel()]}
  else:
    feats = {"image": [image.tobytes()], "mask": [masks.tobytes()]}
  feats["visibility"] = np.ones(slots, np.float32)
  return _example(feats), image, expected


def test_multi_object_tetrominoes(tmp_path):
  rng = np.random.default_rng(0)
  manual = tmp_path / "manual"
  manual.mkdir()
  made = [_multi_object_record(rng, 35, 35, 4, one_byte_strings=True) for _ in range(13)]
  _write_tfrecord(str(manual / "tetrominoes_train.tfrecords"), [m[0] for m in made])
  config = objects.MultiObjectConfig(name="tetro_test", file="tetrominoes_train.tfrecords",
                                     eval_size=2, test_size=3, val_size=2, train_size=4)
  builder = common.build(objects.MultiObject, config=config, data_dir_=str(tmp_path / "data"),
                         manual_dir=str(manual))
  first = {"eval": 0, "test": 2, "val": 5, "train": 7}
  for split, n in [("eval", 2), ("test", 3), ("val", 2), ("train", 4)]:
    data = builder.as_data_source(split)
    assert len(data) == n
    for i in range(n):
      _, image, labels = made[first[split] + i]
      np.testing.assert_array_equal(data[i]["image"], image[1:33, 1:33])
      np.testing.assert_array_equal(data[i]["mask"], labels[1:33, 1:33])


def test_multi_object_crop_resize_and_filter(tmp_path):
  # CLEVR6 geometry scaled down 4x (60x80 source, 48x48 crop, resized to 32) to keep files small.
  rng = np.random.default_rng(1)
  manual = tmp_path / "manual"
  manual.mkdir()
  made = [
      _multi_object_record(rng, 60, 80, 7, False),
      _multi_object_record(rng, 60, 80, 10, False, force_label=(8, (30, 30))),  # 8 > 6: dropped
      _multi_object_record(rng, 60, 80, 7, False),
      _multi_object_record(rng, 60, 80, 7, False),
      _multi_object_record(rng, 60, 80, 10, False, force_label=(9, (2, 2))),  # outside the crop
  ]
  _write_tfrecord(str(manual / "clevr.tfrecords"), [m[0] for m in made])
  config = objects.MultiObjectConfig(name="clevr_test", file="clevr.tfrecords", source_size=(60, 80),
                                     crop=(7, 55, 16, 64), out_size=32, max_label=6, eval_size=1,
                                     test_size=1, val_size=1, train_size=5)
  builder = common.build(objects.MultiObject, config=config, data_dir_=str(tmp_path / "data"),
                         manual_dir=str(manual))
  nearest = [int((i + 0.5) * 1.5) for i in range(32)]  # pixel centres: floor((i + 1/2) 48 / 32)
  for split, (_, image, labels) in [("eval", made[0]), ("test", made[2]), ("val", made[3]),
                                    ("train", made[4])]:
    (example,) = list(builder.as_data_source(split))  # the train split ran out of records
    np.testing.assert_array_equal(example["image"], image[7:55, 16:64][nearest][:, nearest])
    np.testing.assert_array_equal(example["mask"], labels[7:55, 16:64][nearest][:, nearest])
    assert example["mask"].max() <= 6


def test_process_clevr6_geometry():
  config = objects.MultiObject.builder_configs["clevr6"]
  rng = np.random.default_rng(3)
  image = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
  slots = np.zeros((11, 240, 320, 1), np.uint8)
  slots[3, 29:221, 64:256] = 255
  slots[5, 29, 64] = 255  # top-left pixel of the crop belongs to object 5
  slots[6, 30, 64] = 255  # crop row 1 is skipped by the 1.5x nearest resize (rows 0, 2, 3, 5, ...)
  out = objects.process_multi_object({"image": image.tobytes(), "mask": slots.tobytes()}, config)
  assert out["image"].shape == (128, 128, 3) and out["mask"].shape == (128, 128)
  np.testing.assert_array_equal(out["image"][1, 2], image[29 + 2, 64 + 3])
  np.testing.assert_array_equal(out["image"][2, 1], image[29 + 3, 64 + 2])
  np.testing.assert_array_equal(np.unique(out["mask"]), [3, 5])
  assert out["mask"][0, 0] == 5
  slots[7, 0, 0] = 255  # outside the crop: kept
  assert objects.process_multi_object({"image": image.tobytes(), "mask": slots.tobytes()}, config)
  slots[7, 100, 100] = 255
  assert objects.process_multi_object({"image": image.tobytes(), "mask": slots.tobytes()}, config) is None


def test_multi_object_missing_file(tmp_path):
  with pytest.raises(FileNotFoundError, match="tetrominoes_train.tfrecords"):
    common.build(objects.MultiObject, config="tetrominoes", data_dir_=str(tmp_path / "data"),
                 manual_dir=str(tmp_path))


def test_multi_object_unprepared_source_raises(tmp_path):
  with pytest.raises(common.DatasetNotPreparedError, match="multi_object/clevr6"):
    common.source(objects.MultiObject, "test", config="clevr6", data_dir_=str(tmp_path))


# ------------------------------------------------------------------------------------------------
# CLEVRTex
# ------------------------------------------------------------------------------------------------


def _write_clevrtex(folder, variant, ids, rng):
  written = {}
  for n, i in enumerate(ids):
    sub = folder / f"part{n % 3}" / str(i // 10)  # nested like the release
    sub.mkdir(parents=True, exist_ok=True)
    image = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    mask = rng.integers(0, 11, (240, 320), dtype=np.uint8)
    Image.fromarray(image).convert("RGBA").save(sub / f"CLEVRTEX_{variant}_{i:06d}.png")
    Image.fromarray(mask).save(sub / f"CLEVRTEX_{variant}_{i:06d}_flat.png")
    (sub / f"CLEVRTEX_{variant}_{i:06d}.json").write_text("{}")
    written[i] = (image, mask)
  return written


def test_clevrtex(tmp_path):
  rng = np.random.default_rng(2)
  manual = tmp_path / "manual"
  full = _write_clevrtex(manual, "full", [12, 3, 40, 7, 25, 9, 31, 18, 2, 33], rng)
  outd = _write_clevrtex(manual, "outd", [5, 1], rng)
  builder = common.build(objects.Clevrtex, config="full", data_dir_=str(tmp_path / "data"),
                         manual_dir=str(manual))
  order = sorted(full)
  expected_ids = {"test": order[:1], "val": order[1:2], "train": order[2:]}
  box = (64, 24, 256, 216)  # centre square of side int(0.8 * 240) = 192 in a 240x320 image
  for split, ids in expected_ids.items():
    data = builder.as_data_source(split)
    assert len(data) == len(ids)
    for example, i in zip(data, ids):
      image, mask = full[i]
      want = Image.fromarray(image).crop(box).resize((128, 128), Image.BILINEAR)
      np.testing.assert_array_equal(example["image"], np.asarray(want))
      rows = cols = np.floor((np.arange(128) + 0.5) * 1.5).astype(int)  # PIL nearest: centre rule
      np.testing.assert_array_equal(example["mask"], mask[24:216, 64:256][rows][:, cols])
  ood = common.build(objects.Clevrtex, config="outd", data_dir_=str(tmp_path / "data"),
                     manual_dir=str(manual))
  assert len(ood.as_data_source("test")) == 2
  assert list(ood.info.splits) == ["test"]
