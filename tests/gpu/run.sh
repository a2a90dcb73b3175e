#!/usr/bin/env bash
# The one script for the GPU machine (issue 6): configure and build with -j16 (sm_90a), run every GPU test,
# measure the card's ceilings with gpu_ceilings.py, run `radixlm bench one-batch` on the Llama-3.1-8B shape
# (dummy weights) against those ceilings, keep the logs in $OUT, and print a summary table last.
# Needs .gpu/ from tests/gpu/prepare.sh (carried with the call). Each stage has a time limit so the summary
# always comes out.
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=${OUT:-$ROOT/build/gpu-out}
mkdir -p "$OUT"
export PATH=/opt/torch/.venv/bin:/usr/local/cuda/bin:$PATH
BUILD=$ROOT/build/gpu
FIX=$ROOT/.gpu/fixtures
export RADIXLM_FIXTURES_DIR=$FIX
MODEL8B=$FIX/configs/llama-3.1-8b
{ date -u; cat .gpu/COMMIT 2>/dev/null; nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv; } > "$OUT/build.log" 2>&1

# llama3.2-tiny-chat's weights are the repo's demo model (prepare.sh checked they are the same file).
ln -sf "$ROOT/assets/demo-model/model.safetensors" "$FIX/models/llama3.2-tiny-chat/model.safetensors"

stage() {  # stage NAME SECONDS LOG COMMAND...: runs with a time limit, appends to LOG, records the exit code
  local name=$1 limit=$2 log=$3; shift 3
  local start=$SECONDS
  echo "=== $name: $*" >> "$log"
  timeout "$limit" "$@" >> "$log" 2>&1
  local rc=$?
  echo "=== $name: exit $rc in $((SECONDS - start)) s" >> "$log"
  printf '%-28s exit %-4s %4s s\n' "$name" "$rc" "$((SECONDS - start))" >> "$OUT/stages.txt"
  return $rc
}
: > "$OUT/stages.txt"
# RADIXLM_GPU_PARTS picks what runs after the build (default: all), so a session can split the work over two
# calls while the machine stays warm (the build is then a no-op): "tests bench" and "optimes serving".
# Not in the default: "serving-plain" repeats the serving run with --disable-overlap-schedule, "ab" the decode
# shapes with one setting changed, "baseline" the benchmarks built from another commit, "memcheck" the kernel
# tests under compute-sanitizer, "sanitize-prefill" three compute-sanitizer tools over the prefill attention
# kernels, "profile" Nsight Compute over the attention kernels, "kerneltimes" every kernel of a decode step
# (batches RADIXLM_GPU_KERNELTIMES_BATCHES, default "1 64 256"),
# "stalls" where the decode attention's and the one-token GEMVs' warps wait, per instruction.
# "probe" how fast the decode matmuls' weights stream by access pattern (tests/gpu/stream_probe.cu).
PARTS=" ${RADIXLM_GPU_PARTS:-tests bench optimes serving} "
part() { [[ $PARTS == *" $1 "* ]]; }

# Build the commit prepare.sh archived (falls back to the working tree if there is no archive).
SRC=$ROOT
if [ -f .gpu/source.tar ]; then
  SRC=$ROOT/build/gpu-src
  rm -rf "$SRC" && mkdir -p "$SRC" && tar -xf .gpu/source.tar -C "$SRC"
fi
if [[ $PARTS != " probe " ]]; then  # the probe alone needs no build of the project
  stage configure 120 "$OUT/build.log" cmake -S "$SRC" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DRADIXLM_TEXT=OFF -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc -DCMAKE_CXX_COMPILER=g++ -DCMAKE_C_COMPILER=gcc
  stage build-tests 300 "$OUT/build.log" cmake --build "$BUILD" -j16 --target backend_cuda_test cuda_golden_test \
    cuda_engine_test cuda_sampling_test cuda_prefill_attention_test cuda_elementwise_bench_test
  stage build-radixlm 200 "$OUT/build.log" cmake --build "$BUILD" -j16 --target radixlm
