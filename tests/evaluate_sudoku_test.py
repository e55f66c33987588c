"""Tests of Sudoku energy voting (akorn_jax.evaluate.sudoku)."""

from __future__ import annotations

import flax.nnx as nnx
import jax
import jax.numpy as jnp
import numpy as np
import ml_collections
import pytest

from akorn_jax.data import sudoku as sudoku_data
from akorn_jax.evaluate import sudoku as ev
from akorn_jax.models import SudokuAKOrN, SudokuTransformer
from akorn_jax.train import sharding as shard_lib

NUM = 6
TINY = dict(ch=16, heads=2, steps=2)
TRACES = []  # one entry per trace of Oracle.__call__


@pytest.fixture(scope="module")
def boards():
  puzzles, solutions = sudoku_data.load_generated("satnet_like")["test"]
  return puzzles[:NUM], solutions[:NUM]


@pytest.fixture(scope="module")
def tiny_model():
  return SudokuAKOrN(rngs=nnx.Rngs(0), **TINY)


class Oracle(nnx.Module):
  """Knows the solutions; each start is right with probability 0.4 (confident), else every cell is
  wrong (unconfident). Right starts get energies lowered by `bias` (so voting can find them when
  bias > 0). Two layers: the first one's energies are constant, so only the last layer can vote.
  Its randomness comes from the initial state x_init, as an AKOrN's does."""

  def __init__(self, puzzles, solutions, bias: float):
    self.puzzles = nnx.Variable(jnp.asarray(puzzles, jnp.int32))
    self.solutions = nnx.Variable(jnp.asarray(solutions, jnp.int32))
    self.bias = bias
    self.embed = nnx.Embed(10, 2, rngs=nnx.Rngs(0))  # the state shape [9, 9, 2]

  def __call__(self, puzzle, *, key=None, x_init=None, steps=None):
    TRACES.append(1)  # Python side effect: runs once per trace
    steps = 3 if steps is None else steps
    if x_init is None:
      x_init = jax.random.normal(key, (len(puzzle), 9, 9, 2))
    match = jnp.all(self.puzzles[...][None] == puzzle[:, None], axis=(2, 3))  # [B, N]
    solution = jnp.einsum("bn,nij->bij", match.astype(jnp.int32), self.solutions[...])
    uniform = jax.scipy.stats.norm.cdf(x_init.reshape(len(puzzle), -1))  # [B, 162] in (0, 1)
    right = uniform[:, 0] < 0.4  # [B]
    board = jnp.where(right[:, None, None], solution, solution % 9 + 1)
    logits = jax.nn.one_hot(board - 1, 9) * jnp.where(right, 5.0, 1.0)[:, None, None, None]
    energy = uniform[:, 1:steps + 2].T - self.bias * right  # [T+1, B]
    return logits, {"energies": [jnp.zeros_like(energy), energy]}


def test_vote_scores_on_hand_made_energies():
  energies = jnp.array([[1.0, 5.0], [2.0, 4.0], [3.0, 3.0], [0.0, 9.0]])  # [T+1 = 4, N = 2]
  logits = jnp.asarray(np.random.default_rng(0).normal(size=(2, 9, 9, 9)), jnp.float32)
  puzzle = np.zeros((2, 9, 9), np.int32)
  puzzle[0, :4] = 5  # 36 givens on board 0, board 1 all blank
  np.testing.assert_allclose(ev.vote_scores(energies, logits, puzzle, "last"), [3.0, 3.0])
  np.testing.assert_allclose(ev.vote_scores(energies, logits, puzzle, "sum"), [6.0, 12.0])
  np.testing.assert_allclose(ev.vote_scores(energies, logits, puzzle, "final"), [0.0, 9.0])
  z = np.asarray(logits, np.float64)
  top = (np.exp(z) / np.exp(z).sum(-1, keepdims=True)).max(-1)
  expected = [-top[0, 4:].mean(), -top[1].mean()]
  np.testing.assert_allclose(ev.vote_scores(None, logits, puzzle, "confidence"), expected, rtol=1e-5)
  with pytest.raises(ValueError, match="'median'"):
    ev.vote_scores(energies, logits, puzzle, "median")
  with pytest.raises(ValueError, match="needs energies"):
    ev.vote_scores(None, logits, puzzle, "sum")


