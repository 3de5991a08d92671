"""A simulation report folder: per-layer plots of cycles and of what bounds each layer, the
`SimStats` JSON and a Markdown table. matplotlib (Agg backend) is imported when a plot is drawn."""

from __future__ import annotations

import json
from pathlib import Path

from bitmill.sim.stats import SimStats

CYCLES_PLOT, BOUND_PLOT, STATS_JSON, TABLE_MD = "cycles.png", "bound.png", "stats.json", "layers.md"
_COLOURS = {"compute": "tab:blue", "load": "tab:orange", "store": "tab:green"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_cycles(stats: SimStats, path: Path) -> None:
    """Bar chart of the cycles of each layer, coloured by the layer's bottleneck."""
    plt = _pyplot()
    names = [l.name for l in stats.layers]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.3 * len(names)), 4.0))
    ax.bar(range(len(names)), [l.cycles for l in stats.layers],
           color=[_COLOURS[l.bottleneck] for l in stats.layers])
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_ylabel("cycles")
    ax.set_title(f"cycles per layer on {stats.config}: {stats.cycles:,} in all")
    ax.legend(handles=[plt.Rectangle((0, 0), 1, 1, color=c) for c in _COLOURS.values()],
              labels=[f"{k}-bound" for k in _COLOURS], fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_bounds(stats: SimStats, path: Path) -> None:
    """Stacked bars per layer: compute busy cycles, cycles waiting for loads and for stores."""
    plt = _pyplot()
    names = [l.name for l in stats.layers]
    parts = {"compute": [l.compute_cycles for l in stats.layers],
             "load": [l.wait_load for l in stats.layers],
             "store": [l.wait_store for l in stats.layers]}
    fig, ax = plt.subplots(figsize=(max(6.0, 0.3 * len(names)), 4.0))
    bottom = [0] * len(names)
    for unit, values in parts.items():
        label = "compute busy" if unit == "compute" else f"waiting for {unit}s"
        ax.bar(range(len(names)), values, bottom=bottom, color=_COLOURS[unit], label=label)
        bottom = [b + v for b, v in zip(bottom, values)]
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_ylabel("cycles of the compute unit")
    ax.set_title("what bounds each layer")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown_table(stats: SimStats) -> str:
    """Per-layer Markdown table: op, cycles, MAC utilisation, waits, bottleneck."""
    rows = [f"# Simulation on {stats.config}\n",
            f"{stats.cycles:,} cycles = {stats.milliseconds:.3f} ms at {stats.clock_mhz:g} MHz.\n",
            "| layer | op | cycles | MAC util | wait load | wait store | bound |",
            "|---|---|---:|---:|---:|---:|---|"]
    for l in stats.layers:
        util = f"{100 * l.mac_utilisation:.1f}%" if l.macs else "-"
        rows.append(f"| {l.name} | {l.op} | {l.cycles:,} | {util} | {l.wait_load:,} | "
                    f"{l.wait_store:,} | {l.bottleneck} |")
    return "\n".join(rows) + "\n"


def write_report(stats: SimStats, folder: Path) -> None:
    """Write the plots, ``stats.json`` and ``layers.md`` into ``folder`` (an existing, empty one)."""
    folder = Path(folder)
    plot_cycles(stats, folder / CYCLES_PLOT)
    plot_bounds(stats, folder / BOUND_PLOT)
    (folder / STATS_JSON).write_text(json.dumps(stats.to_dict(), indent=1))
    (folder / TABLE_MD).write_text(markdown_table(stats))
