"""akorn_jax.evaluate.plots: the data behind each plot, the PNGs, JSON round trips, bad input."""

import json
import math

import numpy as np
import pytest
from PIL import Image

from akorn_jax.evaluate import plots

VOTING = {"acc/K=1": 0.5, "oracle/K=1": 0.5, "acc/K=1/last": 0.5, "acc/K=1/sum": 0.5,
          "oracle/K=16": 0.8, "acc/K=16/last": 0.55, "acc/K=16/sum": 0.7,
          "oracle/K=100": 0.9, "acc/K=100/sum": 0.75, "num_puzzles": 10.0, "time_s": 1.0}


def _roundtrip(d):
  return json.loads(json.dumps(d))


def _png(path):
  with Image.open(path) as im:
    return im.mode, im.size


def test_voting_curves_read_every_k_and_vote():
  ks, curves = plots.voting_curves(VOTING)
  assert ks == [1, 16, 100]
  assert curves["sum"] == [0.5, 0.7, 0.75] and curves["oracle"] == [0.5, 0.8, 0.9]
  assert curves["last"][:2] == [0.5, 0.55] and math.isnan(curves["last"][2])  # not run at K=100


def test_extension_curves_group_by_set_and_sort_t():
  recs = [{"set": "hard", "T_eval": 64, "acc/K=1": 0.57}, {"set": "hard", "T_eval": 16, "acc/K=1": 0.2},
          {"set": "easy", "T_eval": 16, "acc/K=1": 0.84}]
  ts, curves = plots.extension_curves(recs)
  assert ts == [16, 64] and curves["hard"] == [0.2, 0.57]
  assert curves["easy"][0] == 0.84 and math.isnan(curves["easy"][1])
  with pytest.raises(ValueError, match="T_eval"):
    plots.extension_curves([{"acc/K=1": 0.5}])


def test_ece_table_from_a_calibration_report():
  report = {"clean": {"accuracy": 0.9, "ece": 0.01},
            "corruptions": {"fog": {1: {"accuracy": 0.8, "ece": 0.02}, 3: {"accuracy": 0.5, "ece": 0.1}},
                            "snow": {1: {"accuracy": 0.7, "ece": 0.03}}}}
  names, sevs, ece = plots.ece_table(_roundtrip(report))  # JSON turns severities into strings
  assert names == ["fog", "snow"] and sevs == [1, 3]
  np.testing.assert_allclose(ece, [[0.02, 0.1], [0.03, np.nan]])
  names, sevs, acc = plots.ece_table(report, "accuracy")
  assert acc[0].tolist() == [0.8, 0.5]
  with pytest.raises(ValueError, match="calibration report"):
    plots.ece_table({"step": 3})


def test_every_plot_writes_a_png_and_returns_it(tmp_path):
  eps = {"eps": [0, 2 / 255, 8 / 255, 64 / 255], "accuracy": [0.9, 0.7, 0.3, 0.05], "chance": 0.1,
         "gradient_masking_suspected": False}
  report = {"clean": {"accuracy": 0.9, "ece": 0.01},
            "corruptions": {n: {s: {"accuracy": 0.9 - 0.1 * s, "ece": 0.01 * s} for s in range(1, 6)}
                            for n in ("fog", "snow", "contrast")}}
  made = {
      "eps.png": plots.plot_accuracy_vs_eps(_roundtrip(eps), str(tmp_path / "eps.png"), title="AKOrN"),
      "voting.png": plots.plot_voting(_roundtrip(VOTING), str(tmp_path / "voting.png"), title="hard"),
      "t.png": plots.plot_test_time([{"set": "hard", "T_eval": t, "acc/K=1": a}
                                     for t, a in ((16, 0.2), (32, 0.48), (128, 0.57))],
                                    str(tmp_path / "t.png")),
      "ece.png": plots.plot_ece(_roundtrip(report), str(tmp_path / "ece.png")),
  }
  for name, rgb in made.items():
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[-1] == 3, name
    assert _png(tmp_path / name) == ("RGB", (rgb.shape[1], rgb.shape[0])), name
    assert rgb.std() > 10, name  # something was drawn


def test_bad_inputs_name_what_was_expected(tmp_path):
  with pytest.raises(ValueError, match="accuracy_vs_eps"):
    plots.plot_accuracy_vs_eps({"accuracy": [1.0]}, str(tmp_path / "x.png"))
  with pytest.raises(ValueError, match="acc/K="):
    plots.plot_voting({"board_accuracy": 1.0}, str(tmp_path / "x.png"))
  with pytest.raises(ValueError, match="one y per x"):
    plots.line_plot([1, 2], {"a": [1.0]}, str(tmp_path / "x.png"), xlabel="x", ylabel="y")
