"""Model zoo: one file per task family. `build(name, rngs=..., **kwargs)` constructs by name."""

from __future__ import annotations

import difflib

from flax import nnx

from akorn_jax.models.baselines import ObjectViT, SudokuTransformer
from akorn_jax.models.classification import ClassifierAKOrN
from akorn_jax.models.objects import ObjectAKOrN
from akorn_jax.models.sudoku import SudokuAKOrN

MODELS = {
    "object_akorn": ObjectAKOrN,
    "object_vit": ObjectViT,
    "sudoku_akorn": SudokuAKOrN,
    "sudoku_transformer": SudokuTransformer,
    "classifier_akorn": ClassifierAKOrN,
}


def build(name: str, *, rngs: nnx.Rngs, **kwargs) -> nnx.Module:
  """Builds model `name` (a key of MODELS) with keyword settings."""
  if name not in MODELS:
    near = difflib.get_close_matches(name, MODELS, n=3)
    raise ValueError(f"Unknown model {name!r}; expected one of {sorted(MODELS)}"
                     + (f" (did you mean {near[0]!r}?)" if near else "") + ".")
  return MODELS[name](rngs=rngs, **kwargs)


__all__ = ["MODELS", "build", "ObjectAKOrN", "ObjectViT", "SudokuAKOrN", "SudokuTransformer",
           "ClassifierAKOrN"]
