"""CIFAR-10 ViT baseline under the same protocol as configs/cifar_akorn.py and the ResNet-18
(same data, augmentation, optimiser, schedule, attacks, AutoAttack versions, corruptions).

The paper compares AKOrN with a ViT on CIFAR-10 but the reference code has none: these settings
are ours. Patch 4 (8 x 8 tokens), width 256, 6 blocks of T = 1, 8 heads, MLP 512, learnable
sinusoidal positions, mean-pooled tokens -> linear head. Deterministic, so EOT is 1.

Run: akorn-train --config=cifar_vit --workdir=runs/cifar_vit
     akorn-evaluate --workdir=runs/cifar_vit --robustness
Option `tiny` (width 16, 1 block) for tests.
"""

from akorn_jax import config_base

from . import cifar_akorn


def get_config(arg: str | None = None):
  v = config_base.parse_arg(arg, tiny=False)
  tiny = v.tiny
  c = cifar_akorn.get_config(arg)
  c.model = dict(name="vit_classifier", ch=16 if tiny else 256, num_layers=1 if tiny else 6,
                 heads=2 if tiny else 8, psize=4, imsize=32, mlp_ratio=2, num_classes=10,
                 attn_impl="", dtype="auto")
  # Deterministic model: the EOT variants and AutoAttack's rand version would repeat the same
  # gradient; the reference-style attacks and AutoAttack standard remain.
  c.eval.eot = 1
  c.eval.attacks = tuple(a for a in c.eval.attacks if "eot=" not in a)
  c.eval.autoattack = ("standard",)
  c.eval.autoattack_overrides = {}
  return c
