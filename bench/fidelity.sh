#!/usr/bin/env bash
# The fidelity score: how many of the fidelity suite's runs (tests/fidelity: each script under
# bash, then twice under shark, the second run reusing) give stdout, stderr and status
# identical to bash's. Writes bench/results-fidelity.md.
#
# Usage: bench/fidelity.sh [BEFORE_SHARK]   BEFORE_SHARK: a shark binary to score as "before"
# (e.g. one built from an earlier commit); the current tree's release build is "after".
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
before=${1:-}
out="$repo/bench/results-fidelity.md"
cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
after="$repo/target/release/shark"

score() { # BINARY -> "P/T"
    "$repo/tests/fidelity/run.sh" "$1" 2>&1 | tee "$2" | tail -n 1 | sed 's/^fidelity: //'
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
scripts=$(ls "$repo"/tests/fidelity/*.sh | grep -vc '/run\.sh$')
{
    echo "# Fidelity"
    echo
    echo "Produced by \`bench/fidelity.sh\` on $(date -u +%Y-%m-%d): the $scripts scripts of"
    echo "tests/fidelity, each run once under bash and twice under shark (the second run reusing what"
    echo "it can); a run counts when stdout, stderr and the exit status are identical to bash's."
    echo
    echo "| shark | runs identical to bash |"
    echo "|---|---|"
    if [[ -n $before ]]; then
        echo "| before (\`$before\`) | $(score "$before" "$work/before.txt") |"
    fi
    echo "| after (this tree) | $(score "$after" "$work/after.txt") |"
    if [[ -n $before ]]; then
        echo
        echo "Scripts that differed before:"
        echo
        grep '^DIFF' "$work/before.txt" | sed 's/^DIFF  /- /' | sort -u
    fi
    if grep -q '^DIFF' "$work/after.txt"; then
        echo
        echo "Scripts that still differ:"
        echo
        grep '^DIFF' "$work/after.txt" | sed 's/^DIFF  /- /' | sort -u
    fi
} > "$out.new"
mv "$out.new" "$out"
cat "$out"
