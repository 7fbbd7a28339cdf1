"""The PNG of ``mmate bench``: per workload, the message rates of every client (ours vs aio-pika vs raw,
with the ratios in the title) and, below, the p50/p99 latencies where the workload reports them.

matplotlib with the Agg backend (no display needed; the ``plot`` extra). ``rpc`` results hold one
set of figures per concurrency: each is a panel of its own.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: bar colours: ours stands out, the references are muted
COLOURS = {"mmate_fast": "#d62728", "mmate_fast_transport": "#ff9896", "mmate_fast_transient": "#ff9896",
           "aio_pika": "#1f77b4", "raw": "#7f7f7f"}
OTHER = "#bcbd22"


@dataclass
class Panel:
    """One column of the plot: a workload (or an rpc concurrency)."""

    title: str
    rates: dict[str, float]
    ratios: str
    latency: dict[str, dict[str, float]] = field(default_factory=dict)


def _numbers(mapping: Any) -> dict[str, float]:
    if not isinstance(mapping, dict):
        return {}
    return {str(k): float(v) for k, v in mapping.items()
            if isinstance(v, int | float) and not isinstance(v, bool)}


def _ratio_text(vs_aio: Any, vs_raw: Any) -> str:
    parts = []
    if isinstance(vs_aio, int | float):
        parts.append(f"{vs_aio:.2f}x aio-pika")
    if isinstance(vs_raw, int | float):
        parts.append(f"{vs_raw:.2f} of raw")
    return ", ".join(parts)


def _latency(mapping: Any) -> dict[str, dict[str, float]]:
    if not isinstance(mapping, dict):
        return {}
    out = {str(c): _numbers(v) for c, v in mapping.items()}
    return {c: v for c, v in out.items() if v}


def panels(runs: list[dict[str, Any]]) -> list[Panel]:
    """The panels of the workload outcomes of ``mmate bench`` (those without a result are left out)."""
    out: list[Panel] = []
    for outcome in runs:
        result = outcome.get("result")
        if not isinstance(result, dict):
            continue
        name = str(outcome.get("workload") or result.get("workload") or "?")
        if result.get("level") == "mmate":
            name += " (mmate level)"
        rates = result.get("rates")
        if name == "rpc" and isinstance(rates, dict):
            for ck, per in rates.items():
                out.append(Panel(f"rpc {ck}", _numbers(per),
                                 _ratio_text((result.get("vs_aio_pika") or {}).get(ck),
                                             (result.get("vs_raw") or {}).get(ck)),
                                 _latency((result.get("latency_ms") or {}).get(ck))))
            continue
        out.append(Panel(name, _numbers(rates), _ratio_text(result.get("vs_aio_pika"), result.get("vs_raw")),
                         _latency(result.get("latency_ms"))))
    return out


def plot(runs: list[dict[str, Any]], path: Path, title: str) -> None:
    """Draw the panels of ``runs`` into the PNG ``path``; ValueError when no workload has a result."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = panels(runs)
    if not cols:
        raise ValueError("no workload produced a result to plot")
    with_latency = any(p.latency for p in cols)
    rows = 2 if with_latency else 1
    fig, axes = plt.subplots(rows, len(cols), figsize=(max(4.5 * len(cols), 6), 4.2 * rows), squeeze=False)
    try:
        for i, panel in enumerate(cols):
            _rates(axes[0][i], panel)
            if with_latency:
                _latencies(axes[1][i], panel)
        fig.suptitle(title)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)


def _rates(ax: Any, panel: Panel) -> None:
    clients = list(panel.rates)
    values = [panel.rates[c] for c in clients]
    bars = ax.bar(clients, values, color=[COLOURS.get(c, OTHER) for c in clients])
    ax.bar_label(bars, labels=[f"{v:,.0f}" for v in values], fontsize=8)
    ax.set_title(f"{panel.title}\n{panel.ratios}" if panel.ratios else panel.title, fontsize=10)
    ax.set_ylabel("messages/s")
    ax.tick_params(axis="x", labelrotation=20, labelsize=8)


def _latencies(ax: Any, panel: Panel) -> None:
    if not panel.latency:
        ax.set_axis_off()
        ax.text(0.5, 0.5, "no latency reported", ha="center", va="center", transform=ax.transAxes)
        return
    clients = list(panel.latency)
    width = 0.38
    xs = range(len(clients))
    for offset, pct, alpha in ((-width / 2, "p50", 1.0), (width / 2, "p99", 0.55)):
        values = [panel.latency[c].get(pct, 0.0) for c in clients]
        bars = ax.bar([x + offset for x in xs], values, width, label=pct, alpha=alpha,
                      color=[COLOURS.get(c, OTHER) for c in clients])
        ax.bar_label(bars, labels=[f"{v:.2f}" for v in values], fontsize=7)
    ax.set_xticks(list(xs), clients, rotation=20, fontsize=8)
    ax.set_ylabel("latency ms (p50 solid, p99 light)")
    ax.set_title(f"{panel.title}: latency", fontsize=10)


__all__ = ["Panel", "panels", "plot"]
