"""CLEVRTex ItrSA baseline (docs/models.md#object-baselines): ViT blocks whose attention repeats T =
8 times, pos-emb.

Run: akorn-train --config=clevrtex_itrsa:L=2 --workdir=runs/clevrtex_itrsa
Reference: L=1 FG-ARI 65.7 / MBO 44.6; L=2 76.3 / 48.5. Options: `L=1|2`, `tiny`.
"""

from akorn_jax import config_base

from .clevrtex_akorn import clevrtex_data
from .objects_base import object_config


def get_config(arg: str | None = None):
  v = config_base.parse_arg(arg, L=(1, 2), tiny=False)
  return object_config(**clevrtex_data(v.tiny), model="itrsa", num_layers=v.L, ch=256,
                       epochs=500, tiny=v.tiny)
