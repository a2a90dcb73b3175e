#!/usr/bin/env python3
"""Summarises one decode step's kernels from an `ncu --csv --metrics gpu__time_duration.sum` log.

The step is the last forward in the log: the kernels after the last embedding kernel. Prints the sum of the
kernel durations (the step's GPU time with no launch gaps: compare it with the graph-replayed step time) and
the time per kernel name, largest first. Usage: step_kernel_times.py LOG [LABEL]
"""
import csv
import re
import sys
from collections import OrderedDict


def short_name(name: str) -> str:
    name = name.replace("(anonymous namespace)::", "")
    name = re.sub(r"\(.*$", "", name)           # argument list
    name = re.sub(r"^void ", "", name)
    name = re.sub(r"radixlm::cuda::(\w+::)?", "", name)
    return name[:70]


def main() -> None:
    path, label = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else sys.argv[1])
    with open(path, newline="") as f:
        lines = [line for line in f if line.startswith('"')]
    rows = [r for r in csv.DictReader(lines) if r.get("Metric Name") == "gpu__time_duration.sum"]
    starts = [i for i, r in enumerate(rows) if "embedding_kernel" in r["Kernel Name"]]
    if not rows or not starts:
        print(f"{label}: no kernels found")
        return
    step = rows[starts[-1]:]
    total = 0.0
    by_name: "OrderedDict[str, list]" = OrderedDict()
    for r in step:
        ns = float(r["Metric Value"].replace(",", ""))
        total += ns
        entry = by_name.setdefault(short_name(r["Kernel Name"]), [0, 0.0])
        entry[0] += 1
        entry[1] += ns
    print(f"{label}: {len(step)} kernels, {total / 1e3:.1f} us of kernel time in the last step")
    for name, (count, ns) in sorted(by_name.items(), key=lambda kv: -kv[1][1]):
        print(f"  {ns / 1e3:9.1f} us {100 * ns / total:5.1f}%  {count:4d} x {ns / count / 1e3:7.2f} us  {name}")


if __name__ == "__main__":
    main()
