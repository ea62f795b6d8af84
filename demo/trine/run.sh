#!/usr/bin/env bash
# Builds the trine plugins and host, then runs the host. Works from any folder.
# In another terminal: edit demo/trine/plugin/trine_store/src/lib.rs, then run demo/trine/reload.sh.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
rm -rf bin  # start from a clean plugin folder; reload.sh adds new builds beside the old ones
for plugin in plugin/*/; do
    cargo xtask build "$plugin" bin
done
cargo build --release --quiet -p trine-host
exec "$here/../../target/release/trine-host" --plugins "$here/bin" "$@"
