"""Multi-dSprites ItrSA baseline (docs/models.md#object-baselines): the AKOrN config's data, size and schedule (ch 128, psize 4, 64 px), with
one ViT block whose attention sub-layer repeats T = 8 times (weights tied), learnable sinusoidal
positions (no GTA), LayerNorm features for the clustering.

Run: akorn-train --config=dsprites_itrsa --workdir=runs/dsprites_itrsa
     akorn-evaluate --workdir=runs/dsprites_itrsa
Reference (paper's synthetic table, DeepMind data): FG-ARI 68.1 / MBO 63.0. Options: `tiny`, `cpu`, and
`vit`: T = 1, a plain ViT block (no recurrence).
"""

from akorn_jax import config_base

from .objects_base import object_config


def get_config(arg: str | None = None):
  v = config_base.parse_arg(arg, vit=False, tiny=False, cpu=False)
  c = object_config(dataset="dsprites_generated", builder_config="full", imsize=64,
                    num_train=60000, ch=128, psize=4, epochs=50, num_clusters=7, model="itrsa",
                    tiny=v.tiny, cpu=v.cpu)
  if v.vit:
    c.model.steps = 1
  return c
