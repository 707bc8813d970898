#!/usr/bin/env bash
# Larger outputs on both streams.
seq 1 20000
seq 1 3000 >&2
yes abc | head -c 100000 | wc -c
