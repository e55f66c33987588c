"""Training telemetry (akorn_jax.train.logging): interval means, rates, plain progress lines off a
terminal, a profiler trace of a step range."""

import glob
import json
import os
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest

import toy
from akorn_jax import config_base
from akorn_jax.train import logging as log_lib
from akorn_jax.train import loop

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_interval_means_sum_on_device():
  means = log_lib.IntervalMeans()
  for loss in (1.0, 2.0, 6.0):
    means.add({"loss": jnp.float32(loss), "n": jnp.int32(2)})
  assert means.means(lambda t: {k: np.asarray(v) for k, v in t.items()}) == {"loss": 3.0, "n": 2.0}
  means.reset()
  assert means.means(lambda t: t) == {}


def test_logged_lines_are_interval_means_with_rates(tmp_path, capsys):
  # Same seed and data: logging every step gives the per-step values the interval means average.
  every = str(tmp_path / "every")
  loop.train_and_evaluate(toy.toy_config(**{"train.num_steps": 4}), every, task=toy.toy_task())
  steps = {m["step"]: m for m in toy.read_metrics(every) if "loss" in m}
  pairs = str(tmp_path / "pairs")
  loop.train_and_evaluate(toy.toy_config(**{"train.num_steps": 4, "train.log_every": 2}), pairs,
                          task=toy.toy_task())
  lines = [m for m in toy.read_metrics(pairs) if "loss" in m]
  assert [m["step"] for m in lines] == [2, 4]
  for line, (a, b) in zip(lines, ((1, 2), (3, 4))):
    for key in ("loss", "accuracy", "grad_norm"):
      np.testing.assert_allclose(line[key], (steps[a][key] + steps[b][key]) / 2, rtol=1e-5)
    # The clock starts after the first (compiling) step: every interval has a rate.
    assert line["steps_per_s"] > 0
    np.testing.assert_allclose(line["examples_per_s"], 8 * line["steps_per_s"])
    assert "mfu" not in line  # no peak rate known for a CPU
  err = capsys.readouterr().err
  assert "\r" not in err  # pytest's stderr is no terminal: plain lines, no bar
  assert "step 2/4 (50%)" in err and "step 4/4 (100%)" in err and "steps/s" in err


def test_profile_steps_write_a_trace(tmp_path):
  workdir = str(tmp_path)
  loop.train_and_evaluate(toy.toy_config(**{"train.num_steps": 4, "train.profile_steps": "1:3"}),
                          workdir, task=toy.toy_task())
  assert glob.glob(os.path.join(workdir, "tb", "plugins", "profile", "*", "*.xplane.pb"))


def test_bad_step_range_is_named():
  assert config_base.parse_step_range("10:15") == (10, 15)
  for bad in ("10", "5:5", "a:b", "-1:3"):
    with pytest.raises(ValueError, match=f"Step range '{bad}'"):
      config_base.parse_step_range(bad)


def test_progress_off_a_terminal_is_plain_lines_with_total_and_eta(capsys):
  from akorn_jax import progress  # pylint: disable=g-import-not-at-top
  assert list(progress.track(range(3), desc="quick")) == [0, 1, 2]
  assert capsys.readouterr().err == ""  # shorter than every_s: silent
  assert list(progress.track(range(4), desc="attacks pgd", unit="chunk", every_s=0)) == [0, 1, 2, 3]
  err = capsys.readouterr().err
  assert "\r" not in err
  lines = err.splitlines()
  assert len(lines) == 4 and lines[0].startswith("attacks pgd: 1/4 chunk (25%)")
  assert "ETA" in lines[0] and lines[-1].startswith("attacks pgd: 4/4 chunk (100%)")
