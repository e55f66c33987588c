"""Tetrominoes ItrSA baseline (docs/models.md#object-baselines): the AKOrN config's data, size and schedule (ch 128, psize 4, 32 px), with
one ViT block whose attention sub-layer repeats T = 8 times (weights tied), learnable sinusoidal
positions (no GTA), LayerNorm features for the clustering.

Run: akorn-train --config=tetrominoes_itrsa --workdir=runs/tetrominoes_itrsa
     akorn-evaluate --workdir=runs/tetrominoes_itrsa
Reference (paper's synthetic table, DeepMind data): FG-ARI 85.8 / MBO 54.9. Options: `tiny`, `cpu`, and
`vit`: T = 1, a plain ViT block (no recurrence).
"""

from akorn_jax import config_base

from .objects_base import object_config


def get_config(arg: str | None = None):
  v = config_base.parse_arg(arg, vit=False, tiny=False, cpu=False)
  c = object_config(dataset="tetrominoes_generated", builder_config="full", imsize=32,
                    num_train=60000, ch=128, psize=4, epochs=50, num_clusters=4, model="itrsa",
                    tiny=v.tiny, cpu=v.cpu)
  if v.vit:
    c.model.steps = 1
  return c
