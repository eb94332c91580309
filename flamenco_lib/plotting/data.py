"""Figures of the corpora: clips per split, feature histograms per split, styles compared
(tables from :mod:`flamenco_lib.data.stats`).

Drawn in ``notebooks/05_data.ipynb``.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from .style import _ax

SPLIT_COLORS = {
    "train": "C0",
    "dev": "C1",
    "test": "C2",
}  # the same colour per split in every figure


def plot_split_counts(table, *, ax=None, title: str | None = None, xlabel: str = "clips"):
    """Horizontal stacked bars, one per row of a (category x split) count table
    (:func:`flamenco_lib.data.stats.split_table`: palos, voices), one colour per split."""
    import pandas as pd

    df = pd.DataFrame(table)
    ax = ax if ax is not None else plt.subplots(figsize=(6, 0.25 * len(df) + 1.2))[1]
    df.iloc[::-1].plot.barh(
        stacked=True, ax=ax, width=0.8, color=[SPLIT_COLORS.get(c, "0.5") for c in df.columns]
    )
    ax.set(xlabel=xlabel, ylabel=df.index.name or "")
    ax.legend(title="split", fontsize=8, loc="lower right")
    if title:
        ax.set_title(title)
    return ax


def plot_feature_hist(
    frame,
    column: str,
    *,
    hue: str | None = "split",
    ax=None,
    xlabel: str | None = None,
    title: str | None = None,
):
    """Seaborn histogram of one column of a clip table (:func:`flamenco_lib.data.stats.read_frame`),
    one outline per ``hue`` level, each as a percentage of its own clips (so a small test split
    compares with a large training split). Missing values are left out."""
    import pandas as pd

    ax = _ax(ax)
    df = pd.DataFrame(frame).dropna(subset=[column])
    levels = [s for s in SPLIT_COLORS if s in set(df[hue])] if hue == "split" else None
    sns.histplot(
        data=df,
        x=column,
        hue=hue,
        hue_order=levels,
        element="step",
        stat="percent",
        common_norm=False,
        palette=SPLIT_COLORS if hue == "split" else None,
        ax=ax,
    )
    ax.set(xlabel=xlabel or column, ylabel="% of clips")
    if title:
        ax.set_title(title)
    return ax


def plot_paired(
    table, columns, *, labels=None, ax=None, ylabel: str | None = None, title: str | None = None
):
    """The same items measured several ways (e.g. the duration of each clip spoken, sung a cappella
    and sung with guitar: :func:`flamenco_lib.data.stats.compare_styles`): a box per column and a
    thin grey line per row joining its values."""
    import pandas as pd

    ax = _ax(ax)
    df = pd.DataFrame(table)[list(columns)].astype(float)
    x = np.arange(len(df.columns))
    ax.plot(x, df.to_numpy().T, color="0.5", lw=0.4, alpha=0.3)
    ax.boxplot([df[c].dropna() for c in df.columns], positions=x, widths=0.35, showfliers=False)
    ax.set_xticks(x, list(labels or df.columns))
    ax.set(ylabel=ylabel or "")
    if title:
        ax.set_title(title)
    return ax
