"""CIFAR-10 AKOrN^mix: the paper's mixed variant, conv coupling in stages 1-2 and attention in
stage 3 (8 x 8 grid, 256 channels, 8 heads, GTA). Everything else is configs/cifar_akorn.py.

The reference code has no mixed model (its CIFAR model is conv-only, docs/models.md#cifar-akorn): the stage layout
is taken from the paper's description, and the attention settings (8 heads, GTA, 1x1 q/k/v) are
those of the reference's attention KLayer. Parameters: `--dry_run` prints them (tests check the
count).

Run: akorn-train --config=cifar_akorn_mix --workdir=runs/cifar_mix
     akorn-evaluate --workdir=runs/cifar_mix --robustness
Option `tiny` (ch 8, T 1) for tests.
"""

from akorn_jax import config_base

from . import cifar_akorn


def get_config(arg: str | None = None):
  v = config_base.parse_arg(arg, tiny=False)
  c = cifar_akorn.get_config(arg)
  c.model.connectivity = ("conv", "conv", "attn")
  c.model.heads = 2 if v.tiny else 8
  c.model.gta = True
  c.model.imsize = 32
  c.model.attn_impl = ""
  return c
