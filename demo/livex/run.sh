#!/usr/bin/env bash
# Builds the livex plugin and host, then runs the host. Works from any folder.
# In another terminal: demo/livex/make-v2.sh && demo/livex/reload.sh (see demo/livex/README.md).
# The control socket is $HOTSWAP_SOCKET when set (reload.sh uses the same rule), so two hosts
# can run side by side: HOTSWAP_SOCKET=/tmp/mine/control.sock demo/livex/run.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
rm -rf bin  # start from a clean plugin folder; reload.sh adds new builds beside the old ones
for plugin in plugin/*/; do
    cargo xtask build "$plugin" bin
done
cargo build --release --quiet -p livex-host
exec "$here/../../target/release/livex-host" --plugins "$here/bin" "$@"
