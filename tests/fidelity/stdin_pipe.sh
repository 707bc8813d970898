#!/usr/bin/env bash
# Standard input from a pipe is consumed command by command. (Unlike bash, a command that
# reads more than it uses from a pipe, as `head` does, leaves the rest for the next: shark
# keeps piped input in a file; see the README's differences from bash.)
read -r first
echo "first: $first"
read -r second
echo "second: $second"
while read -r line; do
    echo "loop: $line"
    [[ $line == *three ]] && break
done
echo "rest:"
cat
