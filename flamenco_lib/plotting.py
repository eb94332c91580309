"""Every figure of the thesis: one function per figure kind (``ax=`` in, ``ax`` out), one thesis
style, and one :func:`savefig` that writes PNG + PDF under ``report/figures/``.

Figures are build outputs: regenerate them (``make report``), never edit them by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.container import BarContainer

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


def savefig(fig, name: str, *, outdir: str | Path | None = None, formats=("png", "pdf"),
            caption: str | None = None) -> list[Path]:
    """Save ``fig`` as ``<outdir>/<name>.png`` and ``.pdf`` (default ``report/figures/``).

    ``name`` follows the notebook that makes the figure: ``01-mel-filterbank``. ``caption``
    goes into a sidecar ``<name>.json`` (``{"caption": ...}``) that ``report/index.html`` shows
    under the figure (:func:`caption_of`). Returns the written figure paths.
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
    sidecar = outdir / f"{name}.json"
    if caption:
        sidecar.write_text(json.dumps({"caption": caption}, ensure_ascii=False), encoding="utf-8")
    else:
        sidecar.unlink(missing_ok=True)  # no stale caption from an earlier version of the figure
    return paths


def caption_of(figure: str | Path) -> str:
    """The caption :func:`savefig` stored next to a figure file, else the figure's name."""
    sidecar = Path(figure).with_suffix(".json")
    if sidecar.exists():
        return json.loads(sidecar.read_text(encoding="utf-8")).get("caption") or Path(figure).stem
    return Path(figure).stem


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


# --------------------------------------------------------------------------------------------
# Theory notebooks 01-03: the steps of the log-Mel recipe, pitch, CTC
# --------------------------------------------------------------------------------------------


def plot_frames(audio, *, sr: int = 16000, frame_length: int = 400, hop_length: int = 160,
                n_frames: int = 4, start: int = 0, ax=None, title: str | None = None):
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
    for k, c in zip(range(n_frames), sns.color_palette("deep", n_frames)):
        a = start + k * hop_length
        span = np.arange(a, a + frame_length) / sr * 1000
        ax.axvspan(span[0], span[-1], color=c, alpha=0.12)
        ax.plot(span, window[: len(span)], color=c, lw=1.0, ls="--")
    ax.set(xlabel="time (ms)", ylabel="amplitude", xlim=(t_ms[0], t_ms[-1]))
    ax.set_title(title or f"{n_frames} frames of {frame_length} samples, hop {hop_length}")
    return ax


def plot_spectrum(freq_hz, values, *, ax=None, label: str | None = None, title: str | None = None,
                  ylabel: str = "log magnitude", **kw):
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
    from .audio import hz_to_mel

    ax = _ax(ax)
    hz = np.linspace(0, fmax, 500)
    ax.plot(hz, hz_to_mel(hz), lw=1.5)
    ax.axvline(1000, color="C3", ls="--", lw=0.8, label="1 kHz: linear → logarithmic")
    ax.set(xlabel="frequency (Hz)", ylabel="mel", title="The mel scale", xlim=(0, fmax))
    ax.legend(loc="lower right")
    return ax


def plot_histogram(values, *, ax=None, bins: int = 80, title: str | None = None, xlabel: str = "value",
                   mark: float | None = None, mark_label: str | None = None):
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


def plot_pitch_track(times_s, f0_hz, *, ax=None, label: str | None = None, title: str | None = None,
                     notes=None, **kw):
    """F0 against time; unvoiced frames (NaN or 0) leave gaps. ``notes``: ``[(start_s, end_s, hz)]``
    target notes (e.g. ``held_notes`` of :func:`flamenco_lib.data.synth.sing`), drawn dashed."""
    ax = _ax(ax)
    f0 = np.asarray(f0_hz, dtype=float).copy()
    f0[~(f0 > 0)] = np.nan
    ax.plot(times_s, f0, marker=kw.pop("marker", "."), ms=kw.pop("ms", 2), lw=kw.pop("lw", 0.6), label=label, **kw)
    for k, (a, b, hz) in enumerate(notes or []):
        ax.hlines(hz, a, b, colors="C3", linestyles="--", lw=1.2, label="target notes" if k == 0 else None)
    if notes:
        ax.legend(loc="upper right")
    ax.set(xlabel="time (s)", ylabel="F0 (Hz)")
    if label:
        ax.legend(loc="upper right")
    if title:
        ax.set_title(title)
    return ax


