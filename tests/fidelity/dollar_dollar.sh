#!/usr/bin/env bash
# $$ is the script's shell: the same in every command, and a live process.
echo $$ > pid.txt
[[ $(cat pid.txt) == "$$" ]] && echo "same pid across commands"
[[ $$ == "$BASHPID" ]] && echo "BASHPID matches at top level"
(( $$ > 1 )) && echo "pid is a number above 1"
kill -0 $$ && echo "the shell is alive"
( [[ $$ != "$BASHPID" ]] && echo "subshell has its own BASHPID" )
