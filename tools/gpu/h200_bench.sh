#!/usr/bin/env bash
# The speed suite on (the rest of) an H200 lease: (item, dtype) pairs in priority order, each in
# its own process, until DEADLINE seconds after start. JSON lines to $OUT/bench.jsonl, logs to
# $OUT/log.txt. Also stage 4 of h200_run.sh.
# On the device tool, from the repository root (carry `.whl`, made by tools/gpu/device_wheels.sh):
#   DEADLINE=500 bash tools/gpu/h200_bench.sh
# Environment: OUT, DEADLINE (s), SCALE (full|cpu|tiny), STEPS, WARMUP, PAIRS, PY, WHEELS.
set -u
OUT=${OUT:-/tmp/h200_bench}; DEADLINE=${DEADLINE:-205}; SCALE=${SCALE:-full}
STEPS=${STEPS:-10}; WARMUP=${WARMUP:-2}
mkdir -p "$OUT"; START=$(date +%s); LOG=$OUT/log.txt
el() { echo $(( $(date +%s) - START )); }
log() { echo "[$(el)s] $*" | tee -a "$LOG" >&2; }
source "$(dirname "$0")/env.sh"   # wheels (once per machine), PYTHONPATH, PY
log "speed suite start $(date -u +%FT%TZ), deadline ${DEADLINE}s"
PAIRS=${PAIRS:-"sudoku_train:bfloat16 clevrtex_L1_train:bfloat16 sudoku_train:float32
  clevrtex_L1_train:float32 sudoku_eval_T128:bfloat16 tetro_conv_train:bfloat16
  cifar_train:bfloat16 clevrtex_L2_train:bfloat16 sudoku_eval_T128:float32
  tetro_conv_train:float32 cifar_train:float32 clevrtex_L2_train:float32"}  # item:dtype, in order
for pair in $PAIRS; do
  [ "$(el)" -ge $(( DEADLINE - 12 )) ] && { log "out of time before $pair"; break; }
  timeout -k 3 $(( DEADLINE - $(el) )) $PY -m experiments.benchmark --suite=${pair%%:*} \
    --scale=$SCALE --dtype=${pair##*:} --steps=$STEPS --warmup=$WARMUP >>"$OUT/bench.jsonl" 2>>"$LOG"
  log "$pair exited with $?"
done