fi
mkdir -p "$BUILD"

TESTS=$OUT/tests.log
if part tests; then
  stage test-ops 240 "$TESTS" "$BUILD/src/backends/cuda/backend_cuda_test" --gtest_brief=1
  stage test-prefill-attn 240 "$TESTS" "$BUILD/src/backends/cuda/cuda_prefill_attention_test" --gtest_brief=1
  stage test-elementwise 60 "$TESTS" "$BUILD/src/backends/cuda/cuda_elementwise_bench_test" --gtest_brief=1
  stage test-golden 180 "$TESTS" "$BUILD/src/backends/cuda/cuda_golden_test" --gtest_brief=1
  stage test-engine 240 "$TESTS" "$BUILD/src/backends/cuda/cuda_engine_test" --gtest_brief=1
  stage test-sampling 240 "$TESTS" "$BUILD/src/backends/cuda/cuda_sampling_test" --gtest_brief=1
  # The same golden and engine checks with programmatic launch off (RADIXLM_CUDA_PDL=0: every kernel
  # launched plainly), the path a driver that refuses it, or a debugging session, takes.
  stage test-golden-no-pdl 180 "$TESTS" env RADIXLM_CUDA_PDL=0 "$BUILD/src/backends/cuda/cuda_golden_test" --gtest_brief=1
  stage test-engine-no-pdl 240 "$TESTS" env RADIXLM_CUDA_PDL=0 "$BUILD/src/backends/cuda/cuda_engine_test" --gtest_brief=1
fi

# compute-sanitizer memcheck over the kernel tests (not in the default parts: slow; it needs the Firecracker
# runtime, KINDS.md: under gVisor it refuses the device). RADIXLM_MEMCHECK_FILTER narrows the gtest filter.
if part memcheck; then
  FILTER=${RADIXLM_MEMCHECK_FILTER:-CudaBackendTest.Linear*:CudaBackendTest.DecodeAttentionMatchesCpuOverBatches*:CudaBackendTest.RopeAndKvStore*}
  stage memcheck-ops 300 "$TESTS" compute-sanitizer --tool memcheck --error-exitcode 1 \
    "$BUILD/src/backends/cuda/backend_cuda_test" --gtest_brief=1 --gtest_filter="$FILTER"
  stage memcheck-elementwise 200 "$TESTS" compute-sanitizer --tool memcheck --error-exitcode 1 \
    "$BUILD/src/backends/cuda/cuda_elementwise_bench_test" --gtest_brief=1
fi

# compute-sanitizer memcheck, racecheck and synccheck over every prefill attention kernel (not in the default
# parts; the wgmma kernel's producer and consumers meet only at mbarriers and named barriers).
if part sanitize-prefill; then
  for tool in memcheck racecheck synccheck; do
    stage "$tool-prefill-attention" 200 "$TESTS" compute-sanitizer --tool $tool --error-exitcode 1 \
      "$BUILD/src/backends/cuda/cuda_prefill_attention_test" --gtest_brief=1 --gtest_filter='*EveryKernelMatchesCpu*'
  done
fi

# Nsight Compute over the attention kernels (not in the default parts; needs the Firecracker runtime, like
# compute-sanitizer): one launch each of the prefill kernel (4096-token prompt) and of the decode kernel at
# batch 64 and 256 (a mid-run decode step of bench one-batch, eager), clocks left alone (METHOD.md).
if part profile; then
  NCU=(ncu --clock-control none --section SpeedOfLight --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis
       --section WarpStateStats --section SchedulerStats --section Occupancy --section LaunchStats)
  stage ncu-prefill-attention 200 "$OUT/ncu.log" "${NCU[@]}" --kernel-name regex:attention_prefill_wgmma --launch-count 1 \
    "$BUILD/src/backends/cuda/cuda_prefill_attention_test" --gtest_filter='*LongPrompt*'
  for b in 64 256; do
    stage ncu-decode-attention-b$b 200 "$OUT/ncu.log" "${NCU[@]}" --kernel-name regex:attention_decode_kernel \
      --launch-skip 200 --launch-count 1 "$BUILD/src/apps/radixlm" bench one-batch --model-path "$MODEL8B" \
      --load-format dummy --device cuda --disable-cuda-graph --batch-size $b --input-len 128 --output-len 16
  done
