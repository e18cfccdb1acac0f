#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for a given time each, and fails
# on the first finding.
#
#   bash fuzz/run.sh [SECONDS_PER_TARGET] [TARGET ...]     (default: 30 s, all)
#
# Each target starts from its corpus (fuzz/corpus/<target>, kept between runs,
# not committed), its seeds (fuzz/seeds/<target>, generated from the test
# vectors by fuzz/seeds/generate.py) and its regressions
# (fuzz/regressions/<target>: every past finding, replayed first; a finding
# that returns fails at once).
#
# Installs cargo-fuzz when missing. Uses the nightly toolchain when rustup has
# or can fetch one; otherwise the stable compiler with RUSTC_BOOTSTRAP=1 (the
# sanitizer flags cargo-fuzz passes are nightly-only).
set -euo pipefail
cd "$(dirname "$0")"

secs=${1:-30}
shift || true

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "fuzz/run.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked --version 0.13.2 >&2
fi

toolchain=()
if cargo +nightly --version >/dev/null 2>&1; then
    toolchain=(+nightly)
elif command -v rustup >/dev/null 2>&1 &&
    timeout 300 rustup toolchain install nightly --profile minimal >/dev/null 2>&1; then
    toolchain=(+nightly)
else
    echo "fuzz/run.sh: no nightly toolchain; using stable with RUSTC_BOOTSTRAP=1" >&2
    export RUSTC_BOOTSTRAP=1
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo "${toolchain[@]}" fuzz list)
fi

# One build for all targets (debug assertions on, optimised).
cargo "${toolchain[@]}" fuzz build -O

# The targets run side by side, one per core (FUZZ_JOBS to change it):
# each still gets its full time, and the whole takes about that many times
# less (on CI's 2 cores, about half).
jobs_max=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}

# One target; its log in corpus/<target>.log.
run_one() {
    local target=$1
    # corpus first: new inputs are written there, never into seeds/regressions
    cargo "${toolchain[@]}" fuzz run -O "$target" \
        "corpus/$target" "seeds/$target" "regressions/$target" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 2>"corpus/$target.log"
}

# Stops a process and everything it started.
kill_tree() {
    local child
    for child in $(pgrep -P "$1" 2>/dev/null); do
        kill_tree "$child"
    done
    kill "$1" 2>/dev/null || true
}

# Reports a finished target; fails on a finding.
finished() {
    local target=$1 status=$2
    if [ "$status" -ne 0 ]; then
        tail -n 60 "corpus/$target.log" >&2
        echo "fuzz/run.sh: $target found a failure. The input is in fuzz/artifacts/$target/." >&2
        echo "Minimise it (cargo fuzz tmin $target <file>), add it to fuzz/regressions/$target/," >&2
        echo "and add a regression test beside the code it broke (see fuzz/README.md)." >&2
        # the others stop with it: each one's subshell, cargo and fuzzer
        for pid in "${!running[@]}"; do
            kill_tree "$pid"
        done
        exit 1
    fi
    echo "== fuzz $target: done" >&2
    grep -E "^stat::number_of_executed_units|^Done" "corpus/$target.log" >&2 || true
}

declare -A running=()
wait_one() {
    local pid status=0
    wait -n -p pid "${!running[@]}" || status=$?
    local target=${running[$pid]}
    unset "running[$pid]"
    finished "$target" "$status"
}

for target in "${targets[@]}"; do
    mkdir -p "corpus/$target" "regressions/$target" "seeds/$target"
    while [ "${#running[@]}" -ge "$jobs_max" ]; do
        wait_one
    done
    echo "== fuzz $target: ${secs}s" >&2
    run_one "$target" &
    running[$!]=$target
done
while [ "${#running[@]}" -gt 0 ]; do
    wait_one
done
echo "fuzz/run.sh: ${#targets[@]} targets, ${secs}s each, nothing found" >&2
