#!/usr/bin/env bash
# Option parsing with getopts.
usage() { echo "usage: $0 [-v] [-o FILE] [-n N] ARGS..." >&2; exit 2; }
verbose=0 output=- count=1
while getopts ":vo:n:h" opt; do
    case $opt in
        v) verbose=$((verbose + 1)) ;;
        o) output=$OPTARG ;;
        n) count=$OPTARG ;;
        h) usage ;;
        :) echo "option -$OPTARG needs an argument" >&2; exit 2 ;;
        \?) echo "unknown option -$OPTARG" >&2 ;;
    esac
done
shift $((OPTIND - 1))
echo "verbose=$verbose output=$output count=$count rest=$# [$*]"
for ((k = 0; k < count; k++)); do
    for a in "$@"; do echo "arg: $a"; done
done
