#!/usr/bin/env bash

# Blank lines and comments between commands; a command ending in a comment.


echo one   # trailing comment
   # indented comment
echo two;   # after a semicolon

: this is a no-op
echo three \
  # not a comment: a continued argument
