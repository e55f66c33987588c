"""CLEVRTex AKOrN (docs/models.md#object-akorn): attention, ch 256, psize 8, 128 px, c_norm gn, 500
epochs.

Run: akorn-train --config=clevrtex_akorn:L=2 --workdir=runs/clevrtex_L2
Needs the CLEVRTex release (prepare `clevrtex/full` from its extracted folder; see README).
Reference: L=1 FG-ARI 75.6 / MBO 55.0; L=2 80.5 / 54.9; `large` (L=2, ch 512, batch 512, lr 5e-4,
1024 epochs) up-tiled 88.5 / 59.7. Options: `L=1|2`, `large`, `tiny` (tiny runs on generated
dSprites so it needs no download).
"""

from akorn_jax import config_base

from .objects_base import object_config


def clevrtex_data(tiny: bool) -> dict:
  """The dataset arguments of `object_config` for CLEVRTex (shared with clevrtex_itrsa)."""
  if tiny:  # generated dSprites: no download
    return dict(dataset="dsprites_generated", builder_config="tiny", imsize=64, num_train=256,
                psize=8, num_clusters=11)
  return dict(dataset="clevrtex", builder_config="full", imsize=128, num_train=40000, psize=8,
              num_clusters=11)


def get_config(arg: str | None = None):
  v = config_base.parse_arg(arg, L=(1, 2), large=False, tiny=False)
  if v.large:
    if "L=" in (arg or ""):
      raise ValueError(f"'large' in {arg!r} is L=2 already; drop the L option.")
    size = dict(num_layers=2, ch=512, batch_size=512, lr=5e-4, epochs=1024)
  else:
    size = dict(num_layers=v.L, ch=256, batch_size=256, lr=1e-3, epochs=500)
  return object_config(**clevrtex_data(v.tiny), **size, c_norm="gn", ksize=1, tiny=v.tiny)
