"""CLEVRTex ItrSA baseline (SPEC §4.2): ViT blocks whose attention repeats T = 8 times, pos-emb.

Run: python -m experiments.train --config=configs/clevrtex_itrsa.py:L=2 --workdir=runs/clevrtex_itrsa
Reference: L=1 FG-ARI 65.7 / MBO 44.6; L=2 76.3 / 48.5. Variants: `L=1|2`, `tiny`.
"""

from akorn_jax import config_base
from configs import clevrtex_akorn


def get_config(arg: str | None = None):
  v = config_base.parse_arg(arg, {"L", "tiny"})
  c = clevrtex_akorn.get_config(arg)
  for key in ("n", "gamma", "use_omega", "c_norm", "connectivity", "ksize", "remat"):
    del c.model[key]
  c.model.name = "object_vit"
  c.model.gta = False
  c.model.num_layers = int(v.get("L") or 1)
  return c
