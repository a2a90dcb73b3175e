#!/usr/bin/env bash
# The serving stages of the GPU run (issue 6's serving targets); tests/gpu/run.sh runs this after its
# one-batch benchmarks, and it also runs alone once run.sh has built radixlm:
#   tests/gpu/serving.sh                          # on the GPU machine (the 8B shape, dummy weights)
#   RADIXLM_GPU_RUN_SMALL=1 RADIXLM=build/x/src/apps/radixlm RADIXLM_FIXTURES_DIR=../shared/fixtures \
#       OUT=/tmp/o tests/gpu/serving.sh         # a CPU dry run of the same logic on the tiny fixture
# 1. `radixlm serve` (dummy weights, CUDA graphs on, no tokenizer: the GPU build has RADIXLM_TEXT=OFF);
#    start-to-ready = process start to GET /health 200, then the time to the first completed request.
# 2. `radixlm bench serving`: 1,000 random-id prompts, input uniform in [256, 1024], output in [128, 512]
#    (dataset.cpp draws [floor(len * ratio), len]: 1024 and 512 at ratio 0.25), Poisson arrivals at 16 req/s.
# 3. The server is stopped (it holds most of the GPU's memory), then `radixlm bench one-batch` at the decode
#    batch the serving run's median token saw, with the mean lengths (640 in / 320 out) and the server's page
#    size, for the ratio ITL p50 / one-batch decode step (target <= 1.2).
# RADIXLM_SERVE_FLAGS adds flags to `radixlm serve` (run.sh's "serving-plain" part: --disable-overlap-schedule).
# Writes $OUT/serve.log (the server), $OUT/serving.log (the stages), $OUT/serving.jsonl, $OUT/serving_one_batch.json
# and $OUT/serving_summary.txt, which run.sh's summary prints.
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-$PWD/build/gpu-out}
mkdir -p "$OUT"
export PATH=/opt/torch/.venv/bin:$PATH  # the GPU machine's python3 (run.sh sets the same)
RADIXLM=${RADIXLM:-$PWD/build/gpu/src/apps/radixlm}
FIX=${RADIXLM_FIXTURES_DIR:-$PWD/.gpu/fixtures}
PROBE="python3 $PWD/tests/gpu/serving_probe.py"
stage() {  # run.sh's helper: stage NAME SECONDS LOG COMMAND... with a time limit, the exit code in stages.txt
  local name=$1 limit=$2 log=$3; shift 3
  local start=$SECONDS
  echo "=== $name: $*" >> "$log"
  timeout "$limit" "$@" >> "$log" 2>&1
  local rc=$?
  echo "=== $name: exit $rc in $((SECONDS - start)) s" >> "$log"
  printf '%-28s exit %-4s %4s s\n' "$name" "$rc" "$((SECONDS - start))" >> "$OUT/stages.txt"
  return $rc
}

if [ "${RADIXLM_GPU_RUN_SMALL:-0}" = 1 ]; then
  S_MODEL=$FIX/models/llama3.2-tiny-chat S_DEVICE=cpu S_PROMPTS=40 S_IN=64 S_OUTLEN=32
else
  S_MODEL=${MODEL8B:-$FIX/configs/llama-3.1-8b} S_DEVICE=cuda S_PROMPTS=1000 S_IN=1024 S_OUTLEN=512
fi
S_RATIO=0.25 S_RATE=16 S_SEED=6 S_PAGE=1  # page size 1: what `radixlm serve` (and SGLang) use by default
# The ranges dataset.cpp draws from, and their means (the one-batch lengths).
read -r IN_LO OUT_LO IN_MEAN OUT_MEAN < <(python3 -c "import math; a = math.floor($S_IN * $S_RATIO); \
b = math.floor($S_OUTLEN * $S_RATIO); print(a, b, (a + $S_IN) // 2, (b + $S_OUTLEN) // 2)")
S_PORT=${RADIXLM_GPU_SERVE_PORT:-31871}
LOG=$OUT/serving.log SUM=$OUT/serving_summary.txt
rm -f "$OUT/serving.jsonl" "$OUT/serving_one_batch.json"
: > "$SUM"
: > "$LOG"

