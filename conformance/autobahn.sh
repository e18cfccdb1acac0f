#!/usr/bin/env bash
# Runs the Autobahn TestSuite (wstest) against tether, strict: every case
# must be OK or INFORMATIONAL, in both behaviours (the case and its close).
#
#   bash conformance/autobahn.sh            # the CI part: 1-10 whole, a part of 12.* and 13.*
#   bash conformance/autobahn.sh --full     # all 517 cases; writes conformance/RESULTS.md
#
# Options: --role server|client (default both), --adapter tokio|tokio-owner|std
# (default all three; tokio-owner is the tokio adapter with Driver::Owner), --debug (use the debug build, as `cargo test` left it, instead of
# building release), --cases '"1.*", "2.*"' (a JSON list body of case patterns).
#
# Tether as server (wstest -m fuzzingclient): `tether serve --mode echo
# --deflate` (tokio), the tokio `autobahn_tokio` example's `serve ... owner`
# (tokio-owner) and `tether-std`'s `autobahn` example. Tether as client
# (wstest -m fuzzingserver): each adapter's `autobahn` example, one process
# walking every case. permessage-deflate is on everywhere. Reports (HTML,
# JSON) go to target/autobahn/<role>-<adapter>/; open index.html there.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

full=0
roles="server client"
adapters="tokio tokio-owner std"
profile=release
cases=""
# how many cases a run must report, per role and adapter (a run of fewer,
# none included, fails): known for --full and for the CI part
expect=""
while [ $# -gt 0 ]; do
    case "$1" in
        --full) full=1 ;;
        --role) roles="$2"; shift ;;
        --adapter) adapters="$2"; shift ;;
        --debug) profile=debug ;;
        --cases) cases="$2"; shift ;;
        *) echo "usage: $0 [--full] [--role server|client] [--adapter tokio|tokio-owner|std] [--debug] [--cases LIST]" >&2; exit 2 ;;
    esac
    shift
done

if [ -z "$cases" ]; then
    if [ "$full" = 1 ]; then
        cases='"*"'
        expect=517
    else
        # 301 in 1-10, and 96 of permessage-deflate
        expect=397
        # 1-10 whole; of permessage-deflate, 8 of the 18 cases of every
        # group (named exactly: wstest matches a pattern as a prefix, so
        # "12.*.1" would take 12.1.10-12.1.18 too). Each 12.N and 13.N
        # group is one offer/answer combination (13.1-13.7: default, no
        # context takeover, window bits 8 and 15, and their mixes), so
        # every negotiated combination is covered; within it, cases 1-6
        # are 1,000 messages of 16 B to 8 KiB each, 11 and 12 of 8 and
        # 16 KiB cut into 256-byte frames. Left to --full: 7-10 and 13-18,
        # 16 KiB to 128 KiB messages, whole or cut into frames, 1-4.7 s
        # each (the ten take 87% of a group's time, most of it wstest's).
        cases='"1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "8.*", "9.*", "10.*"'
        for group in 12.1 12.2 12.3 12.4 12.5 13.1 13.2 13.3 13.4 13.5 13.6 13.7; do
            for n in 1 2 3 4 5 6 11 12; do
                cases+=", \"$group.$n\""
            done
        done
    fi
fi

bash conformance/install.sh

# The commit the binaries are built from (RESULTS.md names it).
rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if ! git diff --quiet HEAD -- crates Cargo.toml Cargo.lock 2>/dev/null; then
    rev="$rev with uncommitted changes"
fi
wstest="$root/conformance/.venv/bin/wstest"

cargo_flags=()
[ "$profile" = release ] && cargo_flags=(--release)
echo "conformance/autobahn.sh: building ($profile)" >&2
cargo build --quiet "${cargo_flags[@]}" -p tether-cli --bin tether \
    -p tether-std --example autobahn_std -p tether-tokio --example autobahn_tokio
bin="$root/target/$profile"

out="$root/target/autobahn"
mkdir -p "$out"

# A free TCP port on 127.0.0.1.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until something listens on 127.0.0.1:$1 (at most 30 s).
wait_port() {
    for _ in $(seq 300); do
        if python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 0.2)" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "conformance/autobahn.sh: nothing listens on port $1" >&2
    return 1
}

# One role and adapter, in a subshell of its own that stops the process it
# started however it ends.
run() {
    local role=$1 adapter=$2 dir="$out/$1-$2" port peer=""
    trap '[ -n "$peer" ] && kill "$peer" 2>/dev/null; wait 2>/dev/null' EXIT
    trap 'exit 1' INT TERM
    port=$(free_port)
    rm -rf "$dir"; mkdir -p "$dir"
    if [ "$role" = server ]; then
        # tether serves, wstest's fuzzing client connects
        case "$adapter" in
            tokio) "$bin/tether" serve --mode echo --deflate --addr "127.0.0.1:$port" >"$dir/tether.log" 2>&1 & ;;
            tokio-owner) "$bin/examples/autobahn_tokio" serve "127.0.0.1:$port" owner >"$dir/tether.log" 2>&1 & ;;
            std) "$bin/examples/autobahn_std" server "127.0.0.1:$port" >"$dir/tether.log" 2>&1 & ;;
        esac
        peer=$!
        wait_port "$port"
        cat >"$dir/spec.json" <<SPEC
{
    "outdir": "$dir/report",
    "servers": [{"agent": "tether-$adapter", "url": "ws://127.0.0.1:$port"}],
    "cases": [$cases],
    "exclude-cases": [],
    "exclude-agent-cases": {}
}
SPEC
        (cd "$dir" && exec "$wstest" -m fuzzingclient -s spec.json >wstest.log 2>&1) || true
    else
        # wstest's fuzzing server; one tether process walks every case
        cat >"$dir/spec.json" <<SPEC
{
    "url": "ws://127.0.0.1:$port",
    "outdir": "$dir/report",
    "cases": [$cases],
    "exclude-cases": [],
    "exclude-agent-cases": {}
}
SPEC
        (cd "$dir" && exec "$wstest" -m fuzzingserver --webport 0 -s spec.json >wstest.log 2>&1) &
        peer=$!
        wait_port "$port"
        case "$adapter" in
            tokio) "$bin/examples/autobahn_tokio" "ws://127.0.0.1:$port" "tether-$adapter" ;;
            tokio-owner) "$bin/examples/autobahn_tokio" "ws://127.0.0.1:$port" "tether-$adapter" owner ;;
            std) "$bin/examples/autobahn_std" client "ws://127.0.0.1:$port" "tether-$adapter" ;;
        esac >"$dir/tether.log" 2>&1 || true
    fi
}

start=$(date +%s)
dirs=()
children=()
trap 'for c in "${children[@]}"; do kill "$c" 2>/dev/null; done; wait' INT TERM
# The adapters of one role together (a wstest each).
for role in $roles; do
    children=()
    for adapter in $adapters; do
        dirs+=("$out/$role-$adapter")
        run "$role" "$adapter" &
        children+=($!)
    done
    wait
done
echo "conformance/autobahn.sh: wstest ran for $(( $(date +%s) - start )) s" >&2

summary_args=(--rev "$rev" --seconds "$(( $(date +%s) - start ))")
[ -n "$expect" ] && summary_args+=(--expect "$expect")
[ "$full" = 1 ] && summary_args+=(--results "$root/conformance/RESULTS.md")
python3 conformance/summarize.py "${summary_args[@]}" "${dirs[@]}"