fi

# Where the decode kernels' warps wait, instruction by instruction (not in the default parts; needs the
# Firecracker runtime): Nsight Compute's stall sampling over the decode attention in its kernel test (the
# 4th launch of the batch-64 and batch-256 shapes: each shape makes 106 decode-kernel launches, eager then
# static) and over the one-token GEMVs of a batch-1 step (launches 200-203: o_proj, gate_up, down and the
# next layer's qkv of the second decode step), summarised by sass_stalls.py.
stall_profile() {  # stall_profile NAME KERNEL_REGEX LAUNCH_SKIP COMMAND...: one launch's stalls into stalls.txt
  local name=$1 regex=$2 skip=$3; shift 3
  stage "stalls-$name" 200 "$OUT/ncu_stalls.log" ncu --clock-control none --set none --section SourceCounters \
    --import-source no --kernel-name "regex:$regex" --launch-skip "$skip" --launch-count 1 -o "$OUT/stalls-$name" -f "$@"
  ncu -i "$OUT/stalls-$name.ncu-rep" --page source --print-source sass --csv > "$OUT/stalls-$name.csv" 2>&1
  python3 tests/gpu/sass_stalls.py "$OUT/stalls-$name.csv" "$name" >> "$OUT/stalls.txt" 2>&1
  rm -f "$OUT/stalls-$name.ncu-rep"
}
if part stalls; then
  : > "$OUT/stalls.txt"
  ATTENTION_TEST=("$BUILD/src/backends/cuda/backend_cuda_test" --gtest_filter='*ReportsKvBandwidth*')
  stall_profile attention-b64 attention_decode_kernel 215 "${ATTENTION_TEST[@]}"
  stall_profile attention-b256 attention_decode_kernel 321 "${ATTENTION_TEST[@]}"
  STEP_B1=("$BUILD/src/apps/radixlm" bench one-batch --model-path "$MODEL8B" --load-format dummy --device cuda
           --disable-cuda-graph --batch-size 1 --input-len 128 --output-len 4)
  stall_profile gemv-o_proj gemv_kernel 200 "${STEP_B1[@]}"
  stall_profile gemv-gate_up gemv_kernel 201 "${STEP_B1[@]}"
  stall_profile gemv-down gemv_kernel 202 "${STEP_B1[@]}"
  stall_profile gemv-qkv gemv_kernel 203 "${STEP_B1[@]}"
fi

# Every kernel of one eager decode step timed alone by Nsight Compute (not in the default parts; needs the
# Firecracker runtime): the step's GPU time without launch gaps, by kernel, at batch 1, 64 and 256 (128 in,
# the last of 3 steps). Compare the total with the graph-replayed step time of "bench".
if part kerneltimes; then
  for b in ${RADIXLM_GPU_KERNELTIMES_BATCHES:-1 64 256}; do
    stage ncu-step-b$b 240 "$OUT/ncu_step_b$b.csv" ncu --csv --print-units base --cache-control none \
      --clock-control none --metrics gpu__time_duration.sum "$BUILD/src/apps/radixlm" bench one-batch \
      --model-path "$MODEL8B" --load-format dummy --device cuda --disable-cuda-graph --batch-size $b \
      --input-len 128 --output-len 3
    python3 tests/gpu/step_kernel_times.py "$OUT/ncu_step_b$b.csv" "batch $b" >> "$OUT/kerneltimes.txt" 2>&1
  done
fi

