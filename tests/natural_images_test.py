"""Natural-image object discovery end to end at tiny scale: SimCLR pre-training on an image folder,
then evaluation on VOC- and COCO-format files (MBO_i and MBO_c), all written here."""

import json

import numpy as np
from PIL import Image

from akorn_jax import data
from akorn_jax.train import loop
from akorn_jax import config_loader
from experiments import evaluate as evaluate_driver
import segmentation_data_test as seg_files


def _scene(rng, h, w):
  image = np.full((h, w, 3), 30, np.uint8)
  mask = np.zeros((h, w), np.uint8)
  for k in (1, 2):
    y, x = rng.integers(0, h - 80), rng.integers(0, w - 80)
    image[y:y + 80, x:x + 80] = rng.integers(60, 255, 3)
    mask[y:y + 80, x:x + 80] = k
  return image, mask


def _write_folders(tmp_path):
  rng = np.random.default_rng(0)
  for cls in ("n01", "n02"):
    (tmp_path / "imagenet/train" / cls).mkdir(parents=True)
    for i in range(4):
      Image.fromarray(_scene(rng, 300, 340)[0]).save(tmp_path / "imagenet/train" / cls / f"{i}.JPEG")
  voc = tmp_path / "VOC2012"
  for d in ("JPEGImages", "SegmentationObject", "SegmentationClass", "ImageSets/Segmentation"):
    (voc / d).mkdir(parents=True)
  (voc / "ImageSets/Segmentation/val.txt").write_text("a\nb\n")
  coco_images, coco_anns = [], []
  (tmp_path / "coco/val2017").mkdir(parents=True)
  (tmp_path / "coco/annotations").mkdir(parents=True)
  for i, name in enumerate("ab"):
    image, mask = _scene(rng, 256, 256)
    Image.fromarray(image).save(voc / "JPEGImages" / f"{name}.jpg")
    seg_files._palette_png(voc / "SegmentationObject" / f"{name}.png", mask)
    seg_files._palette_png(voc / "SegmentationClass" / f"{name}.png", np.where(mask > 0, 8, 0))
    Image.fromarray(image).save(tmp_path / "coco/val2017" / f"{name}.jpg")
    coco_images.append({"id": i, "file_name": f"{name}.jpg", "height": 256, "width": 256})
    for k in (1, 2):
      coco_anns.append({"id": 10 * i + k, "image_id": i, "category_id": k, "iscrowd": 0,
                        "segmentation": {"size": [256, 256],
                                         "counts": seg_files._rle_counts(mask == k)}})
  (tmp_path / "coco/annotations/instances_val2017.json").write_text(
      json.dumps({"images": coco_images, "annotations": coco_anns}))


def test_pretrain_on_folder_then_evaluate_voc_and_coco(tmp_path):
  _write_folders(tmp_path)
  src = data.open_split("image_folder", "", "train", data_dir=str(tmp_path / "imagenet"))
  assert len(src) == 8 and src[5]["image"].shape == (256, 256, 3) and src[5]["label"] == 1

  c = config_loader.load("imagenet_akorn:tiny")
  assert c.data.hflip and c.model.imsize == 256
  c.data.data_dir = str(tmp_path / "imagenet")
  c.data.batch_size = 8
  c.train.num_steps, c.train.log_every, c.checkpoint.every_steps = 2, 1, 2
  c.train.eval_every = 0
  with c.unlocked():
    c.eval.num_images = 2
  run = str(tmp_path / "run")
  # Pre-training has no labels to score: its periodic evaluation is the VOC/COCO configs below.
  loop.train_and_evaluate(c, run, task=_no_eval_task(c))

  for name, root in (("voc_akorn", tmp_path / "VOC2012"), ("coco_akorn", tmp_path / "coco")):
    e = config_loader.load(f"{name}:tiny")
    e.data.data_dir = str(root)
    out = evaluate_driver.evaluate(e, run)
    assert out["step"] == 2
    for key in ("eval/fg_ari_x1", "eval/mbo_x1", "eval/mbo_c_x1"):
      assert 0.0 <= out[key] <= 1.0, (key, out)


def _no_eval_task(config):
  from akorn_jax import tasks  # pylint: disable=g-import-not-at-top
  import dataclasses  # pylint: disable=g-import-not-at-top
  return dataclasses.replace(tasks.get_task(config), evaluate=None)
