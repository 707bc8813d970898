#!/usr/bin/env python3
"""Runs several commands in turns (ABC ABC ...), each after a preparing shell command, and
writes hyperfine-style JSON: per command, the wall-clock times and the CPU time (user +
system) of each run. On a machine shared with other work, interleaving gives each command
the same mix of busy and quiet moments, so ratios of one run mean something where
hyperfine's run-all-of-A-then-all-of-B would not.

Usage: interleave.py RUNS PREPARE OUT.json COMMAND...
"""
import json
import os
import subprocess
import sys
import time

runs, prepare, out, commands = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
results = [{"command": c, "times": [], "cpu": []} for c in commands]
for r in range(runs):
    # Rotate the order too, so that no command always follows the same one.
    order = list(range(len(commands)))
    order = order[r % len(order):] + order[:r % len(order)]
    for i in order:
        subprocess.run(prepare, shell=True, check=True)
        before = os.times()
        start = time.perf_counter()
        subprocess.run(commands[i], shell=True, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        after = os.times()
        cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
        results[i]["times"].append(wall)
        results[i]["cpu"].append(cpu)
        print(f"{wall:8.3f} s wall {cpu:7.3f} s cpu  {commands[i]}", flush=True)
json.dump({"results": results}, open(out, "w"), indent=1)
