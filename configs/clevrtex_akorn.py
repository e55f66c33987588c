"""CLEVRTex AKOrN (SPEC §4.1): attention, ch 256, psize 8, 128 px, c_norm gn, 500 epochs.

Run: python -m experiments.train --config=configs/clevrtex_akorn.py:L=2 --workdir=runs/clevrtex_L2
Needs the CLEVRTex release (prepare `clevrtex/full` from its extracted folder; see README).
Reference: L=1 FG-ARI 75.6 / MBO 55.0; L=2 80.5 / 54.9; `large` (L=2, ch 512, batch 512, lr 5e-4,
1024 epochs) up-tiled 88.5 / 59.7. Variants: `L=1|2`, `large`, `tiny` (tiny runs on generated
dSprites so it needs no download).
"""

from akorn_jax import config_base
from configs.objects_base import object_config


def get_config(arg: str | None = None):
  v = config_base.parse_arg(arg, {"L", "large", "tiny"})
  num_layers = 2 if "large" in v else int(v.get("L") or 1)
  kw = dict(ch=512, batch_size=512, lr=5e-4, epochs=1024) if "large" in v else dict(
      ch=256, batch_size=256, lr=1e-3, epochs=500)
  if "tiny" in v:
    return object_config(dataset="dsprites_generated", builder_config="tiny", imsize=64,
                         num_train=256, psize=8, c_norm="gn", ksize=1, num_clusters=11,
                         num_layers=num_layers, tiny=True, **kw)
  return object_config(dataset="clevrtex", builder_config="full", imsize=128, num_train=40000,
                       psize=8, c_norm="gn", ksize=1, num_clusters=11, num_layers=num_layers, **kw)
