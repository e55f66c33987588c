"""grain pipeline: shuffling, epochs, per-process split, checkpointable position, eval batches."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from akorn_jax.data import pipeline


class Source:
  def __init__(self, n: int):
    self.n = n

  def __len__(self) -> int:
    return self.n

  def __getitem__(self, i: int) -> dict[str, np.ndarray]:
    return {"i": np.int32(i), "x": np.full((2, 3), i, np.float32)}


def _take(it, k):
  return [next(it) for _ in range(k)]


def test_epochs_are_permutations_and_seeded():
  it = pipeline.train_iterator(Source(12), batch_size=4, seed=5)
  ids = np.concatenate([b["i"] for b in _take(it, 9)])  # 3 epochs
  assert all(sorted(ids[e * 12:(e + 1) * 12]) == list(range(12)) for e in range(3))
  assert not np.array_equal(ids[:12], ids[12:24])  # reshuffled every epoch
  assert not np.array_equal(ids[:12], np.arange(12))
  again = pipeline.train_iterator(Source(12), batch_size=4, seed=5)
  np.testing.assert_array_equal(np.concatenate([b["i"] for b in _take(again, 9)]), ids)
  other = pipeline.train_iterator(Source(12), batch_size=4, seed=6)
  assert not np.array_equal(np.concatenate([b["i"] for b in _take(other, 3)]), ids[:12])
  b = next(it)
  assert b["x"].shape == (4, 2, 3) and b["x"].dtype == np.float32


def test_unshuffled_batches_run_across_epochs():
  it = pipeline.train_iterator(Source(10), batch_size=4, seed=0, shuffle=False)
  ids = [b["i"].tolist() for b in _take(it, 3)]
  assert ids == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 0, 1]]


def test_processes_split_each_global_batch(monkeypatch):
  full = np.concatenate([b["i"] for b in _take(pipeline.train_iterator(Source(13), batch_size=6,
                                                                       seed=1), 5)])
  parts = []
  for p in range(3):
    monkeypatch.setattr(jax, "process_count", lambda: 3)
    monkeypatch.setattr(jax, "process_index", lambda p=p: p)
    it = pipeline.train_iterator(Source(13), batch_size=6, seed=1)
    parts.append([b["i"] for b in _take(it, 5)])
  # Global batch k = [process 0 slice, process 1 slice, process 2 slice].
  glued = np.concatenate([np.concatenate([parts[p][k] for p in range(3)]) for k in range(5)])
  np.testing.assert_array_equal(glued, full)
  with pytest.raises(ValueError, match="batch_size=7"):
    pipeline.train_iterator(Source(13), batch_size=7, seed=1)


@pytest.mark.parametrize("workers", [0, 1])
def test_state_round_trip_resumes_exactly(workers):
  it = pipeline.train_iterator(Source(11), batch_size=3, seed=2, num_workers=workers)
  _take(it, 4)
  state = json.loads(json.dumps(it.get_state()))  # what the checkpoint stores
  expected = [b["i"] for b in _take(it, 6)]
  fresh = pipeline.train_iterator(Source(11), batch_size=3, seed=2, num_workers=workers)
  fresh.set_state(state)
  got = [b["i"] for b in _take(fresh, 6)]
  for it_ in (it, fresh):
    if hasattr(it_, "close"):
      it_.close()
  for g, e in zip(got, expected):
    np.testing.assert_array_equal(g, e)


def test_eval_batches_keep_order_and_last_partial_batch():
  batches = list(pipeline.eval_batches(Source(7), 3))
  assert [b["i"].tolist() for b in batches] == [[0, 1, 2], [3, 4, 5], [6]]
  assert batches[-1]["x"].shape == (1, 2, 3)
