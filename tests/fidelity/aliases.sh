#!/usr/bin/env bash
# Aliases with expand_aliases.
shopt -s expand_aliases
alias say='echo said:'
alias ll='ls -1'
say hello
mkdir -p d && touch d/a d/b
ll d
alias
unalias say
type say 2>&1 || echo "say is gone"
