#!/usr/bin/env bash
# The hostile-peer suite: every attack of `hostile` (benches/src/bin/hostile.rs)
# against a fresh `tether serve` on loopback, one JSON line each, turned into
# the Markdown report benches/HOSTILE.md.
#
#   bash benches/hostile.sh                          # every attack, about 70 s after the build
#   bash benches/hostile.sh --quick                  # short attacks, fewer connections (smoke test)
#   bash benches/hostile.sh --only idle,slowloris    # some attacks only
#   bash benches/hostile.sh --idle-conns 10000       # more idle connections (default 1000)
#   bash benches/hostile.sh --out FILE               # the report elsewhere (default benches/HOSTILE.md)
#
# 1. builds target/release/tether (crate tether-cli) and target/release/hostile
#    and echo_server (crate tether-benches), in release;
# 2. per attack: starts `target/release/tether serve --addr 127.0.0.1:0 [flags]`,
#    reads the address from its first stderr line (`tether: listening on
#    ws://ADDR (echo)`), runs `hostile ATTACK --addr ADDR --pid PID ...`
#    (which samples the server's RSS, runs the 100 ms echo probe and a new
#    client every second beside the attack), then stops the server
#    (SIGTERM; SIGKILL after 5 s);
# 3. for the idle row, the same idle connections against `echo_server --lib
#    raw-tcp` first: the raw TCP floor per connection;
# 4. python3 (standard library only) writes the report.
#
# Everything stays on 127.0.0.1; each attack is bounded in time and traffic
# (see `hostile --help`). Logs and JSON lines are in target/hostile-run/.
# Run it on an otherwise idle machine.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)

quick=0
only=""
idle_conns=1000
report=$root/benches/HOSTILE.md
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1 ;;
        --only) only="$2"; shift ;;
        --idle-conns) idle_conns="$2"; shift ;;
        --out) report="$2"; shift ;;
        -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
        *) echo "hostile.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done

# row | attack | `tether serve` flags | hostile arguments (after the attack's name)
# (idle rows also get -n <--idle-conns>). idle-128k: tether gives back a
# connection's frame buffers over 64 KiB when it goes idle (until 33a39da:
# over 128 KiB, so a 128 KiB message left the most behind).
attacks=(
    "big-no-read|big-no-read||"
    "partial-stall|partial-stall|--message-timeout 2|"
    "idle|idle||"
    "idle-128k|idle||--size 128KiB"
    "ping-flood|ping-flood||"
    "slowloris|slowloris||"
    "slowloris-limit|slowloris|--max-connections 100|-n 150"
    "header-bomb|header-bomb||--duration 5 --max-bytes 6GiB"
    "tiny-fragments|tiny-fragments||"
    "max-connections|max-connections|--max-connections 100|--duration 5"
    "deflate-bomb|deflate-bomb|--deflate|"
)
quick_args=()
if [ "$quick" = 1 ]; then
    # slowloris keeps its 15 s: the server's handshake timeout is 10 s
    quick_args=(--duration 3)
    idle_conns=$((idle_conns < 200 ? idle_conns : 200))
fi

target_dir=${CARGO_TARGET_DIR:-$root/target}
bin=$target_dir/release
out=$target_dir/hostile-run
rm -rf "$out"
mkdir -p "$out"
results=$out/results.jsonl
: >"$results"

log() { echo "hostile.sh: $*" >&2; }

log "building (release)"
cargo build --release -p tether-cli >&2
cargo build --release -p tether-benches --bin hostile --bin echo_server >&2

server_pid=""

# Starts `tether serve --addr 127.0.0.1:0 FLAGS...`; sets server_pid and server_addr.
start_server() {
    local name=$1
    shift
    "$bin/tether" serve --addr 127.0.0.1:0 "$@" 2>"$out/$name.server.log" &
    server_pid=$!
    server_addr=""
    for _ in $(seq 100); do
        server_addr=$(sed -n '1s/^tether: listening on ws:\/\/\([^ ]*\) .*/\1/p' "$out/$name.server.log")
        [ -n "$server_addr" ] && return 0
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.05
    done
    log "tether serve did not start:"
    cat "$out/$name.server.log" >&2
    exit 1
}

