#!/usr/bin/env bash
# Background jobs and wait.
(sleep 0.1; echo "background done") &
pid=$!
wait "$pid"
echo "waited: $?"
sleep 0.1 & wait
echo "all waited"
jobs
