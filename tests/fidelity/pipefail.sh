#!/usr/bin/env bash
# pipefail and PIPESTATUS.
false | true
echo "without pipefail: $?"
true | false | true
echo "statuses: ${PIPESTATUS[*]}"
set -o pipefail
false | true
echo "with pipefail: $?"
(exit 3) | (exit 0)
echo "last: $?"