def test_run_starts_shapes_nesting_and_chunking(tiny_model, boards):
  puzzles, _ = boards
  key = jax.random.key(3)
  preds, scores = ev.run_starts(tiny_model, puzzles, key=key, steps=2, num_starts=4, chunk=5)
  assert preds.shape == (NUM, 4, 9, 9) and preds.dtype == np.uint8
  assert preds.min() >= 1 and preds.max() <= 9
  assert set(scores) == set(ev.VOTE_TYPES)
  assert all(s.shape == (NUM, 4) and np.isfinite(s).all() for s in scores.values())
  # Different starts really differ (distinct keys), else voting would be pointless.
  assert not np.allclose(scores["final"][:, 0], scores["final"][:, 1])
  # Bit for bit the same with one chunk of every row, with the default chunk, and on one device
  # instead of the 8 every chunk is split over here.
  one_device = shard_lib.make_mesh(ml_collections.ConfigDict({"data": 1, "fsdp": 1}))
  for kw in (dict(chunk=NUM * 4), dict(chunk=None), dict(chunk=3, mesh=one_device)):
    preds_1, scores_1 = ev.run_starts(tiny_model, puzzles, key=key, steps=2, num_starts=4, **kw)
    np.testing.assert_array_equal(preds, preds_1, err_msg=str(kw))
    for v in ev.VOTE_TYPES:
      np.testing.assert_array_equal(scores[v], scores_1[v], err_msg=f"{v} {kw}")
  # K = 2 starts are the first two of K = 4.
  preds_2, scores_2 = ev.run_starts(tiny_model, puzzles, key=key, steps=2, num_starts=2, chunk=5)
  np.testing.assert_array_equal(preds_2, preds[:, :2])
  np.testing.assert_array_equal(scores_2["sum"], scores["sum"][:, :2])


def test_evaluate_voting_tiny_model_keys(tiny_model, boards):
  out = ev.evaluate_voting(tiny_model, *boards, key=jax.random.key(0), steps=2, num_starts=(1, 4),
                           chunk=5)  # the chunk shape of the test above: no new compilation
  expected = {"acc/K=1", "cell_acc/K=1", "num_puzzles", "time_s", "puzzles_per_s",
              "first_chunk_s", "rows_per_s"} | {
      f"oracle/K={k}" for k in (1, 4)} | {f"acc/K={k}/{v}" for k in (1, 4) for v in ev.VOTE_TYPES}
  assert set(out) == expected
  assert all(0.0 <= out[k] <= 1.0 for k in out if k.startswith(("acc", "cell_acc", "oracle")))
  assert out["num_puzzles"] == NUM and out["puzzles_per_s"] > 0 and out["rows_per_s"] > 0


def test_voting_finds_the_low_energy_solution(boards):
  model = Oracle(*boards, bias=2.0)
  out = ev.evaluate_voting(model, *boards, key=jax.random.key(1), steps=3, num_starts=(1, 16),
                           chunk=13)
  assert out["oracle/K=16"] == 1.0
  assert out["acc/K=1"] < 1.0  # some first starts are wrong, so voting has work to do
  # A right start has every blank right, a wrong one none (solution % 9 + 1 everywhere): the
  # blank-cell accuracy is the blank-weighted share of puzzles whose first start is right.
  preds, _ = ev.run_starts(model, boards[0], key=jax.random.key(1), steps=3, num_starts=1,
                           vote_types=("confidence",))
  right = np.all(preds[:, 0] == boards[1], axis=(1, 2))
  blanks = np.sum(boards[0] == 0, axis=(1, 2))
  assert 0 < right.sum() < len(right)
  assert out["cell_acc/K=1"] == pytest.approx(float((right * blanks).sum() / blanks.sum()))
  for v in ev.VOTE_TYPES:
    assert out[f"acc/K=16/{v}"] == 1.0, v
    assert out[f"acc/K=1/{v}"] == pytest.approx(out["acc/K=1"])


