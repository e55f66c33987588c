"""CIFAR-10 ResNet-18 baseline for the robustness/calibration comparison (paper: ~94% clean, 0%
under AutoAttack). Same data, augmentation, optimiser and schedule as configs/cifar_akorn.py (our
choice: one protocol for both models), deterministic model (no EOT needed).

Run: python -m experiments.train --config=configs/cifar_resnet18.py --workdir=runs/cifar_resnet18
Variant `tiny` (width 8) for tests.
"""

from configs import cifar_akorn


def get_config(arg: str | None = None):
  c = cifar_akorn.get_config(arg)
  tiny = c.model.ch == 8
  c.model = dict(name="resnet18", num_classes=10, width=8 if tiny else 64, dtype="auto")
  c.eval.eot = 1
  return c