# Stops our server by its pid: SIGTERM (it closes its connections with
# 1001), SIGKILL if it is still there after 5 s.
stop_server() {
    [ -n "$server_pid" ] || return 0
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$server_pid" 2>/dev/null; then
        log "tether serve (pid $server_pid) did not exit 5 s after SIGTERM; killing it"
        kill -KILL "$server_pid" 2>/dev/null || true
    fi
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}
trap stop_server EXIT

# The raw TCP floor for the idle row: echo_server --lib raw-tcp (it exits
# when its stdin closes), the same connections with a 1-byte echo each.
raw_floor() {
    local fifo=$out/raw.stdin
    mkfifo "$fifo"
    "$bin/echo_server" --lib raw-tcp --addr 127.0.0.1:0 <"$fifo" >"$out/raw.addr" 2>"$out/raw.log" &
    local pid=$!
    exec 3>"$fifo"
    local addr=""
    for _ in $(seq 100); do
        addr=$(sed -n 's/^listening //p' "$out/raw.addr")
        [ -n "$addr" ] && break
        sleep 0.05
    done
    if [ -n "$addr" ]; then
        log "hostile idle --raw -n $idle_conns (raw TCP floor, echo_server --lib raw-tcp on $addr)"
        "$bin/hostile" idle --raw --no-probe --addr "$addr" --pid "$pid" -n "$idle_conns" \
            --server "echo_server --lib raw-tcp" --row raw-tcp-floor >"$out/raw.json" || log "the raw TCP floor failed"
    else
        log "echo_server --lib raw-tcp did not start; no raw TCP floor"
    fi
    exec 3>&-
    wait "$pid" 2>/dev/null || true
}

started=$(date +%s)
raw_done=0
for entry in "${attacks[@]}"; do
    IFS='|' read -r row attack flags extra <<<"$entry"
    if [ -n "$only" ] && [[ ",$only," != *",$row,"* ]]; then
        continue
    fi
    if [ "$attack" = idle ] && [ "$raw_done" = 0 ]; then
        raw_floor
        raw_done=1
    fi
    # shellcheck disable=SC2086 # flags and extra are word lists
    start_server "$row" $flags
    server_cmd="tether serve${flags:+ $flags}"
    # shellcheck disable=SC2086
    set -- $extra
    if [ "$attack" = idle ]; then
        set -- "$@" -n "$idle_conns"
    fi
    if [ "$attack" != slowloris ]; then
        set -- "$@" "${quick_args[@]}"
    fi
    log "$row: $server_cmd on $server_addr (pid $server_pid); hostile $attack $*"
    if ! "$bin/hostile" "$attack" --addr "$server_addr" --pid "$server_pid" --server "$server_cmd" \
        --row "$row" "$@" >>"$results" 2>"$out/$row.hostile.log"; then
        log "$row failed:"
        cat "$out/$row.hostile.log" >&2
    fi
    stop_server
done
log "attacks took $(($(date +%s) - started)) s; results in $results"

commit=$(git rev-parse --short HEAD)
dirty=$(git status --porcelain -- crates Cargo.toml Cargo.lock | wc -l)
python3 - "$results" "$out/raw.json" "$report" "$commit" "$dirty" "$(date -u +%Y-%m-%d)" \
    "$(nproc)" "$(uname -r)" "$(rustc --version)" "$idle_conns" <<'PY'
import json, os, sys

results, raw_path, report, commit, dirty, date, cores, kernel, rustc, idle_conns = sys.argv[1:]
rows = [json.loads(line) for line in open(results) if line.strip()]
raw = json.load(open(raw_path)) if os.path.exists(raw_path) and os.path.getsize(raw_path) else None

def mib(b):
    return "-" if b is None else f"{b / 2**20:.1f}"

def cell(s):
    return str(s).replace("|", "\\|")

out = []
w = out.append
w("# Hostile peers against `tether serve`")
w("")
state = f"`{commit}`" + (f" with uncommitted changes in {dirty} file(s) of the library crates" if int(dirty) else "")
w(f"Measured at {state} on {date}: {cores} cores, Linux {kernel}, {rustc}; "
  "release builds; everything on 127.0.0.1. Made by `bash benches/hostile.sh` "
  "(attacker: `benches/src/bin/hostile.rs`); a rerun replaces this file.")
