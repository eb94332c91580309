"""Numbers about the corpora: manifests (and evaluation runs) as tables.

- :func:`read_frame` — a manifest as a DataFrame, one row per clip, with ``duration_s``;
- :func:`features` — the columns of :data:`FEATURES` a corpus has (for histograms);
- :func:`corpus_summary` — clips, hours, lyrics and voices per split;
- :func:`split_table` — clips per value of a column (palo, voice, ...) and per split;
- :func:`compare_styles` — the same clip ids in several corpora (spoken, a cappella, sung) side by side;
- :func:`style_wer` — WER and its 95% interval of evaluation runs (e.g. one per style);
- :func:`f0_track`, :func:`pitch_range`, :func:`pitch_ranges` — the F0 of a clip measured with Praat
  (as the spoken manifests' ``median_f0_hz``) and the range it spans, in semitones.

Notebook: ``notebooks/05_data.ipynb``; figures: :mod:`flamenco_lib.plotting`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..text import normalize
from .manifest import SPLITS, read_manifest

# Manifest columns worth a histogram, with their axis labels (units included).
FEATURES = {
    "duration_s": "duration (s)",
    "snr_db": "voice over accompaniment (dB SNR)",
    "median_f0_hz": "median F0 of the speaking voice (Hz)",
    "stretch_mean": "vowel lengthening (×)",
    "n_melismas": "melismas per clip",
    "vibrato_hz": "vibrato rate (Hz)",
}


def read_frame(manifest) -> pd.DataFrame:
    """A manifest (path, list of rows or DataFrame) as a DataFrame, one row per clip.

    Every key of the rows is a column; ``duration_s`` is filled where a row lacks it (the speech
    corpus): ``end - start`` for a segment, else the audio file's duration (its header only).
    Rows without audio (e.g. ``predictions.jsonl`` of an evaluation run) keep ``NaN``.
    """
    if isinstance(manifest, pd.DataFrame):
        return manifest
    rows = (
        read_manifest(manifest)
        if isinstance(manifest, (str, Path))
        else [dict(r) for r in manifest]
    )
    for r in rows:
        if r.get("duration_s") is None:
            r["duration_s"] = _duration(r)
    return pd.DataFrame(rows).drop(columns=["_line"], errors="ignore")


def features(frame: pd.DataFrame) -> list[str]:
    """The :data:`FEATURES` that ``frame`` has values for (spoken clips have no SNR, no melismas ...)."""
    return [c for c in FEATURES if c in frame and frame[c].notna().any()]


def _duration(row: dict) -> float:
    start, end = row.get("start") or 0.0, row.get("end")
    if end is not None:
        return float(end) - start
    if not row.get("audio_path"):
        return float("nan")
    from ..audio import audio_duration

    return audio_duration(row["audio_path"]) - start


def _splits(frame: pd.DataFrame) -> list[str]:
    """The splits of a frame in train, dev, test order (others after)."""
    present = list(dict.fromkeys(frame["split"].dropna()))
    return [s for s in SPLITS if s in present] + [s for s in present if s not in SPLITS]


def corpus_summary(manifest) -> pd.DataFrame:
    """Clips, hours, mean clip length (s), distinct lyrics and distinct voices per split.

    Returns
    -------
    DataFrame indexed by split (train, dev, test, then ``all``), columns
    ``clips, hours, mean_s, lyrics, voices``. A lyric is the normalised ``text_canonical``
    (:func:`flamenco_lib.text.normalize`); a voice is ``voice``, else ``singer``.
    """
    df = read_frame(manifest)
    lyric = (df["text_canonical"].fillna(df["text"])).map(normalize)
    voice = df["voice"] if "voice" in df else df["singer"]
    df = df.assign(_lyric=lyric, _voice=voice)

    def row(part: pd.DataFrame) -> dict:
        return {
            "clips": len(part),
            "hours": part["duration_s"].sum() / 3600,
            "mean_s": part["duration_s"].mean(),
            "lyrics": part["_lyric"].nunique(),
            "voices": part["_voice"].nunique(),
        }

    table = {s: row(df[df["split"] == s]) for s in _splits(df)}
    table["all"] = row(df)
    return pd.DataFrame.from_dict(table, orient="index").rename_axis("split")


def split_table(manifest, by: str) -> pd.DataFrame:
    """Clips per value of column ``by`` (rows, sorted) and per split (columns, train/dev/test).

    ``split_table(m, "base_voice")`` shows the held-out voice (``es-419``) in the test column only.
    Rows with no value in ``by`` count as ``"(none)"``.
    """
    df = read_frame(manifest)
    keys = df[by].astype(object).where(df[by].notna(), "(none)").astype(str)
    table = pd.crosstab(keys, df["split"]).reindex(columns=_splits(df), fill_value=0)
    table.columns.name = "split"
    return table.rename_axis(by)


def compare_styles(
    manifests: dict, *, fields=("duration_s", "median_f0_hz"), keep=("split", "palo", "voice")
) -> pd.DataFrame:
    """The clips present in every one of ``manifests`` (``{style: manifest}``), joined by ``id``.

    The styles of the synthetic corpus share clip ids, voices and sung text, so the joined rows
    differ only in the singing and the accompaniment.

    Parameters
    ----------
    manifests : dict of str to manifest
        e.g. ``{"spoken": ..., "a cappella": ..., "sung": ...}``; any JSONL with an ``id`` per row
        works (``predictions.jsonl`` of evaluation runs, with ``fields=("hypothesis",)``).
    fields : tuple of str
        Columns taken from every style, named ``<field>_<style>`` in the result.
    keep : tuple of str
        Columns taken once, from the first style (those it has).

    Returns
    -------
    DataFrame, one row per shared id in the first style's order:
    ``id``, the ``keep`` columns, then ``<field>_<style>`` for each field and style.
    """
    frames = {style: read_frame(m) for style, m in manifests.items()}
    first = next(iter(frames.values()))
    out = first[["id", *[k for k in keep if k in first]]]
    for field in fields:
        for style, df in frames.items():
            out = out.merge(
                df[["id", field]].rename(columns={field: f"{field}_{style}"}), on="id", how="inner"
            )
    return out.reset_index(drop=True)


def style_wer(runs: dict) -> pd.DataFrame:
    """WER of evaluation runs (``{label: run folder}``, each with a ``metrics.json``) in percent.

    Returns
    -------
    DataFrame, one row per run that has results, in the order given: ``style, n, wer, wer_lo,
    wer_hi, cer`` (what :func:`flamenco_lib.plotting.plot_stage_comparison` draws with
    ``x="style", hue=None``).
    """
    rows = []
    for label, run in runs.items():
        f = Path(run) / "metrics.json"
        if f.exists():
            m = json.loads(f.read_text(encoding="utf-8"))
            lo, hi = m["wer_ci"]
            rows.append(
                {
                    "style": label,
                    "n": m["n_utterances"],
                    "wer": 100 * m["wer"],
                    "wer_lo": 100 * lo,
                    "wer_hi": 100 * hi,
                    "cer": 100 * m["cer"],
                }
            )
    return pd.DataFrame(rows, columns=["style", "n", "wer", "wer_lo", "wer_hi", "cer"])


def f0_track(audio, *, sr: int = 16000, time_step: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """F0 of a clip by Praat's autocorrelation method (``praat-parselmouth``), with the pitch floor
    and ceiling the synthesiser uses (:data:`flamenco_lib.data.synth.PITCH_FLOOR_HZ`, ``..._CEILING_HZ``).

    Returns
    -------
    times_s, f0_hz : np.ndarray, shape = (n_frames,)
        Frame centres in seconds and F0 in Hz, 0 where unvoiced (as
        :func:`flamenco_lib.plotting.plot_pitch_track` expects).
    """
    import parselmouth

    from .synth import PITCH_CEILING_HZ, PITCH_FLOOR_HZ

    sound = parselmouth.Sound(np.asarray(audio, dtype=np.float64), sampling_frequency=sr)
    pitch = sound.to_pitch_ac(
        time_step=time_step, pitch_floor=PITCH_FLOOR_HZ, pitch_ceiling=PITCH_CEILING_HZ
    )
    return pitch.xs(), pitch.selected_array["frequency"]


def pitch_range(audio, *, sr: int = 16000, q: tuple[float, float] = (5.0, 95.0)) -> float:
    """The range of a clip's F0 (:func:`f0_track`) in semitones, between the ``q`` percentiles of
    its voiced frames (robust to a few octave errors); NaN with fewer than 10 voiced frames.
    Speech spans a few semitones; a melody, an octave (12) or more."""
    f0 = f0_track(audio, sr=sr)[1]
    f0 = f0[f0 > 0]
    if len(f0) < 10:
        return float("nan")
    lo, hi = np.percentile(f0, q)
    return float(12 * np.log2(hi / lo))


def pitch_ranges(manifest, *, ids=None) -> pd.Series:
    """:func:`pitch_range` of the clips of a manifest (those of ``ids`` only, in that order),
    decoding each audio file: a Series of semitones indexed by clip id."""
    from ..audio import load_audio

    df = read_frame(manifest).set_index("id")
    ids = list(df.index if ids is None else ids)
    return pd.Series(
        [pitch_range(load_audio(df.loc[i, "audio_path"])) for i in ids],
        index=pd.Index(ids, name="id"),
        name="pitch_range_st",
    )