def plot_ctc_posteriors(log_probs, *, vocab, frame_s: float = 0.02, top: int = 12, ax=None,
                        title: str | None = None):
    """Frame posteriors of a CTC model (``T x C`` log-probabilities) as an image of the ``top``
    classes that peak highest (blank shown as ``∅``, space as ``␣``), time in seconds on x."""
    ax = _ax(ax)
    p = np.exp(np.asarray(log_probs, dtype=float))
    keep = np.sort(np.argsort(p.max(axis=0))[::-1][:top])
    names = ["∅" if i == 0 else ("␣" if vocab[i] == " " else vocab[i]) for i in keep]
    im = ax.imshow(p[:, keep].T, origin="lower", aspect="auto", cmap="Blues", vmin=0, vmax=1,
                   extent=(0, len(p) * frame_s, -0.5, len(keep) - 0.5), interpolation="nearest")
    ax.set_yticks(range(len(keep)), names)
    ax.set(xlabel="time (s)", ylabel="class")
    ax.figure.colorbar(im, ax=ax, pad=0.01, label="posterior")
    if title:
        ax.set_title(title)
    return ax


def plot_ctc_trellis(alpha, *, states, ax=None, title: str | None = None, path=None,
                     path_label: str = "likeliest state per frame"):
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
    ax.set_yticks(range(len(states)), ["∅" if s == "" else ("␣" if s == " " else s) for s in states])
    ax.set(xlabel="frame t", ylabel="state s of y'")
    ax.figure.colorbar(im, ax=ax, pad=0.01, label="log α")
    if title:
        ax.set_title(title)
    return ax


def plot_training_curve(history, *, x: str = "epoch", y: str = "loss", ax=None, title: str | None = None,
                        label: str | None = None):
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
        plot_training_curve([e for e in summary["log"] if "loss" in e], x="step", y="loss", ax=ax, label=label)
    if title:
        ax.set_title(title)
    return ax


def plot_wer_bars(table, *, x: str = "system", y: str = "wer", hue: str | None = None, ax=None,
                  title: str | None = None, percent: bool = True):
    """Seaborn bars of an error rate per system (a DataFrame or records), each bar labelled."""
    import pandas as pd

    ax = _ax(ax)
    df = pd.DataFrame(table).copy()
    if percent:
        df[y] = 100 * df[y]
    sns.barplot(data=df, x=x, y=y, hue=hue, ax=ax, palette="deep" if hue else None,
                color=None if hue else "C0")
    for container in ax.containers:
        ax.bar_label(container, fmt="%.0f" if percent else "%.2f", padding=2, fontsize=8)
    ax.set(xlabel="", ylabel=f"{y.upper()} (%)" if percent else y)
    ax.tick_params(axis="x", rotation=15)
    if title:
        ax.set_title(title)
    return ax


# --------------------------------------------------------------------------------------------
# Theory notebook 04: Whisper's anatomy
# --------------------------------------------------------------------------------------------


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
    ax.bar(x + width / 2, df["decoder"] / 1e6, width, label="decoder (incl. token embedding)", color="C1")
    for xi, total, top in zip(x, df["parameters"], np.maximum(df["encoder"], df["decoder"])):
        ax.annotate(f"{total / 1e6:.0f} M", (xi, top / 1e6), textcoords="offset points", xytext=(0, 3),
                    ha="center", fontsize=8)
    ax.set_yscale("log")
    ax.set_xticks(x, df["size"])
    ax.set(ylabel="parameters (millions)", ylim=(1, df[["encoder", "decoder"]].to_numpy().max() / 1e6 * 3))
    ax.legend(loc="upper left")
    if title:
        ax.set_title(title)
    return ax


def plot_state_difference(curves: dict, *, frame_s: float = 0.02, speech_s: float | None = None,
                          baseline: float | None = None, ax=None, title: str | None = None):
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
    ax.set(xlabel="time from the start of the clip (s)", ylabel="relative difference", xlim=(0, None))
    ax.legend(loc="upper right", fontsize=8)
    if title:
        ax.set_title(title)
    return ax


def plot_cross_attention(weights, *, tokens, frame_s: float = 0.02, ax=None, title: str | None = None,
                         colorbar: bool = True):
    """Cross-attention of a decoded line: ``weights`` (``n_tokens x n_frames``) as an image, one
    row per token (``tokens`` names them, top to bottom; a space shows as ``␣``), time in
    seconds on x."""
    ax = _ax(ax)
    w = np.asarray(weights, dtype=float)
    im = ax.imshow(w, aspect="auto", cmap="viridis", interpolation="nearest",
                   extent=(0, w.shape[1] * frame_s, len(w) - 0.5, -0.5))
    ax.set_yticks(range(len(tokens)), [t.replace(" ", "␣") for t in tokens], fontsize=7)
    ax.set(xlabel="time (s)", ylabel="token written")
    ax.grid(False)
    if colorbar:
        ax.figure.colorbar(im, ax=ax, pad=0.01, label="attention")
    if title:
        ax.set_title(title)
    return ax


