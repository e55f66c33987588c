"""Object discovery on VOC (1,449 val images at 256 px) with the ImageNet-pre-trained AKOrN of
configs/imagenet_akorn.py: clustering into 4 groups, FG-ARI, MBO_i (instances) and MBO_c
(semantic classes), docs/evaluation.md#objects, docs/datasets.md#natural-images.

Run on the pre-training run's EMA weights (no download; data_dir = the VOC2012 folder (JPEGImages/, SegmentationObject/, SegmentationClass/, ImageSets/Segmentation/val.txt)):
  akorn-evaluate --config=voc_akorn --workdir=runs/imagenet \
      --config.data.data_dir=/path/to/voc
Not run here (needs ImageNet pre-training and the data). Option `tiny` for tests.
"""

from . import imagenet_akorn


def get_config(arg: str | None = None):
  c = imagenet_akorn.get_config(arg)
  c.data.name = "voc"
  c.data.data_dir = ""      # the VOC folder; must be set
  c.eval.split = "val"
  c.eval.num_clusters = 4
  c.eval.num_images = 0     # the whole split
  return c
