"""The project's main job (``make report``): regenerate the thesis figures and tables.

It executes the notebooks in order with papermill on the profile (:func:`run_notebooks`): executed copies go to ``report/executed/``,
their figures to ``report/figures/``. A failing notebook stops the run with an error naming the
notebook and the cell; its executed copy is kept for inspection. At the end :func:`build_index`
writes ``report/index.html``: the results table, every figure with its caption, the profile, the
time each notebook took, package versions and the git revision. :func:`write_tables` writes the
result tables (``report/tables/``; notebook ``10_results.ipynb`` calls it).
:func:`feature_figures` draws the feature figures of any one recording (``figures`` command).
"""

from __future__ import annotations

import html
import logging
import os
import platform
import time
from importlib import metadata
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from . import audio as A
from . import cepstrum as C
from . import plotting
from .data import speech
from .errors import FlamencoError
from .paths import report_dir

logger = logging.getLogger(__name__)

DEFAULT_PROMPT = "conf-adminmenu-18"  # a long real Spanish sentence from the asterisk prompts


def default_audio() -> Path:
    """A real Spanish recording available offline (Debian's asterisk prompts)."""
    path = speech.SOUNDS_DIR / f"{DEFAULT_PROMPT}.g722"
    if not path.exists():
        raise speech.SpeechCorpusMissing(
            f"{path}: not found; install the prompts: {speech.INSTALL_HINT}"
        )
    return path


FEATURES_DIR = "recording"  # under report/figures/: the feature figures of any one recording
FEATURE_FIGURES = (
    "recording_waveform",
    "recording_mel_filterbank",
    "recording_log_mel",
    "recording_cepstrum",
    "recording_mfcc",
)  # the names feature_figures writes


def feature_figures(
    audio_path: str | Path | None = None, *, outdir: str | Path | None = None
) -> list[Path]:
    """Waveform, filterbank, log-Mel, cepstrum and MFCC figures of one recording
    (``python -m flamenco_lib figures --audio FILE``), named ``recording_*`` in
    ``report/figures/recording/`` by default: the report's own figures of these features are
    drawn by notebooks 01 and 02, which are their one writer.

    Returns the written files (PNG and PDF each).
    """
    path = Path(audio_path) if audio_path else default_audio()
    outdir = Path(outdir) if outdir is not None else report_dir() / "figures" / FEATURES_DIR
    y = A.load_audio(path)
    plotting.set_style()
    written = []

    fig, ax = plt.subplots(figsize=(7, 2.4))
    plotting.plot_waveform(y, ax=ax, title=f"Waveform: {path.name}")
    written += plotting.savefig(
        fig,
        "recording_waveform",
        outdir=outdir,
        caption="Waveform of one real Spanish recording (Debian's asterisk prompts).",
    )

    fig, ax = plt.subplots(figsize=(7, 2.6))
    plotting.plot_filterbank(A.mel_filterbank(), ax=ax)
    written += plotting.savefig(
        fig,
        "recording_mel_filterbank",
        outdir=outdir,
        caption="Whisper's 80 mel filters (Slaney) over frequency.",
    )

    mel = A.log_mel_spectrogram(A.pad_or_trim(y)).numpy()
    fig, ax = plt.subplots(figsize=(7, 2.8))
    plotting.plot_spectrogram(
        mel, ax=ax, title="Whisper log-Mel input: 80 bands x 3000 frames (30 s)"
    )
    written += plotting.savefig(
        fig,
        "recording_log_mel",
        outdir=outdir,
        caption="Whisper's log-Mel input of the recording: 80 bands by 3000 frames (30 s).",
    )

    # One 64 ms frame from the loudest stretch: its cepstrum shows formants and pitch apart.
    frame_len = 1024
    energy = np.convolve(y**2, np.ones(frame_len), mode="valid")
    start = int(np.argmax(energy))
    frame = y[start : start + frame_len]
    f0 = C.cepstral_pitch(frame)
    ceps = C.cepstrum(frame * np.hanning(frame_len))
    fig, axes = plt.subplots(1, 2, figsize=(8, 2.8))
    plotting.plot_cepstrum(ceps, ax=axes[0], mark_pitch=f0)
    axes[0].set_title("Real cepstrum of one frame")
    log_spec = np.log(np.abs(np.fft.rfft(frame * np.hanning(frame_len))) + 1e-10)
    envelope = np.fft.rfft(C.lifter(ceps, n_keep=30)).real
    hz = np.fft.rfftfreq(frame_len, 1 / A.SAMPLE_RATE)
    axes[1].plot(hz, log_spec, lw=0.6, label="log spectrum")
    axes[1].plot(hz, envelope, lw=1.5, label="liftered (envelope)")
    axes[1].set(
        xlabel="frequency (Hz)", ylabel="log magnitude", title="Liftering keeps the envelope"
    )
    axes[1].legend()
    written += plotting.savefig(
        fig,
        "recording_cepstrum",
        outdir=outdir,
        caption="Real cepstrum of one frame, its pitch period marked; liftering keeps the spectral envelope.",
    )

    n_frames = len(y) // A.HOP_LENGTH
    coeffs = C.mfcc(mel[:, :n_frames], n_mfcc=20)
    fig, ax = plt.subplots(figsize=(7, 2.6))
    plotting.plot_spectrogram(
        coeffs, ax=ax, y_axis="coef", title="MFCC: DCT of the log-Mel spectrum", label="MFCC"
    )
    written += plotting.savefig(
        fig,
        "recording_mfcc",
        outdir=outdir,
        caption="MFCC of the recording: the DCT of the log-Mel spectrum.",
    )
    plt.close("all")
    return written


