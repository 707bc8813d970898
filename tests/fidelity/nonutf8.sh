#!/usr/bin/env bash
# Bytes that are not UTF-8 in the script text.
printf '%s\n' 'café' | od -An -tx1
word='naïve'
echo "${#word}"
# a comment with a raw byte: ÿþ
echo 'latin1 été' | od -An -c
echo ok
