"""The object ViT / ItrSA configs train and evaluate end to end (tiny, generated Tetrominoes)."""

import numpy as np
import pytest

from akorn_jax.train import loop
from akorn_jax import config_loader, tasks


@pytest.mark.parametrize("arg", ["tiny", "tiny,vit"])
def test_itrsa_and_vit_train_and_evaluate(tmp_path, arg):
  c = config_loader.load(f"tetrominoes_itrsa:{arg}")
  assert c.model.name == "object_vit" and (c.model.steps == 1) == ("vit" in arg)
  c.data.data_dir = str(tmp_path / "tfds")
  c.model.ch, c.model.heads, c.model.steps = 8, 2, min(c.model.steps, 2)
  c.data.batch_size = c.data.eval_batch_size = 8
  c.train.num_steps, c.train.log_every, c.checkpoint.every_steps = 2, 1, 2
  c.eval.num_images, c.eval.num_pictures, c.eval.uptile = 8, 1, (1,)
  c.lock()
  out = loop.train_and_evaluate(c, str(tmp_path / "run"), task=tasks.get_task(c))
  assert np.isfinite(out["loss"])
  assert 0.0 <= out["eval/fg_ari_x1"] <= 1.0 and 0.0 <= out["eval/mbo_x1"] <= 1.0
