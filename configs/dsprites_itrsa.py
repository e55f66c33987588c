"""Dsprites ItrSA baseline (SPEC §4.2): the AKOrN config's data, size and schedule (ch 128, psize 4, 64 px),
with one ViT block whose attention sub-layer repeats T = 8 times (weights tied), learnable
sinusoidal positions (no GTA), LayerNorm features for the clustering.

Run: python -m experiments.train --config=configs/dsprites_itrsa.py --workdir=runs/dsprites_itrsa
     python -m experiments.evaluate --config=configs/dsprites_itrsa.py --workdir=runs/dsprites_itrsa
Reference (paper's synthetic table, DeepMind data): FG-ARI 68.1 / MBO 63.0. Variants as
configs/dsprites_akorn.py (`tiny`, `cpu`) plus `vit`: T = 1, a plain ViT block (no recurrence).
"""

from akorn_jax import config_base
from configs import dsprites_akorn


def get_config(arg: str | None = None):
  v = config_base.parse_arg(arg, {"tiny", "cpu", "vit"})
  c = dsprites_akorn.get_config(",".join(k for k in v if k != "vit") or None)
  for key in ("n", "gamma", "use_omega", "c_norm", "connectivity", "ksize", "remat"):
    del c.model[key]
  c.model.name = "object_vit"
  c.model.gta = False
  c.model.steps = 1 if "vit" in v else 8
  return c
