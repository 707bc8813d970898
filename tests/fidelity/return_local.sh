#!/usr/bin/env bash
# Errors of builtins used outside functions, and shift.
return 3
echo "after return: $?"
local v=1
echo "after local: $?"
set -- a b c
shift
echo "$# $*"
shift 5
echo "shift 5: $?"
break
echo "after break"
