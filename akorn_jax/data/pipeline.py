"""grain input pipelines over random-access sources (len + __getitem__ -> dict of numpy arrays).

Training stream: the source is shuffled with a fixed seed, reshuffled every epoch (grain's
`shuffle(seed).repeat()` draws a new permutation per epoch) and cut into global batches of
`batch_size` consecutive examples; batches run across epoch boundaries, so every example is used
once per epoch, shapes stay constant for jit and no data is dropped. Each global batch is split into
`process_count` contiguous slices and process p reads only slice p. The sequence of global batches
therefore depends on the seed alone, not on the number of hosts or workers, and a run resumed from
`iterator.get_state()` sees exactly the batches it would have seen.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grain
from absl import flags
import jax
import numpy as np


def train_iterator(source: Any, *, batch_size: int, seed: int, shuffle: bool = True,
                   num_workers: int = 0) -> grain.DatasetIterator:
  """An endless, checkpointable iterator over this process's slice of each global batch.

  Args:
    source: random-access source of single examples.
    batch_size: the global batch size B; must divide by `jax.process_count()`.
    seed: shuffle seed (the same on every process: the processes split one global stream).
    shuffle: shuffle (and reshuffle per epoch); False keeps the source order.
    num_workers: grain worker processes (0 = load in this process).

  Returns:
    An iterator of dicts of numpy arrays [B / process_count, ...], with `get_state()` /
    `set_state()` (JSON-serialisable dicts).
  """
  procs, index = jax.process_count(), jax.process_index()
  if batch_size % procs:
    raise ValueError(f"config.data.batch_size={batch_size} must divide by the {procs} processes; "
                     "choose a multiple of the process count.")
  if len(source) == 0:
    raise ValueError("The training source is empty; check the dataset split and data directory.")
  ds = grain.MapDataset.source(source)
  if shuffle:
    ds = ds.shuffle(seed=seed)
  # Slice p of global batch k is local batch k * procs + p of the stream cut into B / procs.
  ds = ds.repeat(None).batch(batch_size // procs)[index::procs]
  it = ds.to_iter_dataset()
  if num_workers > 0:
    # grain's workers read absl flags; outside an absl app (tests, notebooks) use their defaults.
    if not flags.FLAGS.is_parsed():
      flags.FLAGS.mark_as_parsed()
    it = it.mp_prefetch(grain.MultiprocessingOptions(num_workers=num_workers))
  return iter(it)


def eval_batches(source: Any, batch_size: int,
                 num: int | None = None) -> Iterator[dict[str, np.ndarray]]:
  """Yields the first `num` examples of the source (all if None or 0) in order, in batches of
  `batch_size`, the last one possibly smaller."""
  ds = grain.MapDataset.source(source)
  if num and num < len(ds):
    ds = ds[:num]
  yield from ds.batch(batch_size, drop_remainder=False)


def stack(source: Any, num: int | None = None) -> dict[str, np.ndarray]:
  """The first `num` examples of the source (all if None or 0) as one dict of stacked arrays."""
  n = len(source) if not num else min(len(source), num)
  if n == 0:
    raise ValueError("The source is empty; check the dataset split and data directory.")
  rows = [source[i] for i in range(n)]
  return {k: np.stack([r[k] for r in rows]) for k in rows[0]}
