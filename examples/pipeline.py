"""The two steps of pipeline.md: simulate daily station temperatures, then summarise them."""
import csv
import math
import os
import random
import statistics
import sys


def simulate(stations, readings):
    """A synthetic, seeded series per station: colder with altitude and latitude."""
    days, rng = int(os.environ["days"]), random.Random(int(os.environ["seed"]))
    with open(stations) as f, open(readings, "w", newline="") as out:
        w = csv.writer(out)
        w.writerow(["station", "day", "temp_c"])
        for s in csv.DictReader(f):
            base = 28 - 0.0065 * float(s["elevation_m"]) - 0.3 * abs(float(s["lat"]))
            for d in range(days):
                season = 4 * math.sin(2 * math.pi * d / 365)
                w.writerow([s["station"], d, round(base + season + rng.gauss(0, 1.5), 1)])


def summarise(readings):
    """Mean, min and max per station, tab-separated, on stdout."""
    by = {}
    with open(readings) as f:
        for r in csv.DictReader(f):
            by.setdefault(r["station"], []).append(float(r["temp_c"]))
    print("station\tmean_c\tmin_c\tmax_c")
    for s, t in sorted(by.items()):
        print(f"{s}\t{statistics.mean(t):.1f}\t{min(t):.1f}\t{max(t):.1f}")


if __name__ == "__main__":
    {"simulate": simulate, "summarise": summarise}[sys.argv[1]](*sys.argv[2:])
