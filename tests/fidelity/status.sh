#!/usr/bin/env bash
# $? carries from one command to the next, whatever the step.
false
echo "after false: $?"
(exit 3)
echo "after exit 3: $?"
f() { return 42; }
f
echo "after f: $?"
true
echo "after true: $?"
echo last-argument
echo "underscore: $_"
grep -q nothing /dev/null
if [ $? -eq 1 ]; then echo "grep found nothing"; fi
