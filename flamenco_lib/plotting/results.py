"""Figures of results: training curves, WER bars, and the stages compared with their
confidence intervals (tables from :mod:`flamenco_lib.analysis`).

Drawn in ``notebooks/03_ctc_vs_deep_fusion.ipynb`` and the experiment notebooks 06-09 (training
curves, WER bars), and in the results notebook ``notebooks/10_results.ipynb``.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.container import BarContainer

from .style import _ax


def plot_training_curve(
    history,
    *,
    x: str = "epoch",
    y: str = "loss",
    ax=None,
    title: str | None = None,
    label: str | None = None,
):
    """A training history (list of dicts or a DataFrame) as a line of ``y`` against ``x``."""
    import pandas as pd

    ax = _ax(ax)
    df = pd.DataFrame(history)
    ax.plot(df[x], df[y], marker="o", ms=3, lw=1.2, label=label)
    ax.set(xlabel=x, ylabel=y)
    if label:
        ax.legend()
    if title:
        ax.set_title(title)
    return ax


def plot_training_losses(summaries: dict, *, ax=None, title: str | None = None):
    """The training loss of several stages on one axes, one line each: ``{label: summary}``,
    a summary being what ``train_log.json`` holds (what :func:`flamenco_lib.pipeline.run_stage`
    returns), its ``log`` entries with a ``loss`` against their ``step``."""
    ax = _ax(ax)
    for label, summary in summaries.items():
        plot_training_curve(
            [e for e in summary["log"] if "loss" in e], x="step", y="loss", ax=ax, label=label
        )
    if title:
        ax.set_title(title)
    return ax


def plot_wer_bars(
    table,
    *,
    x: str = "system",
    y: str = "wer",
    hue: str | None = None,
    ax=None,
    title: str | None = None,
    percent: bool = True,
):
    """Seaborn bars of an error rate per system (a DataFrame or records), each bar labelled."""
    import pandas as pd

    ax = _ax(ax)
    df = pd.DataFrame(table).copy()
    if percent:
        df[y] = 100 * df[y]
    sns.barplot(
        data=df,
        x=x,
        y=y,
        hue=hue,
        ax=ax,
        palette="deep" if hue else None,
        color=None if hue else "C0",
    )
    for container in ax.containers:
        ax.bar_label(container, fmt="%.0f" if percent else "%.2f", padding=2, fontsize=8)
    ax.set(xlabel="", ylabel=f"{y.upper()} (%)" if percent else y)
    ax.tick_params(axis="x", rotation=15)
    if title:
        ax.set_title(title)
    return ax


def plot_stage_comparison(
    table,
    *,
    x: str = "model",
    hue: str | None = "test_set",
    hue_order=None,
    y: str = "wer",
    lo: str = "wer_lo",
    hi: str = "wer_hi",
    ax=None,
    title: str | None = None,
):
    """Bars of an error rate in percent with their 95% intervals as error bars, one bar per
    (``x``, ``hue``) row of ``table`` (e.g. :func:`flamenco_lib.analysis.runs_table`), each
    labelled with its value; a missing combination leaves a gap. ``hue_order`` fixes the hue
    levels (and so their colours) across figures; by default, the order in which they appear."""
    import pandas as pd

    ax = _ax(ax)
    df = pd.DataFrame(table)
    hue = hue or "_all"
    df = df.assign(_all=y)
    order, levels = df[x].unique(), list(hue_order or df[hue].unique())
    wide = {
        c: df.pivot(index=x, columns=hue, values=c).reindex(index=order, columns=levels)
        for c in (y, lo, hi)
    }
    yerr = np.stack(
        [[wide[y][k] - wide[lo][k], wide[hi][k] - wide[y][k]] for k in levels]
    )  # (hue, 2, x)
    wide[y].plot.bar(
        ax=ax,
        yerr=yerr,
        capsize=2,
        width=0.8,
        legend=hue != "_all",
        error_kw={"lw": 0.8, "ecolor": "0.2"},
    )
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]  # one per hue level
    for container, k in zip(
        bars, levels, strict=False
    ):  # pandas draws a missing bar as 0: leave it unlabelled
        ax.bar_label(
            container,
            labels=[f"{v:.0f}" if np.isfinite(v) else "" for v in wide[y][k]],
            padding=2,
            fontsize=7,
        )
    ax.set(xlabel="", ylabel=f"{y.upper()} (%) [95% CI]")
    plt.setp(ax.get_xticklabels(), rotation=15, ha="right", rotation_mode="anchor")
    if hue != "_all":
        ax.legend(
            title=hue.replace("_", " "), fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0)
        )
    if title:
        ax.set_title(title)
    return ax


def plot_wer_heatmap(
    table,
    *,
    index: str = "model",
    columns: str = "palo",
    values: str = "wer",
    ax=None,
    title: str | None = None,
):
    """A long table (e.g. :func:`flamenco_lib.analysis.per_palo_table`) as an annotated seaborn
    heatmap of ``values`` (percent), ``index`` rows in first-seen order, ``columns`` sorted."""
    import pandas as pd

    df = pd.DataFrame(table)
    grid = df.pivot(index=index, columns=columns, values=values).reindex(df[index].unique())
    ax = (
        ax
        if ax is not None
        else plt.subplots(figsize=(max(5, 0.6 * grid.shape[1] + 2), 0.45 * len(grid) + 1.2))[1]
    )
    sns.heatmap(
        grid,
        annot=True,
        fmt=".0f",
        cmap="rocket_r",
        vmin=0,
        linewidths=0.5,
        ax=ax,
        cbar_kws={"label": f"{values.upper()} (%)"},
        annot_kws={"fontsize": 7},
    )
    ax.set(xlabel=columns, ylabel="")
    ax.tick_params(axis="x", rotation=45)
    if title:
        ax.set_title(title)
    return ax


def plot_sdi_bars(table, *, ax=None, title: str | None = None):
    """Substitutions, deletions and insertions (% of reference words) as stacked horizontal bars,
    one per row of ``table`` (:func:`flamenco_lib.analysis.sdi_table`), labelled ``model · test set``
    when the table holds more than one test set; the bar's length is the WER."""
    import pandas as pd

    df = pd.DataFrame(table)
    labels = (
        df["model"]
        if df.get("test_set", pd.Series([0])).nunique() <= 1
        else df["model"] + " · " + df["test_set"]
    )
    ax = ax if ax is not None else plt.subplots(figsize=(7, 0.3 * len(df) + 1.2))[1]
    parts = df[["substitutions", "deletions", "insertions"]].set_axis(list(labels))
    parts.plot.barh(stacked=True, ax=ax, width=0.75, color=sns.color_palette("deep", 3))
    ax.invert_yaxis()  # the first row on top
    ax.set(xlabel="% of reference words (S + D + I = WER)", ylabel="")
    ax.legend(loc="lower right", fontsize=8)
    if title:
        ax.set_title(title)
    return ax


