#!/usr/bin/env bash
# Builds the slink host with its plugins linked in (debug profile, for debuggers) and runs it.
# Works from any folder. See README.md beside this script for gdb/lldb.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
cargo xtask build --static-linking --debug host bin
exec "$here/bin/slink-host" "$@"
