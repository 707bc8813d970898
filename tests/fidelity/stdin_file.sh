#!/usr/bin/env bash
# Standard input is consumed command by command.
read -r first
echo "first: $first"
read -r second
echo "second: $second"
head -n 1
echo "rest:"
cat
