#!/usr/bin/env bash
# Trains the Sudoku solver config (configs/sudoku_akorn.py:solver, issue #17) on one GPU and
# evaluates it and the shipped model on every givens band at K = 1, 16, 256 (T_eval 128).
#
# Two stages, each within one device call of <= 10 min (the machine stays warm between calls, so
# /tmp survives):
#   STAGE=train  generate sudoku_generated/mixed (10,000 boards on every CPU core; see
#                akorn_jax/data/sudoku/generate.py), train for at most TRAIN_S seconds (SIGTERM:
#                the trainer checkpoints and exits 0), export the EMA weights to $OUT/sudoku_solver;
#   STAGE=eval   tools/sudoku_sweep.py at T 128, K 1/16/256, votes sum and confidence, on the
#                bands <= 22, 23-26, 27-34 and on satnet_like (in distribution), first for the new
#                model, then for the shipped one (akorn_jax/assets/sudoku_akorn), each set in its
#                own time box; JSON lines in $OUT/eval_solver.jsonl and $OUT/eval_shipped.jsonl.
# Ship the new model as the default solver only if it beats the shipped one on band_le22 and
# loses at most 1 point on satnet_like (issue #17); record both in results/sudoku.md.
#
# On the device tool, from the repository root (carry `.whl`, made by tools/gpu/device_wheels.sh):
#   STAGE=train bash tools/gpu/sudoku_solver.sh      # then, in a second call:
#   STAGE=eval bash tools/gpu/sudoku_solver.sh
# Locally, as a rehearsal on a CPU (minutes):
#   OUT=/tmp/solver SCALE=tiny TRAIN_S=60 STAGE=train bash tools/gpu/sudoku_solver.sh
#   OUT=/tmp/solver SCALE=tiny SET_S=60 STAGE=eval bash tools/gpu/sudoku_solver.sh
set -u
OUT=${OUT:-/tmp/solver_out}
STAGE=${STAGE:-train}          # train | eval
SCALE=${SCALE:-full}           # full (GPU) | tiny (a quick rehearsal on a CPU)
TRAIN_S=${TRAIN_S:-420}        # training's time box; 10,000 steps took ~320 s for 9,000 on an H200
SET_S=${SET_S:-60}             # time box of one (model, set) evaluation
mkdir -p "$OUT"
START=$(date +%s)
LOG=$OUT/log.txt
log() { echo "[$(( $(date +%s) - START ))s] $*" | tee -a "$LOG" >&2; }

source "$(dirname "$0")/env.sh"   # wheels (once per machine), PYTHONPATH, PY
export AKORN_DATA_DIR=/tmp/akorn_data
export JAX_COMPILATION_CACHE_DIR=/tmp/jax_cache
RUN=/tmp/sudoku_solver_run
if [ "$SCALE" = tiny ]; then
  CFG=configs/sudoku_akorn.py:solver,tiny; MIXED=mixed_tiny; NPUZ=16; KS=1,16
else
  CFG=configs/sudoku_akorn.py:solver; MIXED=mixed; NPUZ=200; KS=1,16,256
fi
log "stage $STAGE, scale $SCALE, start $(date -u +%FT%TZ)"

if [ "$STAGE" = train ]; then
  (nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true) >>"$LOG" 2>&1
  for c in $MIXED band_le22 band_23_26 band_27_34 satnet_like; do
    t0=$(date +%s)
    $PY -m experiments.prepare_data --dataset=sudoku_generated/$c >>"$LOG" 2>&1
    rc=$?
    log "prepared $c in $(( $(date +%s) - t0 )) s (exit $rc, $(nproc) CPU cores)"
  done
  timeout -s TERM -k 40 "$TRAIN_S" $PY -m experiments.train --config=$CFG --workdir=$RUN \
    >>"$OUT/train_log.txt" 2>&1
  log "training exited with $?"
  cp $RUN/metrics.jsonl "$OUT/train_metrics.jsonl" 2>/dev/null
  tail -n 5 "$OUT/train_log.txt" >>"$LOG"
  $PY -m experiments.sudoku export --workdir=$RUN --out="$OUT/sudoku_solver" >>"$LOG" 2>&1
  log "export exited with $?"
elif [ "$STAGE" = eval ]; then
  for model in solver shipped; do
    weights=$OUT/sudoku_solver
    [ $model = shipped ] && weights=akorn_jax/assets/sudoku_akorn
    for set in band_le22 band_23_26 band_27_34 satnet_like; do
      timeout -k 10 "$SET_S" $PY tools/sudoku_sweep.py --weights="$weights" \
        --sets=sudoku_generated/$set:test --num_puzzles=$NPUZ --steps=128 --num_starts=$KS \
        --vote_types=sum,confidence --chunk=8192 --output="$OUT/eval_$model.jsonl" \
        >/dev/null 2>>"$LOG"
      log "$model on $set exited with $?"
    done
  done
else
  echo "STAGE must be train or eval, got '$STAGE'" >&2
  exit 2
fi
log "done"
