#!/usr/bin/env bash
# Rebuilds the service plugins and asks the running host (started by run.sh) to reload.
# Exits 0 when the host accepted the new generation, non-zero when it refused. Connections,
# event streams and WebSockets stay open; what is in flight finishes on the old code.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/env.sh"
cd "$here"
for plugin in plugin/*/; do
    "$xtask" build --debug "$plugin" bin
done
"$xtask" reload "$@"
