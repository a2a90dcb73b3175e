#!/usr/bin/env bash
# Alternating A/B of this build against the baseline build (run after run.sh's baseline part).
M=.gpu/fixtures/configs/llama-3.1-8b
for r in 1 2 3; do
  for b in gpu gpu-baseline; do
    echo "b1 $b: $(build/$b/src/apps/radixlm bench one-batch --model-path $M --load-format dummy --device cuda --batch-size 1 --input-len 128 --output-len 256 2>/dev/null | tail -1)"
  done
done
