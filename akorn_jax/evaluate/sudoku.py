"""Sudoku evaluation with batched energy voting (docs/evaluation.md#sudoku,
docs/reference.md#differences).

Energy voting runs every puzzle from K independent random initial states and keeps, per puzzle, the
start whose score is lowest. The reference loops over puzzles one at a time; here all
(puzzle, start) pairs form rows of one jitted computation, cut into equal chunks, so K = 4096 over
thousands of puzzles is a handful of large batches. Start k of puzzle i always draws its initial
oscillators from `fold_in(fold_in(key, i), k)`: results do not depend on the chunk size, and the
first K of K_max starts are exactly a run with K starts (the K values are nested subsets).

Scores (lower is better), from the last Kuramoto layer's energies `[T+1, N]` = E(x_0) … E(x_T):

* "last": the reference's default, its last list entry E(x_{T-1}).
* "sum": the reference's README setting, the sum of its list [0, E(x_0) … E(x_{T-1})].
* "final": E(x_T), the energy of the state the readout actually sees (our addition,
docs/reference.md#differences).
* "confidence": minus the mean over blank cells of the top softmax probability; the only score of
  deterministic models (no energies), for which K = 1.

For the AKOrN (`runtime_steps`), T is an argument of the compiled pass (a `lax.fori_loop` bound
whose carry keeps the three energy scores as running values): every T shares one compilation, so
the trainer's periodic evaluation at the training T and at the test T compiles once.
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import Sequence

import flax.nnx as nnx
import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from akorn_jax import data, metrics
from akorn_jax.evaluate import common

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
  return _history_scores(energies)[vote_type]


def _history_scores(energies: jax.Array) -> dict[str, jax.Array]:
  """{"last", "sum", "final"} ([N] each) from the energy history [T+1, N] = E(x_0) … E(x_T)."""
  return {"last": energies[-2], "sum": jnp.sum(energies[:-1], axis=0), "final": energies[-1]}


def _energy_scores(aux: dict) -> dict[str, jax.Array] | None:
  """The last Kuramoto layer's energy scores {"last", "sum", "final"} ([N] each) from its energy
  history [T+1, N] or, with a runtime T, from the running sums of the loop (`kuramoto.integrate`);
  None for a model without energies."""
  if aux.get("energy_summaries"):
    last = aux["energy_summaries"][-1]
    return {"last": last["energy_last"], "sum": last["energy_sum"], "final": last["energy_final"]}
  if aux.get("energies"):
    return _history_scores(aux["energies"][-1])
  return None


def _steps_arg(model: nnx.Module, steps: int | None) -> tuple[int | str | None, np.ndarray]:
  """(T as the runner's cache key, T as its argument). A model that declares `runtime_steps` (the
  AKOrN) gets T as a runtime value, so every T shares one compilation (the trainer's periodic
  evaluation at the training T and the test T, the CLI's --steps); others get a static T."""
  if getattr(model, "runtime_steps", False):
    return "runtime", np.int32(model.steps if steps is None else steps)
  return steps, np.int32(0)


_HAS_ENERGIES: dict[tuple[nnx.GraphDef, int | None], bool] = {}


def has_energies(model: nnx.Module, steps: int | None = None) -> bool:
  """Whether `model` reports Kuramoto energies (False for deterministic baselines); traces once
  per architecture and T."""
  graphdef = nnx.graphdef(model)
  if (graphdef, steps) not in _HAS_ENERGIES:
    out = jax.eval_shape(lambda: model(jnp.zeros((1, 9, 9), jnp.int32), key=jax.random.key(0),
                                       steps=steps)[1])
    _HAS_ENERGIES[graphdef, steps] = bool(out.get("energies"))
  return _HAS_ENERGIES[graphdef, steps]


def _state_shape(model: nnx.Module) -> tuple[int, ...]:
  """Shape of one board's oscillator state [9, 9, C] (that of its stimulus, the digit embedding);
  () for a model whose __call__ takes no `x_init` (run one row per call, vmapped: slower)."""
  if "x_init" not in inspect.signature(type(model).__call__).parameters:
    return ()
  if not hasattr(model, "embed"):
    raise ValueError(f"{type(model).__name__} reports energies but has no `embed` (the digit "
                     "embedding whose output shape [9, 9, C] is the initial state's); energy "
                     "voting needs `model(puzzle, x_init=[B, 9, 9, C], steps=T)`.")
  return tuple(jax.eval_shape(model.embed, jnp.zeros((9, 9), jnp.int32)).shape)


@functools.cache
def _runner(graphdef: nnx.GraphDef, steps: int | str | None, vote_types: tuple[str, ...],
            state_shape: tuple[int, ...] | None):
  """The jitted forward pass over a chunk of (puzzle, start) rows, cached so that repeated
  evaluations of one architecture (e.g. during training) compile once per chunk shape.

  `steps`: T (static; None: the model's own), or "runtime": T is the runner's argument `t`, one
  compilation for every T (see `_steps_arg`). The energy scores are those of the last layer
  (`_energy_scores`).

  The model runs batched over the rows; each row's initial state is drawn from its own key
  `fold_in(fold_in(key, i), k)` and passed in (`x_init`), so a row's result does not depend on
  the chunk it lands in. `state_shape` None: a deterministic model, run without initial state;
  (): a model without `x_init`, run one row per call with the row's key (vmapped; same numbers).
  """

  @jax.jit
  def run(state: nnx.State, puzzles: jax.Array, key: jax.Array, t: jax.Array,
          rows: dict[str, jax.Array]) -> dict[str, jax.Array]:
    model = nnx.merge(graphdef, state)
    steps_ = t if steps == "runtime" else steps
    boards = puzzles[rows["puzzle"]].astype(jnp.int32)  # [R, 9, 9]
    if state_shape is None:
      logits, aux = model(boards, key=key, steps=steps_)
    elif state_shape == ():  # a model without `x_init`: one row per call, vmapped
      def one(board, i, k):
        logits, aux = model(board[None], key=jax.random.fold_in(jax.random.fold_in(key, i), k),
                            steps=steps_)
        return logits[0], jax.tree.map(lambda e: e[:, 0], aux["energies"])
      logits, energies = jax.vmap(one, out_axes=(0, 1))(boards, rows["puzzle"], rows["start"])
      aux = {"energies": energies}
    else:
      def draw(i, k):
        return jax.random.normal(jax.random.fold_in(jax.random.fold_in(key, i), k), state_shape,
                                 jnp.float32)
      x_init = jax.vmap(draw)(rows["puzzle"], rows["start"])  # [R, 9, 9, C]
      logits, aux = model(boards, x_init=x_init, steps=steps_)
    energy = _energy_scores(aux)
    scores = jnp.stack([energy[v] if energy is not None and v != "confidence"
                        else vote_scores(None, logits, boards, v)  # names a missing energy
                        for v in vote_types], axis=-1)
    return {"pred": (jnp.argmax(logits, axis=-1) + 1).astype(jnp.uint8), "scores": scores}

  return run


def _puzzle_table(puzzles: np.ndarray) -> np.ndarray:
  """The puzzles int8 [N, 9, 9], zero-padded to a power of two >= 4,096 rows (330 KB), so that
  evaluations of other sets (up to that size) reuse the compiled runner."""
  size = max(4096, 1 << (len(puzzles) - 1).bit_length())
  return np.concatenate([puzzles.astype(np.int8),
                         np.zeros((size - len(puzzles), 9, 9), np.int8)], axis=0)


def _rows(num: int, num_starts: int, idx: np.ndarray | None = None) -> dict[str, np.ndarray]:
  """Row r = (puzzle r // K, start r % K) for all N K rows (or the rows `idx`)."""
  idx = np.arange(num * num_starts) if idx is None else idx
  return {"puzzle": (idx // num_starts).astype(np.int32),
          "start": (idx % num_starts).astype(np.int32)}


def resolve_chunk(model: nnx.Module, puzzles: ArrayLike, *, steps: int | None,
                  vote_types: Sequence[str] = VOTE_TYPES, chunk: int | None = None,
                  mesh: jax.sharding.Mesh | None = None) -> int:
  """The (puzzle, start) rows per forward pass: `chunk` when given, else as many as fit a share of
  the free memory (host RAM on CPU, device memory on GPU/TPU) by the traced program's bytes per
  row, a multiple of the mesh size (see `common.auto_chunk`)."""
  if chunk:
    return int(chunk)
  mesh = mesh or common.default_mesh()
  graphdef, state = nnx.split(model)
  shape = _state_shape(model) if has_energies(model, steps) else None
  steps_key, t = _steps_arg(model, steps)
  run = _runner(graphdef, steps_key, tuple(vote_types), shape)
  puzzles = jax.ShapeDtypeStruct(_puzzle_table(np.asarray(puzzles)).shape, np.int8)

  def bytes_for(n):
    rows = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), _rows(n, 1))
    return common.row_bytes(run, state, puzzles, jax.random.key(0), t, rows)

  return common.auto_chunk(bytes_for(2) - bytes_for(1), mesh)


