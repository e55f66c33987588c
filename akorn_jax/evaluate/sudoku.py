"""Sudoku evaluation with batched energy voting (SPEC §6.2, §10).

Energy voting runs every puzzle from K independent random initial states and keeps, per puzzle, the
start whose score is lowest. The reference loops over puzzles one at a time; here all
(puzzle, start) pairs form rows of one jitted computation, cut into equal chunks, so K = 4096 over
thousands of puzzles is a handful of large batches. Start k of puzzle i always draws its initial
oscillators from `fold_in(fold_in(key, i), k)`: results do not depend on the chunk size, and the
first K of K_max starts are exactly a run with K starts (the K values are nested subsets).

Scores (lower is better), from the last Kuramoto layer's energies `[T+1, N]` = E(x_0) … E(x_T):

* "last": the reference's default, its last list entry E(x_{T-1}).
* "sum": the reference's README setting, the sum of its list [0, E(x_0) … E(x_{T-1})].
* "final": E(x_T), the energy of the state the readout actually sees (our addition, SPEC §10).
* "confidence": minus the mean over blank cells of the top softmax probability; the only score of
  deterministic models (no energies), for which K = 1.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Sequence

import flax.nnx as nnx
import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from akorn_jax import data, metrics, progress

VOTE_TYPES = ("last", "sum", "final", "confidence")


# ---------------------------------------------------------------------------------------------
# Scores and the batched runner
# ---------------------------------------------------------------------------------------------


def vote_scores(energies: jax.Array | None, logits: jax.Array, puzzle: jax.Array,
                vote_type: str) -> jax.Array:
  """Per-sample voting score, lower is better.

  Args:
    energies: [T+1, N] last-layer energies E(x_0) … E(x_T); may be None for "confidence".
    logits: [N, 9, 9, 9] (class k = digit k+1).
    puzzle: [N, 9, 9] int, 0 = blank.
    vote_type: one of VOTE_TYPES (see the module docstring).

  Returns:
    [N] float32 scores.
  """
  if vote_type == "confidence":
    top = jnp.max(jax.nn.softmax(logits.astype(jnp.float32), axis=-1), axis=-1)  # [N, 9, 9]
    blank = (puzzle == 0).astype(jnp.float32)
    # A full board has no blank cell: score 0 rather than 0/0.
    return -jnp.sum(top * blank, axis=(1, 2)) / jnp.maximum(jnp.sum(blank, axis=(1, 2)), 1.0)
  if vote_type not in VOTE_TYPES:
    raise ValueError(f"Unknown vote type {vote_type!r}; expected one of {VOTE_TYPES}.")
  if energies is None:
    raise ValueError(f"Vote type {vote_type!r} needs energies, but the model returned none; "
                     "use 'confidence' for deterministic models.")
  if vote_type == "last":
    return energies[-2]
  if vote_type == "sum":
    return jnp.sum(energies[:-1], axis=0)
  return energies[-1]


def has_energies(model: nnx.Module, steps: int | None = None) -> bool:
  """Whether `model` reports Kuramoto energies (False for deterministic baselines); traces only."""
  out = jax.eval_shape(lambda: model(jnp.zeros((1, 9, 9), jnp.int32), key=jax.random.key(0),
                                     steps=steps)[1])
  return bool(out.get("energies"))


@functools.cache
def _runner(graphdef: nnx.GraphDef, steps: int | None, vote_types: tuple[str, ...]):
  """The jitted forward pass over a chunk of (puzzle, start) rows, cached so that repeated
  evaluations of one architecture (e.g. during training) compile once per chunk shape."""

  @jax.jit
  def run(state: nnx.State, key: jax.Array, boards: jax.Array, puzzle_idx: jax.Array,
          start_idx: jax.Array) -> tuple[jax.Array, jax.Array]:
    model = nnx.merge(graphdef, state)

    def one(board, i, k):
      # Batch of one per row, vmapped: each row gets its own key, so a row's result does not
      # depend on which chunk it lands in.
      logits, aux = model(board[None], key=jax.random.fold_in(jax.random.fold_in(key, i), k),
                          steps=steps)
      energies = aux["energies"][-1] if aux.get("energies") else None
      return logits[0], jnp.stack([vote_scores(energies, logits, board[None], v)[0]
                                   for v in vote_types])

    logits, scores = jax.vmap(one)(boards, puzzle_idx, start_idx)  # [R, 9, 9, 9], [R, V]
    return (jnp.argmax(logits, axis=-1) + 1).astype(jnp.uint8), scores

  return run


def run_starts(model: nnx.Module, puzzles: ArrayLike, *, key: jax.Array, steps: int | None,
               num_starts: int, vote_types: Sequence[str] = VOTE_TYPES,
               chunk: int = 8192, chunk_times: list[float] | None = None
               ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
  """Runs every puzzle from `num_starts` random initial states, as chunks of (puzzle, start) rows.

  Args:
    model: `model(puzzle [B, 9, 9], *, key, steps) -> (logits [B, 9, 9, 9], aux)`, an nnx.Module.
    puzzles: [N, 9, 9] int, 0 = blank.
    key: PRNG key; start k of puzzle i uses `fold_in(fold_in(key, i), k)`.
    steps: Kuramoto steps T (None: the model's own).
    num_starts: K, starts per puzzle.
    vote_types: scores to compute (see `vote_scores`).
    chunk: rows per forward pass; the last chunk is padded so there is one compilation.
    chunk_times: if given, the wall seconds of each chunk are appended (the first includes
      compilation).

  Returns:
    (predictions uint8 [N, K, 9, 9] digits 1..9, {vote type: float32 [N, K] score}).
  """
  puzzles = np.asarray(puzzles)
  num = len(puzzles)
  rows = num * num_starts
  chunk = min(chunk, rows)
  graphdef, state = nnx.split(model)
  vote_types = tuple(vote_types)
  run = _runner(graphdef, steps, vote_types)
  preds = np.zeros((rows, 9, 9), np.uint8)
  scores = np.zeros((rows, len(vote_types)), np.float32)
  for lo in progress.track(range(0, rows, chunk), desc="sudoku voting", unit="chunk"):
    t0 = time.perf_counter()
    idx = np.arange(lo, lo + chunk)
    idx[idx >= rows] = 0  # padding rows repeat row 0; their results are dropped
    puzzle_idx, start_idx = idx // num_starts, idx % num_starts
    p, s = run(state, key, puzzles[puzzle_idx].astype(np.int32), puzzle_idx.astype(np.int32),
               start_idx.astype(np.int32))
    take = min(chunk, rows - lo)
    preds[lo:lo + take], scores[lo:lo + take] = np.asarray(p)[:take], np.asarray(s)[:take]
    if chunk_times is not None:
      chunk_times.append(time.perf_counter() - t0)
  return (preds.reshape(num, num_starts, 9, 9),
          {v: scores[:, j].reshape(num, num_starts) for j, v in enumerate(vote_types)})


def compile_runner(model: nnx.Module, *, key: jax.Array, steps: int | None, num_rows: int,
                   vote_types: Sequence[str] = VOTE_TYPES) -> int | None:
  """Compiles the forward pass that `run_starts` will run on chunks of `num_rows` rows (the
  compilation is reused by that call) and returns the bytes XLA says it needs on the device
  (parameters, inputs, outputs and temporaries), or None when the backend does not say."""
  graphdef, state = nnx.split(model)
  idx = np.zeros(num_rows, np.int32)
  compiled = _runner(graphdef, steps, tuple(vote_types)).lower(
      state, key, np.zeros((num_rows, 9, 9), np.int32), idx, idx).compile()
  stats = compiled.memory_analysis()
  if stats is None:
    return None
  return int(stats.temp_size_in_bytes + stats.argument_size_in_bytes + stats.output_size_in_bytes)


def evaluate_voting(model: nnx.Module, puzzles: ArrayLike, solutions: ArrayLike, *, key: jax.Array,
                    steps: int | None, num_starts: Sequence[int] = (1, 16, 100, 1024, 4096),
                    vote_types: Sequence[str] = VOTE_TYPES, chunk: int = 8192) -> dict[str, float]:
  """Board accuracy with energy voting over K random starts, for every K and vote type.

  All K_max = max(num_starts) starts run once; K uses the first K of them. A deterministic model
  (no energies) is run once per puzzle and scored with K = 1 and "confidence" only.

  Args:
    model: see `run_starts`.
    puzzles: [N, 9, 9] int, 0 = blank.
    solutions: [N, 9, 9] digits 1..9.
    key: PRNG key of the random starts.
    steps: Kuramoto steps T at test time (None: the model's own).
    num_starts: the K values to report.
    vote_types: scores to vote with (see `vote_scores`).
    chunk: (puzzle, start) rows per forward pass.

  Returns:
    {"acc/K={K}/{vote}": board accuracy of the lowest-score start, "oracle/K={K}": fraction of
    puzzles that any of the first K starts solves (the upper bound of voting), "acc/K=1": start 0
    alone, "cell_acc/K=1": the fraction of blank cells start 0 gets right, "num_puzzles",
    "time_s", "puzzles_per_s"} (time includes compilation), and where there are several chunks
    "first_chunk_s" (with compilation) and "rows_per_s" ((puzzle, start) rows per second over
    the others).
  """
  if not num_starts or min(num_starts) < 1:
    raise ValueError(f"num_starts={tuple(num_starts)}; expected positive numbers of starts K.")
  if not has_energies(model, steps):
    if max(num_starts) > 1 or set(vote_types) != {"confidence"}:
      logging.warning("Model returns no energies (deterministic): evaluating K=1 with 'confidence' "
                      "only instead of K=%s, votes %s.", tuple(num_starts), tuple(vote_types))
    num_starts, vote_types = (1,), ("confidence",)
  puzzles, solutions = np.asarray(puzzles), np.asarray(solutions)
  k_max = max(num_starts)
  start, times = time.perf_counter(), []
  preds, scores = run_starts(model, puzzles, key=key, steps=steps, num_starts=k_max,
                             vote_types=vote_types, chunk=chunk, chunk_times=times)
  elapsed = time.perf_counter() - start
  # correct[i, k]: start k of puzzle i is right on every blank cell (SPEC §6.2).
  correct = np.all((preds == solutions[:, None]) | (puzzles[:, None] != 0), axis=(2, 3))
  blank = puzzles == 0
  out = {"acc/K=1": float(correct[:, 0].mean()),
         "cell_acc/K=1": float(((preds[:, 0] == solutions) & blank).sum() / max(blank.sum(), 1))}
  for k in sorted(set(num_starts)):
    out[f"oracle/K={k}"] = float(correct[:, :k].any(axis=1).mean())
    for v in vote_types:
      best = np.argmin(scores[v][:, :k], axis=1)
      chosen = preds[np.arange(len(preds)), best]
      out[f"acc/K={k}/{v}"] = float(metrics.board_accuracy(chosen, solutions, puzzles))
  out.update(num_puzzles=float(len(puzzles)), time_s=elapsed, puzzles_per_s=len(puzzles) / elapsed)
  # Throughput without compilation: the chunks after the first (all of equal size).
  rows = min(chunk, len(puzzles) * k_max)
  if len(times) > 1:
    out.update(first_chunk_s=times[0], rows_per_s=rows * (len(times) - 1) / sum(times[1:]))
  return out


# ---------------------------------------------------------------------------------------------
# The Sudoku evaluator of the trainer and of experiments.evaluate
# ---------------------------------------------------------------------------------------------


class Evaluator:
  """Board accuracy of a Sudoku model on the test sets of an experiment config (`config.eval`).

  Full (experiments.evaluate): every set in `eval.sets`, its first `eval.num_puzzles` boards, at
  T = `eval.steps`, voting over every K in `eval.num_starts` with every score in
  `eval.vote_types`; `run` returns {set: `evaluate_voting`'s dict}.

  Periodic (the trainer, every `train.eval_every` steps): the first set, its first
  `eval.train_eval_puzzles` boards, one start (K = 1) at the training T and at `eval.steps`;
  `run` returns {"eval/board_acc_T{T}": accuracy}.

  Boards are read once, on the first `run`; compiled forward passes are cached per architecture.
  """

  def __init__(self, config, *, periodic: bool = False):
    e = config.eval
    self.periodic = periodic
    self.data_dir = config.data.get("data_dir")
    self.chunk = int(e.chunk)
    if periodic:
      self.sets, self.num = tuple(e.sets[:1]), int(e.train_eval_puzzles)
      self.steps = tuple(sorted({int(config.model.steps), int(e.steps)}))
      self.num_starts, self.vote_types = (1,), ("confidence",)
    else:
      self.sets, self.num, self.steps = tuple(e.sets), int(e.num_puzzles), (int(e.steps),)
      self.num_starts, self.vote_types = tuple(e.num_starts), tuple(e.vote_types)
    self._boards: dict[str, tuple[np.ndarray, np.ndarray]] = {}

  def boards(self, spec: str) -> tuple[np.ndarray, np.ndarray]:
    """(puzzles, solutions) of set `spec` ("name/config:split"), int [N, 9, 9]; read once."""
    if spec not in self._boards:
      rows = data.read_set(spec, self.num, data_dir=self.data_dir)
      self._boards[spec] = rows["puzzle"], rows["solution"]
    return self._boards[spec]

  def run(self, model: nnx.Module, key: jax.Array, *, workdir: str | None = None,
          step: int | None = None) -> dict:
    """Scores `model` (in eval mode); `workdir` and `step` are unused (no pictures)."""
    del workdir, step
    out = {}
    for spec in self.sets:
      puzzles, solutions = self.boards(spec)
      for steps in self.steps:
        res = evaluate_voting(model, puzzles, solutions, key=key, steps=steps,
                              num_starts=self.num_starts, vote_types=self.vote_types,
                              chunk=self.chunk)
        if self.periodic:
          out[f"eval/board_acc_T{steps}"] = res["acc/K=1/confidence"]
        else:
          out[spec] = res
    return out
