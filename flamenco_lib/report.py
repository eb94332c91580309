"""The project's main job (``make report``): regenerate the thesis figures and tables.

It draws the feature figures of one real recording, then executes the notebooks in order with
papermill on the profile (:func:`run_notebooks`): executed copies go to ``report/executed/``,
their figures to ``report/figures/``. A failing notebook stops the run with an error naming the
notebook and the cell; its executed copy is kept for inspection.
"""

from __future__ import annotations

import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from . import audio as A
from . import plotting
from .data import speech

DEFAULT_PROMPT = "conf-adminmenu-18"  # a long real Spanish sentence from the asterisk prompts


def default_audio() -> Path:
    """A real Spanish recording available offline (Debian's asterisk prompts)."""
    path = speech.SOUNDS_DIR / f"{DEFAULT_PROMPT}.g722"
    if not path.exists():
        raise speech.SpeechCorpusMissing(f"{path}: not found; install the prompts: {speech.INSTALL_HINT}")
    return path


def feature_figures(audio_path: str | Path | None = None, *, outdir: str | Path | None = None) -> list[Path]:
    """Waveform, filterbank, log-Mel, cepstrum and MFCC figures of one recording.

    Returns the written files (PNG and PDF each).
    """
    path = Path(audio_path) if audio_path else default_audio()
    y = A.load_audio(path)
    plotting.set_style()
    written = []

    fig, ax = plt.subplots(figsize=(7, 2.4))
    plotting.plot_waveform(y, ax=ax, title=f"Waveform: {path.name}")
    written += plotting.savefig(fig, "01-waveform", outdir=outdir)

    fig, ax = plt.subplots(figsize=(7, 2.6))
    plotting.plot_filterbank(A.mel_filterbank(), ax=ax)
    written += plotting.savefig(fig, "01-mel-filterbank", outdir=outdir)

    mel = A.log_mel_spectrogram(A.pad_or_trim(y)).numpy()
    fig, ax = plt.subplots(figsize=(7, 2.8))
    plotting.plot_spectrogram(mel, ax=ax, title="Whisper log-Mel input: 80 bands x 3000 frames (30 s)")
    written += plotting.savefig(fig, "01-log-mel", outdir=outdir)

    # One 64 ms frame from the loudest stretch: its cepstrum shows formants and pitch apart.
    frame_len = 1024
    energy = np.convolve(y**2, np.ones(frame_len), mode="valid")
    start = int(np.argmax(energy))
    frame = y[start : start + frame_len]
    f0 = A.cepstral_pitch(frame)
    ceps = A.cepstrum(frame * np.hanning(frame_len))
    fig, axes = plt.subplots(1, 2, figsize=(8, 2.8))
    plotting.plot_cepstrum(ceps, ax=axes[0], mark_pitch=f0)
    axes[0].set_title("Real cepstrum of one frame")
    log_spec = np.log(np.abs(np.fft.rfft(frame * np.hanning(frame_len))) + 1e-10)
    envelope = np.fft.rfft(A.lifter(ceps, n_keep=30)).real
    hz = np.fft.rfftfreq(frame_len, 1 / A.SAMPLE_RATE)
    axes[1].plot(hz, log_spec, lw=0.6, label="log spectrum")
    axes[1].plot(hz, envelope, lw=1.5, label="liftered (envelope)")
    axes[1].set(xlabel="frequency (Hz)", ylabel="log magnitude", title="Liftering keeps the envelope")
    axes[1].legend()
    written += plotting.savefig(fig, "02-cepstrum", outdir=outdir)

    n_frames = len(y) // A.HOP_LENGTH
    coeffs = A.mfcc(mel[:, :n_frames], n_mfcc=20)
    fig, ax = plt.subplots(figsize=(7, 2.6))
    plotting.plot_spectrogram(coeffs, ax=ax, y_axis="coef", title="MFCC: DCT of the log-Mel spectrum", label="MFCC")
    written += plotting.savefig(fig, "02-mfcc", outdir=outdir)
    plt.close("all")
    return written


class NotebookFailed(RuntimeError):
    """A notebook of the report failed; the message names it, the cell and the executed copy."""


def run_notebooks(notebooks, *, profile: str, outdir: str | Path | None = None, progress: bool = True) -> list[Path]:
    """Execute notebooks in order with papermill (``profile`` injected as a parameter) into
    ``<report>/executed/``. Raises :class:`NotebookFailed` at the first failure."""
    import papermill as pm

    from .paths import report_dir, project_root

    out = Path(outdir) if outdir else report_dir() / "executed"
    out.mkdir(parents=True, exist_ok=True)
    done = []
    for nb in notebooks:
        nb = Path(nb)
        dest = out / nb.name
        t0 = time.perf_counter()
        if progress:
            print(f"report [{profile}]: running {nb.name}", flush=True)
        try:
            pm.execute_notebook(str(nb), str(dest), parameters={"profile": profile}, kernel_name="python3",
                                cwd=str(project_root()), progress_bar=False)
        except pm.PapermillExecutionError as err:
            raise NotebookFailed(
                f"{nb}: cell In [{err.exec_count}] (numbered as in the executed copy) failed with {err.ename}: {err.evalue}; "
                f"the executed copy is kept at {dest}"
            ) from None
        if progress:
            print(f"report [{profile}]: {nb.name} done in {time.perf_counter() - t0:.0f} s", flush=True)
        done.append(dest)
    return done


def build(*, profile: str = "cpu", outdir: str | Path | None = None) -> list[Path]:
    """Everything ``make report`` regenerates on ``profile``; returns the written files."""
    from .paths import project_root

    t0 = time.perf_counter()
    written = feature_figures(outdir=outdir)
    notebooks = sorted((project_root() / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    written += run_notebooks(notebooks, profile=profile)
    print(f"report [{profile}]: {len(written)} files in {time.perf_counter() - t0:.1f} s")
    return written
