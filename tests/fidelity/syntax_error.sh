#!/usr/bin/env bash
# A syntax error part-way: the lines before it run, then bash stops at it.
echo "first line runs"
x=1
echo "x=$x"
if [ "$x" = 1 ]; then
    echo "in if"
fi fi
echo "never"
