"""Reference port: golden files from the authors' code, round trips, synthetic golden files, CLI."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from akorn_jax import golden, port
from experiments import port as cli

GOLDEN_DIR = os.path.join(os.path.dirname(__file__), "data", "golden")
GOLDEN = sorted(f for f in os.listdir(GOLDEN_DIR) if f.endswith(".npz"))


def test_all_four_golden_files_are_present():
  assert GOLDEN == ["cifar_akorn.npz", "objects_attn_gta.npz", "objects_conv.npz", "sudoku_akorn.npz"]


@pytest.mark.parametrize("name", GOLDEN)
def test_golden_file_verifies(name, capsys):
  rc = cli.main(["verify", f"--golden={os.path.join(GOLDEN_DIR, name)}", "--json"])
  report = json.loads(capsys.readouterr().out)
  bad = [r for r in report["rows"] if not r["ok"]]
  assert rc == 0 and report["ok"] and not bad, bad
  names = {r["name"] for r in report["rows"]}
  meta, arrays = golden.read(os.path.join(GOLDEN_DIR, name))
  # Every recorded array was compared, every gradient included.
  assert names == {k for k in arrays if k.split("/")[0] in ("eval", "train", "grad")
                   and not k.endswith("x_init")}
  assert any(n.startswith("grad/") for n in names)


def _golden_sd(name):
  meta, arrays = golden.read(os.path.join(GOLDEN_DIR, name))
  return meta, {k[3:]: v for k, v in arrays.items() if k.startswith("sd/")}, arrays


def test_a_wrong_head_layout_is_caught(tmp_path):
  # Swapping two of W_o's input channels (as a contiguous-heads import would) must fail verify.
  meta, arrays = golden.read(os.path.join(GOLDEN_DIR, "objects_attn_gta.npz"))
  key = "sd/layers.0.0.connectivity.W_o.weight"
  w = arrays[key].copy()
  w[:, [1, 8]] = w[:, [8, 1]]
  arrays[key] = w
  path = tmp_path / "broken.npz"
  np.savez(path, meta=np.asarray(json.dumps(meta)), **arrays)
  assert cli.main(["verify", f"--golden={path}"]) == 1


def test_unmatched_and_missing_keys_are_named():
  meta, sd, _ = _golden_sd("objects_conv.npz")
  config = port.from_reference_args(meta["reference_class"], meta["kwargs"])
  with pytest.raises(ValueError, match="'layers.0.0.extra'"):
    port.load_reference(port.build(config), {**sd, "layers.0.0.extra": np.zeros(3)})
  del sd["layers.0.1.bias"]
  with pytest.raises(ValueError, match="'layers.0.1.bias' is missing"):
    port.load_reference(port.build(config), sd)
  with pytest.raises(ValueError, match="'T_eval' is not known"):
    port.from_reference_args(meta["reference_class"], {**meta["kwargs"], "T_eval": 3})


def test_cifar_shared_transition_must_be_one_tensor():
  meta, sd, _ = _golden_sd("cifar_akorn.npz")
  config = port.from_reference_args(meta["reference_class"], meta["kwargs"])
  sd["layers.1.0.1.bias"] = sd["layers.1.0.1.bias"] + 1
  with pytest.raises(ValueError, match="shares one transition"):
    port.load_reference(port.build(config), sd)


ROUND_TRIP = {
    "sudoku": ("models/sudoku/knet.py SudokuAKOrN",
               dict(n=4, ch=16, L=2, T=2, heads=2, use_omega=False)),
    "objects attn": ("models/objs/knet.py AKOrN",
                     dict(n=4, ch=16, L=2, T=2, psize=4, imsize=16, heads=4, J=["attn", "conv"],
                          ksize=3, use_omega=True, global_omg=False)),
    "objects pos maps": ("models/objs/knet.py AKOrN",
                         dict(n=4, ch=8, L=1, T=1, psize=4, imsize=12, gta=False, heads=2)),
    "cifar": ("models/classification/knet.py AKOrN",
              dict(n=2, ch=8, L=2, T=1, ksizes=[3, 5], norm="gn")),
    "resnet18": ("resnet18", dict()),
}


@pytest.mark.parametrize("row", sorted(ROUND_TRIP))
def test_round_trip_ours_to_reference_to_ours(row):
  cls, kwargs = ROUND_TRIP[row]
  config = port.from_reference_args(cls, kwargs)
  model = _random_model(config)
  sd = port.to_reference(model)
  other = port.load_reference(port.build(config), sd)
  for (p, a), (_, b) in zip(nnx.to_flat_state(nnx.state(model)), nnx.to_flat_state(nnx.state(other))):
    np.testing.assert_array_equal(np.asarray(a.get_value()), np.asarray(b.get_value()), err_msg=str(p))
  assert port.to_reference(other).keys() == sd.keys()


def _random_model(config, seed=0):
  """Our model with every variable distinct random values (no init computation)."""
  model = port.build(config)
  rng = np.random.default_rng(seed)
  flat = [(p, v.replace(jnp.asarray(rng.standard_normal(v.get_value().shape), v.get_value().dtype)))
          for p, v in nnx.to_flat_state(nnx.state(model))]
  nnx.update(model, nnx.from_flat_state(flat))
  return model


def test_round_trip_resnet_uses_torchvision_names():
  sd = port.to_reference(_random_model(port.from_reference_args("resnet18", {})))
  assert {"conv1.weight", "bn1.running_var", "layer2.0.downsample.0.weight", "fc.weight",
          "layer4.1.bn2.num_batches_tracked"} <= set(sd)
  assert sd["conv1.weight"].shape == (64, 3, 3, 3) and sd["fc.weight"].shape == (10, 512)


# Synthetic golden-format files from our own model at settings the reference files do not cover.
SYNTHETIC = {
    "objects omega per pair": ("models/objs/knet.py AKOrN",
                               dict(n=4, ch=16, L=1, T=2, psize=4, imsize=16, heads=4,
                                    use_omega=True, global_omg=False, init_omg=0.3), 16),
    "objects conv + stimulus gn, 2 layers": ("models/objs/knet.py AKOrN",
                                             dict(n=4, ch=16, L=2, T=[1, 2], psize=4, imsize=16,
                                                  J="conv", ksize=3, c_norm="gn", gta=False), 16),
    "sudoku no omega, 2 layers": ("models/sudoku/knet.py SudokuAKOrN",
                                  dict(n=4, ch=16, L=2, T=2, heads=4, use_omega=False), None),
    "cifar gn readout, larger": ("models/classification/knet.py AKOrN",
                                 dict(n=2, ch=8, L=2, T=2, ksizes=[5, 3], norm="gn",
                                      global_omg=False), 16),
    "resnet18": ("resnet18", dict(), 8),
}


@pytest.mark.parametrize("row", [pytest.param(r, marks=() if r.startswith("objects omega") else
                                              pytest.mark.slow) for r in sorted(SYNTHETIC)])
def test_synthetic_golden_file_verifies(row, tmp_path):
  cls, kwargs, size = SYNTHETIC[row]
  path = str(tmp_path / "synthetic.npz")
  golden.synthesize(path, cls, kwargs, batch=2, seed=3, image_size=size)
  assert cli.main(["verify", f"--golden={path}"]) == 0
  # The same file with one gradient changed must fail.
  meta, arrays = golden.read(path)
  key = next(k for k in arrays if k.startswith("grad/") and arrays[k].size > 4)
  arrays[key] = arrays[key] * 1.1
  np.savez(path, meta=np.asarray(json.dumps(meta)), **arrays)
  assert cli.main(["verify", f"--golden={path}"]) == 1


def test_convert_golden_sudoku_then_solve(tmp_path, capsys):
  from experiments import sudoku as sudoku_cli  # pylint: disable=g-import-not-at-top
  out = str(tmp_path / "weights")
  src = os.path.join(GOLDEN_DIR, "sudoku_akorn.npz")
  args = tmp_path / "args.json"
  meta, _ = golden.read(src)
  args.write_text(json.dumps({"reference_class": meta["reference_class"], "kwargs": meta["kwargs"]}))
  assert cli.main(["convert", f"--reference_args={args}", f"--state_dict={src}", f"--out={out}"]) == 0
  capsys.readouterr()
  puzzle = "..3.2.6..9..3.5..1..18.64....81.29..7.......8..67.82....26.95..8..2.3..9..5.1.3.."
  rc = sudoku_cli.main(["solve", puzzle, "--K=2", "--steps=2", f"--weights_dir={out}", "--json"])
  # The golden file's tiny random model does not solve it (exit 1); it must load and run.
  assert rc in (0, 1)
  result = json.loads(capsys.readouterr().out.strip().splitlines()[0])
  assert result["model"] == "sudoku_akorn" and len(result["answer"]) == 81


def test_torch_files_without_torch_print_the_conversion(tmp_path):
  path = tmp_path / "ema_99.pth"
  path.write_bytes(b"not really")
  try:
    import torch  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
    pytest.skip("torch is installed")
  except ImportError:
    pass
  with pytest.raises(SystemExit, match="np.savez"):
    cli.read_state_dict(str(path))


def test_unwrap_checkpoint_formats():
  w = np.ones(2)
  assert cli._unwrap({"model_state_dict": {"ema_model.a": w, "online_model.a": w, "step": w}}) == {"a": w}
  assert cli._unwrap({"module.a": w}) == {"a": w}


def test_x_init_gives_a_deterministic_forward():
  meta, sd, arrays = _golden_sd("sudoku_akorn.npz")
  model = port.load_reference(port.build(port.from_reference_args(meta["reference_class"],
                                                                  meta["kwargs"])), sd)
  x = jnp.moveaxis(jnp.asarray(arrays["eval/x_init"]), 1, -1)
  puzzle = jnp.asarray(arrays["in/puzzle"])
  a, _ = model(puzzle, x_init=x)
  b, _ = model(puzzle, x_init=x, key=jax.random.key(5))  # key ignored when x_init is given
  np.testing.assert_array_equal(a, b)
  with pytest.raises(ValueError, match="x_init has shape"):
    model(puzzle, x_init=x[..., :4])
