#!/usr/bin/env bash
# Installs what radixlm needs, builds it and runs it on the bundled demo model (assets/demo-model: random
# weights, real Llama-3.2 tokenizer). Until the HTTP server lands, "run" means one offline generation.
# Extra arguments go to `radixlm generate`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target radixlm
# 128000 is <|begin_of_text|>; 9906, 1917 are "Hello world" in the Llama-3 vocabulary.
exec build/release/src/apps/radixlm generate --model-path assets/demo-model --input-ids 128000,9906,1917 \
  --max-new-tokens 16 --json "$@"
