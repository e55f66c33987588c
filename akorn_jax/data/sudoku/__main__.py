"""Rebuilds the shipped generated Sudoku sets: `python -m akorn_jax.data.sudoku --regenerate`."""

from __future__ import annotations

import argparse
import importlib.resources
import os
from collections.abc import Sequence

from akorn_jax.data.sudoku.generate import GENERATED_SETS, regenerate


def main(argv: Sequence[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--regenerate", action="store_true",
                      help="rebuild the shipped generated sets")
  parser.add_argument("--out_dir", default=str(importlib.resources.files("akorn_jax") / "assets"),
                      help="where to write sudoku_*.npz (default: the package's assets folder)")
  parser.add_argument("--processes", type=int, default=1, help="worker processes")
  parser.add_argument("--sets", default="",
                      help="comma-separated names of the sets to rebuild (default: all)")
  args = parser.parse_args(argv)
  if not args.regenerate:
    parser.error("nothing to do; pass --regenerate")
  os.makedirs(args.out_dir, exist_ok=True)
  names = tuple(n for n in args.sets.split(",") if n) or None
  unknown = sorted(set(names or ()) - set(GENERATED_SETS))
  if unknown:
    parser.error(f"--sets names unknown sets {unknown}; expected names from {sorted(GENERATED_SETS)}")
  regenerate(args.out_dir, args.processes, names)


if __name__ == "__main__":
  main()
