#!/usr/bin/env bash
# lastpipe, noclobber, globstar and dotglob carry.
shopt -s lastpipe
echo piped | read -r v
echo "v=$v"
set -C
echo one > f.txt
echo two > f.txt 2>/dev/null || echo "noclobber refused"
echo three >| f.txt
cat f.txt
set +C
shopt -s globstar dotglob
mkdir -p d/e && touch d/e/deep.txt d/.hidden
echo d/**/*.txt
echo d/*
shopt -u dotglob
echo d/*
