#!/usr/bin/env bash
# exec redirections last for the rest of the script.
exec 3> log.txt
echo "to fd 3" >&3
echo "to stdout"
echo "more to fd 3" >&3
exec 3>&-
cat log.txt
exec 4>> appended.txt
echo one >&4
echo two >&4
exec 4>&-
cat appended.txt
