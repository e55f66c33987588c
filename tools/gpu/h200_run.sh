#!/usr/bin/env bash
# Everything this project measures on one H200 lease (15 min of device time, one call of <= 10 min):
#   1. train configs/sudoku_akorn.py (reference settings) for at most TRAIN_S seconds; meanwhile a
#      one-step pass of the speed suite fills JAX's persistent compilation cache (records with
#      "steps": 1 in bench.jsonl; their timings are not used, their compile_s is the cold compile
#      time, measured under that load);
#   2. export the EMA weights (the package's shipped checkpoint format);
#   3. voting evaluation at T_eval = 128, sized to its time box (sudoku_eval_timeboxed.py): 1,000
#      in-distribution puzzles, then K up to 100 and up to 4096 on as many `hard` puzzles as fit;
#   4. the speed suite at `full` scale (h200_bench.sh), each (item, dtype) alone in its process.
# Every stage has a time box, so whatever finished is under $OUT when the call ends.
#
# On the device tool, from the repository root (carry `.whl`, made by tools/gpu/device_wheels.sh):
#   bash tools/gpu/h200_run.sh
# Locally, as a check: OUT=/tmp/h200 SCALE=tiny TRAIN_S=60 EVAL_S=30 DEADLINE=200 bash tools/gpu/h200_run.sh
set -u
OUT=${OUT:-/tmp/h200_out}
SCALE=${SCALE:-full}            # full (the H200 run) | tiny (a quick rehearsal on a CPU)
DEADLINE=${DEADLINE:-585}       # seconds after start by which everything has finished
TRAIN_S=${TRAIN_S:-270}         # training's time box (SIGTERM: it checkpoints and exits 0)
EVAL_S=${EVAL_S:-120}           # the voting evaluation's time box
mkdir -p "$OUT"
START=$(date +%s)
LOG=$OUT/log.txt
el() { echo $(( $(date +%s) - START )); }
log() { echo "[$(el)s] $*" | tee -a "$LOG" >&2; }

source "$(dirname "$0")/env.sh"   # wheels (once per machine), PYTHONPATH, PY
export AKORN_DATA_DIR=/tmp/akorn_data
export JAX_COMPILATION_CACHE_DIR=/tmp/jax_cache
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0 JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES=0

if [ "$SCALE" = tiny ]; then
  CFG=configs/sudoku_akorn.py:tiny; STEPS=2; WARM=1; NPUZ=100
else
  CFG=configs/sudoku_akorn.py; STEPS=10; WARM=3; NPUZ=1000
fi
RUN=/tmp/sudoku_run

log "start: $(date -u +%FT%TZ) scale=$SCALE"
(nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true) >>"$LOG" 2>&1
$PY -c "import jax, flax, optax, orbax.checkpoint as o; print('jax', jax.__version__, 'flax', \
flax.__version__, 'optax', optax.__version__, 'orbax', o.__version__, jax.devices())" >>"$LOG" 2>&1
for c in satnet_like hard; do
  $PY -m experiments.prepare_data --dataset=sudoku_generated/$c >>"$LOG" 2>&1
done
log "prepared data"

# --- 1. training || compile-cache warm-up --------------------------------------------------------
XLA_PYTHON_CLIENT_MEM_FRACTION=0.25 timeout -s TERM -k 40 "$TRAIN_S" \
  $PY -m experiments.train --config=$CFG --workdir=$RUN --config.train.eval_every=0 \
  >>"$OUT/train_log.txt" 2>&1 &
TRAIN_PID=$!
setsid bash -c "for d in bfloat16 float32; do XLA_PYTHON_CLIENT_MEM_FRACTION=0.6 $PY -m \
  experiments.benchmark --suite=all --scale=$SCALE --dtype=\$d --steps=1 --warmup=0; done" \
  >>"$OUT/bench.jsonl" 2>>"$LOG" &
WARM_PID=$!
wait $TRAIN_PID; log "training exited with $?"
kill -TERM -- -$WARM_PID 2>/dev/null; sleep 2; kill -KILL -- -$WARM_PID 2>/dev/null
log "compile warm-up stopped ($(wc -l <"$OUT/bench.jsonl") items done)"
cp $RUN/metrics.jsonl "$OUT/train_metrics.jsonl" 2>/dev/null
tail -n 5 "$OUT/train_log.txt" >>"$LOG"

# --- 2. export -----------------------------------------------------------------------------------
$PY -m experiments.sudoku export --workdir=$RUN --out="$OUT/sudoku_akorn" >>"$LOG" 2>&1
log "export exited with $?"

# --- 3. voting eval of the export, sized to its time box (tools/gpu/sudoku_eval_timeboxed.py) ---
timeout -k 10 $(( EVAL_S + 20 )) $PY tools/gpu/sudoku_eval_timeboxed.py \
  --weights="$OUT/sudoku_akorn" --output="$OUT/eval.jsonl" --time_s=$EVAL_S --max_puzzles=$NPUZ \
  >/dev/null 2>>"$LOG"
log "eval exited with $?"

# --- 4. speed suite, each (item, dtype) alone (tools/gpu/h200_bench.sh) -------------------------
OUT="$OUT" PY=$PY SCALE=$SCALE STEPS=$STEPS WARMUP=$WARM WHEELS="$WHEELS" \
  DEADLINE=$(( DEADLINE - $(el) )) bash "$(dirname "$0")/h200_bench.sh"

log "done"
