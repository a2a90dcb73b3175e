#!/usr/bin/env bash
# Temporary: the small-M GEMM's correctness and its bandwidth over its settings.
set -u
B=build/gpu; M=.gpu/fixtures/configs/llama-3.1-8b
RADIXLM_GPU_PARTS="none" OUT=$OUT bash tests/gpu/run.sh > $OUT/run.txt 2>&1
timeout 240 $B/src/backends/cuda/backend_cuda_test --gtest_brief=1 --gtest_filter='*Linear*' > $OUT/test.log 2>&1
echo "test rc=$?"; grep -A3 "Failure" $OUT/test.log | grep -v "^--" | grep -E "linear|Which is|relative|max_abs" | head -${FAILS:-24}
for cfg in ${CFGS:-"SUB=1" "SUB=2" "SUB=4" "SUB=2 SMEM_KB=200" "SUB=4 SMEM_KB=200"}; do
  envs=""; for kv in $cfg; do envs="$envs RADIXLM_CUDA_SMALL_M_$kv"; done
  echo "== $cfg"
  env $envs timeout 100 $B/src/apps/radixlm bench linear --model-path $M --batch-size ${TOKS:-2 16 64 128} 2>&1 | grep -v "^bench\|^matrix\|q_proj\|k_proj" | cut -c1-50
done