CEIL=$OUT/ceilings.log
part bench && stage ceilings 150 "$CEIL" python3 .gpu/bench/gpu_ceilings.py
BW=$(sed -n 's/^copy bandwidth (read+write): \([0-9.]*\) TB\/s/\1/p' "$CEIL" | head -1)
TF=$(sed -n 's/^bf16 GEMM 8192^3: \([0-9.]*\) TFLOP\/s/\1/p' "$CEIL" | head -1)
BW=${BW:-4.26}; TF=${TF:-700}

BENCH=$OUT/bench.log
RADIXLM=$BUILD/src/apps/radixlm
# How fast the decode matmuls' weights can stream in by each access pattern (tests/gpu/stream_probe.cu).
if part probe; then
  stage build-probe 120 "$OUT/probe.log" nvcc -O3 -std=c++20 -I "$SRC/src" -gencode=arch=compute_90a,code=sm_90a \
    "$SRC/tests/gpu/stream_probe.cu" -o "$BUILD/stream_probe"
  stage probe 120 "$OUT/probe.log" "$BUILD/stream_probe"
fi
part bench && stage bench-linear 90 "$BENCH" "$RADIXLM" bench linear --model-path "$MODEL8B" --batch-size 1 8 16 32 64 256
# Where a decode step's GPU time goes, op by op (CUDA events around each op: RADIXLM_CUDA_OP_TIMES=1; eager,
# since a graph replay is one op).
if part optimes; then
  stage op-times-b1 90 "$BENCH" env RADIXLM_CUDA_OP_TIMES=1 "$RADIXLM" bench one-batch --model-path "$MODEL8B" \
    --load-format dummy --device cuda --disable-cuda-graph --batch-size 1 --input-len 128 --output-len 64
  for b in 64 256; do
    stage op-times-b$b 90 "$BENCH" env RADIXLM_CUDA_OP_TIMES=1 "$RADIXLM" bench one-batch --model-path "$MODEL8B" \
      --load-format dummy --device cuda --disable-cuda-graph --batch-size $b --input-len 128 --output-len 32
  done
  stage op-times-prefill-4096 90 "$BENCH" env RADIXLM_CUDA_OP_TIMES=1 "$RADIXLM" bench one-batch --model-path "$MODEL8B" \
    --load-format dummy --device cuda --disable-cuda-graph --batch-size 1 --input-len 4096 --output-len 2
fi
ROOF=(--roofline-bandwidth-tbs "$BW" --roofline-tflops "$TF")
ONE=("$RADIXLM" bench one-batch --model-path "$MODEL8B" --load-format dummy --device cuda)
# The issue's shapes: batch 1 128/256, batch 64 128/128, batch 256 128/512 (CUDA graphs, SGLang's buckets),
# batch 1 again eager for the graphs' gain, and the 4096-token prefill.
if part bench; then
  stage bench-b1 120 "$BENCH" "${ONE[@]}" --batch-size 1 --input-len 128 --output-len 256 "${ROOF[@]}" \
    --output-file "$OUT/bench_b1.json"
  stage bench-b1-eager 120 "$BENCH" "${ONE[@]}" --disable-cuda-graph --batch-size 1 --input-len 128 --output-len 256 \
    "${ROOF[@]}" --output-file "$OUT/bench_b1_eager.json"
  stage bench-b64 120 "$BENCH" "${ONE[@]}" --batch-size 64 --input-len 128 --output-len 128 "${ROOF[@]}" \
    --output-file "$OUT/bench_b64.json"
  stage bench-b256 150 "$BENCH" "${ONE[@]}" --batch-size 256 --input-len 128 --output-len 512 "${ROOF[@]}" \
    --output-file "$OUT/bench_b256.json"
  stage bench-prefill-4096 120 "$BENCH" "${ONE[@]}" --batch-size 1 --input-len 4096 --output-len 2 "${ROOF[@]}" \
    --output-file "$OUT/bench_prefill.json"
