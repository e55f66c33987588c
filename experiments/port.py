"""Bring the authors' PyTorch AKOrN weights over, and check our models against golden files.

  python -m experiments.port convert --reference_args=ARGS.json --state_dict=FILE --out=DIR
  python -m experiments.port verify --golden=FILE.npz [--json]

convert: ARGS.json holds {"reference_class": "models/sudoku/knet.py SudokuAKOrN", "kwargs": {...}}
(the reference class and its constructor arguments, as in a golden file's meta; a golden file
itself may be given as FILE without ARGS.json). FILE is a `.npz` (name -> array, PyTorch layout) or
a PyTorch `.pt`/`.pth` (read with `torch.load(weights_only=True)`, never unpickling arbitrary
objects; a checkpoint's `model_state_dict` and an EMA wrapper's `ema_model.` entries are unwrapped).
DIR receives an exported model (weights.npz, config.json, SHA256SUMS) that
`python -m experiments.sudoku solve --weights_dir=DIR` loads.

verify: builds our model from the golden file's meta, imports its weights, replays the eval and
train passes with the recorded initial states, and prints the max absolute and relative error of
every compared array. Exit 0 when all agree within float32 tolerance, 1 otherwise (2: bad input).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

TORCH_TO_NPZ = ("python -c \"import numpy as np, torch; sd = torch.load('{src}', map_location='cpu', "
                "weights_only=True); sd = sd.get('model_state_dict', sd); np.savez('{dst}', "
                "**{{k: v.numpy() for k, v in sd.items()}})\"")


def _unwrap(sd: dict) -> dict:
  """A raw state_dict from a checkpoint dict, an EMA wrapper's state or a DDP-wrapped model."""
  if "model_state_dict" in sd and isinstance(sd["model_state_dict"], dict):
    sd = sd["model_state_dict"]
  if any(k.startswith("ema_model.") for k in sd):
    sd = {k[len("ema_model."):]: v for k, v in sd.items() if k.startswith("ema_model.")}
  if sd and all(k.startswith("module.") for k in sd):
    sd = {k[len("module."):]: v for k, v in sd.items()}
  return sd


def read_state_dict(path: str) -> tuple[dict[str, np.ndarray], dict | None]:
  """(state_dict of numpy arrays, the golden meta when FILE is a golden file)."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f"No state_dict file {path!r}.")
  if path.endswith(".npz"):
    with np.load(path, allow_pickle=False) as z:
      arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays.pop("meta"))) if "meta" in arrays else None
    if any(k.startswith("sd/") for k in arrays):  # a golden file: its weights are under sd/
      arrays = {k[3:]: v for k, v in arrays.items() if k.startswith("sd/")}
    return _unwrap(arrays), meta
  if path.endswith((".pt", ".pth")):
    try:
      import torch  # pylint: disable=g-import-not-at-top
    except ImportError:
      dst = os.path.splitext(path)[0] + ".npz"
      raise SystemExit(f"Reading {path!r} needs PyTorch (pip install 'akorn_jax[torch]'). Without "
                       f"it, convert once where torch is installed:\n  "
                       f"{TORCH_TO_NPZ.format(src=path, dst=dst)}\nthen pass --state_dict={dst}.")
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(obj, dict):
      raise ValueError(f"{path!r} holds a {type(obj).__name__}, expected a state_dict (a dict).")
    sd = _unwrap(obj)
    return {k: v.detach().cpu().numpy() for k, v in sd.items() if hasattr(v, "numpy")}, None
  raise ValueError(f"Unknown state_dict file type {path!r}; expected .npz, .pt or .pth.")


def _convert(args) -> int:
  from akorn_jax import port  # pylint: disable=g-import-not-at-top
  from akorn_jax.train import restore  # pylint: disable=g-import-not-at-top
  sd, meta = read_state_dict(args.state_dict)
  if args.reference_args:
    with open(args.reference_args) as f:
      meta = json.load(f)
  if not meta or "reference_class" not in meta:
    raise ValueError("Give --reference_args=ARGS.json with {\"reference_class\": ..., \"kwargs\": "
                     "{...}} (the reference model's class and constructor arguments).")
  model, config = port.convert(meta["reference_class"], meta.get("kwargs", {}), sd)
  model.eval()
  restore.export_weights(model, config, args.out)
  print(json.dumps({"out": args.out, "config": config, "tensors": len(sd)}))
  return 0


def _verify(args) -> int:
  from akorn_jax import golden  # pylint: disable=g-import-not-at-top
  rows, config = golden.verify(args.golden)
  ok = all(r.ok for r in rows)
  if args.json:
    print(json.dumps({"golden": args.golden, "ok": ok, "config": config,
                      "rows": [r.__dict__ for r in rows]}, indent=1))
  else:
    print(f"{args.golden}: {config['name']}")
    print(f"{'array':56s} {'max abs':>10s} {'max rel':>10s} {'tol':>8s}  result")
    for r in rows:
      how = ("abs" if r.absolute else "rel") if r.rounding is None else (
          f"<= {golden.ROUNDING_FACTOR:g}x 1-ulp move {r.rounding:.1e}")
      print(f"{r.name:56s} {r.max_abs:10.2e} {r.max_rel:10.2e} {r.tol:8.0e}  "
            f"{'ok' if r.ok else 'FAIL'} ({how})")
    print("all within float32 tolerance" if ok else "MISMATCH")
  return 0 if ok else 1


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="python -m experiments.port",
                                   description=__doc__.split("\n\n")[0])
  sub = parser.add_subparsers(dest="command", required=True)
  c = sub.add_parser("convert", help="reference state_dict -> exported model folder")
  c.add_argument("--reference_args", help="JSON: {reference_class, kwargs}")
  c.add_argument("--state_dict", required=True, help=".npz, .pt or .pth")
  c.add_argument("--out", required=True, help="folder to write")
  v = sub.add_parser("verify", help="compare our model with a golden file")
  v.add_argument("--golden", required=True)
  v.add_argument("--json", action="store_true")
  args = parser.parse_args(argv)
  try:
    return _convert(args) if args.command == "convert" else _verify(args)
  except (ValueError, FileNotFoundError, KeyError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2


if __name__ == "__main__":
  sys.exit(main())
