"""Tests of akorn_jax.evaluate.calibration: reports (our corruptions, CIFAR-10-C) and the diagram."""

import os

import jax
import numpy as np
import PIL.Image
import pytest

from akorn_jax import imageops, metrics
from akorn_jax.data import cifar, common
from akorn_jax.evaluate import calibration
from akorn_jax.evaluate import corruptions as cr


@pytest.fixture(scope="module")
def images():
  """Smooth random colour images (a coarse grid upsampled), [6, 32, 32, 3] in [0, 1]."""
  coarse = jax.random.uniform(jax.random.key(3), (6, 4, 4, 3))
  return np.asarray(jax.image.resize(coarse, (6, 32, 32, 3), "linear"))


def _softmax_probs(x, key):
  """A fixed 'classifier' on mean colour: 3 classes by the dominant channel."""
  del key
  logits = 20 * x.mean(axis=(1, 2))
  return jax.nn.softmax(logits)


def test_calibration_report(images):
  labels = np.asarray(np.argmax(images.mean(axis=(1, 2)), 1))
  rep = calibration.calibration_report(_softmax_probs, images, labels, jax.random.key(0),
                              corruptions=("contrast", "gaussian_noise"), severities=(1, 5),
                              chunk_size=2)
  assert rep["clean"]["accuracy"] == 1.0
  probs = np.asarray(_softmax_probs(images, None), np.float64)
  assert rep["clean"]["ece"] == pytest.approx(metrics.expected_calibration_error(probs, labels),
                                              rel=1e-4)
  assert set(rep["corruptions"]) == {"contrast", "gaussian_noise"}
  assert set(rep["corruptions"]["contrast"]) == {1, 5}
  corrupted = np.asarray(_softmax_probs(cr.corrupt("contrast", images, 5, jax.random.key(9)), None))
  assert rep["corruptions"]["contrast"][5]["ece"] == pytest.approx(
      metrics.expected_calibration_error(corrupted, labels), rel=1e-4)
  cells = [r["ece"] for c in rep["corruptions"].values() for r in c.values()]
  assert rep["mean"]["ece"] == pytest.approx(np.mean(cells))
  assert rep["per_severity"][5]["accuracy"] == pytest.approx(
      np.mean([rep["corruptions"][c][5]["accuracy"] for c in rep["corruptions"]]))


def test_reliability_diagram_writes_png(tmp_path):
  rng = np.random.default_rng(0)
  probs = rng.dirichlet(np.ones(10), size=200)
  labels = rng.integers(0, 10, 200)
  path = calibration.reliability_diagram(probs, labels, str(tmp_path / "rel.png"), title="test")
  assert os.path.getsize(path) > 1000
  with PIL.Image.open(path) as im:
    assert im.format == "PNG" and im.size[0] > 100


def test_cifar10_c_report_reads_every_set(monkeypatch, images):
  labels = np.asarray(np.argmax(images.mean(axis=(1, 2)), 1))
  u8 = np.round(images * 255).astype(np.uint8)
  opened = []

  def fake_cifar10_c(name, severity, data_dir_=None):
    del data_dir_
    opened.append((name, severity))
    # Severity s darkens the images; "fog" swaps the labels, so its accuracy drops.
    x = (u8 // severity).astype(np.uint8)
    y = labels if name != "fog" else (labels + 1) % 3
    return [{"image": x[i], "label": y[i]} for i in range(len(x))]

  monkeypatch.setattr(cifar, "cifar10_c", fake_cifar10_c)
  rep = calibration.cifar10_c_report(_softmax_probs, jax.random.key(0), names=("snow", "fog"),
                                     severities=(1, 2), num_images=4, chunk_size=3)
  assert opened == [("snow", 1), ("snow", 2), ("fog", 1), ("fog", 2)]
  probs = np.asarray(_softmax_probs(imageops.to_float(u8[:4]), None), np.float64)
  want = calibration.scores(probs, labels[:4])
  assert rep["corruptions"]["snow"][1] == pytest.approx(want, rel=1e-4)
  assert rep["corruptions"]["snow"][1]["accuracy"] == 1.0
  assert rep["corruptions"]["fog"][1]["accuracy"] == 0.0
  assert rep["mean"]["accuracy"] == pytest.approx(
      np.mean([rep["corruptions"][c][s]["accuracy"] for c in ("snow", "fog") for s in (1, 2)]))


def test_cifar10_c_report_unprepared(tmp_path):
  with pytest.raises(common.DatasetNotPreparedError, match="cifar10_corrupted"):
    calibration.cifar10_c_report(_softmax_probs, jax.random.key(0), names=("fog",),
                                 severities=(1,), data_dir=str(tmp_path))
