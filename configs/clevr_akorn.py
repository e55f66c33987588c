"""CLEVR6 AKOrN (SPEC §4.1): attention (default) or `conv` (k 7), ch 256, psize 8, 128 px, 300 epochs.

Run: python -m experiments.train --config=configs/clevr_akorn.py --workdir=runs/clevr
Needs the real CLEVR-with-masks TFRecords (prepare `multi_object/clevr6` from a manual dir; see
README). Reference: attn FG-ARI 91.0 / MBO 45.5 (94.6 up-tiled). Variants: `conv`, `tiny` (the tiny
variant runs on generated dSprites so it needs no download).
"""

from akorn_jax import config_base
from configs.objects_base import object_config


def get_config(arg: str | None = None):
  v = config_base.parse_arg(arg, {"conv", "tiny"})
  if "tiny" in v:
    c = object_config(dataset="dsprites_generated", builder_config="tiny", imsize=64,
                      num_train=60000, ch=256, psize=8, epochs=1, c_norm="none", ksize=7,
                      num_clusters=11, connectivity="conv" if "conv" in v else "attn", tiny=True)
    return c
  return object_config(dataset="multi_object", builder_config="clevr6", imsize=128,
                       num_train=70000, ch=256, psize=8, epochs=300, c_norm="none", ksize=7,
                       num_clusters=11, connectivity="conv" if "conv" in v else "attn")
