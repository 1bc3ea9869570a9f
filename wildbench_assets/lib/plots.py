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
        return _png(fig)
    finally:
        plt.close(fig)


def confusion_png(matrix: list[list[int]], labels: list[str], title: str) -> bytes:
    """Row-normalised confusion matrix (rows: truth, columns: prediction)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    counts = np.asarray(matrix, dtype=float)
    share = counts / np.clip(counts.sum(axis=1, keepdims=True), 1, None)
    size = 2.2 + 0.22 * len(labels)
    fig, ax = plt.subplots(figsize=(size, size), dpi=72)
    try:
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=6)
        ax.set_yticks(range(len(labels)), labels, fontsize=6)
        ax.set_xlabel("predicted", fontsize=7)
        ax.set_ylabel("true", fontsize=7)
        ax.set_title(title, fontsize=8)
        return _png(fig)
    finally:
        plt.close(fig)


def _png(fig) -> bytes:
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
