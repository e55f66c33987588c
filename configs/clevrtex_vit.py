"""CLEVRTex ViT baseline (the paper's "ViT" row): the ItrSA config with T = 1, i.e. plain ViT
blocks without recurrence. The reference repository has no command for this row (its depth is
unknown, docs/reference.md#open-points): we use the ItrSA depths, L = 1 (default) or `L=2`.

Run: akorn-train --config=clevrtex_vit --workdir=runs/clevrtex_vit
Reference (CLEVRTex): FG-ARI 46.4 / MBO 25.1. Options: `L=1|2`, `tiny`.
"""

from . import clevrtex_itrsa


def get_config(arg: str | None = None):
  c = clevrtex_itrsa.get_config(arg)
  c.model.steps = 1
  return c
