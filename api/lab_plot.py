"""The lab day's plot (`homechef lab --plot`): KPIs over the day, one line per policy.

matplotlib is an optional dependency (the ``lab`` and ``bench`` extras): `plot_day` raises
`PlotUnavailable` with the install hint when it is missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from lab.kpis import SeriesPoint

__all__ = ["PlotUnavailable", "plot_day"]

_PANELS = (
    ("wait_at_chef_p50_s", "courier wait at chef p50 (min)", 1 / 60),
    ("order_to_door_p50_s", "order to door p50 (min)", 1 / 60),
    ("late_pct", "late (%)", 1.0),
    ("orders_waiting", "orders without a courier (queued or due)", 1.0),
    ("couriers_idle", "couriers idle", 1.0),
    ("placed", "orders placed per 15 min", 1.0),
)


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed."""


def plot_day(runs: Sequence[tuple[str, Sequence[SeriesPoint]]], path: Path, title: str) -> None:
    """Write a PNG with one panel per KPI (by the orders' placement time, 15-minute
    buckets; fleet panels: the fleet at each bucket's start) and one line per run."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise PlotUnavailable(
            "the plot needs matplotlib: pip install 'homechef-dispatch[lab]'") from exc
    fig, axes = plt.subplots(3, 2, figsize=(12, 10), sharex=True)
    for ax, (field, label, scale) in zip(axes.flat, _PANELS, strict=True):
        for name, points in runs:
            xs = [datetime.fromtimestamp(p.start_ms / 1000, tz=UTC) for p in points]
            ys = [None if (v := getattr(p, field)) is None else v * scale for p in points]
            ax.plot(xs, [float("nan") if y is None else y for y in ys], label=name,
                    marker=".")
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
    axes.flat[0].legend()
    for ax in axes[-1]:
        ax.set_xlabel("time of day (UTC)")
        ax.tick_params(axis="x", labelrotation=30)
    import matplotlib.dates as mdates

    axes[-1][0].xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=UTC))
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
