"""PNG plots of evaluation results, for the places where people look rather than read.

Each `plot_*` function takes a result dict exactly as an evaluator returns it (or as read back from
its JSON file: keys may have become strings) and an output path, writes a PNG there and returns the
picture as an RGB uint8 array `[H, W, 3]`, ready for `train.logging.MetricWriter.write_images`
(TensorBoard). The data each plot shows comes from a small pure function (`voting_curves`, `extension_curves`, `ece_table`)
that is tested on its own.

| function | input | shows |
| --- | --- | --- |
| `plot_accuracy_vs_eps` | `robustness.accuracy_vs_eps(...)` | robust accuracy vs attack radius ε, chance level, masking flag |
| `plot_voting` | `sudoku.evaluate_voting(...)` | board accuracy vs number of starts K, per vote type, with the oracle |
| `plot_test_time` | records with "T_eval" (e.g. `tools/sudoku_sweep.py` lines) | board accuracy vs test-time steps T, per set |
| `plot_ece` | a `calibration` report (our corruptions or CIFAR-10-C) | ECE and accuracy per corruption and severity (heat maps) |
| `line_plot` | x values and named curves | any of the above's line charts |

matplotlib is imported only when a plot is drawn (through its object API, never pyplot's global
state); without it the functions raise ImportError saying how to install it.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np


def _figure(width: float, height: float):
  try:
    from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError("Plots need matplotlib, which is not installed: `pip install matplotlib`, "
                      "then run again.") from e
  return Figure(figsize=(width, height))


def _save(fig, path: str) -> np.ndarray:
  """Writes `fig` to `path` as PNG and returns it as RGB uint8."""
  from PIL import Image  # pylint: disable=g-import-not-at-top

  fig.tight_layout()
  buf = io.BytesIO()
  fig.savefig(buf, format="png", dpi=100)
  buf.seek(0)
  with Image.open(buf) as im:
    rgb = np.asarray(im.convert("RGB"))
  Image.fromarray(rgb).save(path, format="PNG")
  return rgb


def line_plot(x: Sequence[float], curves: Mapping[str, Sequence[float]], path: str, *,
              xlabel: str, ylabel: str, title: str = "", logx: bool = False,
              hlines: Mapping[str, float] | None = None, ylim: tuple[float, float] | None = (0, 1.02),
              dashed: Iterable[str] = ()) -> np.ndarray:
  """A line chart of named curves over shared x values (a curve may hold NaN for missing points).

  Args:
    x: the x values.
    curves: name -> y values, each as long as x.
    path: PNG output file.
    xlabel, ylabel, title: labels.
    logx: logarithmic x axis.
    hlines: name -> y of a dotted horizontal reference line (e.g. chance).
    ylim: y range (None: automatic).
    dashed: names of curves to draw dashed (e.g. an oracle or a total).

  Returns:
    The picture, RGB uint8 [H, W, 3].
  """
  for name, y in curves.items():
    if len(y) != len(x):
      raise ValueError(f"Curve {name!r} has {len(y)} values for {len(x)} x values; give one y per x.")
  dashed = set(dashed)
  fig = _figure(5.5, 3.6)
  ax = fig.subplots()
  for name, y in sorted(curves.items(), key=lambda kv: kv[0] in dashed):  # dashed ones on top
    style = dict(linestyle="--", color="black") if name in dashed else dict(linestyle="-")
    ax.plot(x, y, marker="o" if len(x) <= 20 else None, markersize=3, label=name, **style)
  for name, y in (hlines or {}).items():
    ax.axhline(y, color="gray", linestyle=":", linewidth=1)
    ax.annotate(name, (0.01, y), xycoords=("axes fraction", "data"), va="bottom", color="gray")
  if logx:
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(x), [f"{v:g}" for v in x])  # the measured values, written plainly
    ax.minorticks_off()
  ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
  if ylim:
    ax.set_ylim(*ylim)
  ax.grid(alpha=0.3)
  ax.legend(fontsize="small")
  return _save(fig, path)


# ------------------------------------------------------------------------------------------------
# Robustness: accuracy vs eps
# ------------------------------------------------------------------------------------------------


def plot_accuracy_vs_eps(result: Mapping[str, Any], path: str, *, title: str = "") -> np.ndarray:
  """Robust accuracy against the attack radius ε (in 1/255 units), with the chance level.

  Args:
    result: `robustness.accuracy_vs_eps` output: "eps", "accuracy" (lists), optional "chance" and
      "gradient_masking_suspected".
    path: PNG output file.
    title: prefix of the title.
  """
  if "eps" not in result or "accuracy" not in result:
    raise ValueError(f"Expected the dict of robustness.accuracy_vs_eps (keys 'eps', 'accuracy'), "
                     f"got keys {sorted(result)}.")
  eps = [255 * float(e) for e in result["eps"]]
  flag = " (gradient masking suspected)" if result.get("gradient_masking_suspected") else ""
  hlines = {"chance": float(result["chance"])} if "chance" in result else None
  return line_plot(eps, {"accuracy": [float(a) for a in result["accuracy"]]}, path,
                   xlabel="ε (× 1/255, L∞)", ylabel="accuracy", hlines=hlines,
                   title=f"{title + ': ' if title else ''}accuracy vs ε{flag}")


# ------------------------------------------------------------------------------------------------
# Sudoku: voting over K starts, test-time extension
# ------------------------------------------------------------------------------------------------

_VOTE_KEY = re.compile(r"^acc/K=(\d+)/(\w+)$")
_ORACLE_KEY = re.compile(r"^oracle/K=(\d+)$")


def voting_curves(result: Mapping[str, Any]) -> tuple[list[int], dict[str, list[float]]]:
  """(sorted K values, {vote type or "oracle": board accuracy per K}) from an evaluate_voting dict.

  A vote type missing at some K (not reported there) gets NaN at that K.
  """
  per: dict[str, dict[int, float]] = {}
  for key, value in result.items():
    if m := _VOTE_KEY.match(str(key)):
      per.setdefault(m.group(2), {})[int(m.group(1))] = float(value)
    elif m := _ORACLE_KEY.match(str(key)):
      per.setdefault("oracle", {})[int(m.group(1))] = float(value)
  if not per:
    raise ValueError("Expected an evaluate_voting result with 'acc/K={K}/{vote}' keys, got keys "
                     f"{sorted(map(str, result))}.")
  ks = sorted({k for v in per.values() for k in v})
  return ks, {name: [v.get(k, math.nan) for k in ks] for name, v in per.items()}


def plot_voting(result: Mapping[str, Any], path: str, *, title: str = "") -> np.ndarray:
  """Board accuracy against the number of random starts K (log axis), one curve per vote type,
  and the oracle (some start among the first K is right), dashed.

  Args:
    result: `sudoku.evaluate_voting` output for one set.
    path: PNG output file.
    title: prefix of the title, e.g. the set's name.
  """
  ks, curves = voting_curves(result)
  return line_plot(ks, curves, path, xlabel="random starts K", ylabel="board accuracy", logx=True,
                   dashed=("oracle",),
                   title=f"{title + ': ' if title else ''}energy voting")


def extension_curves(records: Iterable[Mapping[str, Any]], metric: str = "acc/K=1"
                     ) -> tuple[list[int], dict[str, list[float]]]:
  """(sorted T values, {set: metric per T}) from records holding "T_eval", `metric` and optionally
  "set"; a set without a record at some T gets NaN there."""
  per: dict[str, dict[int, float]] = {}
  for i, rec in enumerate(records):
    if "T_eval" not in rec or metric not in rec:
      raise ValueError(f"Record {i} has keys {sorted(rec)}; expected 'T_eval' and {metric!r} "
                       "(the lines tools/sudoku_sweep.py writes).")
    per.setdefault(str(rec.get("set", metric)), {})[int(rec["T_eval"])] = float(rec[metric])
  if not per:
    raise ValueError("No records given; expected one dict per (set, T_eval).")
  ts = sorted({t for v in per.values() for t in v})
  return ts, {name: [v.get(t, math.nan) for t in ts] for name, v in per.items()}


def plot_test_time(records: Iterable[Mapping[str, Any]], path: str, *, metric: str = "acc/K=1",
                   title: str = "") -> np.ndarray:
  """Board accuracy against the number of Kuramoto steps at test time T (log axis), per set.

  Args:
    records: dicts with "T_eval", `metric` and optionally "set" (e.g. tools/sudoku_sweep.py lines,
      or `{"T_eval": T, **evaluate_voting(...)}`).
    path: PNG output file.
    metric: the key plotted.
    title: prefix of the title.
  """
  ts, curves = extension_curves(records, metric)
  return line_plot(ts, curves, path, xlabel="test-time steps T", ylabel=metric, logx=True,
                   title=f"{title + ': ' if title else ''}test-time extension")


# ------------------------------------------------------------------------------------------------
# Calibration under corruptions
# ------------------------------------------------------------------------------------------------


def ece_table(report: Mapping[str, Any], metric: str = "ece"
              ) -> tuple[list[str], list[int], np.ndarray]:
  """(corruption names, severities, values [corruptions, severities]) of `metric`.

  Accepts the reports of `evaluate.calibration` ({"corruptions": {name: {severity: {...}}}}), of
  our corruptions or of CIFAR-10-C. Missing cells are NaN.
  """
  cells: dict[str, dict[int, float]] = {}
  for name, by_sev in report.get("corruptions", {}).items():
    for sev, scores in by_sev.items():
      cells.setdefault(str(name), {})[int(sev)] = float(scores[metric])
  if not cells:
    raise ValueError("Expected a calibration report ('corruptions': {name: {severity: ...}}, see "
                     f"evaluate.calibration), got keys {sorted(map(str, report))}.")
  names = list(cells)
  sevs = sorted({s for v in cells.values() for s in v})
  return names, sevs, np.array([[cells[n].get(s, math.nan) for s in sevs] for n in names])


def plot_ece(report: Mapping[str, Any], path: str, *, title: str = "") -> np.ndarray:
  """Heat maps of ECE (%) and accuracy (%) per corruption (rows) and severity (columns), with the
  clean values in the titles when the report has them.

  Args:
    report: a report of `evaluate.calibration` (our corruptions or CIFAR-10-C).
    path: PNG output file.
    title: prefix of the title.
  """
  names, sevs, ece = ece_table(report, "ece")
  _, _, acc = ece_table(report, "accuracy")
  clean = report.get("clean") if isinstance(report.get("clean"), Mapping) else None
  fig = _figure(7.5, 1.2 + 0.32 * len(names))
  axes = fig.subplots(1, 2, sharey=True)
  for ax, values, label, cmap, key in ((axes[0], 100 * ece, "ECE %", "Reds", "ece"),
                                       (axes[1], 100 * acc, "accuracy %", "Blues", "accuracy")):
    im = ax.imshow(values, cmap=cmap, aspect="auto")
    for (i, j), v in np.ndenumerate(values):
      if not math.isnan(v):
        ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(sevs)), [str(s) for s in sevs])
    ax.set_xlabel("severity")
    extra = f" (clean {100 * float(clean[key]):.1f})" if clean else ""
    ax.set_title(f"{label}{extra}", fontsize=9)
    fig.colorbar(im, ax=ax, shrink=0.8)
  axes[0].set_yticks(range(len(names)), names, fontsize=8)
  if title:
    fig.suptitle(title, fontsize=10)
  return _save(fig, path)
