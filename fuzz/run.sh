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

for target in "${targets[@]}"; do
    mkdir -p "corpus/$target" "regressions/$target" "seeds/$target"
    echo "== fuzz $target: ${secs}s" >&2
    # corpus first: new inputs are written there, never into seeds/regressions
    if ! cargo "${toolchain[@]}" fuzz run -O "$target" \
        "corpus/$target" "seeds/$target" "regressions/$target" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 2>"corpus/$target.log"; then
        tail -n 60 "corpus/$target.log" >&2
        echo "fuzz/run.sh: $target found a failure. The input is in fuzz/artifacts/$target/." >&2
        echo "Minimise it (cargo fuzz tmin $target <file>), add it to fuzz/regressions/$target/," >&2
        echo "and add a regression test beside the code it broke (see fuzz/README.md)." >&2
        exit 1
    fi
    grep -E "^stat::number_of_executed_units|^Done" "corpus/$target.log" >&2 || true
done
echo "fuzz/run.sh: ${#targets[@]} targets, ${secs}s each, nothing found" >&2
