"""Pascal VOC and COCO readers on tiny files written here in the real formats."""

import json

import numpy as np
import pytest
from PIL import Image

from akorn_jax.data import segmentation as seg


def _rle_counts(mask):
  """Run lengths of a bool mask over column-major pixels, starting with a background run."""
  flat = np.asarray(mask, bool).T.reshape(-1)
  counts, current, run = [], False, 0
  for v in flat:
    if v == current:
      run += 1
    else:
      counts.append(run)
      current, run = v, 1
  counts.append(run)
  return counts


def _rle_string(counts):
  """COCO's compressed RLE string, written from the format's description."""
  out = []
  for i, x in enumerate(counts):
    if i > 2:
      x -= counts[i - 2]
    more = True
    while more:
      c = x & 0x1F
      x >>= 5
      more = (x != -1) if (c & 0x10) else (x != 0)
      if more:
        c |= 0x20
      out.append(chr(c + 48))
  return "".join(out)


def test_rle_string_known_vector_and_round_trip():
  # Counts from the fourth on are stored as deltas to the count two before (40 - 2 = 38 needs
  # two 5-bit groups: "V" = 38 & 31 | 0x20, "1" = 1); 4 - 10 = -6 is one group "J" with the sign bit.
  assert seg.rle_string_to_counts("523V1") == [5, 2, 3, 40]
  assert seg.rle_string_to_counts("5:3J") == [5, 10, 3, 4]
  assert _rle_string([5, 2, 3, 40]) == "523V1" and _rle_string([5, 10, 3, 4]) == "5:3J"
  rng = np.random.default_rng(0)
  mask = rng.uniform(size=(37, 23)) < 0.3
  counts = _rle_counts(mask)
  np.testing.assert_array_equal(seg.rle_decode(counts, (37, 23)), mask)
  np.testing.assert_array_equal(seg.rle_decode(_rle_string(counts), (37, 23)), mask)
  with pytest.raises(ValueError, match="corrupt"):
    seg.rle_decode([3, 4], (3, 3))


def test_polygon_mask_fills_pixel_centres():
  m = seg.polygon_mask([[1, 1, 4, 1, 4, 3, 1, 3]], 5, 6)  # x 1..4, y 1..3
  want = np.zeros((5, 6), bool)
  want[1:3, 1:4] = True
  np.testing.assert_array_equal(m, want)
  tri = seg.polygon_mask([[0, 0, 10, 0, 0, 10]], 10, 10)
  assert tri.sum() == 45 and tri[0, 0] and not tri[9, 9]


def _palette_png(path, values):
  img = Image.fromarray(values.astype(np.uint8), mode="P")
  img.putpalette([v for i in range(256) for v in ((i * 37) % 256, (i * 91) % 256, i)])
  img.save(path)


def test_voc_reader(tmp_path):
  root = tmp_path / "VOC2012"
  for d in ("JPEGImages", "SegmentationObject", "SegmentationClass", "ImageSets/Segmentation"):
    (root / d).mkdir(parents=True)
  (root / "ImageSets/Segmentation/val.txt").write_text("2007_000001\n")
  h, w = 256, 320  # shorter side already 256: only the centre crop (columns 32..287) applies
  obj = np.zeros((h, w), np.uint8)
  obj[10:100, 40:120] = 1
  obj[150:200, 200:300] = 2
  obj[100, 40:120] = 255  # boundary
  cls = np.where(obj == 255, 255, np.where(obj == 1, 15, np.where(obj == 2, 7, 0))).astype(np.uint8)
  _palette_png(root / "SegmentationObject/2007_000001.png", obj)
  _palette_png(root / "SegmentationClass/2007_000001.png", cls)
  Image.fromarray(np.full((h, w, 3), 120, np.uint8)).save(root / "JPEGImages/2007_000001.jpg")
  src = seg.VOCSegmentation(str(root), "val")
  assert len(src) == 1
  ex = src[0]
  assert ex["image"].shape == (256, 256, 3) and ex["image"].dtype == np.uint8
  want = np.where(obj == 255, -1, obj.astype(np.int32))[:, 32:288]
  np.testing.assert_array_equal(ex["mask"], want)
  np.testing.assert_array_equal(ex["class_mask"], np.where(cls == 255, -1, cls.astype(np.int32))[:, 32:288])
  with pytest.raises(FileNotFoundError, match="VOC2012"):
    seg.VOCSegmentation(str(tmp_path), "val")


