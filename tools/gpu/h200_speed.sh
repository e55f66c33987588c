#!/usr/bin/env bash
# Every GPU measurement of issue #12 in one call (<= 10 min), most important first, each stage in
# its own process and time box, so whatever finished is under $OUT when the call ends:
#   1. voting, cold compilation cache: the shipped Sudoku model at T = 128, K in {1, 16}, 1,000
#      satnet_like + 292 hard boards, in bfloat16 and float32 (accuracy, rows/s, chosen chunk,
#      first-chunk seconds = cold compile) -> voting.jsonl (tools/gpu/speed_checks.py voting);
#   2. the speed suite at `full` scale as users run it (each config's own "auto" dtype and the
#      attention the layers choose), every item alone in its process -> bench.jsonl; sudoku_train
#      and clevrtex_L1_train also write a profile of 3 steps under prof/ (kernels per Kuramoto
#      step are in every record: kernels_per_loop_step);
#   3. warm compiles: voting (satnet_like only) and clevrtex_L1_train again, now with the
#      persistent cache filled -> voting_warm.jsonl, bench_warm.jsonl;
#   4. kernels per step with explicit block sums vs reductions -> kernels.jsonl;
#   5. the float32 items (the reference's dtype), while time remains -> bench_f32.jsonl.
# On the device tool, from the repository root (carry `.whl`, made by tools/gpu/device_wheels.sh):
#   bash tools/gpu/h200_speed.sh                 (DEADLINE=540 s by default)
# Locally, as a rehearsal of the plumbing (CPU, minutes):
#   OUT=/tmp/speed SCALE=tiny SETS=satnet_like:2 VOTE_T=2 WHEELS=none bash tools/gpu/h200_speed.sh
set -u
OUT=${OUT:-/tmp/h200_speed}; DEADLINE=${DEADLINE:-540}; SCALE=${SCALE:-full}
STEPS=${STEPS:-10}; WARMUP=${WARMUP:-2}; SETS=${SETS:-satnet_like:1000,hard:292}
VOTE_T=${VOTE_T:-128}
mkdir -p "$OUT"; START=$(date +%s); LOG=$OUT/log.txt
el() { echo $(( $(date +%s) - START )); }
log() { echo "[$(el)s] $*" | tee -a "$LOG" >&2; }
left() { echo $(( DEADLINE - $(el) )); }
source "$(dirname "$0")/env.sh"   # wheels (once per machine), PYTHONPATH, PY
# A fresh persistent compilation cache, so stage 1/2 compile cold and stage 3 warm.
export AKORN_JAX_CACHE_DIR=/tmp/akorn_speed_cache; rm -rf "$AKORN_JAX_CACHE_DIR"
export AKORN_DATA_DIR=/tmp/akorn_data
log "start $(date -u +%FT%TZ) scale=$SCALE deadline=${DEADLINE}s"
(nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true) >>"$LOG" 2>&1
$PY -c "import jax; print('jax', jax.__version__, jax.devices())" >>"$LOG" 2>&1

box() {  # box SECONDS CMD...: run CMD with at most SECONDS (and never past the deadline)
  local s=$1; shift
  [ "$(left)" -lt 20 ] && { log "out of time before: $*"; return 124; }
  [ "$s" -gt "$(left)" ] && s=$(left)
  timeout -k 5 "$s" "$@"
}
bench() {  # bench OUTFILE ITEM [FLAGS...]
  local out=$1 item=$2; shift 2
  box ${BOX:-150} $PY -m experiments.benchmark --suite=$item --scale=$SCALE --steps=$STEPS \
    --warmup=$WARMUP "$@" >>"$OUT/$out" 2>>"$LOG"
  log "$item $* exited with $?"
}

# --- 1. voting, cold ----------------------------------------------------------------------------
box 170 $PY tools/gpu/speed_checks.py voting --output="$OUT/voting.jsonl" --sets="$SETS" \
  --steps=$VOTE_T >/dev/null 2>>"$LOG"; log "voting exited with $?"

# --- 2. speed suite as users run it (auto dtype, the layers' attention) ---------------------------
BOX=200 bench bench.jsonl sudoku_train --profile_dir="$OUT/prof/sudoku_train"
BOX=200 bench bench.jsonl clevrtex_L1_train --profile_dir="$OUT/prof/clevrtex_L1_train"
for item in sudoku_eval_T128 tetro_conv_train cifar_train clevrtex_L2_train; do
  bench bench.jsonl $item
done

# --- 3. warm compiles ---------------------------------------------------------------------------
box 60 $PY tools/gpu/speed_checks.py voting --output="$OUT/voting_warm.jsonl" \
  --sets="${SETS%%,*}" --dtypes=bfloat16 --steps=$VOTE_T >/dev/null 2>>"$LOG"
log "voting (warm) exited with $?"
STEPS=2 WARMUP=1 bench bench_warm.jsonl clevrtex_L1_train

# --- 4. kernels per Kuramoto step: reductions vs explicit block sums ------------------------------
box 120 $PY tools/gpu/speed_checks.py kernels --output="$OUT/kernels.jsonl" --scale=$SCALE \
  >/dev/null 2>>"$LOG"
log "kernels exited with $?"

# --- 5. float32, while time remains --------------------------------------------------------------
for item in sudoku_train clevrtex_L1_train sudoku_eval_T128 tetro_conv_train cifar_train \
    clevrtex_L2_train; do
  bench bench_f32.jsonl $item --dtype=float32
done
du -sh "$OUT"/prof 2>/dev/null >>"$LOG"
log "done"
