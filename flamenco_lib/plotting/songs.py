"""A whole song on its time axis (notebook 11): what was sung, where the voice detector heard a
voice, and the lines each model wrote, over the log-Mel spectrogram."""

from __future__ import annotations

import numpy as np
from matplotlib.patches import Rectangle

from .features import plot_spectrogram
from .style import _ax

LANE_COLORS = ("C0", "C3", "C2", "C4")


def plot_song_lines(
    spec,
    *,
    sung: list[dict],
    falsetas: list[list[float]],
    lanes: dict[str, list[dict]],
    regions: list[tuple[float, float]] | None = None,
    sr: int = 16000,
    hop_length: int = 160,
    ax=None,
    title: str | None = None,
):
    """The log-Mel spectrogram of a song with, below it, one lane per row of time spans: the sung
    lines (their text), the falsetas (guitar alone, shaded), the voice detector's ``regions``,
    and one lane per model in ``lanes`` (``{name: [{"start", "end", "text"}, ...]}``, the lines it
    kept). A line drawn over a shaded falseta is text where nobody sings."""
    ax = _ax(ax)
    spec = np.asarray(spec)
    n_mels = spec.shape[0]
    plot_spectrogram(spec, sr=sr, hop_length=hop_length, ax=ax, colorbar=False)
    rows = [("sung", sung, "0.1")]
    if regions is not None:
        rows.append(("voice found", [{"start": s, "end": e} for s, e in regions], "C1"))
    rows += [(name, lines, LANE_COLORS[i % 4]) for i, (name, lines) in enumerate(lanes.items())]
    lane_h = n_mels * 0.18
    bottom = -lane_h * len(rows)
    for s, e in falsetas:
        ax.axvspan(s, e, ymin=0, ymax=1, color="0.5", alpha=0.18, lw=0)
    for k, (name, lines, color) in enumerate(rows):
        y = -lane_h * (k + 1)
        for ln in lines:
            ax.add_patch(
                Rectangle(
                    (ln["start"], y + 0.15 * lane_h),
                    ln["end"] - ln["start"],
                    0.7 * lane_h,
                    color=color,
                    alpha=0.55,
                    lw=0,
                )
            )
            if ln.get("text"):
                ax.text(
                    ln["start"],
                    y + 0.5 * lane_h,
                    " " + ln["text"][:28],
                    fontsize=5,
                    va="center",
                    clip_on=True,
                )
        ax.text(
            -0.01,
            y + 0.5 * lane_h,
            name,
            transform=ax.get_yaxis_transform(),
            ha="right",
            va="center",
            fontsize=7,
        )
    ax.set_ylim(bottom, n_mels)
    ax.set_yticks([0, n_mels // 2, n_mels])
    ax.set_ylabel("mel band")
    if title:
        ax.set_title(title)
    return ax