def run_starts(model: nnx.Module, puzzles: ArrayLike, *, key: jax.Array, steps: int | None,
               num_starts: int, vote_types: Sequence[str] = VOTE_TYPES,
               chunk: int | None = None, mesh: jax.sharding.Mesh | None = None,
               chunk_times: list[float] | None = None
               ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
  """Runs every puzzle from `num_starts` random initial states, as chunks of (puzzle, start) rows.

  Each chunk is split over the devices of `mesh`. Results are bit-for-bit the same for every
  chunk size and device count (tests/evaluate_sudoku_test.py).

  Args:
    model: `model(puzzle [B, 9, 9], *, x_init [B, 9, 9, C] or key, steps) -> (logits
      [B, 9, 9, 9], aux)`, an nnx.Module (with `embed`, the digit embedding, when it has energies).
    puzzles: [N, 9, 9] int, 0 = blank.
    key: PRNG key; start k of puzzle i draws its initial state from `fold_in(fold_in(key, i), k)`.
    steps: Kuramoto steps T (None: the model's own).
    num_starts: K, starts per puzzle.
    vote_types: scores to compute (see `vote_scores`).
    chunk: rows per forward pass (None: from the free memory, see `resolve_chunk`); the last
      chunk is padded so there is one compilation.
    mesh: devices to split every chunk over (default: all).
    chunk_times: if given, the wall seconds of each chunk are appended (the first includes
      compilation).

  Returns:
    (predictions uint8 [N, K, 9, 9] digits 1..9, {vote type: float32 [N, K] score}).
  """
  puzzles = np.asarray(puzzles)
  num = len(puzzles)
  vote_types = tuple(vote_types)
  mesh = mesh or common.default_mesh()
  chunk = resolve_chunk(model, puzzles, steps=steps, vote_types=vote_types, chunk=chunk, mesh=mesh)
  graphdef, state = nnx.split(model)
  shape = _state_shape(model) if has_energies(model, steps) else None
  steps_key, t = _steps_arg(model, steps)
  run = _runner(graphdef, steps_key, vote_types, shape)
  out = common.sharded_map(run, _rows(num, num_starts), chunk=chunk, mesh=mesh,
                           args=(state, _puzzle_table(puzzles), key, t), chunk_times=chunk_times,
                           progress="sudoku voting")
  return (out["pred"].reshape(num, num_starts, 9, 9),
          {v: out["scores"][:, j].reshape(num, num_starts) for j, v in enumerate(vote_types)})


def compile_runner(model: nnx.Module, *, key: jax.Array, steps: int | None, num_rows: int,
                   vote_types: Sequence[str] = VOTE_TYPES,
                   mesh: jax.sharding.Mesh | None = None) -> int | None:
  """Compiles the forward pass that `run_starts` runs on chunks of `num_rows` rows (split over
  `mesh`, default all devices) and returns the bytes XLA says one device needs for it
  (parameters, inputs, outputs and temporaries), or None when the backend does not say."""
  mesh = mesh or common.default_mesh()
  graphdef, state = nnx.split(model)
  shape = _state_shape(model) if has_energies(model, steps) else None
  steps_key, t = _steps_arg(model, steps)
  run = _runner(graphdef, steps_key, tuple(vote_types), shape)
  rows = common.shard_rows(_rows(common.rows_per_call(num_rows, mesh.size), 1), mesh)
  args = common.replicate((state, _puzzle_table(np.zeros((1, 9, 9), np.int8)), key, t), mesh)
  stats = run.lower(*args, rows).compile().memory_analysis()
  if stats is None:
    return None
  return int(stats.temp_size_in_bytes + stats.argument_size_in_bytes + stats.output_size_in_bytes)


def evaluate_voting(model: nnx.Module, puzzles: ArrayLike, solutions: ArrayLike, *, key: jax.Array,
                    steps: int | None, num_starts: Sequence[int] = (1, 16, 100, 1024, 4096),
                    vote_types: Sequence[str] = VOTE_TYPES, chunk: int | None = None,
                    mesh: jax.sharding.Mesh | None = None) -> dict[str, float]:
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
    chunk: (puzzle, start) rows per forward pass (None: from the free memory).
    mesh: devices to split every chunk over (default: all).

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
  chunk = resolve_chunk(model, puzzles, steps=steps, vote_types=vote_types, chunk=chunk, mesh=mesh)
  preds, scores = run_starts(model, puzzles, key=key, steps=steps, num_starts=k_max,
                             vote_types=vote_types, chunk=chunk, mesh=mesh, chunk_times=times)
  elapsed = time.perf_counter() - start
  # correct[i, k]: start k of puzzle i is right on every blank cell (docs/evaluation.md#sudoku).
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

  def __init__(self, config, *, periodic: bool = False, mesh: jax.sharding.Mesh | None = None):
    e = config.eval
    self.periodic, self.mesh = periodic, mesh  # mesh: the devices voting splits over (None: all)
    self.data_dir = config.data.get("data_dir")
    self.chunk = int(e.chunk) or None  # None: as many rows as fit in memory
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
                              chunk=self.chunk, mesh=self.mesh)
        if self.periodic:
          out[f"eval/board_acc_T{steps}"] = res["acc/K=1/confidence"]
        else:
          out[spec] = res
    return out
