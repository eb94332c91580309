"""Figures of the signal and its features: waveform, frames, spectra, the mel scale and
filterbank, log-Mel spectrograms, cepstra and pitch tracks.

Drawn in ``notebooks/01_speech_and_log_mel.ipynb`` and ``notebooks/02_cepstrum.ipynb`` (and
by ``python -m flamenco_lib figures``).
"""

from __future__ import annotations

import numpy as np
import seaborn as sns

from .style import _ax


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
    ax.set(
        xlabel="time (s)",
        ylabel={"mel": "mel band", "hz": "frequency (Hz)", "coef": "coefficient"}[y_axis],
    )
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
    for row, c in zip(filters, colors, strict=True):
        ax.plot(hz, row, lw=0.8, color=c)
    ax.set(xlabel="frequency (Hz)", ylabel="weight", xlim=(0, sr / 2))
    ax.set_title(title or f"{filters.shape[0]} mel filters (Slaney)")
    return ax


def plot_cepstrum(
    ceps,
    *,
    sr: int = 16000,
    ax=None,
    max_quefrency_ms: float = 20.0,
    mark_pitch: float | None = None,
):
    """Real cepstrum against quefrency in milliseconds; ``mark_pitch`` (Hz) draws its period."""
    ax = _ax(ax)
    ceps = np.asarray(ceps)
    q_ms = np.arange(len(ceps)) / sr * 1000
    keep = (q_ms > 0.5) & (q_ms <= max_quefrency_ms)
    ax.plot(q_ms[keep], ceps[keep], lw=0.8)
    if mark_pitch:
        ax.axvline(
            1000 / mark_pitch, color="C3", ls="--", lw=0.8, label=f"period of {mark_pitch:.0f} Hz"
        )
        ax.legend(loc="upper right")
    ax.set(xlabel="quefrency (ms)", ylabel="cepstrum")
    return ax


def plot_frames(
    audio,
    *,
    sr: int = 16000,
    frame_length: int = 400,
    hop_length: int = 160,
    n_frames: int = 4,
    start: int = 0,
    ax=None,
    title: str | None = None,
):
    """A stretch of waveform with ``n_frames`` consecutive analysis frames drawn as shaded,
    overlapping spans (each ``frame_length`` samples, ``hop_length`` apart) and a Hann window
    over each."""
    ax = _ax(ax)
    audio = np.asarray(audio)
    stop = min(len(audio), start + (n_frames - 1) * hop_length + frame_length)
    t_ms = np.arange(start, stop) / sr * 1000
    ax.plot(t_ms, audio[start:stop], lw=0.7, color="0.3")
    peak = np.abs(audio[start:stop]).max() or 1.0
    window = np.hanning(frame_length) * peak
    for k, c in zip(range(n_frames), sns.color_palette("deep", n_frames), strict=True):
        a = start + k * hop_length
        span = np.arange(a, a + frame_length) / sr * 1000
        ax.axvspan(span[0], span[-1], color=c, alpha=0.12)
        ax.plot(span, window[: len(span)], color=c, lw=1.0, ls="--")
    ax.set(xlabel="time (ms)", ylabel="amplitude", xlim=(t_ms[0], t_ms[-1]))
    ax.set_title(title or f"{n_frames} frames of {frame_length} samples, hop {hop_length}")
    return ax


def plot_spectrum(
    freq_hz,
    values,
    *,
    ax=None,
    label: str | None = None,
    title: str | None = None,
    ylabel: str = "log magnitude",
    **kw,
):
    """One spectrum (a line over frequency in Hz); call again on the same ``ax`` to overlay."""
    ax = _ax(ax)
    ax.plot(freq_hz, values, lw=kw.pop("lw", 0.8), label=label, **kw)
    ax.set(xlabel="frequency (Hz)", ylabel=ylabel, xlim=(0, float(np.max(freq_hz))))
    if label:
        ax.legend(loc="upper right")
    if title:
        ax.set_title(title)
    return ax


def plot_mel_scale(*, fmax: float = 8000.0, ax=None):
    """The mel scale (Slaney) against frequency: linear below 1 kHz, logarithmic above."""
    from ..audio import hz_to_mel

    ax = _ax(ax)
    hz = np.linspace(0, fmax, 500)
    ax.plot(hz, hz_to_mel(hz), lw=1.5)
    ax.axvline(1000, color="C3", ls="--", lw=0.8, label="1 kHz: linear → logarithmic")
    ax.set(xlabel="frequency (Hz)", ylabel="mel", title="The mel scale", xlim=(0, fmax))
    ax.legend(loc="lower right")
    return ax


def plot_histogram(
    values,
    *,
    ax=None,
    bins: int = 80,
    title: str | None = None,
    xlabel: str = "value",
    mark: float | None = None,
    mark_label: str | None = None,
):
    """Histogram of all entries of an array; ``mark`` draws a vertical line (e.g. a clamp)."""
    ax = _ax(ax)
    ax.hist(np.asarray(values).ravel(), bins=bins, color="C0", alpha=0.8)
    if mark is not None:
        ax.axvline(mark, color="C3", ls="--", lw=1.0, label=mark_label)
        if mark_label:
            ax.legend(loc="upper left")
    ax.set(xlabel=xlabel, ylabel="count")
    if title:
        ax.set_title(title)
    return ax


def plot_pitch_track(
    times_s, f0_hz, *, ax=None, label: str | None = None, title: str | None = None, notes=None, **kw
):
    """F0 against time; unvoiced frames (NaN or 0) leave gaps. ``notes``: ``[(start_s, end_s, hz)]``
    target notes (e.g. ``held_notes`` of :func:`flamenco_lib.data.synth.sing`), drawn dashed."""
    ax = _ax(ax)
    f0 = np.asarray(f0_hz, dtype=float).copy()
    f0[~(f0 > 0)] = np.nan
    ax.plot(
        times_s,
        f0,
        marker=kw.pop("marker", "."),
        ms=kw.pop("ms", 2),
        lw=kw.pop("lw", 0.6),
        label=label,
        **kw,
    )
    for k, (a, b, hz) in enumerate(notes or []):
        ax.hlines(
            hz, a, b, colors="C3", linestyles="--", lw=1.2, label="target notes" if k == 0 else None
        )
    if notes:
        ax.legend(loc="upper right")
    ax.set(xlabel="time (s)", ylabel="F0 (Hz)")
    if label:
        ax.legend(loc="upper right")
    if title:
        ax.set_title(title)
    return ax
