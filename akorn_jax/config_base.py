"""The config schema shared by every experiment (configs/*.py build on `base_config`).

Sections: data, model, optim, ema, train, checkpoint, mesh, eval. Configs are locked by the drivers,
so an override of a key that does not exist fails at once.
"""

from __future__ import annotations

import ml_collections


def base_config(task: str) -> ml_collections.ConfigDict:
  """Returns the defaults every experiment shares; the caller fills in data/model/eval."""
  c = ml_collections.ConfigDict()
  c.task = task
  c.seed = 0

  # --- data -----------------------------------------------------------------------------------
  c.data = ml_collections.ConfigDict()
  c.data.name = ""            # tfds builder name, see akorn_jax/data/__init__.py
  c.data.config = ""          # builder config
  c.data.data_dir = ml_collections.config_dict.placeholder(str)    # default: $AKORN_DATA_DIR
  c.data.manual_dir = ml_collections.config_dict.placeholder(str)  # originals of real datasets
  c.data.batch_size = 32      # global batch
  c.data.eval_batch_size = 100
  c.data.num_workers = 0
  c.data.shuffle = True

  # --- model (name + keyword arguments of the model class) -----------------------------------
  c.model = ml_collections.ConfigDict()
  c.model.name = ""
  c.model.dtype = "float32"   # compute dtype of couplings/convs; oscillator state stays float32

  # --- optim ------------------------------------------------------------------------------------
  c.optim = ml_collections.ConfigDict()
  c.optim.lr = 1e-3
  c.optim.b1 = 0.9
  c.optim.b2 = 0.999
  c.optim.eps = 1e-8
  c.optim.weight_decay = 0.0
  c.optim.clip_norm = ml_collections.config_dict.placeholder(float)
  c.optim.warmup_steps = 0
  c.optim.schedule = "constant"
  # GTA matrices tied as in the reference (q = k = v = oᵀ, four Adam updates per step on the one
  # tensor; akorn_jax/train/tied_gta.py). The paper-reproducing GTA configs set True.
  c.optim.tie_gta = False

  # --- ema (ema_pytorch semantics, SPEC §5.1) --------------------------------------------------
  c.ema = ml_collections.ConfigDict()
  c.ema.beta = 0.998
  c.ema.update_every = 10
  c.ema.update_after_step = 200

  # --- train loop ---------------------------------------------------------------------------------
  c.train = ml_collections.ConfigDict()
  c.train.num_steps = 1000
  c.train.log_every = 50
  c.train.eval_every = 0      # 0: evaluate only at the end
  c.train.log_images = True

  # --- checkpoint ---------------------------------------------------------------------------------
  c.checkpoint = ml_collections.ConfigDict()
  c.checkpoint.every_steps = 1000
  c.checkpoint.max_to_keep = 3

  # --- mesh ---------------------------------------------------------------------------------------
  c.mesh = ml_collections.ConfigDict()
  c.mesh.data = -1            # all devices
  c.mesh.fsdp = 1             # 1: replicate parameters

  # --- eval ---------------------------------------------------------------------------------------
  c.eval = ml_collections.ConfigDict()
  return c


def steps_for_epochs(epochs: int, num_examples: int, batch_size: int) -> int:
  """Optimizer steps of `epochs` passes with drop_remainder batching."""
  return epochs * (num_examples // batch_size)


def parse_arg(arg: str | None, allowed: set[str]) -> dict[str, str]:
  """Parses a config argument "a,b=1" into {"a": "", "b": "1"}; unknown variants are an error."""
  out = {}
  for part in filter(None, (arg or "").split(",")):
    name, _, value = part.partition("=")
    if name not in allowed:
      raise ValueError(f"Unknown config variant {name!r} in {arg!r}; expected some of "
                       f"{sorted(allowed)} (comma-separated).")
    out[name] = value
  return out