def test_coco_reader_polygon_rle_overlap_and_crowd(tmp_path):
  h, w = 256, 256
  blob = np.zeros((h, w), bool)
  blob[100:160, 50:90] = True       # overlaps the polygon in rows 100..119, cols 50..89
  ring = np.zeros((h, w), bool)
  ring[200:250, 200:250] = True
  anns = [
      {"id": 1, "image_id": 7, "category_id": 3, "iscrowd": 0,
       "segmentation": [[20, 20, 120, 20, 120, 120, 20, 120]]},          # x, y 20..119
      {"id": 2, "image_id": 7, "category_id": 18, "iscrowd": 0,
       "segmentation": {"size": [h, w], "counts": _rle_string(_rle_counts(blob))}},
      {"id": 3, "image_id": 7, "category_id": 1, "iscrowd": 1,         # crowd: ignored
       "segmentation": {"size": [h, w], "counts": _rle_counts(ring)}},
      {"id": 4, "image_id": 9, "category_id": 1, "iscrowd": 0,
       "segmentation": {"size": [h, w], "counts": _rle_counts(ring)}},  # uncompressed RLE
  ]
  images = [{"id": 9, "file_name": "b.jpg", "height": h, "width": w},
            {"id": 7, "file_name": "a.jpg", "height": h, "width": w}]
  (tmp_path / "ann.json").write_text(json.dumps({"images": images, "annotations": anns,
                                                 "categories": []}))
  (tmp_path / "img").mkdir()
  for name in ("a.jpg", "b.jpg"):
    Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(tmp_path / "img" / name)
  src = seg.COCOSegmentation(str(tmp_path / "ann.json"), str(tmp_path / "img"))
  assert len(src) == 2
  first = src[0]  # image id 7 (sorted by id)
  inst, cls = first["mask"], first["class_mask"]
  assert inst[50, 50] == 1 and cls[50, 50] == 3
  assert inst[140, 60] == 2 and cls[140, 60] == 18
  assert inst[110, 60] == -1 and cls[110, 60] == -1      # covered by both instances
  assert inst[220, 220] == 0                              # the crowd ring is not an instance
  assert set(np.unique(inst)) == {-1, 0, 1, 2}
  second = src[1]
  np.testing.assert_array_equal(second["mask"], ring.astype(np.int32))
  np.testing.assert_array_equal(second["class_mask"], ring.astype(np.int32))


def test_resize_and_crop_shorter_side_and_nearest_labels():
  image = np.zeros((512, 768, 3), np.uint8)
  labels = np.zeros((512, 768), np.int32)
  labels[:, 384:] = 5
  labels[0:2, :] = -1
  img, (lab,) = seg.resize_and_crop(image, [labels])
  assert img.shape == (256, 256, 3) and lab.shape == (256, 256)
  # 768 -> 384 wide, centre crop 64..320: the label edge at 384/2 = 192 lands at column 128.
  assert lab[100, 127] == 0 and lab[100, 128] == 5
  assert set(np.unique(lab)) == {-1, 0, 5}


def test_mbo_c_scores_against_classes_beside_mbo_i():
  from akorn_jax.evaluate import objects as objects_eval
  # Two same-sized instances of one class on a background, coloured by instance; features = the
  # patch colour, so 3 clusters recover the instances exactly.
  image = np.zeros((1, 16, 16, 3), np.float32)
  mask = np.zeros((1, 16, 16), np.int32)
  image[0, :8, :8] = (1, 0, 0)
  mask[0, :8, :8] = 1
  image[0, 8:, 8:] = (0, 1, 0)
  mask[0, 8:, 8:] = 2
  classes = np.where(mask > 0, 4, 0)
  feats = lambda x: np.asarray(x)[:, ::4, ::4] + 0.01  # psize 4 patches
  res = objects_eval.evaluate_objects(
      feats, [{"image": image, "mask": mask, "class_mask": classes}], psize=4, num_clusters=3,
      pca_dim=3)
  assert res["mbo"] == pytest.approx(1.0)
  assert res["mbo_c"] == pytest.approx(0.5)  # the class covers both instances; a cluster holds one
  no_c = objects_eval.evaluate_objects(feats, [{"image": image, "mask": mask}], psize=4,
                                       num_clusters=3, pca_dim=3)
  assert "mbo_c" not in no_c
