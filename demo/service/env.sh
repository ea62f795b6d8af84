# Sourced by run.sh and reload.sh: where the service workspace builds, and the toolkit's CLI.
# The workspace builds in the toolkit's target folder under `service/` (as its tests do), with
# the shared route's flags; the CLI (`xtask`, the same code as `cargo hotswap`) is built in the
# toolkit's own target folder and finds the host's shared library through CARGO_TARGET_DIR.
toolkit="$(cd "$here/../.." && pwd)"
toolkit_target="${CARGO_TARGET_DIR:-$toolkit/target}"
(cd "$toolkit" && env -u RUSTFLAGS cargo build --quiet -p xtask)
xtask="$toolkit_target/debug/xtask"
export CARGO_TARGET_DIR="$toolkit_target/service"
service_rustflags="-C prefer-dynamic --cfg tokio_unstable"
# The host links std and service_shared dynamically and carries no rpath (the tests run copies
# of it from other folders): both are found here.
export LD_LIBRARY_PATH="$CARGO_TARGET_DIR/debug/deps:$(rustc --print target-libdir)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
