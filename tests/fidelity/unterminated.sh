#!/usr/bin/env bash
# An unterminated quote at the end: what comes before runs.
echo "runs"
echo 'never closed
echo more
