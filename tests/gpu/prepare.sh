#!/usr/bin/env bash
# Fills the git-ignored .gpu/ folder with what tests/gpu/run.sh needs on the GPU machine, where ../shared
# does not exist: the committed sources (source.tar, so re-run this after each commit), the dense model fixtures the GPU tests read (weights, config, golden.json; no tokenizers),
# the 8B config for the benchmarks, and gpu_ceilings.py. Run here, then carry `.gpu` in the device call.
# llama3.2-tiny-chat's weights are not copied: they are the repo's assets/demo-model (run.sh links them).
set -euo pipefail
cd "$(dirname "$0")/../.."
SHARED=${RADIXLM_SHARED_DIR:-$(cd .. && pwd)/shared}
rm -rf .gpu
mkdir -p .gpu/fixtures/models .gpu/fixtures/configs .gpu/bench
for model in llama llama31-rope-scaling mistral qwen2 qwen3 qwen2.5-tiny-chat llama3.2-tiny-chat; do
  mkdir -p ".gpu/fixtures/models/$model"
  for f in config.json generation_config.json golden.json model.safetensors; do
    [ "$model/$f" = "llama3.2-tiny-chat/model.safetensors" ] && continue
    [ -f "$SHARED/fixtures/models/$model/$f" ] && cp "$SHARED/fixtures/models/$model/$f" ".gpu/fixtures/models/$model/"
  done
done
cmp -s "$SHARED/fixtures/models/llama3.2-tiny-chat/model.safetensors" assets/demo-model/model.safetensors ||
  { echo "assets/demo-model differs from the llama3.2-tiny-chat fixture: copy it instead" >&2; exit 1; }
cp -r "$SHARED/fixtures/configs/llama-3.1-8b" .gpu/fixtures/configs/
cp "$SHARED/bench/gpu_ceilings.py" .gpu/bench/
git rev-parse --short HEAD > .gpu/COMMIT  # the GPU machine gets no .git
# The committed sources (without the bundled model): run.sh builds these, not the working tree, so a GPU
# run measures exactly the commit it names even while other work is uncommitted in the tree.
# RADIXLM_GPU_BASE=<commit> takes everything but the CUDA backend's own paths from that commit instead, for
# when HEAD's other modules are mid-change and do not build.
BASE=${RADIXLM_GPU_BASE:-HEAD}
git archive --format=tar -o .gpu/source.tar "$BASE" -- . ':(exclude)assets'
if [ "$BASE" != HEAD ]; then
  rm -rf .gpu/overlay && mkdir -p .gpu/overlay
  git archive --format=tar HEAD -- src/backends/cuda src/apps/bench_command.cpp tests/gpu | tar -x -C .gpu/overlay
  tar -rf .gpu/source.tar -C .gpu/overlay .
  rm -rf .gpu/overlay
  echo "$(git rev-parse --short HEAD) (CUDA paths) on $(git rev-parse --short "$BASE")" > .gpu/COMMIT
fi
# RADIXLM_GPU_BASELINE=<commit> also archives that commit (baseline.tar) for run.sh's "baseline" part, which
# builds it beside HEAD and runs the same benchmarks on the same machine: an A/B across commits free of the
# machine-to-machine spread.
if [ -n "${RADIXLM_GPU_BASELINE:-}" ]; then
  git archive --format=tar -o .gpu/baseline.tar "$RADIXLM_GPU_BASELINE" -- . ':(exclude)assets'
  git rev-parse --short "$RADIXLM_GPU_BASELINE" > .gpu/BASELINE_COMMIT
fi

du -sh .gpu
