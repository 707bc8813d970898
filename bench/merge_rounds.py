"""Merges the hyperfine results of interleaved rounds, NAME-1.json .. NAME-COUNT.json, into
NAME.json (each command's times joined) and prints each command's median.

Usage: python3 bench/merge_rounds.py NAME COUNT. Used by bench/sandbox.sh and bench/observe.sh.
"""

import json
import sys

name, count = sys.argv[1], int(sys.argv[2])
merged = None
for r in range(1, count + 1):
    results = json.load(open(f"{name}-{r}.json"))["results"]
    if merged is None:
        merged = results
    else:
        for m, x in zip(merged, results):
            m["times"] += x["times"]
json.dump({"results": merged}, open(f"{name}.json", "w"))
for m in merged:
    times = sorted(m["times"])
    print(f"  {times[len(times) // 2] * 1000:9.1f} ms  {m['command']}")