w("")
w("Each row: a fresh `tether serve --addr 127.0.0.1:0` with the flags shown, "
  "one attack of `hostile` against it, bounded in time and traffic. Beside "
  "the attack, a *probe* client (connected before it starts) sends a 16-byte "
  "message every 100 ms and times each echo, and a *new* client connects, "
  "upgrades and echoes once every second. Server memory is `VmRSS` from "
  "`/proc/PID/status`: *before* just before the attack, *peak* the kernel's "
  "`VmHWM` (the server's high-water mark; it is fresh, so this attack's), "
  "*after* 1 s after the attack's sockets closed. Server CPU is user + system "
  "time during the attack (`/proc/PID/stat`).")
w("")
w("| row | what it does | server | RSS before / peak / after (MiB) | probe echo p50 / p99 / max (ms) | echoes over 100 ms | new clients ok | what the attackers saw | server CPU (s) |")
w("|---|---|---|---|---|---|---|---|---|")
for r in rows:
    echoes = r.get("echoes")
    if echoes is None:
        probe, over, new = "-", "-", "-"
    else:
        probe = f"{r['echo_p50_ms']:.1f} / {r['echo_p99_ms']:.1f} / {r['echo_max_ms']:.1f}"
        over = f"{r['echo_over_100ms']}/{echoes} ({100 * r['echo_over_share']:.0f}%)"
        if r.get("echo_lost"):
            over += f", {r['echo_lost']} never came back"
        if r.get("probe_ended"):
            over += f"; probe ended: {r['probe_ended']}"
        new = f"{r['new_conn_ok']}/{r['new_conns']}"
        if r.get("new_conn_failed"):
            new += f" ({r['new_conn_failed']})"
        if r['new_conn_ok']:
            new += f", max {r['new_conn_max_ms']:.0f} ms"
    mem = f"{mib(r.get('rss_before'))} / {mib(r.get('rss_peak'))} / {mib(r.get('rss_after'))}"
    cpu = r.get("server_cpu_secs", "-")
    w(f"| `{r.get('row', r['attack'])}` | {cell(r['does'])} | `{cell(r['server'])}` | {mem} | {probe} | {over} | {cell(new)} | {cell(r['status'])} | {cpu} |")
w("")
for idle in (r for r in rows if r["attack"] == "idle" and "per_conn_bytes" in r):
    line = f"**Idle memory** (`{idle['row']}`): {idle['does']}: " \
           f"{idle['per_conn_bytes'] / 1024:.1f} KiB of server RSS each"
    if raw and "per_conn_bytes" in raw:
        above = idle["per_conn_bytes"] - raw["per_conn_bytes"]
        line += f"; {above / 1024:.1f} KiB above the raw TCP floor of " \
                f"{raw['per_conn_bytes'] / 1024:.1f} KiB (`echo_server --lib raw-tcp`, a task per socket, " \
                f"{raw['conns']} connections with a 1-byte echo)"
    w(line + ".")
    w("")
bomb = next((r for r in rows if r["attack"] == "deflate-bomb"), None)
if bomb and bomb.get("bombs") and "server_cpu_secs" in bomb:
    w(f"**Decompression bombs**: {bomb['bombs']} bombs of {bomb['compressed_bytes'] / 1024:.0f} KiB "
      f"cost the server {bomb['server_cpu_secs']:.2f} s of CPU in all, "
      f"{1000 * bomb['server_cpu_secs'] / bomb['bombs']:.1f} ms each (10 ms ticks; the probe's "
      "echoes included).")
    w("")
w("Columns: *echoes over 100 ms* counts probe echoes slower than 100 ms or never "
  "back; *new clients ok* is how many of the once-a-second new clients "
  "connected, upgraded and got their echo within 5 s, with what the others "
  "got; *what the attackers saw* is `count/total outcome` (a close code, an "
  "HTTP status, `eof`, `reset`, or a write that stayed blocked).")
w("")
w("The JSON lines of this run:")
w("")
w("```json")
if raw:
    w(json.dumps(raw, separators=(",", ":")))
for r in rows:
    w(json.dumps(r, separators=(",", ":")))
w("```")
open(report, "w").write("\n".join(out) + "\n")
PY
log "wrote $report"
