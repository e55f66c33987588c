#!/usr/bin/env bash
# The speed suite on (the rest of) an H200 lease: (item, dtype) pairs in priority order, each in
# its own process, until DEADLINE seconds after start. JSON lines to $OUT/bench.jsonl, logs to
# $OUT/log.txt. Also stage 4 of h200_run.sh.
# On the device tool: DEADLINE=500 bash results/scripts/h200_bench.sh (carry `.whl`: device_wheels.sh).
set -u
OUT=${OUT:-/tmp/h200_bench}; DEADLINE=${DEADLINE:-205}; PY=${PY:-python3}; SCALE=${SCALE:-full}
STEPS=${STEPS:-10}; WARMUP=${WARMUP:-2}
WHEELS=${WHEELS:-.whl}  # wheels of the packages the device lacks ("none": skip)
mkdir -p "$OUT"; START=$(date +%s); LOG=$OUT/log.txt
el() { echo $(( $(date +%s) - START )); }
log() { echo "[$(el)s] $*" | tee -a "$LOG" >&2; }
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
if [ -d "$WHEELS" ] && [ ! -d /tmp/site ]; then  # once per machine
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site "$WHEELS"/*.whl >>"$LOG" 2>&1 || { log "wheel install failed"; exit 1; }
fi
if [ -d /tmp/site ]; then export PYTHONPATH=/tmp/site:$PWD; else export PYTHONPATH=$PWD; fi
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
