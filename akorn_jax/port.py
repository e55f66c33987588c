"""Import the authors' PyTorch weights: reference state_dicts <-> our models.

A reference checkpoint is a `state_dict`: parameter name -> array in PyTorch layout. This module
maps it onto our NNX models and back, for the Sudoku, object and CIFAR AKOrN models and the
ResNet-18 baseline, and maps the reference's constructor arguments to our model config
(`from_reference_args`). The layout rules (docs: README "Coming from the PyTorch code"):

* convolutions `[out, in, kh, kw]` -> `[kh, kw, in, out]` (HWIO); linear layers `[out, in]` ->
  `[in, out]`; a 1x1 convolution that we compute as a dense layer (attention projections)
  `[out, in, 1, 1]` -> `[in, out]`;
* attention heads: the reference interleaves them (channel `c * heads + h` of q, k, v and of W_o's
  input), ours are contiguous (`h * d_head + c`), so W_qkv's rows and W_o's columns are permuted;
  the q, k, v chunks themselves are in the same order. GTA matrices `[HW, d_head/2, 2, 2]`, ReadOut
  groups, GroupNorm groups and Ω pairs need no permutation;
* learned positional maps `[C, h, w]` -> `[h, w, C]`; scalars `[1]` -> `[]` (γ);
* BatchNorm `weight, bias, running_mean, running_var` -> `scale, bias, mean, var`;
  `num_batches_tracked` is read and dropped (PyTorch only uses it for momentum=None);
* the CIFAR model's strided transition is one module registered twice (`layers.l.0.0` and
  `layers.l.0.1`, both in the state_dict): both entries must be equal and fill our one conv;
* the Sudoku model's unused `x0` is read and dropped (an export writes zeros there);
* γ maps one to one: our KLayer applies the reference's effective step γ/(1+γ) itself when Ω is
  off (the reference's Identity-Ω quirk).

Every reference tensor must be consumed and every model variable set; otherwise the import fails
naming the first unmatched key.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Mapping
from typing import Any

import jax.numpy as jnp
import numpy as np
from flax import nnx

from akorn_jax import layers, models

Array = np.ndarray

# ---------------------------------------------------------------------------------------------
# Reference constructor arguments -> our model config
# ---------------------------------------------------------------------------------------------

# Reference class -> (our model name, reference defaults used for arguments the caller omits).
# Defaults: the reference classes' defaults or, for Sudoku, those of its training script.
_OBJECT_DEFAULTS = dict(n=4, ch=256, L=1, T=8, psize=4, gta=True, J="attn", ksize=1, c_norm="gn",
                        gamma=1.0, imsize=128, use_omega=False, init_omg=1.0, global_omg=False,
                        maxpool=True, project=True, heads=8, use_ro_x=False, learn_omg=True,
                        no_ro=False, autorescale=True)
_SUDOKU_DEFAULTS = dict(n=4, ch=512, L=1, T=16, heads=8, gamma=1.0, J="attn", use_omega=True,
                        global_omg=True, learn_omg=False, init_omg=0.1, nl=True)
_CIFAR_DEFAULTS = dict(n=2, ch=64, L=3, T=3, J="conv", ksizes=(9, 7, 5), ro_ksize=3, ro_N=2,
                       norm="bn", c_norm="gn", gamma=1.0, use_omega=True, init_omg=1.0,
                       global_omg=True, learn_omg=True, out_classes=10)
_RESNET_DEFAULTS = dict(num_classes=10)


def _kind(reference_class: str) -> str:
  """Our model name for a reference class string such as 'models/objs/knet.py AKOrN'."""
  rc = reference_class.lower()
  if "resnet" in rc:
    return "resnet18"
  if "sudoku" in rc and "akorn" in rc:
    return "sudoku_akorn"
  if ("classification" in rc or "cifar" in rc) and "akorn" in rc:
    return "classifier_akorn"
  if ("objs" in rc or "object" in rc) and "akorn" in rc:
    return "object_akorn"
  raise ValueError(
      f"Unknown reference class {reference_class!r}; expected the Sudoku AKOrN "
      "('models/sudoku/knet.py SudokuAKOrN'), object AKOrN ('models/objs/knet.py AKOrN'), CIFAR "
      "AKOrN ('models/classification/knet.py AKOrN') or a ResNet-18 ('resnet18').")


def _take(kwargs: Mapping[str, Any], defaults: Mapping[str, Any], reference_class: str) -> dict:
  unknown = sorted(set(kwargs) - set(defaults))
  if unknown:
    near = difflib.get_close_matches(unknown[0], defaults, n=1)
    raise ValueError(f"Reference argument {unknown[0]!r} is not known for {reference_class!r}"
                     + (f" (did you mean {near[0]!r}?)" if near else "")
                     + f"; known: {sorted(defaults)}.")
  return {**defaults, **kwargs}


def _require(cond: bool, what: str) -> None:
  if not cond:
    raise ValueError(f"Reference setting not supported by our model: {what}.")


def _listify(v):
  return list(v) if isinstance(v, (list, tuple)) else v


def from_reference_args(reference_class: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
  """Our model config ("name" + keyword arguments) for a reference class and its kwargs.

  Args:
    reference_class: the reference's class, e.g. "models/objs/knet.py AKOrN" (as in a golden
      file's meta), or "resnet18".
    kwargs: the reference constructor's keyword arguments; omitted ones take the reference's
      defaults.

  Returns:
    A JSON-able dict for `models.from_config`.
  """
  name = _kind(reference_class)
  if name == "object_akorn":
    a = _take(kwargs, _OBJECT_DEFAULTS, reference_class)
    _require(not a["use_ro_x"], "use_ro_x=True (a 1x1 conv on x between layers)")
    _require(not a["no_ro"], "no_ro=True (no readout)")
    # autorescale resizes inputs to imsize first: our model expects images of size imsize.
    return dict(name=name, n=a["n"], ch=a["ch"], num_layers=a["L"], steps=_listify(a["T"]),
                psize=a["psize"], imsize=a["imsize"], connectivity=_listify(a["J"]),
                ksize=a["ksize"], heads=a["heads"], gta=bool(a["gta"]),
                c_norm=a["c_norm"] if a["c_norm"] is not None else "none", gamma=float(a["gamma"]),
                use_omega=bool(a["use_omega"]), init_omega=float(a["init_omg"]),
                global_omega=bool(a["global_omg"]), learn_omega=bool(a["learn_omg"]),
                project=bool(a["project"]), maxpool=bool(a["maxpool"]))
  if name == "sudoku_akorn":
    a = _take(kwargs, _SUDOKU_DEFAULTS, reference_class)
    _require(a["J"] == "attn", f"J={a['J']!r} (the Sudoku AKOrN is attention-coupled)")
    _require(bool(a["nl"]), "nl=False (no nonlinear readout)")
    return dict(name=name, n=a["n"], ch=a["ch"], num_layers=a["L"], steps=a["T"],
                heads=a["heads"], gamma=float(a["gamma"]), use_omega=bool(a["use_omega"]),
                init_omega=float(a["init_omg"]), global_omega=bool(a["global_omg"]),
                learn_omega=bool(a["learn_omg"]))
  if name == "classifier_akorn":
    a = _take(kwargs, _CIFAR_DEFAULTS, reference_class)
    _require(a["J"] == "conv", f"J={a['J']!r} (the CIFAR AKOrN is conv-coupled)")
    return dict(name=name, n=a["n"], ch=a["ch"], num_layers=a["L"], steps=_listify(a["T"]),
                ksizes=_listify(a["ksizes"]), ro_ksize=a["ro_ksize"], ro_n=a["ro_N"],
                norm=a["norm"] if a["norm"] is not None else "none",
                c_norm=a["c_norm"] if a["c_norm"] is not None else "none",
                gamma=float(a["gamma"]), use_omega=bool(a["use_omega"]),
                init_omega=float(a["init_omg"]), global_omega=bool(a["global_omg"]),
                learn_omega=bool(a["learn_omg"]), num_classes=a["out_classes"])
  a = _take(kwargs, _RESNET_DEFAULTS, reference_class)
  return dict(name=name, num_classes=a["num_classes"])


def build(config: Mapping[str, Any], *, abstract: bool = True) -> nnx.Module:
  """Our model for a config from `from_reference_args`: abstract (shapes only, nothing computed),
  to be filled by `load_reference`, or randomly initialised."""
  if abstract:
    return nnx.eval_shape(lambda: models.from_config(config, rngs=nnx.Rngs(0)))
  return models.from_config(config, rngs=nnx.Rngs(0))


# ---------------------------------------------------------------------------------------------
# The name/layout table
# ---------------------------------------------------------------------------------------------

Path = tuple


@dataclasses.dataclass(frozen=True)
class Entry:
  """One reference tensor <-> one model variable."""
  ref: str              # reference state_dict key
  path: Path            # our nnx state path
  to_ours: Callable[[Array], Array]
  to_ref: Callable[[Array], Array]


def _ident(a):
  return a


def _conv_k(a):   # [O, I, kh, kw] -> [kh, kw, I, O]
  return a.transpose(2, 3, 1, 0)


def _conv_k_ref(a):
  return a.transpose(3, 2, 0, 1)


def _chw(a):      # [C, h, w] -> [h, w, C]
  return a.transpose(1, 2, 0)


def _chw_ref(a):
  return a.transpose(2, 0, 1)


def _scalar(a):
  return a.reshape(())


def _scalar_ref(a):
  return a.reshape(1)


def _dense(a):    # Linear [O, I] or 1x1 conv [O, I, 1, 1] -> [I, O]
  return a.reshape(a.shape[0], a.shape[1]).T


def _heads_perm(ch: int, heads: int) -> Array:
  """perm[j] = the reference channel of our channel j = h * d + c, i.e. c * heads + h."""
  d = ch // heads
  j = np.arange(ch)
  return (j % d) * heads + j // d


def _fc_ref(conv: bool):
  def to_ref(k):
    w = k.T
    return w[:, :, None, None] if conv else w
  return to_ref


def _conv(ref: str, path: Path, module) -> list[Entry]:
  out = [Entry(f"{ref}.weight", path + ("kernel",), _conv_k, _conv_k_ref)]
  if getattr(module, "bias", None) is not None:
    out.append(Entry(f"{ref}.bias", path + ("bias",), _ident, _ident))
  return out


def _linear(ref: str, path: Path) -> list[Entry]:
  return [Entry(f"{ref}.weight", path + ("kernel",), _dense, _fc_ref(False)),
          Entry(f"{ref}.bias", path + ("bias",), _ident, _ident)]


def _norm(ref: str, path: Path, module) -> list[Entry]:
  """GroupNorm / BatchNorm / LayerNorm affine parameters and BatchNorm running statistics."""
  if module is None:
    return []
  out = [Entry(f"{ref}.weight", path + ("scale",), _ident, _ident),
         Entry(f"{ref}.bias", path + ("bias",), _ident, _ident)]
  if isinstance(module, nnx.BatchNorm):
    out += [Entry(f"{ref}.running_mean", path + ("mean",), _ident, _ident),
            Entry(f"{ref}.running_var", path + ("var",), _ident, _ident)]
  return out


def _attention(ref: str, path: Path, att: layers.Attention, *, conv: bool = True) -> list[Entry]:
  ch = att.out.in_features
  perm = _heads_perm(ch, att.heads)
  inv = np.argsort(perm)
  qkv_perm = np.concatenate([k * ch + perm for k in range(3)])
  qkv_inv = np.argsort(qkv_perm)
  out = [
      Entry(f"{ref}.W_qkv.weight", path + ("qkv", "kernel"),
            lambda a: _dense(a)[:, qkv_perm], lambda k: _fc_ref(conv)(k[:, qkv_inv])),
      Entry(f"{ref}.W_qkv.bias", path + ("qkv", "bias"),
            lambda a: a[qkv_perm], lambda b: b[qkv_inv]),
      Entry(f"{ref}.W_o.weight", path + ("out", "kernel"),
            lambda a: _dense(a)[perm], lambda k: _fc_ref(conv)(k[inv])),
      Entry(f"{ref}.W_o.bias", path + ("out", "bias"), _ident, _ident),
  ]
  if att.hw is not None:
    out += [Entry(f"{ref}.mat_{m}", path + (f"mat_{m}",), _ident, _ident) for m in "qkvo"]
  return out


def _klayer(ref: str, path: Path, kl: layers.KLayer) -> list[Entry]:
  con = kl.connectivity
  if isinstance(con, layers.Attention):
    out = _attention(f"{ref}.connectivity", path + ("connectivity",), con)
  else:
    out = _conv(f"{ref}.connectivity", path + ("connectivity",), con)
  if kl.omega is not None:
    out.append(Entry(f"{ref}.omg.omg_param", path + ("omega", "p"), _ident, _ident))
  if isinstance(kl.c_norm, layers.ScaleAndBias):
    raise ValueError("c_norm='sandb' has no known reference parameter names; import not supported.")
  out += _norm(f"{ref}.c_norm", path + ("c_norm",), kl.c_norm)
  return out


def _readout(ref: str, path: Path, ro: layers.ReadOut) -> list[Entry]:
  return (_conv(f"{ref}.invconv", path + ("conv",), ro.conv)
          + [Entry(f"{ref}.bias", path + ("bias",), _ident, _ident)])


def _norm_relu_conv(ref: str, path: Path, m: layers.NormReLUConv) -> list[Entry]:
  # The reference's BNReLUConv2d is Sequential(norm, ReLU, conv): indices 0 and 2.
  return _norm(f"{ref}.0", path + ("norm",), m.norm) + _conv(f"{ref}.2", path + ("conv",), m.conv)


def _res_ff(ref: str, path: Path, res: layers.Residual) -> list[Entry]:
  # ResBlock(fn=FF) where FF.fn = Sequential(BNReLUConv2d, BNReLUConv2d), each with its own .fn.
  return (_norm_relu_conv(f"{ref}.fn.fn.0.fn", path + ("fn", "first"), res.fn.first)
          + _norm_relu_conv(f"{ref}.fn.fn.1.fn", path + ("fn", "second"), res.fn.second))


@dataclasses.dataclass
class Table:
  """The mapping of one model: entries plus reference keys read and dropped / written as filler."""
  entries: list[Entry]
  # key -> (a check on the state_dict, the filler an export writes: a function of the entries)
  ignored: dict[str, tuple[Callable[[Mapping[str, Array]], None],
                           Callable[[dict[str, Array]], Array]]]


def _no_check(sd):
  del sd


def _table(model: nnx.Module) -> Table:
  e: list[Entry] = []
  ignored: dict = {}
  if isinstance(model, models.SudokuAKOrN):
    ch = model.embed.embedding.shape[1]
    e.append(Entry("gamma", ("gamma",), _scalar, _scalar_ref))
    ignored["x0"] = (_no_check, lambda out: np.zeros((1, ch, 9, 9), np.float32))
    e.append(Entry("embedding.weight", ("embed", "embedding"), _ident, _ident))
    for i, (kl, ro) in enumerate(zip(model.klayers, model.readouts)):
      p = ("klayers", i)
      e += _klayer(f"layers.{i}.0", p, kl)
      rp = ("readouts", i, "layers")
      e += _readout(f"layers.{i}.1.0", rp + (0,), ro.layers[0])
      e += _res_ff(f"layers.{i}.1.1", rp + (1,), ro.layers[1])
      e += _norm_relu_conv(f"layers.{i}.1.2.fn", rp + (2,), ro.layers[2])
    # out = Sequential(ReLU, Conv1x1)
    e += _conv("out.1", ("out", "conv"), model.out.conv)
  elif isinstance(model, models.ObjectAKOrN):
    e.append(Entry("gamma", ("gamma",), _scalar, _scalar_ref))
    if model.pemb_x is not None:
      e += [Entry("pemb_x", ("pemb_x",), _chw, _chw_ref),
            Entry("pemb_c", ("pemb_c",), _chw, _chw_ref)]
    # patchfy = Sequential(normalise, Conv)
    e += _conv("patchfy.1", ("patchify",), model.patchify)
    for i, (kl, ro) in enumerate(zip(model.klayers, model.readouts)):
      e += _klayer(f"layers.{i}.0", ("klayers", i), kl)
      e += _readout(f"layers.{i}.1", ("readouts", i), ro)
    # out = Sequential(Identity, pool, flatten, Linear, ReLU, Linear)
    e += _linear("out.3", ("head1",)) + _linear("out.5", ("head2",))
  elif isinstance(model, models.ClassifierAKOrN):
    e.append(Entry("gamma", ("gamma",), _scalar, _scalar_ref))
    e += _conv("conv0", ("stem",), model.stem)
    for i, (kl, ro) in enumerate(zip(model.klayers, model.readouts)):
      if i > 0:  # one strided conv registered twice, for x (.0.0) and for c (.0.1)
        tr = model.transitions[i - 1]
        e += _conv(f"layers.{i}.0.0", ("transitions", i - 1), tr)
        for suffix in ("weight", "bias"):
          source, dup = f"layers.{i}.0.0.{suffix}", f"layers.{i}.0.1.{suffix}"
          ignored[dup] = (_same_as(source, dup), lambda out, source=source: out[source])
      e += _klayer(f"layers.{i}.2", ("klayers", i), kl)
      rp = ("readouts", i, "layers")
      e += _readout(f"layers.{i}.3.0", rp + (0,), ro.layers[0])
      e += _res_ff(f"layers.{i}.3.1", rp + (1,), ro.layers[1])
      e += _norm_relu_conv(f"layers.{i}.3.2.fn", rp + (2,), ro.layers[2])
    e += _linear("out", ("head",))
  elif isinstance(model, models.ResNet18):
    e += _resnet18(model)
  else:
    raise ValueError(f"No reference mapping for {type(model).__name__}; supported: SudokuAKOrN, "
                     "ObjectAKOrN, ClassifierAKOrN, ResNet18.")
  # BatchNorm's step counter: read and dropped, written as 0.
  for entry in e:
    if entry.ref.endswith(".running_var"):
      ignored[entry.ref[:-len("running_var")] + "num_batches_tracked"] = (
          _no_check, lambda out: np.zeros((), np.int64))
  return Table(e, ignored)


def _same_as(source: str, key: str):
  def check(sd):
    if key in sd and source in sd and not np.array_equal(np.asarray(sd[key]),
                                                          np.asarray(sd[source])):
      raise ValueError(f"{key!r} differs from {source!r}; the reference shares one transition "
                       "convolution between x and c, so both entries must hold the same tensor.")
  return check


def _resnet18(model: models.ResNet18) -> list[Entry]:
  """torchvision naming with the CIFAR stem: conv1, bn1, layer{1-4}.{0,1}.{conv,bn}{1,2},
  layer*.0.downsample.{0,1}, fc."""
  e = _conv("conv1", ("stem",), model.stem) + _norm("bn1", ("bn",), model.bn)
  for b, block in enumerate(model.blocks):
    ref, p = f"layer{b // 2 + 1}.{b % 2}", ("blocks", b)
    for i in (1, 2):
      e += _conv(f"{ref}.conv{i}", p + (f"conv{i}",), getattr(block, f"conv{i}"))
      e += _norm(f"{ref}.bn{i}", p + (f"bn{i}",), getattr(block, f"bn{i}"))
    if block.proj is not None:
      pp = p + ("proj", "layers")
      e += _conv(f"{ref}.downsample.0", pp + (0,), block.proj.layers[0])
      e += _norm(f"{ref}.downsample.1", pp + (1,), block.proj.layers[1])
  return e + _linear("fc", ("head",))


# ---------------------------------------------------------------------------------------------
# Import / export
# ---------------------------------------------------------------------------------------------


def _key(path: Path) -> str:
  return "/".join(map(str, path))


def load_reference(model: nnx.Module, state_dict: Mapping[str, Any]) -> nnx.Module:
  """Sets every variable of `model` from a reference state_dict (in place; returns `model`).

  Raises:
    ValueError: naming the first reference key that no variable consumes, the first variable no
      reference key sets, a missing key, or a shape that does not fit.
  """
  table = _table(model)
  flat = dict((_key(p), (p, v)) for p, v in nnx.to_flat_state(nnx.state(model)))
  mapped = {_key(e.path) for e in table.entries}
  unset = sorted(set(flat) - mapped)
  if unset:
    raise ValueError(f"Model variable {unset[0]!r} has no reference entry (port table incomplete "
                     f"for {type(model).__name__}).")
  known = {e.ref for e in table.entries} | set(table.ignored)
  extra = [k for k in state_dict if k not in known]
  if extra:
    near = difflib.get_close_matches(extra[0], sorted(known), n=1)
    raise ValueError(f"Reference tensor {extra[0]!r} matches no variable of our "
                     f"{type(model).__name__}"
                     + (f" (closest known key: {near[0]!r})" if near else "")
                     + "; check the reference arguments (--reference_args) against the checkpoint.")
  updates = []
  for entry in table.entries:
    if entry.ref not in state_dict:
      raise ValueError(f"Reference tensor {entry.ref!r} is missing from the state_dict; our "
                       f"{type(model).__name__} needs it for {_key(entry.path)!r}. Check the "
                       "reference arguments against the checkpoint.")
    path, var = flat[_key(entry.path)]
    value = entry.to_ours(np.asarray(state_dict[entry.ref]))
    want = var.get_value().shape
    if tuple(value.shape) != tuple(want):
      raise ValueError(f"Reference tensor {entry.ref!r} has shape {np.shape(state_dict[entry.ref])}"
                       f" -> {tuple(value.shape)} in our layout, but {_key(path)!r} is "
                       f"{tuple(want)}"
                       "; the reference arguments do not match the checkpoint.")
    updates.append((path, var.replace(jnp.asarray(value, var.get_value().dtype))))
  for check, _ in table.ignored.values():
    check(state_dict)
  nnx.update(model, nnx.from_flat_state(updates))
  return model


def to_reference(model: nnx.Module, tree: Any = None) -> dict[str, Array]:
  """The reference state_dict of `model` (or of `tree`, an nnx State of the same structure such as
  gradients; then only the variables `tree` holds, and no filler entries)."""
  table = _table(model)
  state = nnx.state(model) if tree is None else tree
  flat = {_key(p): np.asarray(v.get_value() if hasattr(v, "get_value") else v)
          for p, v in nnx.to_flat_state(state)}
  out = {e.ref: e.to_ref(flat[_key(e.path)]) for e in table.entries if _key(e.path) in flat}
  if tree is None:
    for key, (_, filler) in table.ignored.items():
      out[key] = filler(out)
  return out


def convert(reference_class: str, kwargs: Mapping[str, Any],
            state_dict: Mapping[str, Any]) -> tuple[nnx.Module, dict[str, Any]]:
  """(our model holding the reference weights, its model config)."""
  config = from_reference_args(reference_class, kwargs)
  return load_reference(build(config), state_dict), config