class NotebookFailed(FlamencoError, RuntimeError):
    """A notebook of the report failed; the message names it, the cell and the executed copy."""


def run_notebooks(
    notebooks,
    *,
    profile: str,
    outdir: str | Path | None = None,
    progress: bool = True,
    timings: dict | None = None,
    parameters: dict | None = None,
) -> list[Path]:
    """Execute notebooks in order with papermill (``profile`` injected as a parameter) into
    ``<report>/executed/``. Raises :class:`NotebookFailed` at the first failure. ``timings``, a
    dict, receives ``{notebook name: seconds}`` of every notebook that finished. ``parameters``:
    more values to inject, each into the notebooks whose parameters cell declares it (e.g.
    ``{"spoken_control": True}`` reaches notebook 07 only)."""
    import papermill as pm

    from .paths import project_root

    out = Path(outdir) if outdir else report_dir() / "executed"
    out.mkdir(parents=True, exist_ok=True)
    done = []
    for nb in notebooks:
        nb = Path(nb)
        dest = out / nb.name
        t0 = time.perf_counter()
        declared = pm.inspect_notebook(str(nb)) if parameters else {}
        given = {k: v for k, v in (parameters or {}).items() if k in declared}
        if progress:
            logger.info("report [%s]: running %s %s", profile, nb.name, given or "")
        try:
            pm.execute_notebook(
                str(nb),
                str(dest),
                parameters={"profile": profile, **given},
                kernel_name="python3",
                cwd=str(project_root()),
                progress_bar=False,
            )
        except pm.PapermillExecutionError as err:
            raise NotebookFailed(
                f"{nb}: cell In [{err.exec_count}] (numbered as in the executed copy) failed with {err.ename}: {err.evalue}; "
                f"the executed copy is kept at {dest}"
            ) from None
        seconds = time.perf_counter() - t0
        if timings is not None:
            timings[nb.name] = seconds
        if progress:
            logger.info("report [%s]: %s done in %.0f s", profile, nb.name, seconds)
        done.append(dest)
    return done


