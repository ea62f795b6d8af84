#!/usr/bin/env bash
# Builds the extension plugins and host, then runs the host. Works from any folder.
# In another terminal: edit demo/extension/plugin/ext_greeter/src/lib.rs, then run demo/extension/reload.sh.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
rm -rf bin  # start from a clean plugin folder; reload.sh adds new builds beside the old ones
for plugin in plugin/*/; do
    cargo xtask build "$plugin" bin
done
# Release, like the plugins (`cargo xtask build` defaults to release): the extension's type
# comes from extension-shared, whose TypeId matches in host and plugins only when both are
# built with the same profile and features. A mismatch is refused with a VaultError, never UB.
cargo build --release --quiet -p extension-host
exec "$here/../../target/release/extension-host" --plugins "$here/bin" "$@"
