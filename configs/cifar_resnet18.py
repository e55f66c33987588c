"""CIFAR-10 ResNet-18 baseline for the robustness/calibration comparison (paper: ~94% clean, 0%
under AutoAttack). Same data, augmentation, optimiser and schedule as cifar_akorn (our choice: one
protocol for both models), deterministic model (no EOT needed).

Run: akorn-train --config=cifar_resnet18 --workdir=runs/cifar_resnet18
Option `tiny` (width 8) for tests.
"""

from akorn_jax import config_base

from . import cifar_akorn


def get_config(arg: str | None = None):
  v = config_base.parse_arg(arg, tiny=False)
  c = cifar_akorn.get_config(arg)
  c.model = dict(name="resnet18", num_classes=10, width=8 if v.tiny else 64, dtype="auto")
  c.eval.eot = 1
  return c
