#!/usr/bin/env bash
# Builds the single nuncio executable. deno compile downloads its runtime ("denort") unless DENORT_BIN
# points at one; these build machines cannot reach the download host, so run this where it is reachable
# (or with DENORT_BIN set). Workers and config examples are embedded with --include.
set -euo pipefail
cd "$(dirname "$0")"
exec deno compile \
  --allow-net --allow-read --allow-write --allow-env --allow-sys --allow-run --allow-ffi \
  --unstable-net \
  --include src/server/worker.ts \
  --include config/ \
  --output "${1:-nuncio}" \
  main.ts
