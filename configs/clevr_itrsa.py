"""CLEVR6 ItrSA baseline (docs/models.md#object-baselines): the AKOrN config's data, size and schedule (ch 256, psize 8, 128 px), with
one ViT block whose attention sub-layer repeats T = 8 times (weights tied), learnable sinusoidal
positions (no GTA), LayerNorm features for the clustering.

Run: akorn-train --config=clevr_itrsa --workdir=runs/clevr_itrsa
     akorn-evaluate --workdir=runs/clevr_itrsa
Reference (paper's synthetic table, DeepMind data): FG-ARI 82.5 / MBO 39.4. Options: `tiny`, and
`vit`: T = 1, a plain ViT block (no recurrence).
"""

from akorn_jax import config_base

from . import clevr_akorn
from .objects_base import object_config


def get_config(arg: str | None = None):
  v = config_base.parse_arg(arg, vit=False, tiny=False)
  c = object_config(**clevr_akorn.data(v.tiny), ch=256, psize=8, num_clusters=11, model="itrsa", tiny=v.tiny)
  if v.vit:
    c.model.steps = 1
  return c
