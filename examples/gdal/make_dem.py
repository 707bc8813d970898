"""Write a synthetic digital elevation model as an ESRI ASCII grid.

Usage: python3 make_dem.py PARAMS OUT.asc

PARAMS holds `key = value` lines: size (cells per side), cell (metres), base (metres), and
hills, a list of `x,y,height,radius` (in cells) separated by spaces. Each hill is a Gaussian
bump; a gentle tilt keeps slopes non-zero everywhere. Plain Python, no numpy: the output
depends only on the parameters, so it is byte-identical between runs.
"""

import math
import sys


def read_params(path):
    params = {}
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                key, value = (part.strip() for part in line.split("=", 1))
                params[key] = value
    hills = [tuple(float(v) for v in h.split(",")) for h in params["hills"].split()]
    return int(params["size"]), float(params["cell"]), float(params["base"]), hills


def elevation(x, y, base, hills):
    z = base + 0.5 * x + 0.25 * y
    for hx, hy, height, radius in hills:
        d2 = (x - hx) ** 2 + (y - hy) ** 2
        z += height * math.exp(-d2 / (2.0 * radius * radius))
    return z


def main():
    size, cell, base, hills = read_params(sys.argv[1])
    with open(sys.argv[2], "w") as out:
        out.write(f"ncols {size}\nnrows {size}\n")
        out.write(f"xllcorner 0\nyllcorner 0\ncellsize {cell}\nNODATA_value -9999\n")
        for row in range(size):
            zs = (elevation(col, row, base, hills) for col in range(size))
            out.write(" ".join(f"{z:.2f}" for z in zs) + "\n")


main()
