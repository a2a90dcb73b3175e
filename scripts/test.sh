#!/usr/bin/env bash
# Builds radixlm and runs every test: the GoogleTest unit tests through ctest, then the end-to-end pytest
# suite that drives the real binary. This is the README's test command and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/setup-python.sh
jobs=$(nproc)
cmake --preset release >/dev/null
cmake --build --preset release -j "$jobs"
ctest --preset release -j "$jobs"
RADIXLM_BIN="$PWD/build/release/src/apps/radixlm" .venv/bin/pytest tests -q
