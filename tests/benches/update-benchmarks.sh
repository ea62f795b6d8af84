#!/usr/bin/env bash
# Runs the benchmarks and rewrites the table in BENCHMARKS.md (between
# `<!-- bench:start -->` and `<!-- bench:end -->`). Works from any folder.
#
#   tests/benches/update-benchmarks.sh                 # all of them, about 9 minutes
#   tests/benches/update-benchmarks.sh reload report   # only some; the others' last results are reused
#
# Parts: per_call (criterion), reload, stall, build_time, then report (writes BENCHMARKS.md).
# build_time edits demo/hello/plugin/foo/src/lib.rs while it runs and restores it; this
# script restores it too if the run is interrupted.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

parts=("$@")
if [ ${#parts[@]} -eq 0 ]; then
    parts=(per_call reload stall build_time report)
fi

demo_source=demo/hello/plugin/foo/src/lib.rs
backup="$(mktemp)"
cp "$demo_source" "$backup"
restore() {
    cmp -s "$backup" "$demo_source" || cp "$backup" "$demo_source"
    rm -f "$backup"
}
trap restore EXIT

bench() {
    cargo bench --quiet -p hotswap-tests --features bench --bench "$@"
}

cargo bench -p hotswap-tests --features bench --no-run
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
for part in "${parts[@]}"; do
    echo "== $part"
    case "$part" in
        per_call) bench per_call -- --noplot ;;
        reload | stall | build_time | report) bench "$part" ;;
        *) echo "unknown part \`$part\` (per_call, reload, stall, build_time, report)" >&2; exit 2 ;;
    esac
done
