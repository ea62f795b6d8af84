#!/usr/bin/env bash
# Builds the service host and plugins (dev profile, the shared route: see demo/service/Cargo.toml)
# and serves HTTP on 127.0.0.1:8080 (change with --listen ADDR). Works from any folder. In
# another terminal:
#   curl 'http://127.0.0.1:8080/hello?name=you'
#   curl -N 'http://127.0.0.1:8080/sse?n=5&ms=500'
#   sed -i 's/"Hello"/"Howdy"/' demo/service/plugin/svc_greeting/src/lib.rs
#   demo/service/reload.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/env.sh"
cd "$here"
# The host first: the plugins link its build of the shared library (service_shared).
RUSTFLAGS="$service_rustflags" cargo build --quiet -p service-host
rm -rf bin  # start from a clean plugin folder; reload.sh adds new builds beside the old ones
for plugin in plugin/*/; do
    "$xtask" build --debug "$plugin" bin
done
# libstd and the shared library are found through LD_LIBRARY_PATH (env.sh).
exec "$CARGO_TARGET_DIR/debug/service-host" --plugins "$here/bin" "$@"
