"""Tetrominoes AKOrN (docs/models.md#object-akorn): attention (default) or `conv` (k 5), ch 128,
psize 4, 32 px.

Run: akorn-train --config=tetrominoes_akorn --workdir=runs/tetro
     akorn-evaluate --workdir=runs/tetro
Reference (DeepMind Tetrominoes): attn FG-ARI 88.6 / MBO 56.4 (93.1 up-tiled x4); conv 76.4 / 51.9.
Defaults train on our generated stand-in `tetrominoes_generated`; use
`--config.data.name=multi_object --config.data.config=tetrominoes` for the real TFRecords.
Options: `conv`, `tiny`, `cpu` (ch 64, batch 32, 1,500 steps: what a 2-core CPU trains in
~15 minutes), comma-separated, e.g. `tetrominoes_akorn:conv,tiny`.
"""

from akorn_jax import config_base

from .objects_base import object_config


def get_config(arg: str | None = None):
  v = config_base.parse_arg(arg, conv=False, tiny=False, cpu=False)
  return object_config(dataset="tetrominoes_generated", builder_config="full", imsize=32,
                       num_train=60000, ch=128, psize=4, epochs=50, c_norm="none", ksize=5,
                       num_clusters=4, connectivity="conv" if v.conv else "attn",
                       tiny=v.tiny, cpu=v.cpu)
