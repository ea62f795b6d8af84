#!/usr/bin/env bash
# Builds the service plugins and host, then serves HTTP on 127.0.0.1:8080 (change with
# --listen ADDR). Works from any folder. In another terminal:
#   curl 'http://127.0.0.1:8080/hello?name=you&delay_ms=50'
#   sed -i 's/"Hello"/"Howdy"/' demo/service/plugin/svc_greeting/src/lib.rs
#   demo/service/reload.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
rm -rf bin  # start from a clean plugin folder; reload.sh adds new builds beside the old ones
for plugin in plugin/*/; do
    cargo xtask build "$plugin" bin
done
# Release, like the plugins: the boundary types (service-shared, tokio) must have the same
# TypeId on both sides, which takes the same profile and features.
cargo build --release --quiet -p service-host
exec "$here/../../target/release/service-host" --plugins "$here/bin" "$@"
