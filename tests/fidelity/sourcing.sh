#!/usr/bin/env bash
# source a library written by the script itself; its functions know where they come from.
cat > lib.sh <<'LIB'
lib_name=library
lib_fn() {
    echo "lib_fn from ${BASH_SOURCE[0]} at line $LINENO: $*"
    lib_missing_command
}
echo "sourcing ${BASH_SOURCE[0]} from ${BASH_SOURCE[1]}"
LIB
source ./lib.sh
echo "$lib_name"
lib_fn one two
. lib.sh
