#!/usr/bin/env bash
# Edits the running demo's plugin into "v2", for demo/livex/reload.sh to load. Works from any
# folder, and running it twice changes nothing more.
#   - LiveJob gains a field, `#[serde(default)] pub priority: u8`: jobs written by v1 have no
#     such field and are read by v2 with priority 0; jobs v2 schedules get priority 7;
#   - the live function `live_price` charges 12 per item instead of 10;
#   - the code labels itself v2.
# `make-v2.sh --undo` restores the committed (v1) file with git.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
file=plugin/jobs/src/lib.rs
cd "$here"

case "${1:-}" in
    --undo)
        git checkout -- "$file"
        echo "restored $here/$file (v1)"
        exit 0
        ;;
    "") ;;
    *)
        echo "usage: $0 [--undo]" >&2
        exit 2
        ;;
esac

sed -i 's/^const EDITION: &str = "v1";$/const EDITION: \&str = "v2";/' "$file"
sed -i 's/^    qty \* 10$/    qty * 12/' "$file"
sed -i 's/LiveJob { id, text, \.\.Default::default() }/LiveJob { id, text, priority: 7, ..Default::default() }/' "$file"
if ! grep -q '^    pub priority: u8,$' "$file"; then
    sed -i 's/^    pub text: String,$/&\n    #[serde(default)]\n    pub priority: u8,/' "$file"
fi

# Every edit must be there: a file changed by hand in between is reported, not half-edited silently.
for want in 'const EDITION: &str = "v2";' '    qty \* 12$' 'priority: 7, \.\.Default::default()' '^    #\[serde(default)\]$' '^    pub priority: u8,$'; do
    if ! grep -q -- "$want" "$file"; then
        echo "make-v2.sh: $file does not look like v1 or v2 (missing /$want/); run '$0 --undo' first" >&2
        exit 1
    fi
done
echo "edited $here/$file to v2; now run $here/reload.sh"
