"""Tetrominoes ItrSA baseline (SPEC §4.2): the AKOrN config's data, size and schedule (ch 128, psize 4, 32 px),
with one ViT block whose attention sub-layer repeats T = 8 times (weights tied), learnable
sinusoidal positions (no GTA), LayerNorm features for the clustering.

Run: python -m experiments.train --config=configs/tetrominoes_itrsa.py --workdir=runs/tetrominoes_itrsa
     python -m experiments.evaluate --config=configs/tetrominoes_itrsa.py --workdir=runs/tetrominoes_itrsa
Reference (paper's synthetic table, DeepMind data): FG-ARI 85.8 / MBO 54.9. Variants as
configs/tetrominoes_akorn.py (`tiny`, `cpu`) plus `vit`: T = 1, a plain ViT block (no recurrence).
"""

from akorn_jax import config_base
from configs import tetrominoes_akorn


def get_config(arg: str | None = None):
  v = config_base.parse_arg(arg, {"tiny", "cpu", "vit"})
  c = tetrominoes_akorn.get_config(",".join(k for k in v if k != "vit") or None)
  for key in ("n", "gamma", "use_omega", "c_norm", "connectivity", "ksize", "remat"):
    del c.model[key]
  c.model.name = "object_vit"
  c.model.gta = False
  c.model.steps = 1 if "vit" in v else 8
  return c
