"""Object discovery on COCO (5,000 val images at 256 px) with the ImageNet-pre-trained AKOrN of
configs/imagenet_akorn.py: clustering into 7 groups, FG-ARI, MBO_i (instances) and MBO_c
(semantic classes), docs/evaluation.md#objects, docs/datasets.md#natural-images.

Run on the pre-training run's EMA weights (no download; data_dir = the COCO folder (annotations/instances_val2017.json, val2017/)):
  akorn-evaluate --config=coco_akorn --workdir=runs/imagenet \
      --config.data.data_dir=/path/to/coco
Not run here (needs ImageNet pre-training and the data). Option `tiny` for tests.
"""

from . import imagenet_akorn


def get_config(arg: str | None = None):
  c = imagenet_akorn.get_config(arg)
  c.data.name = "coco"
  c.data.data_dir = ""      # the COCO folder; must be set
  c.eval.split = "val2017"
  c.eval.num_clusters = 7
  c.eval.num_images = 0     # the whole split
  return c
