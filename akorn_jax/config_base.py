"""The config schema shared by every experiment (configs/*.py build on `base_config`).

Sections: data, model, optim, ema, train, checkpoint, mesh, eval. Configs are locked by the drivers,
so an override of a key that does not exist fails at once.
"""

from __future__ import annotations

import types
from typing import Any

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
  c.model.dtype = "auto"      # matmul/conv dtype: auto = bf16 on GPU/TPU, f32 on CPU (compute.py)

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

  # --- ema (ema_pytorch semantics, docs/training.md#ema) -------------------------------------
  c.ema = ml_collections.ConfigDict()
  c.ema.beta = 0.998
  c.ema.update_every = 10
  c.ema.update_after_step = 200

  # --- train loop ---------------------------------------------------------------------------------
  c.train = ml_collections.ConfigDict()
  c.train.num_steps = 1000
  # > 0: num_steps = epochs x (training examples actually in the prepared split // batch), set by
  # the trainer when it opens the data (datasets whose size is only known after a filter: CLEVR6).
  c.train.epochs = 0
  c.train.log_every = 50
  c.train.eval_every = 0      # 0: evaluate only at the end
  c.train.log_images = True
  c.train.profile_steps = ""  # "A:B": a jax profiler trace of the steps after A up to B, in tb/

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


def parse_step_range(text: str) -> tuple[int, int]:
  """"A:B" -> (A, B), 0 <= A < B: the steps after step A up to step B (e.g. "10:15", 5 steps).

  Raises:
    ValueError: naming the text and the expected form.
  """
  a, sep, b = text.partition(":")
  try:
    start, stop = int(a), int(b)
  except ValueError:
    start = stop = -1
  if not sep or not 0 <= start < stop:
    raise ValueError(f"Step range {text!r}; expected A:B with 0 <= A < B, e.g. 10:15 for the "
                     "5 steps after step 10.")
  return start, stop


class ConfigArgs(types.SimpleNamespace):
  """The typed options of a config argument, e.g. `ConfigArgs(tiny=True, L=2)`."""


def parse_arg(arg: str | None, **options: Any) -> ConfigArgs:
  """Parses the `:arg` of a config spec ("tiny", "L=2", "conv,tiny") into typed values.

  Each keyword names one option; its default gives the option's type:
    * False: a switch, on when named ("tiny"; "tiny=true"/"tiny=false" also work);
    * an int, float or str: a value of that type ("steps=32");
    * a tuple: one of these values, the first is the default ("L=2" with L=(1, 2)).
  Options are comma-separated; options not named keep their default.

  Example:
    >>> parse_arg("tiny,L=2", tiny=False, L=(1, 2))
    ConfigArgs(tiny=True, L=2)

  Raises:
    ValueError: naming an unknown option or a bad value, and listing what is allowed.
  """
  values = {name: (default[0] if isinstance(default, tuple) else default)
            for name, default in options.items()}
  seen = set()
  for part in filter(None, (p.strip() for p in (arg or "").split(","))):
    name, has_value, text = part.partition("=")
    if name not in options:
      raise ValueError(f"Unknown config option {name!r} in {arg!r}; this config accepts "
                       f"{_describe(options)} (comma-separated, e.g. {_example(options)!r}).")
    if name in seen:
      raise ValueError(f"Config option {name!r} is given twice in {arg!r}.")
    seen.add(name)
    values[name] = _convert(name, options[name], text if has_value else None, arg)
  return ConfigArgs(**values)


def _convert(name: str, default: Any, text: str | None, arg: str) -> Any:
  """The value of option `name` written as `text` (None: named without '=')."""
  if isinstance(default, bool):
    if text is None or text.lower() in ("true", "1"):
      return True
    if text.lower() in ("false", "0"):
      return False
    raise ValueError(f"Bad value {text!r} for switch {name!r} in {arg!r}; write {name!r} alone "
                     f"(or {name}=true / {name}=false).")
  if text is None:
    raise ValueError(f"Config option {name!r} in {arg!r} needs a value, e.g. "
                     f"'{name}={default[0] if isinstance(default, tuple) else default}'.")
  if isinstance(default, tuple):
    for choice in default:
      if text == str(choice):
        return choice
    raise ValueError(f"Bad value {text!r} for {name!r} in {arg!r}; expected one of "
                     f"{', '.join(map(str, default))}.")
  try:
    return type(default)(text)
  except ValueError:
    raise ValueError(f"Bad value {text!r} for {name!r} in {arg!r}; expected "
                     f"{'an' if type(default) is int else 'a'} {type(default).__name__}.") from None


def _describe(options: dict[str, Any]) -> str:
  """"tiny, cpu, L=1|2, steps=<int>" for the error messages."""
  out = []
  for name, default in options.items():
    if isinstance(default, bool):
      out.append(name)
    elif isinstance(default, tuple):
      out.append(f"{name}={'|'.join(map(str, default))}")
    else:
      out.append(f"{name}=<{type(default).__name__}>")
  return ", ".join(out) if out else "no options"


def _example(options: dict[str, Any]) -> str:
  switches = [n for n, d in options.items() if isinstance(d, bool)]
  return switches[0] if switches else next(iter(options), "")
