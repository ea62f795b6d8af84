#!/usr/bin/env bash
# Rebuilds the service plugins and asks the running host (started by run.sh) to reload.
# Exits 0 when the host accepted the new generation, non-zero when it refused.
# Connections stay open; requests in flight finish on the old code.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
for plugin in plugin/*/; do
    cargo xtask build "$plugin" bin
done
cargo xtask reload "$@"
