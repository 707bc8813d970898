#!/usr/bin/env bash
# A small build script as people write them.
set -euo pipefail
readonly SRC_DIR=src OUT_DIR=build
VERBOSE=${VERBOSE:-0}
log() { printf '[%s] %s\n' "${FUNCNAME[1]}" "$*"; }
die() { echo "error: $*" >&2; exit 1; }
prepare() {
    log "creating $OUT_DIR"
    mkdir -p "$SRC_DIR" "$OUT_DIR"
    for n in 1 2 3; do
        printf 'int f%d(void) { return %d; }\n' "$n" "$n" > "$SRC_DIR/f$n.c"
    done
}
build() {
    local count=0
    for src in "$SRC_DIR"/*.c; do
        local obj="$OUT_DIR/$(basename "${src%.c}").o"
        tr a-z A-Z < "$src" > "$obj"
        count=$((count + 1))
    done
    log "built $count objects"
}
report() {
    local total
    total=$(cat "$OUT_DIR"/*.o | wc -l)
    log "total lines: $total"
    ls "$OUT_DIR"
}
prepare
build
report
[[ -f $OUT_DIR/f9.o ]] || die "f9.o was never built"
echo unreachable
