#!/usr/bin/env bash
# Installs what radixlm needs, builds it (Release) and runs `radixlm serve` with every argument passed through.
# With no --model-path it serves the bundled demo model (assets/demo-model: random weights, real Llama-3.2
# tokenizer and chat template) on http://127.0.0.1:30000. The arguments are SGLang's launch_server flags, e.g.
#   ./scripts/serve.sh --model-path /path/to/Qwen2.5-7B-Instruct --port 30000 --mem-fraction-static 0.85
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target radixlm
exec build/release/src/apps/radixlm serve "$@"