# --------------------------------------------------------------------------------------------
# Results notebook 10: the stages compared (tables from flamenco_lib.analysis)
# --------------------------------------------------------------------------------------------


def plot_stage_comparison(table, *, x: str = "model", hue: str | None = "test_set", hue_order=None,
                          y: str = "wer", lo: str = "wer_lo", hi: str = "wer_hi", ax=None, title: str | None = None):
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
    wide = {c: df.pivot(index=x, columns=hue, values=c).reindex(index=order, columns=levels) for c in (y, lo, hi)}
    yerr = np.stack([[wide[y][k] - wide[lo][k], wide[hi][k] - wide[y][k]] for k in levels])  # (hue, 2, x)
    wide[y].plot.bar(ax=ax, yerr=yerr, capsize=2, width=0.8, legend=hue != "_all",
                     error_kw={"lw": 0.8, "ecolor": "0.2"})
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]  # one per hue level
    for container, k in zip(bars, levels):  # pandas draws a missing bar as 0: leave it unlabelled
        ax.bar_label(container, labels=[f"{v:.0f}" if np.isfinite(v) else "" for v in wide[y][k]],
                     padding=2, fontsize=7)
    ax.set(xlabel="", ylabel=f"{y.upper()} (%) [95% CI]")
    plt.setp(ax.get_xticklabels(), rotation=15, ha="right", rotation_mode="anchor")
    if hue != "_all":
        ax.legend(title=hue.replace("_", " "), fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    if title:
        ax.set_title(title)
    return ax


def plot_wer_heatmap(table, *, index: str = "model", columns: str = "palo", values: str = "wer", ax=None,
                     title: str | None = None):
    """A long table (e.g. :func:`flamenco_lib.analysis.per_palo_table`) as an annotated seaborn
    heatmap of ``values`` (percent), ``index`` rows in first-seen order, ``columns`` sorted."""
    import pandas as pd

    df = pd.DataFrame(table)
    grid = df.pivot(index=index, columns=columns, values=values).reindex(df[index].unique())
    ax = ax if ax is not None else plt.subplots(figsize=(max(5, 0.6 * grid.shape[1] + 2), 0.45 * len(grid) + 1.2))[1]
    sns.heatmap(grid, annot=True, fmt=".0f", cmap="rocket_r", vmin=0, linewidths=0.5, ax=ax,
                cbar_kws={"label": f"{values.upper()} (%)"}, annot_kws={"fontsize": 7})
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
    labels = df["model"] if df.get("test_set", pd.Series([0])).nunique() <= 1 else df["model"] + " · " + df["test_set"]
    ax = ax if ax is not None else plt.subplots(figsize=(7, 0.3 * len(df) + 1.2))[1]
    parts = df[["substitutions", "deletions", "insertions"]].set_axis(list(labels))
    parts.plot.barh(stacked=True, ax=ax, width=0.75, color=sns.color_palette("deep", 3))
    ax.invert_yaxis()  # the first row on top
    ax.set(xlabel="% of reference words (S + D + I = WER)", ylabel="")
    ax.legend(loc="lower right", fontsize=8)
    if title:
        ax.set_title(title)
    return ax


def plot_forgetting(table, *, path=("zero-shot", "stage 1", "stage 2", "stage 3"), ax=None,
                    title: str | None = None):
    """Cante WER (x) against speech WER (y) per model, 95% intervals as error bars, each point
    labelled (:func:`flamenco_lib.analysis.forgetting_table`). The models named in ``path`` that
    are present are joined by arrows in that order: down is less forgetting, left is better cante."""
    import pandas as pd

    ax = ax if ax is not None else plt.subplots(figsize=(5.5, 4.2))[1]
    df = pd.DataFrame(table)
    xerr = [df["cante_wer"] - df["cante_wer_lo"], df["cante_wer_hi"] - df["cante_wer"]]
    yerr = [df["speech_wer"] - df["speech_wer_lo"], df["speech_wer_hi"] - df["speech_wer"]]
    ax.errorbar(df["cante_wer"], df["speech_wer"], xerr=xerr, yerr=yerr, fmt="none", ecolor="0.6", lw=0.8)
    sns.scatterplot(data=df, x="cante_wer", y="speech_wer", hue="model", s=50, ax=ax, legend=False, zorder=3)
    for row in df.itertuples():
        ax.annotate(row.model, (row.cante_wer, row.speech_wer), textcoords="offset points", xytext=(5, 4), fontsize=8)
    steps = df.set_index("model").reindex([m for m in path if m in set(df["model"])])
    for (_, a), (_, b) in zip(steps.iterrows(), steps.iloc[1:].iterrows()):
        ax.annotate("", (b["cante_wer"], b["speech_wer"]), (a["cante_wer"], a["speech_wer"]),
                    arrowprops={"arrowstyle": "->", "color": "0.4", "lw": 0.8, "shrinkA": 5, "shrinkB": 5})
    ax.set(xlabel="cante test WER (%)", ylabel="speech test WER (%)", xlim=(0, None), ylim=(0, None))
    if title:
        ax.set_title(title)
    return ax


def plot_prompt_bars(table, *, ax=None, title: str | None = None):
    """Stage 2 and stage 3 decoded without prompt, with a text prompt, and with a soft prompt:
    WER bars with 95% intervals, ``stage`` on x and ``prompt`` as hue
    (:func:`flamenco_lib.analysis.prompt_table`, one test set at a time)."""
    ax = plot_stage_comparison(table, x="stage", hue="prompt", hue_order=("none", "text prompt", "soft prompt"),
                               ax=ax, title=title)
    ax.legend(title="prompt", fontsize=8)  # inside: these figures stand side by side
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
        ax.errorbar(r["delta"], i, xerr=[[r["delta"] - r["delta_lo"]], [r["delta_hi"] - r["delta"]]],
                    fmt="o", color=color, capsize=3, label=r["verdict"])
    ax.axvline(0, color="0.2", lw=0.8)
    ax.set_yticks(range(len(df)), [f"{r.model} vs {r.baseline} ({r.test_set})" for r in df.itertuples()], fontsize=8)
    ax.set(xlabel="WER difference (points): model - baseline")
    handles = dict(zip(*ax.get_legend_handles_labels()[::-1]))  # one entry per verdict
    ax.legend(handles.values(), handles.keys(), fontsize=8, loc="best")
    if title:
        ax.set_title(title)
    return ax


# --------------------------------------------------------------------------------------------
# Data notebook 05: the corpora (tables from flamenco_lib.data.stats)
# --------------------------------------------------------------------------------------------

SPLIT_COLORS = {"train": "C0", "dev": "C1", "test": "C2"}  # the same colour per split in every figure


def plot_split_counts(table, *, ax=None, title: str | None = None, xlabel: str = "clips"):
    """Horizontal stacked bars, one per row of a (category x split) count table
    (:func:`flamenco_lib.data.stats.split_table`: palos, voices), one colour per split."""
    import pandas as pd

    df = pd.DataFrame(table)
    ax = ax if ax is not None else plt.subplots(figsize=(6, 0.25 * len(df) + 1.2))[1]
    df.iloc[::-1].plot.barh(stacked=True, ax=ax, width=0.8, color=[SPLIT_COLORS.get(c, "0.5") for c in df.columns])
    ax.set(xlabel=xlabel, ylabel=df.index.name or "")
    ax.legend(title="split", fontsize=8, loc="lower right")
    if title:
        ax.set_title(title)
    return ax


def plot_feature_hist(frame, column: str, *, hue: str | None = "split", ax=None, xlabel: str | None = None,
                      title: str | None = None):
    """Seaborn histogram of one column of a clip table (:func:`flamenco_lib.data.stats.read_frame`),
    one outline per ``hue`` level, each as a percentage of its own clips (so a small test split
    compares with a large training split). Missing values are left out."""
    import pandas as pd

    ax = _ax(ax)
    df = pd.DataFrame(frame).dropna(subset=[column])
    levels = [s for s in SPLIT_COLORS if s in set(df[hue])] if hue == "split" else None
    sns.histplot(data=df, x=column, hue=hue, hue_order=levels, element="step", stat="percent", common_norm=False,
                 palette=SPLIT_COLORS if hue == "split" else None, ax=ax)
    ax.set(xlabel=xlabel or column, ylabel="% of clips")
    if title:
        ax.set_title(title)
    return ax


def plot_paired(table, columns, *, labels=None, ax=None, ylabel: str | None = None, title: str | None = None):
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
