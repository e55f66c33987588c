"""experiments.ablate: cells parse against the model, a tiny grid trains, evaluates and tabulates."""

import json
import os

import pytest

from akorn_jax import config_loader
from experiments import ablate


def test_cells_parse_presets_and_settings():
  c = config_loader.load("tetrominoes_akorn:tiny")
  assert ablate.parse_cell("omega+n=2", c.model) == {"use_omega": True, "gamma": 1.0, "n": 2}
  assert ablate.parse_cell("no_project+steps=4", c.model) == {"project": False, "steps": 4}
  with pytest.raises(ValueError, match="no_readout"):
    ablate.parse_cell("no_readoutt", c.model)
  with pytest.raises(ValueError, match="does not take"):
    ablate.parse_cell("nn=2", c.model)
  cc = ablate.cell_config(c, {"readout": False, "n": 2})
  assert cc.model.readout is False and cc.model.n == 2 and c.model.n == 4


def test_tiny_grid_writes_table_json_and_plot(tmp_path):
  c = config_loader.load("tetrominoes_akorn:tiny")
  c.data.data_dir = str(tmp_path / "tfds")
  c.model.ch, c.model.heads, c.model.steps = 8, 2, 2
  c.data.batch_size = c.data.eval_batch_size = 8
  c.train.num_steps, c.train.log_every, c.checkpoint.every_steps = 2, 1, 2
  c.eval.num_images, c.eval.num_pictures, c.eval.uptile = 8, 0, (1,)
  c.lock()
  rows = ablate.run_grid(c, str(tmp_path / "grid"), ["base", "no_readout+n=2"])
  assert [r["cell"] for r in rows][1:] == ["base", "no_readout+n=2"]
  assert rows[0]["steps"] == 0 and rows[1]["steps"] == rows[2]["steps"] == 2
  assert rows[2]["params"] < rows[1]["params"]  # no readout convs
  for r in rows:
    assert 0.0 <= r["fg_ari_x1"] <= 1.0 and 0.0 <= r["mbo_x1"] <= 1.0
  out = tmp_path / "grid"
  assert json.loads((out / "ablation.json").read_text())[2]["settings"] == {"readout": False, "n": 2}
  table = (out / "ablation.md").read_text().splitlines()
  assert len(table) == 2 + 3 and "fg ari x1" in table[0] and "readout=False, n=2" in table[4]
  assert os.path.getsize(out / "ablation.png") > 1000