def build(*, profile: str = "cpu", parameters: dict | None = None) -> list[Path]:
    """Everything ``make report`` regenerates on ``profile``; returns the written files.
    ``parameters``: notebook parameters beyond the profile (:func:`run_notebooks`)."""
    from .paths import project_root

    t0 = time.perf_counter()
    notebooks = sorted((project_root() / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    timings: dict[str, float] = {}
    written = run_notebooks(notebooks, profile=profile, timings=timings, parameters=parameters)
    written.append(build_index(profile=profile, timings=timings, parameters=parameters))
    logger.info("report [%s]: %d files in %.1f s", profile, len(written), time.perf_counter() - t0)
    return written


def write_tables(outdir: str | Path | None = None, *, root: Path | None = None) -> list[Path]:
    """Write the result tables as CSV and Markdown into ``outdir`` (default ``report/tables/``):
    ``results`` (:func:`flamenco_lib.results.results_table`), ``runs``, ``per_palo``, ``sdi``,
    ``forgetting``, ``prompts`` (the prompt grid on the verses) and ``paired``
    (:mod:`flamenco_lib.analysis`), read from the results files under ``root``. Empty tables are not written. Returns the written paths."""
    from . import analysis, results

    out = Path(outdir) if outdir is not None else report_dir() / "tables"
    tables = {
        "results": results.results_table(root=root),
        "runs": analysis.runs_table(root=root),
        "per_palo": analysis.per_palo_table(root=root),
        "sdi": analysis.sdi_table(root=root),
        "forgetting": analysis.forgetting_table(root=root),
        "prompts": analysis.prompt_grid_table(root=root),
        "paired": analysis.paired_table(root=root),
    }
    written = []
    for name, table in tables.items():
        if table.empty:
            continue
        out.mkdir(parents=True, exist_ok=True)
        table.to_csv(out / f"{name}.csv", index=False)
        md = results.markdown(table) if name == "results" else results.to_markdown(table.round(1))
        (out / f"{name}.md").write_text(md + "\n", encoding="utf-8")
        written += [out / f"{name}.csv", out / f"{name}.md"]
    return written


INDEX_PACKAGES = ("torch", "transformers", "datasets", "librosa", "jiwer", "papermill", "seaborn")


def package_versions(packages=INDEX_PACKAGES) -> dict[str, str]:
    """Python's version and each installed package's (``"not installed"`` otherwise)."""
    versions = {"python": platform.python_version()}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _markdown_to_html(md: str) -> str:
    """A Markdown table from :func:`flamenco_lib.results.markdown` as an HTML table (escaped);
    any other text as a paragraph."""
    import pandas as pd

    lines = [
        line for line in md.splitlines() if line.startswith("|") and not line.startswith("|---")
    ]
    if not lines:
        return f"<p>{html.escape(md)}</p>"
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    return pd.DataFrame(cells[1:], columns=cells[0]).to_html(index=False, border=0)


def _rows(pairs) -> str:
    return "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in pairs
    )


def build_index(
    *,
    profile: str,
    timings: dict,
    outdir: str | Path | None = None,
    parameters: dict | None = None,
) -> Path:
    """Write ``<outdir>/index.html`` (default ``report/``), the whole report on one page.

    It shows the results table (:func:`flamenco_lib.results.results_table` of the profile's data
    folder, :func:`flamenco_lib.paths.profile_data_dir`), every
    ``figures/*.png`` with its caption (:func:`flamenco_lib.plotting.caption_of`; linked by a
    relative path, so the folder can be moved), the ``profile``, ``timings``
    (``{notebook: seconds}``, e.g. from :func:`run_notebooks`), the notebook ``parameters`` given
    beyond the profile, :func:`package_versions` and the git revision. Returns the path of the page.
    """
    from . import results
    from .evaluation import git_revision
    from .paths import profile_data_dir

    out = Path(outdir) if outdir is not None else report_dir()
    table = results.results_table(root=profile_data_dir(profile) / "results")  # smoke: <data>/smoke
    out.mkdir(parents=True, exist_ok=True)
    figures = []
    for png in sorted((out / "figures").glob("*.png")):
        src = html.escape(Path(os.path.relpath(png, out)).as_posix(), quote=True)
        caption = html.escape(plotting.caption_of(png))
        figures.append(
            f'<figure><img src="{src}" alt="{caption}"><figcaption>{caption} '
            f"<code>{html.escape(png.name)}</code></figcaption></figure>"
        )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Cante to text: report</title>
<style>body{{font-family:sans-serif;max-width:70em;margin:auto;padding:1em}}
table{{border-collapse:collapse;font-size:90%}}th,td{{border:1px solid #ccc;padding:.2em .5em;text-align:left}}
img{{max-width:100%}}figure{{margin:2em 0}}figcaption{{font-size:90%;color:#333}}</style></head>
<body><h1>Cante to text: report</h1>
<table>{
        _rows(
            [
                ("profile", profile),
                (
                    "parameters",
                    ", ".join(f"{k}={v!r}" for k, v in (parameters or {}).items())
                    or "the profile's defaults",
                ),
                ("git revision", git_revision() or "unknown"),
                ("built", time.strftime("%Y-%m-%d %H:%M:%S")),
            ]
        )
    }</table>
<h2>Results</h2>
{_markdown_to_html(results.markdown(table))}
<h2>Figures</h2>
{"".join(figures) or "<p>no figures yet</p>"}
<h2>Notebooks</h2>
<table><tr><th>notebook</th><th>seconds</th></tr>{
        _rows((k, f"{v:.1f}") for k, v in timings.items())
    }</table>
<h2>Environment</h2>
<table>{_rows(package_versions().items())}</table>
</body></html>
"""
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    return index
