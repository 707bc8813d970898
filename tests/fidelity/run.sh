#!/usr/bin/env bash
# The fidelity suite: each script here runs under bash and under shark, in the same directory
# with the same environment, arguments and standard input; stdout, stderr and the exit status
# must be identical byte for byte. Each script runs under shark twice (the second run reuses
# what it can), and both runs are compared with bash.
#
# Usage: tests/fidelity/run.sh SHARK [NAME...]   (default: every NAME.sh in this folder)
#
# Beside NAME.sh: NAME.args holds the arguments (one a line), NAME.stdin standard input given
# as a file, NAME.pipe standard input given through a pipe. Prints one line per script and
# run (`ok` or `DIFF`, with a unified diff), then `fidelity: P/T`; exits 1 if any differed.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
shark=${1:?usage: run.sh SHARK [NAME...]}
shift
[[ $shark == /* ]] || shark=$PWD/$shark
if (($# == 0)); then
    set -- $(cd "$here" && ls -- *.sh | grep -v '^run\.sh$' | sed 's/\.sh$//')
fi

scratch=$(mktemp -d "${TMPDIR:-/tmp}/shark-fidelity.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

# run_one HOW NAME OUTDIR: runs NAME.sh with `bash` or `shark` (HOW) in a fresh work folder.
run_one() {
    local how=$1 name=$2 out=$3 work=$scratch/work
    rm -rf "$work"
    mkdir -p "$work" "$scratch/user" "$out"
    cp "$here/$name.sh" "$work/$name.sh"
    local -a args=()
    [[ -f $here/$name.args ]] && mapfile -t args < "$here/$name.args"
    local -a cmd=(bash)
    [[ $how == shark ]] && cmd=("$shark")
    local -a env=(env -i "HOME=$scratch/user" "PATH=/usr/local/bin:/usr/bin:/bin"
        "LANG=C.UTF-8" "TERM=dumb" "SHARK_HOME=$scratch/shark-home" "TZ=UTC")
    (
        cd "$work" || exit 99
        if [[ -f $here/$name.pipe ]]; then
            cat "$here/$name.pipe" | "${env[@]}" "${cmd[@]}" "$name.sh" "${args[@]}"
        elif [[ -f $here/$name.stdin ]]; then
            "${env[@]}" "${cmd[@]}" "$name.sh" "${args[@]}" < "$here/$name.stdin"
        else
            "${env[@]}" "${cmd[@]}" "$name.sh" "${args[@]}" < /dev/null
        fi > "$out/stdout" 2> "$out/stderr"
        echo $? > "$out/status"
    )
}

pass=0 total=0
for name in "$@"; do
    [[ -f $here/$name.sh ]] || { echo "run.sh: no script $name.sh" >&2; exit 2; }
    rm -rf "$scratch/shark-home"
    run_one bash "$name" "$scratch/bash"
    for round in first reuse; do
        total=$((total + 1))
        run_one shark "$name" "$scratch/$round"
        if diff -q -r "$scratch/bash" "$scratch/$round" > /dev/null; then
            pass=$((pass + 1))
            echo "ok    $name ($round run)"
        else
            echo "DIFF  $name ($round run)"
            for f in status stdout stderr; do
                diff -u --label "bash $f" --label "shark $f" \
                    "$scratch/bash/$f" "$scratch/$round/$f" | head -40
            done
        fi
    done
done
echo "fidelity: $pass/$total"
((pass == total))
