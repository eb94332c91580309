"""Every figure of the thesis: one function per figure kind (``ax=`` in, ``ax`` out), one thesis
style, and one :func:`savefig` that writes PNG + PDF under ``report/figures/``.

Figures are build outputs: regenerate them (``make report``), never edit them by hand.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from .paths import report_dir

THESIS_RC = {
    "figure.dpi": 110,
    "savefig.dpi": 200,
    "savefig.bbox": "tight",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "pdf.fonttype": 42,  # TrueType in PDFs: editable text, accepted by thesis templates
    "ps.fonttype": 42,
}


def set_style() -> None:
    """The thesis look: seaborn's ``whitegrid`` on the ``paper`` context plus :data:`THESIS_RC`."""
    sns.set_theme(context="paper", style="whitegrid", rc=THESIS_RC)


def savefig(fig, name: str, *, outdir: str | Path | None = None, formats=("png", "pdf")) -> list[Path]:
    """Save ``fig`` as ``<outdir>/<name>.png`` and ``.pdf`` (default ``report/figures/``).

    ``name`` follows the notebook that makes the figure: ``01-mel-filterbank``.
    Returns the written paths.
    """
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"savefig: {name!r} is not a plain figure name like '01-mel-filterbank'")
    outdir = Path(outdir) if outdir is not None else report_dir() / "figures"
    outdir.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in formats:
        path = outdir / f"{name}.{ext}"
        fig.savefig(path)
        paths.append(path)
    return paths


def _ax(ax):
    return ax if ax is not None else plt.subplots(figsize=(7, 2.6))[1]


def plot_waveform(audio, *, sr: int = 16000, ax=None, title: str | None = None, **kw):
    """Waveform against time in seconds."""
    ax = _ax(ax)
    t = np.arange(len(audio)) / sr
    ax.plot(t, audio, lw=0.5, **kw)
    ax.set(xlabel="time (s)", ylabel="amplitude", xlim=(0, t[-1] if len(t) else 1))
    if title:
        ax.set_title(title)
    return ax


def plot_spectrogram(
    spec,
    *,
    sr: int = 16000,
    hop_length: int = 160,
    ax=None,
    title: str | None = None,
    y_axis: str = "mel",
    fmax: float | None = None,
    colorbar: bool = True,
    label: str = "log-Mel",
):
    """Image of a spectrogram-like matrix (``n_bins x n_frames``), time in seconds on x.

    ``y_axis``: ``"mel"`` (band index), ``"hz"`` (linear frequency up to ``fmax``) or
    ``"coef"`` (cepstral coefficient index).
    """
    ax = _ax(ax)
    spec = np.asarray(spec)
    t_max = spec.shape[1] * hop_length / sr
    top = {"hz": fmax or sr / 2}.get(y_axis, spec.shape[0])
    im = ax.imshow(spec, origin="lower", aspect="auto", extent=(0, t_max, 0, top), cmap="magma")
    ax.set(xlabel="time (s)", ylabel={"mel": "mel band", "hz": "frequency (Hz)", "coef": "coefficient"}[y_axis])
    if title:
        ax.set_title(title)
    if colorbar:
        ax.figure.colorbar(im, ax=ax, pad=0.01, label=label)
    return ax


def plot_filterbank(filters, *, sr: int = 16000, ax=None, title: str | None = None):
    """Each mel filter as a triangle over frequency in Hz."""
    ax = _ax(ax)
    filters = np.asarray(filters)
    hz = np.linspace(0, sr / 2, filters.shape[1])
    colors = sns.color_palette("viridis", filters.shape[0])
    for row, c in zip(filters, colors):
        ax.plot(hz, row, lw=0.8, color=c)
    ax.set(xlabel="frequency (Hz)", ylabel="weight", xlim=(0, sr / 2))
    ax.set_title(title or f"{filters.shape[0]} mel filters (Slaney)")
    return ax


def plot_cepstrum(ceps, *, sr: int = 16000, ax=None, max_quefrency_ms: float = 20.0, mark_pitch: float | None = None):
    """Real cepstrum against quefrency in milliseconds; ``mark_pitch`` (Hz) draws its period."""
    ax = _ax(ax)
    ceps = np.asarray(ceps)
    q_ms = np.arange(len(ceps)) / sr * 1000
    keep = (q_ms > 0.5) & (q_ms <= max_quefrency_ms)
    ax.plot(q_ms[keep], ceps[keep], lw=0.8)
    if mark_pitch:
        ax.axvline(1000 / mark_pitch, color="C3", ls="--", lw=0.8, label=f"period of {mark_pitch:.0f} Hz")
        ax.legend(loc="upper right")
    ax.set(xlabel="quefrency (ms)", ylabel="cepstrum")
    return ax
