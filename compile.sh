#!/usr/bin/env bash
# Builds the single nuncio executable. deno compile downloads its runtime ("denort") unless DENORT_BIN
# points at one; these build machines cannot reach the download host, so run this where it is reachable
# (or with DENORT_BIN set). Workers and config examples are embedded with --include. The build's revision
# goes into src/server/build_info.ts for `nuncio --version` and is put back afterwards.
set -euo pipefail
cd "$(dirname "$0")"
info=src/server/build_info.ts
saved=$(mktemp)
cp "$info" "$saved"
trap 'cp "$saved" "$info"; rm -f "$saved"' EXIT
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
status=$( (git diff --quiet HEAD 2>/dev/null && echo Clean) || echo Modified)
sed -i "s|^export const BUILD = .*|export const BUILD = { revision: \"$revision\", status: \"$status\", date: \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\" };|" "$info"
deno compile \
  --allow-net --allow-read --allow-write --allow-env --allow-sys --allow-run --allow-ffi \
  --unstable-net \
  --include src/server/worker.ts \
  --include config/ \
  --output "${1:-nuncio}" \
  main.ts
