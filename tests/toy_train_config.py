"""A complete trainer config for the driver tests (the toy task of tests/train_test.py).

  python -m experiments.train --config=tests/toy_train_config.py --workdir=/tmp/toy --dry_run
"""

import ml_collections


def get_config(arg=None):
  c = ml_collections.ConfigDict()
  c.task = arg or "toy"
  c.seed = 3
  # data
  c.data = dict(batch_size=8, num_workers=0, shuffle=True)
  # optim
  c.optim = dict(lr=3e-2, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0, clip_norm=None,
                 warmup_steps=0, schedule="constant")
  c.ema = dict(beta=0.9, update_every=2, update_after_step=1)
  c.train = dict(num_steps=2, log_every=1, eval_every=0, log_images=False)
  # checkpoint
  c.checkpoint = dict(every_steps=2, max_to_keep=1)
  # mesh
  c.mesh = dict(data=-1, fsdp=1)
  return c
