#!/usr/bin/env python3
"""Where one kernel's warps wait, instruction by instruction, from Nsight Compute's source page.

Input: `ncu -i REPORT --page source --print-source sass --csv` of a report taken with
`--section SourceCounters`. Prints the stall reasons over the whole kernel, then the instructions with the
most warp-stall samples, each with the instructions just before it (the load whose result it waits for is
usually among them) and its main reasons. Usage: sass_stalls.py CSV [LABEL] [TOP]
"""
import csv
import sys


def read_rows(path):
    with open(path, newline="", errors="replace") as f:
        rows = list(csv.reader(f))
    header_at = next(i for i, r in enumerate(rows) if "Address" in r and "Source" in r)
    header = rows[header_at]
    body = [r for r in rows[header_at + 1:] if len(r) == len(header)]
    return header, body


def number(text):
    try:
        return float(text.replace(",", "")) if text else 0.0
    except ValueError:
        return 0.0


def main():
    path = sys.argv[1]
    label = sys.argv[2] if len(sys.argv) > 2 else path
    top = int(sys.argv[3]) if len(sys.argv) > 3 else 6
    header, body = read_rows(path)
    source = header.index("Source")
    samples = header.index("Warp Stall Sampling (All Samples)")
    executed = header.index("Instructions Executed")
    reasons = [i for i, name in enumerate(header) if name.startswith("stall_") and "Not Issued" not in name]
    total = sum(number(r[samples]) for r in body)
    if total == 0:
        print(f"{label}: no stall samples")
        return
    overall = sorted(((sum(number(r[i]) for r in body) / total, header[i][6:]) for i in reasons), reverse=True)
    print(f"{label}: {int(total)} samples over {len(body)} instructions; reasons: "
          + ", ".join(f"{name} {share:.0%}" for share, name in overall[:6]))
    hottest = sorted(range(len(body)), key=lambda i: -number(body[i][samples]))[:top]
    for at in sorted(hottest):
        row = body[at]
        why = ", ".join(f"{header[i][6:]} {number(row[i]) / total:.1%}" for i in reasons
                        if number(row[i]) / total >= 0.005)
        print(f"  {number(row[samples]) / total:5.1%} at #{at} (executed {row[executed]}): {row[source].strip()}"
              f"  [{why}]")
        for before in range(max(0, at - 4), at):
            print(f"           #{before}: {body[before][source].strip()}")


if __name__ == "__main__":
    main()