def test_voting_accuracy_uses_the_first_k_starts(boards):
  puzzles, solutions = boards
  model = Oracle(puzzles, solutions, bias=0.0)  # energies unrelated to correctness
  key = jax.random.key(5)
  out = ev.evaluate_voting(model, puzzles, solutions, key=key, steps=3, num_starts=(1, 3, 8),
                           vote_types=("final",), chunk=11)
  # Recompute K = 3 directly: run 3 starts alone, take the lowest final energy per puzzle.
  preds, scores = ev.run_starts(model, puzzles, key=key, steps=3, num_starts=3,
                                vote_types=("final",))
  chosen = preds[np.arange(NUM), scores["final"].argmin(1)]
  solved = ((chosen == solutions) | (puzzles != 0)).all((1, 2))
  assert out["acc/K=3/final"] == pytest.approx(solved.mean())
  correct = ((preds == solutions[:, None]) | (puzzles[:, None] != 0)).all((2, 3))
  assert out["oracle/K=3"] == pytest.approx(correct.any(1).mean())
  assert out["oracle/K=1"] <= out["oracle/K=3"] <= out["oracle/K=8"]


class OracleByKey(Oracle):
  """The Oracle behind the older model interface: a key, no x_init (voting vmaps over rows)."""

  def __call__(self, puzzle, *, key, steps=None):
    return super().__call__(puzzle, x_init=jax.random.normal(key, (len(puzzle), 9, 9, 2)),
                            steps=steps)


def test_models_without_x_init_vote_on_the_same_starts(boards):
  kw = dict(key=jax.random.key(7), steps=3, num_starts=4, chunk=16)
  batched = ev.run_starts(Oracle(*boards, bias=1.0), boards[0], **kw)
  by_key = ev.run_starts(OracleByKey(*boards, bias=1.0), boards[0], **kw)
  np.testing.assert_array_equal(batched[0], by_key[0])
  for v in ev.VOTE_TYPES:
    np.testing.assert_array_equal(batched[1][v], by_key[1][v])


def test_run_starts_compiles_once_with_a_padded_last_chunk(boards):
  model = Oracle(*boards, bias=0.25)  # a bias no other test uses: nothing cached yet
  TRACES.clear()
  ev.run_starts(model, boards[0], key=jax.random.key(0), steps=2, num_starts=5, chunk=7)  # 30 rows
  assert len(TRACES) == 2  # has_energies (an abstract trace) and the one compiled runner
  # Same architecture and chunk shape, other weights, puzzles and key: the compiled code is reused.
  other = Oracle(boards[0][::-1], boards[1][::-1], bias=0.25)
  ev.run_starts(other, boards[0][:4], key=jax.random.key(1), steps=2, num_starts=3, chunk=7)
  assert len(TRACES) == 2


def test_akorn_votes_with_a_runtime_t_one_compilation_for_every_t(boards):
  # The AKOrN declares `runtime_steps`: T is an argument of the compiled pass, so the training T and
  # the test T (the trainer's periodic evaluation, the CLI's --steps) share one compilation, and
  # the results equal those of a static T.
  model = SudokuAKOrN(rngs=nnx.Rngs(3), ch=16, heads=2, steps=3)
  static = SudokuAKOrN(rngs=nnx.Rngs(3), ch=16, heads=2, steps=3)
  static.runtime_steps = False
  kw = dict(key=jax.random.key(2), num_starts=3, chunk=16)
  for steps in (2, 5):
    preds, scores = ev.run_starts(model, boards[0], steps=steps, **kw)
    want_preds, want_scores = ev.run_starts(static, boards[0], steps=steps, **kw)
    np.testing.assert_array_equal(preds, want_preds)
    for v in ev.VOTE_TYPES:
      np.testing.assert_allclose(scores[v], want_scores[v], rtol=1e-5, atol=1e-4, err_msg=v)
  graphdef = nnx.graphdef(model)
  assert ev._runner(graphdef, "runtime", ev.VOTE_TYPES, (9, 9, 16))._cache_size() == 1


def test_deterministic_model_votes_by_confidence_with_one_start(boards):
  model = SudokuTransformer(rngs=nnx.Rngs(0), ch=16, heads=2, steps=1)
  assert not ev.has_energies(model)
  out = ev.evaluate_voting(model, *boards, key=jax.random.key(0), steps=1, num_starts=(1, 4))
  assert {k for k in out if k.startswith(("acc", "oracle"))} == {
      "acc/K=1", "oracle/K=1", "acc/K=1/confidence"}