def plot_forgetting(
    table, *, path=("zero-shot", "stage 1", "stage 2", "stage 3"), ax=None, title: str | None = None
):
    """Cante WER (x) against speech WER (y) per model, 95% intervals as error bars, each point
    labelled (:func:`flamenco_lib.analysis.forgetting_table`). The models named in ``path`` that
    are present are joined by arrows in that order: down is less forgetting, left is better cante."""
    import pandas as pd

    ax = ax if ax is not None else plt.subplots(figsize=(5.5, 4.2))[1]
    df = pd.DataFrame(table)
    xerr = [df["cante_wer"] - df["cante_wer_lo"], df["cante_wer_hi"] - df["cante_wer"]]
    yerr = [df["speech_wer"] - df["speech_wer_lo"], df["speech_wer_hi"] - df["speech_wer"]]
    ax.errorbar(
        df["cante_wer"], df["speech_wer"], xerr=xerr, yerr=yerr, fmt="none", ecolor="0.6", lw=0.8
    )
    sns.scatterplot(
        data=df, x="cante_wer", y="speech_wer", hue="model", s=50, ax=ax, legend=False, zorder=3
    )
    for row in df.itertuples():
        ax.annotate(
            row.model,
            (row.cante_wer, row.speech_wer),
            textcoords="offset points",
            xytext=(5, 4),
            fontsize=8,
        )
    steps = df.set_index("model").reindex([m for m in path if m in set(df["model"])])
    for (_, a), (_, b) in zip(steps.iterrows(), steps.iloc[1:].iterrows(), strict=False):
        ax.annotate(
            "",
            (b["cante_wer"], b["speech_wer"]),
            (a["cante_wer"], a["speech_wer"]),
            arrowprops={"arrowstyle": "->", "color": "0.4", "lw": 0.8, "shrinkA": 5, "shrinkB": 5},
        )
    ax.set(
        xlabel="cante test WER (%)", ylabel="speech test WER (%)", xlim=(0, None), ylim=(0, None)
    )
    if title:
        ax.set_title(title)
    return ax


VERDICT_COLORS = {"better": "C2", "worse": "C3", "no clear difference": "0.45"}


def plot_differences(table, *, ax=None, title: str | None = None):
    """One line per comparison of :func:`flamenco_lib.analysis.paired_table`: the WER difference
    (model - baseline, points) with its paired 95% interval, coloured by verdict; left of the
    zero line the model is better."""
    import pandas as pd

    df = pd.DataFrame(table).iloc[::-1].reset_index(drop=True)
    ax = ax if ax is not None else plt.subplots(figsize=(7, 0.38 * len(df) + 1.2))[1]
    for i, r in df.iterrows():
        color = VERDICT_COLORS.get(r["verdict"], "0.45")
        # The interval is drawn as its own segment, not as error bars around the point: on a few
        # utterances the percentile interval of a ratio can miss the point estimate, and
        # matplotlib refuses negative error-bar lengths.
        ax.plot([r["delta_lo"], r["delta_hi"]], [i, i], color=color, lw=1.5, marker="|", ms=8)
        ax.plot(r["delta"], i, "o", color=color, label=r["verdict"])
    ax.axvline(0, color="0.2", lw=0.8)
    ax.set_yticks(
        range(len(df)),
        [f"{r.model} vs {r.baseline} ({r.test_set})" for r in df.itertuples()],
        fontsize=8,
    )
    ax.set(xlabel="WER difference (points): model - baseline")
    handles = dict(zip(*ax.get_legend_handles_labels()[::-1], strict=True))  # one entry per verdict
    ax.legend(handles.values(), handles.keys(), fontsize=8, loc="best")
    if title:
        ax.set_title(title)
    return ax
