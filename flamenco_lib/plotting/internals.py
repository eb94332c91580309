"""Figures of what happens inside the models: a CTC model's posteriors and forward trellis,
and Whisper's anatomy (sizes, encoder states, cross-attention).

Drawn in ``notebooks/03_ctc_vs_deep_fusion.ipynb`` and ``notebooks/04_whisper_anatomy.ipynb``.
"""

from __future__ import annotations

import numpy as np

from .style import _ax


def plot_ctc_posteriors(
    log_probs, *, vocab, frame_s: float = 0.02, top: int = 12, ax=None, title: str | None = None
):
    """Frame posteriors of a CTC model (``T x C`` log-probabilities) as an image of the ``top``
    classes that peak highest (blank shown as ``∅``, space as ``␣``), time in seconds on x."""
    ax = _ax(ax)
    p = np.exp(np.asarray(log_probs, dtype=float))
    keep = np.sort(np.argsort(p.max(axis=0))[::-1][:top])
    names = ["∅" if i == 0 else ("␣" if vocab[i] == " " else vocab[i]) for i in keep]
    im = ax.imshow(
        p[:, keep].T,
        origin="lower",
        aspect="auto",
        cmap="Blues",
        vmin=0,
        vmax=1,
        extent=(0, len(p) * frame_s, -0.5, len(keep) - 0.5),
        interpolation="nearest",
    )
    ax.set_yticks(range(len(keep)), names)
    ax.set(xlabel="time (s)", ylabel="class")
    ax.figure.colorbar(im, ax=ax, pad=0.01, label="posterior")
    if title:
        ax.set_title(title)
    return ax


def plot_ctc_trellis(
    alpha,
    *,
    states,
    ax=None,
    title: str | None = None,
    path=None,
    path_label: str = "likeliest state per frame",
):
    """The CTC forward variables ``alpha`` (``T x (2S+1)`` log-probabilities) as an image over
    time and extended-label state; ``states`` names the rows (blank ``∅``); ``path`` (one state
    per frame) is drawn on top with ``path_label``."""
    ax = _ax(ax)
    a = np.asarray(alpha, dtype=float)
    a = np.where(a < -1e20, np.nan, a)
    im = ax.imshow(a.T, origin="lower", aspect="auto", cmap="viridis", interpolation="nearest")
    if path is not None:
        ax.plot(np.arange(len(path)), path, color="C3", marker="o", ms=3, lw=1.2, label=path_label)
        ax.legend(loc="upper left")
    ax.set_yticks(
        range(len(states)), ["∅" if s == "" else ("␣" if s == " " else s) for s in states]
    )
    ax.set(xlabel="frame t", ylabel="state s of y'")
    ax.figure.colorbar(im, ax=ax, pad=0.01, label="log α")
    if title:
        ax.set_title(title)
    return ax


def plot_model_sizes(table, *, ax=None, title: str | None = None):
    """Parameters of the encoder and the decoder per Whisper size (a DataFrame or records with
    columns ``size``, ``encoder``, ``decoder``, ``parameters``) as grouped bars on a log scale,
    each group labelled with its total in millions."""
    import pandas as pd

    ax = _ax(ax)
    df = pd.DataFrame(table)
    x = np.arange(len(df))
    width = 0.38
    ax.bar(x - width / 2, df["encoder"] / 1e6, width, label="encoder", color="C0")
    ax.bar(
        x + width / 2,
        df["decoder"] / 1e6,
        width,
        label="decoder (incl. token embedding)",
        color="C1",
    )
    for xi, total, top in zip(
        x, df["parameters"], np.maximum(df["encoder"], df["decoder"]), strict=True
    ):
        ax.annotate(
            f"{total / 1e6:.0f} M",
            (xi, top / 1e6),
            textcoords="offset points",
            xytext=(0, 3),
            ha="center",
            fontsize=8,
        )
    ax.set_yscale("log")
    ax.set_xticks(x, df["size"])
    ax.set(
        ylabel="parameters (millions)",
        ylim=(1, df[["encoder", "decoder"]].to_numpy().max() / 1e6 * 3),
    )
    ax.legend(loc="upper left")
    if title:
        ax.set_title(title)
    return ax


def plot_state_difference(
    curves: dict,
    *,
    frame_s: float = 0.02,
    speech_s: float | None = None,
    baseline: float | None = None,
    ax=None,
    title: str | None = None,
):
    """Per-frame differences of encoder states (``{label: 1-D array}``, one value per state,
    time from the start of the clip), the speech span ``[0, speech_s]`` shaded and an optional
    ``baseline`` level drawn dotted for scale."""
    ax = _ax(ax)
    for label, values in curves.items():
        values = np.asarray(values)
        ax.plot(np.arange(len(values)) * frame_s, values, lw=0.8, label=label)
    if speech_s:
        ax.axvspan(0, speech_s, color="0.85", zorder=0, label="speech")
    if baseline is not None:
        ax.axhline(baseline, color="0.3", ls=":", lw=1.0, label="neighbouring states (20 ms apart)")
    ax.set(
        xlabel="time from the start of the clip (s)", ylabel="relative difference", xlim=(0, None)
    )
    ax.legend(loc="upper right", fontsize=8)
    if title:
        ax.set_title(title)
    return ax


def plot_cross_attention(
    weights,
    *,
    tokens,
    frame_s: float = 0.02,
    ax=None,
    title: str | None = None,
    colorbar: bool = True,
):
    """Cross-attention of a decoded line: ``weights`` (``n_tokens x n_frames``) as an image, one
    row per token (``tokens`` names them, top to bottom; a space shows as ``␣``), time in
    seconds on x."""
    ax = _ax(ax)
    w = np.asarray(weights, dtype=float)
    im = ax.imshow(
        w,
        aspect="auto",
        cmap="viridis",
        interpolation="nearest",
        extent=(0, w.shape[1] * frame_s, len(w) - 0.5, -0.5),
    )
    ax.set_yticks(range(len(tokens)), [t.replace(" ", "␣") for t in tokens], fontsize=7)
    ax.set(xlabel="time (s)", ylabel="token written")
    ax.grid(False)
    if colorbar:
        ax.figure.colorbar(im, ax=ax, pad=0.01, label="attention")
    if title:
        ax.set_title(title)
    return ax