# 1. Start to ready. timeout -k: a SIGTERM to it reaches the server (which drains, then exits), and a server
# that has not exited 20 s later is killed; 330 s bounds the server even if this script dies.
echo "=== serve: $RADIXLM serve --model-path $S_MODEL --load-format dummy --device $S_DEVICE --page-size $S_PAGE" >> "$LOG"
python3 -c "import socket; socket.create_connection(('127.0.0.1', $S_PORT), 1)" 2> /dev/null &&
  echo "port $S_PORT already has a listener: set RADIXLM_GPU_SERVE_PORT" | tee -a "$LOG" >> "$SUM"
T0=$(date +%s.%N)
timeout -k 20 330 "$RADIXLM" serve --model-path "$S_MODEL" --load-format dummy --device "$S_DEVICE" \
  --page-size "$S_PAGE" --skip-tokenizer-init --graceful-shutdown-timeout 5 --host 127.0.0.1 --port "$S_PORT" \
  ${RADIXLM_SERVE_FLAGS:-} > "$OUT/serve.log" 2>&1 &
SERVER=$!
stop_server() {
  [ -n "${SERVER:-}" ] || return 0
  kill -TERM "$SERVER" 2> /dev/null
  wait "$SERVER" 2> /dev/null
  echo "=== serve: stopped (exit $?)" >> "$LOG"
  SERVER=
}
trap stop_server EXIT
{
  echo "== serving: radixlm serve ${RADIXLM_SERVE_FLAGS:-}, $S_MODEL, dummy weights, device $S_DEVICE, page size $S_PAGE, no tokenizer"
  # The engine captures every bucket's graph at start-up (ModelRunner::capture_cuda_graphs), as SGLang does.
  [ "$S_DEVICE" = cuda ] &&
    echo "CUDA graphs on, every decode bucket captured at start-up (before /health turns 200)"
} >> "$SUM"
if stage serve-ready 150 "$LOG" $PROBE ready --port "$S_PORT" --t0 "$T0" --pid "$SERVER" --timeout 120; then
  grep '^serve start' "$LOG" >> "$SUM"

  # 2. bench serving. Requests past 60 s count as failed so the JSON is written inside the stage's 150 s.
  stage serving-bench 150 "$LOG" "$RADIXLM" bench serving --backend sglang --host 127.0.0.1 --port "$S_PORT" \
    --dataset-name random-ids --tokenizer "$S_MODEL" --num-prompts "$S_PROMPTS" --random-input-len "$S_IN" \
    --random-output-len "$S_OUTLEN" --random-range-ratio "$S_RATIO" --request-rate "$S_RATE" --seed "$S_SEED" \
    --request-timeout 60 --disable-tqdm --output-file "$OUT/serving.jsonl"
else
  grep -E '^(serve start|the |/health )' "$LOG" >> "$SUM"
  echo "serve.log ends:" >> "$SUM"
  tail -5 "$OUT/serve.log" >> "$SUM"
fi
stop_server
trap - EXIT

# 3. One batch at the serving run's decode batch, the mean lengths of the ranges.
if [ -s "$OUT/serving.jsonl" ]; then
  echo "bench serving: $S_PROMPTS prompts, input $IN_LO-$S_IN, output $OUT_LO-$S_OUTLEN tokens (random ids)," \
    "$S_RATE req/s, seed $S_SEED" >> "$SUM"
  $PROBE stats --bench "$OUT/serving.jsonl" --server-log "$OUT/serve.log" > "$OUT/serving_stats.txt" 2>&1
  grep -v '^batch_for_one_batch=' "$OUT/serving_stats.txt" >> "$SUM"
  B=$(sed -n 's/^batch_for_one_batch=\([0-9]*\)$/\1/p' "$OUT/serving_stats.txt")
  if [ -n "$B" ]; then
    stage serving-one-batch 120 "$LOG" "$RADIXLM" bench one-batch --model-path "$S_MODEL" --load-format dummy \
      --device "$S_DEVICE" --page-size "$S_PAGE" --batch-size "$B" --input-len "$IN_MEAN" --output-len "$OUT_MEAN" \
      --output-file "$OUT/serving_one_batch.json"
    [ -s "$OUT/serving_one_batch.json" ] &&
      $PROBE ratio --bench "$OUT/serving.jsonl" --one-batch "$OUT/serving_one_batch.json" >> "$SUM" 2>&1
  fi
else
  echo "bench serving wrote no result (see serving.log)" >> "$SUM"
fi
true
