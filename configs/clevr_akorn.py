"""CLEVR6 AKOrN (docs/models.md#object-akorn): attention (default) or `conv` (k 7), ch 256, psize 8,
128 px, 300 epochs.

Run: akorn-train --config=clevr_akorn --workdir=runs/clevr
Needs the real CLEVR-with-masks TFRecords (prepare `multi_object/clevr6` from a manual dir; see
README). Reference: attn FG-ARI 91.0 / MBO 45.5 (94.6 up-tiled). Options: `conv`, `tiny` (the tiny
variant runs on generated dSprites so it needs no download).
"""

from akorn_jax import config_base

from .objects_base import object_config


def data(tiny: bool) -> dict:
  """CLEVR6's data and schedule (also the ItrSA baseline's, configs/clevr_itrsa.py); `tiny`: the
  generated stand-in of the tests."""
  if tiny:
    return dict(dataset="dsprites_generated", builder_config="tiny", imsize=64, num_train=60000,
                epochs=1)
  return dict(dataset="multi_object", builder_config="clevr6", imsize=128, num_train=70000,
              epochs=300)


def get_config(arg: str | None = None):
  v = config_base.parse_arg(arg, conv=False, tiny=False)
  return object_config(**data(v.tiny), ch=256, psize=8, c_norm="none", ksize=7, num_clusters=11,
                       connectivity="conv" if v.conv else "attn", tiny=v.tiny)
