"""Multi-dSprites AKOrN (docs/models.md#object-akorn): attention (default) or `conv` (k 7), ch 128,
psize 4, 64 px.

Run: akorn-train --config=dsprites_akorn --workdir=runs/dsprites
Reference (colored_on_grayscale): attn FG-ARI 78.3 / MBO 63.0 (87.1 up-tiled). Defaults train on
our generated stand-in `dsprites_generated`. Options: `conv`, `tiny`, `cpu` (ch 64, batch 32,
1,500 steps), comma-separated.
"""

from akorn_jax import config_base

from .objects_base import object_config


def get_config(arg: str | None = None):
  v = config_base.parse_arg(arg, conv=False, tiny=False, cpu=False)
  return object_config(dataset="dsprites_generated", builder_config="full", imsize=64,
                       num_train=60000, ch=128, psize=4, epochs=50, c_norm="none", ksize=7,
                       num_clusters=7, connectivity="conv" if v.conv else "attn",
                       tiny=v.tiny, cpu=v.cpu)
