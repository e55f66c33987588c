"""Model zoo: one file per task family. `build(name, rngs=..., **kwargs)` constructs by name."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from flax import nnx

from akorn_jax import compute
from akorn_jax.models.baselines import ObjectViT, ResNet18, SudokuTransformer
from akorn_jax.models.classification import ClassifierAKOrN
from akorn_jax.models.objects import ObjectAKOrN
from akorn_jax.models.sudoku import SudokuAKOrN

MODELS = {
    "object_akorn": ObjectAKOrN,
    "object_vit": ObjectViT,
    "sudoku_akorn": SudokuAKOrN,
    "sudoku_transformer": SudokuTransformer,
    "classifier_akorn": ClassifierAKOrN,
    "resnet18": ResNet18,
}


def build(name: str, *, rngs: nnx.Rngs, **kwargs) -> nnx.Module:
  """Builds model `name` (a key of MODELS) with keyword settings."""
  if name not in MODELS:
    near = difflib.get_close_matches(name, MODELS, n=3)
    raise ValueError(f"Unknown model {name!r}; expected one of {sorted(MODELS)}"
                     + (f" (did you mean {near[0]!r}?)" if near else "") + ".")
  return MODELS[name](rngs=rngs, **kwargs)


def from_config(model_config: Mapping[str, Any], *, rngs: nnx.Rngs) -> nnx.Module:
  """Builds a model from a config's `model` section: "name" plus constructor keywords.

  Config values map to Python ones: "dtype" names the compute dtype, resolved by
  `compute.compute_dtype` ("auto": bfloat16 on GPU/TPU, float32 on CPU); an empty string means
  None (ml_collections fields cannot hold None once typed) and lists (from JSON) become tuples.
  """
  kw = {k: tuple(v) if isinstance(v, list) else (None if v == "" else v)
        for k, v in dict(model_config).items() if k != "name"}
  kw["dtype"] = compute.compute_dtype(kw.pop("dtype", None))
  return build(model_config["name"], rngs=rngs, **kw)


__all__ = ["MODELS", "build", "from_config", "ClassifierAKOrN", "ObjectAKOrN", "ObjectViT",
           "ResNet18", "SudokuAKOrN", "SudokuTransformer"]
