#!/usr/bin/env bash
# Rebuilds the livex plugin and asks the running host (started by run.sh) to reload.
# Exits 0 when the host accepted the new generation, non-zero when it refused.
# Talks to $HOTSWAP_SOCKET when set, like run.sh; extra arguments go to `cargo xtask reload`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
for plugin in plugin/*/; do
    cargo xtask build "$plugin" bin
done
cargo xtask reload "$@"
