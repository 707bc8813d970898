#!/usr/bin/env bash
# Logging by redirecting the script's own output, then putting it back.
exec 3>&1 4>&2
exec > run.log 2>&1
echo "into the log"
ls /nonexistent-path-for-the-log
echo "more"
exec 1>&3 2>&4 3>&- 4>&-
echo "back on stdout"
sed 's/^ls: .*/ls: error/' run.log
exec 5>> run.log
echo "appended" >&5
exec 5>&-
tail -n 1 run.log