fi
# A/B (not in the default parts): decode shapes again with one setting changed, for each setting
# in RADIXLM_GPU_AB_ENV (space-separated settings, each NAME=VALUE or several joined by commas; default
# cuBLASLt's decode-shape tuning off), in the same call as the figures above.
# RADIXLM_GPU_AB_BATCHES picks the batches (default "1 64 256"; 128 in, 256 / 512 / 128 out for batch 1 / 256 /
# the rest; "prefill": the 4096-token prefill; "long": batch 1 at 4096 in / 64 out; the decode attention's
# kernel test runs only with the default).
if part ab; then
  for AB in ${RADIXLM_GPU_AB_ENV:-RADIXLM_CUBLASLT_TUNE=0}; do  # ${AB//,/ }: one word per setting
    echo "--- $AB" >> "$OUT/ab_kernels.log"
    [ -z "${RADIXLM_GPU_AB_BATCHES:-}" ] && stage "decode-attention $AB" 60 "$OUT/ab_kernels.log" env ${AB//,/ } \
      "$BUILD/src/backends/cuda/backend_cuda_test" --gtest_brief=1 --gtest_filter='*ReportsKvBandwidth*'
    # RADIXLM_GPU_AB_LINEAR: token counts for `bench linear` under each setting too.
    [ -n "${RADIXLM_GPU_AB_LINEAR:-}" ] && stage "bench-linear $AB" 120 "$OUT/ab_kernels.log" env ${AB//,/ } \
      "$RADIXLM" bench linear --model-path "$MODEL8B" --batch-size $RADIXLM_GPU_AB_LINEAR
    for B in ${RADIXLM_GPU_AB_BATCHES:-1 64 256}; do
      if [ "$B" = prefill ]; then  # the 4096-token prefill
        stage "bench-prefill-4096 $AB" 120 "$BENCH" env ${AB//,/ } "${ONE[@]}" --batch-size 1 --input-len 4096 \
          --output-len 2 "${ROOF[@]}"
        continue
      fi
      if [ "$B" = long ]; then  # batch 1 at a 4k context (4096 in / 64 out)
        stage "bench-long-4096 $AB" 120 "$BENCH" env ${AB//,/ } "${ONE[@]}" --batch-size 1 --input-len 4096 \
          --output-len 64 "${ROOF[@]}"
        continue
      fi
      OUT_LEN=128; [ "$B" = 1 ] && OUT_LEN=256; [ "$B" = 256 ] && OUT_LEN=512
      stage "bench-b$B $AB" 150 "$BENCH" env ${AB//,/ } "${ONE[@]}" --batch-size "$B" --input-len 128 \
        --output-len "$OUT_LEN" "${ROOF[@]}"
    done
  done
fi
# The baseline commit prepare.sh archived (RADIXLM_GPU_BASELINE), built beside this one and run on the same
# shapes on the same machine (not in the default parts).
if part baseline && [ -f .gpu/baseline.tar ]; then
  BASE_SRC=$ROOT/build/gpu-baseline-src BASE_BUILD=$ROOT/build/gpu-baseline
  rm -rf "$BASE_SRC" && mkdir -p "$BASE_SRC" && tar -xf .gpu/baseline.tar -C "$BASE_SRC"
  stage baseline-configure 120 "$OUT/build.log" cmake -S "$BASE_SRC" -B "$BASE_BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DRADIXLM_TEXT=OFF -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc -DCMAKE_CXX_COMPILER=g++ -DCMAKE_C_COMPILER=gcc
  stage baseline-build 240 "$OUT/build.log" cmake --build "$BASE_BUILD" -j16 --target radixlm backend_cuda_test
  BASE_ONE=("$BASE_BUILD/src/apps/radixlm" "${ONE[@]:1}")
  BASE=$(cat .gpu/BASELINE_COMMIT)
  # The decode attention alone, this build and the baseline's in turn, two rounds.
  for round in 1 2; do
    for build in "$BUILD" "$BASE_BUILD"; do
      [ "$build" = "$BUILD" ] && name="this build" || name="baseline $BASE"
      echo "--- $name (round $round)" >> "$OUT/ab_kernels.log"
      stage "decode-attention $name" 60 "$OUT/ab_kernels.log" "$build/src/backends/cuda/backend_cuda_test" \
        --gtest_brief=1 --gtest_filter='*ReportsKvBandwidth*'
    done
  done
  stage "bench-linear baseline $BASE" 90 "$OUT/baseline_linear.log" "$BASE_BUILD/src/apps/radixlm" bench linear \
    --model-path "$MODEL8B" --batch-size 1
  stage "bench-b1 baseline $BASE" 120 "$BENCH" "${BASE_ONE[@]}" --batch-size 1 --input-len 128 --output-len 256 "${ROOF[@]}"
  stage "bench-b64 baseline $BASE" 120 "$BENCH" "${BASE_ONE[@]}" --batch-size 64 --input-len 128 --output-len 128 "${ROOF[@]}"
  stage "bench-b256 baseline $BASE" 150 "$BENCH" "${BASE_ONE[@]}" --batch-size 256 --input-len 128 --output-len 512 "${ROOF[@]}"
  stage "bench-prefill-4096 baseline $BASE" 120 "$BENCH" "${BASE_ONE[@]}" --batch-size 1 --input-len 4096 --output-len 2 "${ROOF[@]}"
fi
# Start to ready: process start to the first generated token of `radixlm generate` on the 8B shape (dummy
# weights generated on the host, uploaded, one prefill and 8 decode steps through the engine).
if part optimes; then
  T0=$(date +%s.%N)
  stage start-to-ready 150 "$BENCH" "$RADIXLM" generate --model-path "$MODEL8B" --load-format dummy --device cuda \
    --input-ids 1,2,3,4,5,6,7,8 --max-new-tokens 8 --ignore-eos --json
  echo "start-to-ready (generate, wall): $(python3 -c "print(round($(date +%s.%N) - $T0, 2))") s" >> "$BENCH"
fi

# Serving (issue 6's serving targets): tests/gpu/serving.sh starts `radixlm serve` on the 8B shape (no
# tokenizer), measures start to /health 200, runs `radixlm bench serving` (1,000 random-id prompts, 16 req/s)
# and `bench one-batch` at the run's decode batch; each stage has its own limit (~3-4 min in all), and the
# server is stopped before the one-batch run. RADIXLM_GPU_SERVING=0 skips it.
rm -f "$OUT/serving_summary.txt"
if [ "${RADIXLM_GPU_SERVING:-1}" = 1 ] && part serving; then
  OUT=$OUT RADIXLM=$RADIXLM MODEL8B=$MODEL8B RADIXLM_FIXTURES_DIR=$FIX bash tests/gpu/serving.sh
fi
# The same serving run without overlap scheduling, for comparison (not in the default parts).
if part serving-plain; then
  mkdir -p "$OUT/plain"
  OUT=$OUT/plain RADIXLM=$RADIXLM MODEL8B=$MODEL8B RADIXLM_FIXTURES_DIR=$FIX \
    RADIXLM_SERVE_FLAGS=--disable-overlap-schedule bash tests/gpu/serving.sh
  cat "$OUT/plain/stages.txt" >> "$OUT/stages.txt"
fi

{
  # Longest sections first: the device tool shows the output's tail, so the tests and the benchmark table
  # come last.
  echo "--- op times, eager (batch 1: 128 in / 64 out; batches 64 and 256: 128 in / 32 out; 4096 in / 2 out; prefills included)"
  grep -A18 "^op GPU time" "$BENCH" || true
  echo "--- bench linear (decode matmuls alone, weight TB/s)"
  grep -E "^(matrix|qkv_proj|q_proj|k_proj|o_proj|gate_up|down|lm_head) " "$BENCH" || true
  if [ -f "$OUT/baseline_linear.log" ]; then
    echo "--- bench linear, baseline $(cat .gpu/BASELINE_COMMIT)"
    grep -E "^(matrix|qkv_proj|q_proj|k_proj|o_proj|gate_up|down|lm_head) " "$OUT/baseline_linear.log" || true
  fi
  [ -f "$OUT/probe.log" ] && { echo "--- weight streaming probe (tests/gpu/stream_probe.cu)"; grep "^probe " "$OUT/probe.log"; }
  echo "--- serving (tests/gpu/serving.sh; targets: start-to-ready <= 20 s, ITL p50 / one-batch step <= 1.2)"
  cat "$OUT/serving_summary.txt" 2>/dev/null || echo "(not run)"
  [ -f "$OUT/plain/serving_summary.txt" ] && cat "$OUT/plain/serving_summary.txt"
  echo "--- ceilings"
  grep -E "TB/s|TFLOP/s|device:" "$CEIL" || true
  echo "--- bench one-batch (Llama-3.1-8B shape, dummy bf16; roofline bw ${BW} TB/s, gemm ${TF} TFLOP/s)"
  grep -E "^=== bench-|^ +[0-9]+ |^ batch|batch +prefill|start-to-ready|loaded on" "$BENCH" | grep -v ": exit" |
    sed 's/ --model-path .*//' || true
  if [ -f "$OUT/ncu.log" ]; then
    echo "--- ncu (attention kernels)"
    grep -E "^  [a-z_]+.*\(|^    (Duration|Memory Throughput|DRAM Throughput|Compute \(SM\) Throughput|L2 Hit Rate|Achieved Occupancy|Registers Per Thread|Issue Slots Busy|No Eligible|Warp Cycles Per Issued Instruction|Executed Ipc Active|SM Busy|Mem Busy|Max Bandwidth|L1/TEX Hit Rate|Stall)" "$OUT/ncu.log" || true
    grep -E "^ +(OPT|WRN) " "$OUT/ncu.log" | cut -c1-400 | head -30 || true
  fi
  [ -f "$OUT/kerneltimes.txt" ] && { echo "--- one eager decode step, kernels timed alone (ncu)"; cat "$OUT/kerneltimes.txt"; }
  [ -f "$OUT/stalls.txt" ] && { echo "--- where the warps wait (ncu stall sampling)"; cat "$OUT/stalls.txt"; }
  echo "--- kernels alone"
  grep -E "^(prefill|decode) attention " "$TESTS" || true
  [ -f "$OUT/ab_kernels.log" ] && grep -E "^--- |^decode attention |^(qkv_proj|o_proj|gate_up|down|lm_head) " \
    "$OUT/ab_kernels.log"
  grep -E "^elementwise " "$TESTS" || true
  echo
  echo "================ radixlm GPU summary ($(date -u +%FT%TZ), commit $(cat .gpu/COMMIT 2>/dev/null || git rev-parse --short HEAD)) ================"
  cat "$OUT/stages.txt"
  echo "--- tests"
  grep -E "^\[  (PASSED|FAILED) +\]|tests? ran" "$TESTS" | grep -v "^\[  FAILED  \] [A-Z].*\." || true
  grep -E "^\[  FAILED  \] [A-Za-z]" "$TESTS" | head -20 || true
  grep -E "ERROR SUMMARY|RACECHECK SUMMARY|^=== (memcheck|racecheck|synccheck)-prefill-attention: exit" "$TESTS" || true
} > "$OUT/summary.txt"
cat "$OUT/summary.txt"
# The device tool returns only a few files: keep the summary and one archive of the logs.
tar -czf "$ROOT/build/gpu-logs.tgz" -C "$OUT" --exclude=summary.txt . && mv "$ROOT/build/gpu-logs.tgz" "$OUT/logs.tgz" &&
  find "$OUT" -mindepth 1 ! -name logs.tgz ! -name summary.txt -delete
