"""Writes the 20-step pipeline's inputs and script: DIR/in/f0000.txt .. f0999.txt (20 lines
of words each, some capitalised, some with punctuation; the same every time) and
DIR/pipeline.sh (one top-level command per step of STEPS, a `deps<TAB>out<TAB>command` file).

Usage: python3 bench/pipeline_inputs.py STEPS DIR. Used by bench/exec.sh and bench/observe.sh.
"""

import os
import random
import sys

steps_file, out = sys.argv[1], sys.argv[2]
random.seed(11)
steps = [line.rstrip("\n").split("\t") for line in open(steps_file)]
vocab = ["".join(random.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(random.randint(2, 9)))
         for _ in range(600)]
os.makedirs(f"{out}/in")
for i in range(1000):
    with open(f"{out}/in/f{i:04d}.txt", "w") as f:
        for _ in range(20):
            words = [random.choice(vocab[: random.randint(50, 600)]) for _ in range(random.randint(4, 12))]
            words = [w.capitalize() if random.random() < 0.1 else w for w in words]
            f.write(" ".join(words) + random.choice([".", ",", "!", "", ""]) + "\n")
with open(f"{out}/pipeline.sh", "w") as f:
    f.write("#!/usr/bin/env bash\n# The 20 steps: one top-level command each.\n")
    for deps, _, cmd in steps:
        f.write(cmd + "\n")
