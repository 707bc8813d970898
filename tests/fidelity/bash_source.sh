#!/usr/bin/env bash
# $0, $BASH_SOURCE, FUNCNAME and the "run as a script, not sourced" idiom.
echo "0=$0 source=${BASH_SOURCE[0]} count=${#BASH_SOURCE[@]}"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[[ $here == "$PWD" ]] && echo "script dir is the cwd"
where() {
    echo "in ${FUNCNAME[0]} called by ${FUNCNAME[1]} from ${BASH_SOURCE[1]}"
    caller 0 | cut -d' ' -f2-
}
main() {
    echo "main: $*"
    where
}
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    main "$@"
fi
(return 0 2>/dev/null) && echo "looks sourced" || echo "looks like a script"
echo "dash has: $-"
