"""The latest-arriving register inputs of a place-and-route run, from nextpnr's detailed report.

    python bench/routed_nets.py build/.../pnr.json [--top 30] [--group]

Reads the JSON report that ``bitmill hw synth --pnr`` has nextpnr write per seed (``pnr.json``,
``pnr-seed2.json``, ...; with ``--detailed-timing-report`` it lists, for every net that drives a
register, block-RAM or multiplier input, the arrival time there after routing). Prints the
inputs that the signal reaches last, with the net that reaches them; ``--group`` prints the
latest input per block (the cell's hierarchical name up to its last dot), so every slow block
shows up once. Arrivals later than the clock's critical path (1 / Fmax) start at another
clock or at a pin and are left out. These figures are one placement's measurement, the routed
counterpart of ``bench/logic_paths.py``'s estimate.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def endpoint_rows(report: dict) -> list[tuple[float, str, str, str]]:
    """(arrival ns, endpoint cell, port, net) of every register input the clock's own paths
    reach, latest first; one row per input."""
    nets = report.get("detailed_net_timings")
    if nets is None:
        raise ValueError("the report has no detailed_net_timings (nextpnr ran without "
                         "--detailed-timing-report)")
    fmax = [v["achieved"] for v in report.get("fmax", {}).values()]
    if not fmax:
        raise ValueError("the report has no Fmax")
    period = 1000.0 / min(fmax) + 1e-3
    latest: dict[tuple[str, str], tuple[float, str]] = {}
    for net in nets:
        for end in net.get("endpoints", []):
            arrival = float(end["delay"][-1]) if isinstance(end["delay"], list) else float(end["delay"])
            key = (end["cell"], end["port"])
            if arrival <= period and arrival > latest.get(key, (-1.0, ""))[0]:
                latest[key] = (arrival, net["net"])
    rows = [(at, cell, port, net) for (cell, port), (at, net) in latest.items()]
    return sorted(rows, key=lambda r: -r[0])


def block_of(name: str) -> str:
    """The hierarchical block of a cell: its name up to the last dot (``top`` if none)."""
    return name.rsplit(".", 1)[0] if "." in name else "top"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="nextpnr --report JSON written with --detailed-timing-report")
    parser.add_argument("--top", type=int, default=30, help="inputs (or blocks) to list (default: 30)")
    parser.add_argument("--group", action="store_true", help="the latest input per block")
    args = parser.parse_args(argv)
    if args.top < 1:
        print(f"error: --top must be at least 1, not {args.top}", file=sys.stderr)
        return 2
    try:
        report = json.loads(args.report.read_text())
        rows = endpoint_rows(report)
    except (OSError, json.JSONDecodeError, ValueError, KeyError, TypeError, IndexError) as e:
        print(f"error: cannot read {args.report} as a nextpnr detailed timing report: {e}", file=sys.stderr)
        return 2
    fmax = min(v["achieved"] for v in report["fmax"].values())
    print(f"{len(rows):,} register inputs; Fmax {fmax:.2f} MHz ({1000 / fmax:.2f} ns)")
    if args.group:
        seen: set[str] = set()
        rows = [r for r in rows if block_of(r[1]) not in seen and not seen.add(block_of(r[1]))]
    print(f"\n{'arrive ns':>9}  input (net)")
    for at, cell, port, net in rows[:args.top]:
        print(f"{at:9.2f}  {cell}.{port} ({net})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
