"""Small PNG plots for asset metadata (kept small: large images break the UI)."""

from __future__ import annotations

import io

import pandas as pd


def bar_chart_png(table: pd.DataFrame, title: str, ylabel: str = "images", stacked: bool = False) -> bytes:
    """Grouped (or stacked) bars: one bar group per row of `table`, one colour per column."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 2.6), dpi=72)
    try:
        if len(table):
            table.plot.bar(ax=ax, stacked=stacked, width=0.8)
        ax.set_title(title, fontsize=9)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.set_xlabel("")
        ax.tick_params(labelsize=7)
        if ax.get_legend() is not None:
            ax.legend(fontsize=7)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        return buffer.getvalue()
    finally:
        plt.close(fig)
