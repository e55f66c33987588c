"""SimCLR pre-training of an object AKOrN on ImageNet-style folders at 256 px, for the paper's
natural-image object discovery (evaluate with configs/voc_akorn.py and configs/coco_akorn.py).

The reference has an ImageNet loader (SimCLR views at 256 px, horizontal flip p = 0.5) but no
command or hyper-parameters for this run (docs/datasets.md#natural-images, docs/reference.md#open-points). Ours, marked as our choice: the
CLEVRTex "large" AKOrN (attention with GTA, L = 2, ch 512, n 4, T 8, c_norm gn) with 16-px patches
(a 16 x 16 token grid, as CLEVRTex), batch 512, Adam 5e-4, EMA 0.998, 100 epochs.

Data (no download): ImageNet's train/ folder of class subfolders (docs/datasets.md), read in place:
  akorn-train --config=imagenet_akorn --workdir=runs/imagenet \
      --config.data.data_dir=/path/to/imagenet
Not run here (needs ImageNet and a GPU). Option `tiny` (ch 16, psize 32, a few steps) for tests.
"""

from akorn_jax import config_base

from .objects_base import object_config

NUM_TRAIN = 1_281_167  # ImageNet-1k train images


def get_config(arg: str | None = None):
  v = config_base.parse_arg(arg, tiny=False)
  c = object_config(dataset="image_folder", builder_config="", imsize=256, num_train=NUM_TRAIN,
                    ch=512, psize=16, epochs=100, c_norm="gn", ksize=1, num_clusters=4,
                    num_layers=2, batch_size=512, lr=5e-4, tiny=v.tiny)
  c.data.data_dir = ""       # the ImageNet folder (holds train/<class>/*.JPEG); must be set
  c.data.hflip = True        # the reference flips ImageNet views (never the synthetic sets')
  c.model.imsize = 256
  c.eval.split = "val"
  c.eval.num_pictures = 0
  if v.tiny:
    c.data.config = ""
    c.model.psize = 32
    c.model.ch = 16
    c.model.heads = 2
    c.model.steps = 2
    c.eval.uptile = (1,)
  return c
