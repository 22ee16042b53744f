"""Sum Nsight Compute's per-launch GPU times for one decode step (the CSV
that `PROFILE=1 scripts/gpu-run.sh model` writes: `ncu --metrics
gpu__time_duration.sum --csv`), by kernel and grid: launches, total and
mean microseconds, and the step's total. Chapter 11 prints its output.

    python3 scripts/ncu_step_summary.py ncu-step.csv
"""

import collections
import csv
import sys

UNITS = {"ns": 1e-3, "nsecond": 1e-3, "us": 1.0, "usecond": 1.0, "ms": 1e3, "msecond": 1e3}


def main() -> None:
    lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith('"ID"'))
    total = collections.defaultdict(float)
    count = collections.Counter()
    for row in csv.DictReader(lines[start:]):
        if row["Metric Name"] != "gpu__time_duration.sum":
            continue
        us = float(row["Metric Value"].replace(",", "")) * UNITS[row["Metric Unit"]]
        key = (row["Kernel Name"], row["Grid Size"].replace(" ", ""))
        total[key] += us
        count[key] += 1
    step = sum(total.values())
    print(f"{sum(count.values())} launches, {step:.0f} µs of GPU time in one decode step")
    print(f"{'kernel':<20} {'grid':<12} {'launches':>8} {'total µs':>9} {'mean µs':>8} {'share':>6}")
    for (name, grid), us in sorted(total.items(), key=lambda kv: -kv[1]):
        n = count[(name, grid)]
        print(f"{name:<20} {grid:<12} {n:>8} {us:>9.0f} {us / n:>8.1f} {us / step:>6.1%}")


if __name__ == "__main__":
    main()
