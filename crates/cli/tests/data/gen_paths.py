#!/usr/bin/env python3
"""Generate a path file for benchmarking `tribute attribute`.

Usage: gen_paths.py ROWS [SEED] > paths.csv

Deterministic for a given seed: 10 channels, paths of 1–20 touches, an
`ages_days` column, conversions 0–5 and nulls 0–50 per row, values with two
decimals.
"""
import random
import sys

rows = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
rng = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 42)
channels = ["ads", "affiliate", "blog", "display", "email", "podcast", "referral", "seo", "social", "video"]
out = sys.stdout
out.write("path,total_conversions,total_conversion_value,total_null,ages_days\n")
for _ in range(rows):
    n = rng.randint(1, 20)
    path = " > ".join(rng.choice(channels) for _ in range(n))
    ages = sorted((round(rng.uniform(0, 30), 2) for _ in range(n)), reverse=True)
    conv = rng.randint(0, 5)
    value = f"{rng.randint(0, 50_000) * conv / 100:.2f}" if conv else "0"
    out.write(f"{path},{conv},{value},{rng.randint(0, 50)},{' > '.join(str(a) for a in ages)}\n")
