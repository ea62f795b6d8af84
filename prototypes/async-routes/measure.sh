#!/usr/bin/env bash
# Issue 23 §1: builds both routes and prints the figures README.md reports. Rerun from this
# folder: `./measure.sh` (needs cargo, python3; about 5 minutes on 2 busy cores).
set -euo pipefail
cd "$(dirname "$0")"
export RUST_BACKTRACE=0 CARGO_TERM_COLOR=never
LIBDIR=$(rustc --print target-libdir)
A_FLAGS="-C prefer-dynamic --cfg tokio_unstable"
out=${OUT:-target/measure}
mkdir -p "$out"

build_a() { RUSTFLAGS="$A_FLAGS" CARGO_TARGET_DIR=target/shared cargo build -q -p host -p plugin --features host/shared,plugin/shared "$@"; }
build_b() { CARGO_TARGET_DIR=target/copy cargo build -q -p host -p plugin "$@"; }
run_a() { LD_LIBRARY_PATH=target/shared/debug/deps:$LIBDIR target/shared/debug/host "$@" 2>/dev/null || true; }
secs() { local t0 t1; t0=$(date +%s.%N); "$@"; t1=$(date +%s.%N); python3 -c "print(f'{$t1-$t0:.2f}')"; }

sed -i 's/^const EDIT: &str = "edit-[0-9]*";/const EDIT: \&str = "edit-0";/' plugin/src/lib.rs
echo "== clean build of host and plugin (everything: tokio, tracing, log, the shared dylib), fresh target folders"
rm -rf target/clean-a target/clean-b
echo "route A seconds: $(secs env RUSTFLAGS="$A_FLAGS" CARGO_TARGET_DIR=target/clean-a cargo build -q -p host -p plugin --features host/shared,plugin/shared)"
echo "route B seconds: $(secs env CARGO_TARGET_DIR=target/clean-b cargo build -q -p host -p plugin)"
rm -rf target/clean-a target/clean-b
build_a; build_b

echo "== route A: shared dylib, -C prefer-dynamic"
run_a target/shared/debug/libplugin.so 300 | tee "$out/route-a.txt"
echo "== route A: JoinHandles dropped after the tasks ended and their library was closed"
set +e
LD_LIBRARY_PATH=target/shared/debug/deps:$LIBDIR target/shared/debug/host target/shared/debug/libplugin.so 300 joinhandles 2>/dev/null | grep JOINHANDLES
echo "exit status ${PIPESTATUS[0]} (139 = SIGSEGV)"
set -e
echo "== route B: a copy of tokio in the plugin"
target/copy/debug/host target/copy/debug/libplugin.so 300 2>/dev/null | tee "$out/route-b.txt" || true

echo "== route A deployed: host linked with an \$ORIGIN rpath, libstd and the shared dylib beside it, no LD_LIBRARY_PATH"
RUSTFLAGS="$A_FLAGS" CARGO_TARGET_DIR=target/shared cargo rustc -q -p host --features shared -- -C 'link-arg=-Wl,-rpath,$ORIGIN'
dist=$(mktemp -d)
cp target/shared/debug/host target/shared/debug/deps/libproto_shared.so "$LIBDIR"/libstd-*.so target/shared/debug/libplugin.so "$dist"/
env -u LD_LIBRARY_PATH "$dist/host" "$dist/libplugin.so" 300 2>/dev/null | grep -E "LOAD|RAW_SPAWN" || true
rm -rf "$dist"
echo "== sizes (bytes; stripped in brackets)"
size() { local s; s=$(mktemp); strip -o "$s" "$1"; echo "$(stat -c %s "$1") [$(stat -c %s "$s")] $1"; rm -f "$s"; }
size target/shared/debug/libplugin.so
size target/copy/debug/libplugin.so
size target/shared/debug/deps/libproto_shared.so
size "$(ls "$LIBDIR"/libstd-*.so)"
size target/shared/debug/host
size target/copy/debug/host

echo "== one-line edit of the plugin, rebuild (5 runs each, seconds)"
for route in a b; do
  times=()
  for i in 1 2 3 4 5; do
    sed -i "s/^const EDIT: &str = \"edit-[0-9]*\";/const EDIT: \&str = \"edit-$i\";/" plugin/src/lib.rs
    times+=("$(secs build_$route)")
  done
  echo "route $route: ${times[*]}"
done
sed -i 's/^const EDIT: &str = "edit-[0-9]*";/const EDIT: \&str = "edit-0";/' plugin/src/lib.rs
build_a; build_b

echo "== route B, plugin built alone (its own cargo invocation, as hotswap build does)"
CARGO_TARGET_DIR=target/copy-alone cargo build -q -p plugin
target/copy/debug/host target/copy-alone/debug/libplugin.so 300 2>/dev/null | grep -E "LOAD|TYPEIDS" || true

echo "== route A, plugin built against a shared library with other tokio features"
RUSTFLAGS="$A_FLAGS" CARGO_TARGET_DIR=target/variant cargo build -q -p plugin --features plugin/shared,proto_shared/variant
run_a target/variant/debug/libplugin.so 300 | grep -E "LOAD|SHARED_ID"

echo "== route A, plugin built against a shared library with other RUSTFLAGS (no tokio_unstable)"
RUSTFLAGS="-C prefer-dynamic" CARGO_TARGET_DIR=target/flags cargo build -q -p plugin --features plugin/shared
run_a target/flags/debug/libplugin.so 300 | grep -E "LOAD|SHARED_ID"
