#!/usr/bin/env bash
# Issue 23 §4, release figures for BENCHMARKS.md ("axum in plugins"). Works from any folder:
#
#   tests/shared_axum/bench.sh            # both parts
#   tests/shared_axum/bench.sh router     # PluginRouter against the same router compiled in
#   tests/shared_axum/bench.sh sizes      # plugin .so size and one-line-edit rebuild time
#
# router: builds the fixture host with `--release` (target/shared-axum/release) and the plugin's
#   two builds with `cargo xtask build` (release), then runs the host's `bench` scenario
#   (tests/shared_axum/host/src/bench.rs; knobs BENCH_CONNECTIONS, BENCH_ROUNDS (0: only the
#   part without a network), BENCH_ROUND_MS, BENCH_RELOAD_MS, BENCH_RELOAD_NICE (the manager's
#   `reload_nice`), BENCH_MICRO_ROUNDS, BENCH_MICRO_REQUESTS).
# sizes: the same plugin source on the shared route (this fixture, `-C prefer-dynamic`) and
#   with per-plugin copies (a scratch copy of the fixture in target/bench-axum/copy whose
#   shared crate is an rlib, built without `-C prefer-dynamic`: tokio, axum, hyper in the
#   plugin's .so), release and dev; each round edits one line of the plugin and rebuilds it
#   with `cargo build -p shared_axum_web`, the routes interleaved. The plugin source is
#   restored on exit. BENCH_BUILD_ROUNDS (3) rounds; BENCH_PROFILES ("release dev").
#
# Results are also written to target/bench-axum/{router,sizes}.txt.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
export CARGO_INCREMENTAL=0 CARGO_TERM_COLOR=never
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS
FLAGS="-C prefer-dynamic --cfg tokio_unstable"
target="${CARGO_TARGET_DIR:-$root/target}"
fixture="$root/tests/shared_axum"
shared_target="$target/shared-axum"
out="$target/bench-axum"
libdir="$(rustc --print target-libdir)"
mkdir -p "$out"
parts=("$@")
[ ${#parts[@]} -eq 0 ] && parts=(router sizes)

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
ms() { local t0 t1; t0=$(date +%s%N); "$@"; t1=$(date +%s%N); echo $(((t1 - t0) / 1000000)); }

router() {
    RUSTFLAGS="$FLAGS" CARGO_TARGET_DIR="$shared_target" \
        cargo build --quiet --release --manifest-path "$fixture/Cargo.toml" -p axum_host
    cargo build --quiet -p xtask
    local shared="$shared_target/release/deps/libshared_axum.so" before
    before="$(sha256sum "$shared")"
    rm -rf "$out/builds"
    RUSTFLAGS="$FLAGS" CARGO_TARGET_DIR="$shared_target" \
        "$target/debug/xtask" build "$fixture/plugin" "$out/builds/v1" >/dev/null
    RUSTFLAGS="$FLAGS" CARGO_TARGET_DIR="$shared_target" \
        "$target/debug/xtask" build "$fixture/plugin" "$out/builds/v2" -- --features v2 >/dev/null
    [ "$(sha256sum "$shared")" = "$before" ] || { echo "building the plugin rebuilt $shared" >&2; exit 1; }
    local run
    # The plugin folder on disk, where builds arrive; the manager's work folder (its private
    # copies of the libraries) in memory, as the manager's default work root is
    # (`/dev/shm`, when mounted without `noexec`).
    run="$(mktemp -d)"
    local work_root=/dev/shm
    [ -d "$work_root" ] && [ -w "$work_root" ] || work_root="$run"
    local work
    work="$(mktemp -d -p "$work_root" hotswap-bench.XXXXXX)"
    mkdir -p "$run/plugins"
    echo "commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!BENCHMARKS.md' || echo ' (with changes)'), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs"
    LD_LIBRARY_PATH="$shared_target/release/deps:$libdir" "$shared_target/release/axum_host" bench \
        "$run/plugins" "$work" "$out/builds/v1" "$out/builds/v2" | sed 's/^BENCH //' | tee "$out/router.txt"
    rm -rf "$run" "$work"
}

plugin_source="$fixture/plugin/src/lib.rs"
copy="$out/copy"
# One line of the plugin: the message of an unknown function, numbered by the edit.
edit() { perl -pi -e 's/unknown function( \(edit \d+\))?/unknown function (edit '"$2"')/' "$1"; }

build_plugin() { # route profile
    local flags=$FLAGS manifest="$fixture/Cargo.toml" dir="$shared_target" profile=()
    if [ "$1" = copy ]; then flags="--cfg tokio_unstable" manifest="$copy/Cargo.toml" dir="$copy/target"; fi
    [ "$2" = release ] && profile=(--release)
    RUSTFLAGS="$flags" CARGO_TARGET_DIR="$dir" cargo build --quiet "${profile[@]}" --manifest-path "$manifest" -p shared_axum_web
}

library() { # route profile
    local dir="$shared_target" profile=debug
    [ "$1" = copy ] && dir="$copy/target"
    [ "$2" = release ] && profile=release
    echo "$dir/$profile/libshared_axum_web.so"
}

sizes() {
    # The per-plugin-copies route: the fixture copied, its paths made absolute, its shared crate
    # an rlib (linked into the plugin).
    mkdir -p "$copy"
    for part in Cargo.toml Cargo.lock shared host plugin; do
        rm -rf "${copy:?}/$part"
        cp -r "$fixture/$part" "$copy/$part"
    done
    sed -i "s|\"\.\./\.\./|\"$root/|g" "$copy/Cargo.toml"
    sed -i 's/crate-type = \["dylib"\]/crate-type = ["rlib"]/' "$copy/shared/Cargo.toml"
    # Global: the EXIT trap runs after this function returned.
    backup="$(mktemp)"
    cp "$plugin_source" "$backup"
    trap 'cp "$backup" "$plugin_source"; rm -f "$backup"' EXIT
    echo "commit $(git rev-parse --short HEAD), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs; load average at start: $(loadavg)" | tee "$out/sizes.txt"
    local profiles=${BENCH_PROFILES:-release dev}
    for profile in $profiles; do
        for route in shared copy; do build_plugin "$route" "$profile"; done
    done
    local rounds=${BENCH_BUILD_ROUNDS:-3}
    declare -A times
    for profile in $profiles; do
        for i in $(seq 1 "$rounds"); do
            for route in shared copy; do
                local source=$plugin_source
                [ "$route" = copy ] && source="$copy/plugin/src/lib.rs"
                edit "$source" "$i"
                times[$route.$profile]+="$(ms build_plugin "$route" "$profile") "
            done
        done
    done
    echo "| route | profile | plugin .so bytes (stripped) | one-line edit → cargo build -p shared_axum_web, ms (each round) |" | tee -a "$out/sizes.txt"
    for profile in $profiles; do
        for route in shared copy; do
            local so stripped
            so="$(library "$route" "$profile")"
            stripped="$(mktemp)"
            strip -o "$stripped" "$so"
            echo "| $route | $profile | $(stat -c %s "$so") ($(stat -c %s "$stripped")) | ${times[$route.$profile]}|" | tee -a "$out/sizes.txt"
            rm -f "$stripped"
        done
    done
    local dylib="$shared_target/release/deps/libshared_axum.so"
    [ -f "$dylib" ] && echo "shared dylib (release, loaded once per process): $(stat -c %s "$dylib") bytes" | tee -a "$out/sizes.txt"
    echo "load average at end: $(loadavg)" | tee -a "$out/sizes.txt"
}

for part in "${parts[@]}"; do
    case "$part" in
        router) router ;;
        sizes) sizes ;;
        *) echo "unknown part \`$part\` (router, sizes)" >&2; exit 2 ;;
    esac
done
