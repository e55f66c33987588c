"""Shared settings of the object-discovery experiments (docs/models.md#object-akorn,
docs/training.md#objects, docs/evaluation.md#objects); not a config itself.

Each dataset file calls `object_config(...)` with the per-run values of the table in
docs/models.md#object-akorn and
the model: "akorn" (needs connectivity, ksize and c_norm) or "itrsa" (the ViT baseline whose
attention repeats T times).
"""

import ml_collections

from akorn_jax import config_base

MODELS = ("akorn", "itrsa")


def object_config(*, dataset: str, builder_config: str, imsize: int, num_train: int, ch: int,
                  psize: int, epochs: int, num_clusters: int, model: str = "akorn",
                  connectivity: str = "attn", ksize: int = 1, c_norm: str = "none",
                  num_layers: int = 1, batch_size: int = 256, lr: float = 1e-3,
                  tiny: bool = False, cpu: bool = False) -> ml_collections.ConfigDict:
  if model not in MODELS:
    raise ValueError(f"model={model!r}; expected one of {MODELS}.")
  c = config_base.base_config("objects")

  # --- data ---------------------------------------------------------------------------------------
  c.data.name = dataset
  c.data.config = builder_config
  c.data.batch_size = batch_size     # images per step; the SimCLR loss sees 2x as many views
  c.data.eval_batch_size = 250

  # --- model ---------------------------------------------------------------------------------------
  c.model.name = "object_akorn" if model == "akorn" else "object_vit"
  c.model.ch = ch
  c.model.num_layers = num_layers
  c.model.steps = 8
  c.model.psize = psize
  c.model.imsize = imsize
  c.model.heads = 8
  c.model.attn_impl = ""
  if model == "akorn":
    c.model.n = 4
    c.model.connectivity = connectivity
    c.model.ksize = ksize
    c.model.gta = True
    c.model.c_norm = c_norm
    # The reference's γ; without Ω the KLayer steps with γ/(1+γ) = 0.5 exactly as the reference does.
    c.model.gamma = 1.0
    c.model.use_omega = False
    c.model.remat = False
    c.optim.tie_gta = True  # the reference's tied GTA matrices (q = k = v = oᵀ)
  else:
    c.model.gta = False

  # --- optim: Adam, constant LR, no clipping; EMA 0.998 -------------------------------------------
  c.optim.lr = lr
  c.loss = dict(temperature=0.1)
  c.ema.beta = 0.998
  c.ema.update_every = 10
  c.ema.update_after_step = 200
  c.train.num_steps = config_base.steps_for_epochs(epochs, num_train, batch_size)
  if builder_config == "clevr6":  # the filter keeps an unknown number (<= 70,000): count them
    c.train.epochs = epochs
  c.train.log_every = 100
  c.train.eval_every = 0
  c.checkpoint.every_steps = 2000

  # --- eval (docs/evaluation.md#objects) ---------------------------------------------------------
  c.eval.split = "test"
  c.eval.num_clusters = num_clusters
  c.eval.uptile = (1, 4)             # evaluate without and with up-tiling x4
  c.eval.pca_dim = 128
  c.eval.num_images = 0              # 0 = whole split
  c.eval.num_pictures = 4

  if cpu:  # the largest run of this protocol a 2-core CPU finishes in ~15 min (results/objects.md)
    c.model.ch = 64
    c.data.batch_size = 32
    c.data.eval_batch_size = 64
    c.train.num_steps = 1500
    c.train.log_every = 50
    c.checkpoint.every_steps = 250
    c.ema.update_after_step = 100

  if tiny:
    c.data.config = "tiny"
    c.data.batch_size = 16
    c.data.eval_batch_size = 16
    c.model.ch = 32
    c.model.heads = 4
    c.model.steps = 4
    c.train.num_steps = 200
    c.train.log_every = 20
    c.checkpoint.every_steps = 100
    c.ema.update_after_step = 20
    c.eval.num_images = 32
    c.eval.uptile = (1, 2)
  return c
