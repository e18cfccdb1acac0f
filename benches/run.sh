#!/usr/bin/env bash
# Runs every side-by-side benchmark and prints one Markdown report on stdout:
#
#   bash benches/run.sh > benches/RESULTS.md     # the full run, about 35-40 minutes
#   bash benches/run.sh --quick                  # smoke test: short timings, 1 round
#   bash benches/run.sh --rounds 5               # more loopback rounds (default 3)
#   bash benches/run.sh --decode-passes 5        # more decode passes (default 3)
#
# 1. installs the interop peers (bash interop/install.sh: Node ws and Python
#    websockets, the compressed echo's peers; fast when installed) and
#    builds the bench crate in release;
# 2. criterion: frame_decode, frame_encode, handshake (reports under
#    target/bench-run/criterion, emptied first, so only this run is read);
#    frame_decode runs each row in a process of its own, in several passes
#    over all rows (the report takes each row's median across them);
# 3. the loopback echo, compressed (permessage-deflate) echo and idle-memory
#    runs (target/release/loadgen, which starts target/release/echo_server,
#    or for compressed echo also benches/peers/*, per library per round);
# 4. benches/report.py turns all of it into the Markdown tables.
#
# Progress and the tools' own output go to stderr and to logs in
# target/bench-run/; stdout is only the report. Run it on an otherwise idle
# machine: the loopback run pins the server to core 0 and the load
# generator to core 1.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)

quick=0
rounds=3
passes=3
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1 ;;
        --rounds) rounds="$2"; shift ;;
        --decode-passes) passes="$2"; shift ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done

if [ "$quick" = 1 ]; then
    mode=quick
    passes=1
    crit_args=(--warm-up-time 0.1 --measurement-time 0.2 --sample-size 10)
    decode_args=("${crit_args[@]}")
    loop_args=(--rounds 1 --warmup 0.1 --duration 0.3 --deflate-duration 0.3 --idle-conns 500)
else
    mode=full
    crit_args=(--warm-up-time 1 --measurement-time 2 --sample-size 30)
    decode_args=(--warm-up-time 0.5 --measurement-time 1.5 --sample-size 30)
    loop_args=(--rounds "$rounds" --warmup 0.5 --duration 2.5 --deflate-duration 1.5 --idle-conns 10000)
fi

# glibc's memcpy copies 8 KiB and more with `rep movsb`, whose speed on
# some CPUs (seen on AMD EPYC, glibc 2.36) falls from about 40 GiB/s to
# under 2 GiB/s when the destination is 1-63 bytes past the source modulo
# 4 KiB. The decode benchmarks' in-memory stream copies each read with
# memcpy, so which library's large reads hit that depended on where its
# buffers landed, and the same binary's 1 MiB rows moved by 2.6x between
# runs (`benches/RESULTS.md`). Off, every library's reads and copies go
# through the same vector loops; a socket's read is the kernel's copy,
# which this does not touch. Ignored where glibc is not the libc.
export GLIBC_TUNABLES="${GLIBC_TUNABLES:+$GLIBC_TUNABLES:}glibc.cpu.x86_rep_movsb_threshold=1073741824"

target_dir=${CARGO_TARGET_DIR:-$root/target}
out=$target_dir/bench-run
rm -rf "$out"
mkdir -p "$out"
export CRITERION_HOME=$out/criterion

log() { echo "run.sh: $*" >&2; }
commands=()

log "bash interop/install.sh (the compressed echo's Node and Python peers)"
bash interop/install.sh >&2

log "building (release)"
cargo build --release -p tether-benches --benches --bins >&2

# Decode: each row in a process of its own, and the whole set of rows run
# several times (passes); the report takes each row's median. In one
# process, where a row's buffers land depends on the rows before it; in a
# new one, on address-space randomisation; and on this kind of CPU copies
# are sensitive to that (the same row of the same binary moved by up to a
# half from process to process, `benches/RESULTS.md`). Whole passes, not
# repeats of one row, so a slow spell of the machine touches one pass of
# every row rather than every pass of a few.
mapfile -t rows < <(cargo bench -q -p tether-benches --bench frame_decode -- --list 2>/dev/null |
    sed -n 's/: benchmark$//p')
[ "${#rows[@]}" -gt 0 ] || { log "frame_decode listed no rows"; exit 1; }
cmd="cargo bench -p tether-benches --bench frame_decode -- ${decode_args[*]} '^ROW\$'"
log "$cmd: ${#rows[@]} rows, one process each, $passes passes (log: $out/frame_decode.log)"
: >"$out/frame_decode.log"
for pass in $(seq 1 "$passes"); do
    for row in "${rows[@]}"; do
        CRITERION_HOME=$out/criterion/decode-pass-$pass \
            cargo bench -p tether-benches --bench frame_decode -- "${decode_args[@]}" "^$row\$" \
            >>"$out/frame_decode.log" 2>&1 || {
            tail -20 "$out/frame_decode.log" >&2
            exit 1
        }
    done
done
commands+=("for pass in \$(seq $passes); do for row in \$(cargo bench -q -p tether-benches --bench frame_decode -- --list | sed -n 's/: benchmark\$//p'); do CRITERION_HOME=target/bench-run/criterion/decode-pass-\$pass cargo bench -p tether-benches --bench frame_decode -- ${decode_args[*]} \"^\$row\\\$\"; done; done")

for bench in frame_encode handshake; do
    cmd="cargo bench -p tether-benches --bench $bench -- ${crit_args[*]}"
    log "$cmd (log: $out/$bench.log)"
    cargo bench -p tether-benches --bench "$bench" -- "${crit_args[@]}" >"$out/$bench.log" 2>&1 || {
        tail -20 "$out/$bench.log" >&2
        exit 1
    }
    commands+=("CRITERION_HOME=target/bench-run/criterion $cmd")
done

cmd="target/release/loadgen ${loop_args[*]}"
log "$cmd (results: $out/loopback.jsonl)"
"$target_dir/release/loadgen" "${loop_args[@]}" >"$out/loopback.jsonl"
commands+=("$cmd")

report_args=()
for c in "${commands[@]}"; do
    report_args+=(--command "$c")
done
python3 benches/report.py --mode "$mode" --criterion "$CRITERION_HOME" \
    --loopback "$out/loopback.jsonl" --lock Cargo.lock --interop interop "${report_args[@]}"
