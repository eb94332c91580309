"""Whole songs scored: what :func:`flamenco_lib.recording.transcribe_recording` makes of a
recording whose sung lines and guitar falsetas are known (the song corpus,
:mod:`flamenco_lib.data.songs`).

Per song, against the lines the generator sang (:func:`score_song`):

- **WER** of the whole song: the kept lines' text, in order, against the sung lines' text;
- **hallucinated words per minute of guitar alone**: a transcribed line's words are spread evenly
  over its time span; the words that fall inside falsetas are counted, per minute of falseta;
- **line timing error**: for each sung line, the distance from its start to the nearest start of
  a transcribed line (the median is reported);
- **missed lines**: the share of sung lines that no transcribed line overlaps in time.

:func:`evaluate_songs` runs one model and one method over a split of the song corpus and writes
``song_metrics.json`` (totals and one row per song) and ``lines.jsonl`` (every transcribed line).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from .metrics import normalizer_for, utterance_counts

__all__ = ["evaluate_songs", "score_song", "song_table"]
logger = logging.getLogger(__name__)


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


def score_song(sung: list[dict], got: list[dict], falsetas: list[list[float]]) -> dict:
    """Scores of one song. ``sung``: the generator's lines (``text``, ``start``, ``end``);
    ``got``: the transcribed lines that were kept (``text``, ``start``, ``end``); ``falsetas``:
    [start, end] of guitar alone. Returns counts (so songs add up) and the per-song rates."""
    norm = normalizer_for([ln["text"] for ln in sung])
    ref = " ".join(norm(ln["text"]) for ln in sung).split()
    hyp = " ".join(norm(ln["text"]) for ln in got).split()
    counts = utterance_counts([" ".join(ref)], [" ".join(hyp)]).iloc[0]
    errors = int(counts["substitutions"] + counts["deletions"] + counts["insertions"])
    in_guitar = 0.0
    for ln in got:
        span = (ln["start"], ln["end"])
        n_words = len(norm(ln["text"]).split())
        length = max(span[1] - span[0], 1e-6)
        in_guitar += n_words * sum(_overlap(span, (s, e)) for s, e in falsetas) / length
    guitar_min = sum(e - s for s, e in falsetas) / 60
    timing = [min((abs(g["start"] - s["start"]) for g in got), default=np.inf) for s in sung]
    missed = sum(
        1
        for s in sung
        if not any(_overlap((s["start"], s["end"]), (g["start"], g["end"])) > 0 for g in got)
    )
    return {
        "ref_words": len(ref),
        "errors": errors,
        "wer": errors / max(len(ref), 1),
        "words_in_guitar": round(in_guitar, 3),
        "guitar_minutes": round(guitar_min, 4),
        "hallucinated_per_min": in_guitar / guitar_min if guitar_min else 0.0,
        "timing_errors": [round(float(t), 3) for t in timing],
        "median_timing_error_s": float(np.median(timing)) if timing else 0.0,
        "lines": len(sung),
        "missed": missed,
    }


def song_table(rows: list[dict]) -> dict:
    """Totals over songs: WER (errors over reference words), hallucinated words per minute of
    all the guitar, the median line timing error over all lines, the share of lines missed."""
    timing = [t for r in rows for t in r["timing_errors"]]
    minutes = sum(r["guitar_minutes"] for r in rows)
    return {
        "songs": len(rows),
        "wer": sum(r["errors"] for r in rows) / max(sum(r["ref_words"] for r in rows), 1),
        "hallucinated_per_min": sum(r["words_in_guitar"] for r in rows) / minutes
        if minutes
        else 0.0,
        "median_timing_error_s": float(np.median(timing)) if timing else 0.0,
        "missed_share": sum(r["missed"] for r in rows) / max(sum(r["lines"] for r in rows), 1),
    }


def evaluate_songs(
    model,
    processor,
    corpus: str | Path,
    *,
    out: str | Path,
    split: str = "test",
    method: str = "vad",
    max_songs: int | None = None,
    progress: bool = True,
) -> dict:
    """Transcribe the ``split`` songs of a song corpus folder with ``method``, score each
    (:func:`score_song`) and write ``song_metrics.json`` and ``lines.jsonl`` into ``out``.
    Returns the metrics: the totals of :func:`song_table`, ``seconds`` of decoding, the audio's
    ``audio_seconds`` and ``songs``: one row per song."""
    from .audio import load_audio
    from .recording import transcribe_recording

    corpus, out = Path(corpus), Path(out)
    songs = [
        json.loads(x) for x in (corpus / "songs.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    songs = [s for s in songs if s["split"] == split][:max_songs]
    out.mkdir(parents=True, exist_ok=True)
    rows, seconds, audio_s = [], 0.0, 0.0
    with open(out / "lines.jsonl.tmp", "w", encoding="utf-8") as f:
        for s in songs:
            audio = load_audio(corpus / s["audio"])
            t0 = time.perf_counter()
            lines = transcribe_recording(
                model, processor, audio, method=method, progress=progress, name=s["song"]
            )
            seconds += time.perf_counter() - t0
            audio_s += len(audio) / 16000
            kept = [vars(ln) for ln in lines if not ln.dropped]
            for ln in lines:
                f.write(json.dumps({"song": s["song"], **vars(ln)}, ensure_ascii=False) + "\n")
            rows.append({"song": s["song"], **score_song(s["lines"], kept, s["falsetas"])})
    (out / "lines.jsonl.tmp").replace(out / "lines.jsonl")
    m = {**song_table(rows), "method": method, "split": split, "seconds": seconds}
    m.update(audio_seconds=audio_s, songs=rows)
    tmp = out / "song_metrics.json.tmp"
    tmp.write_text(json.dumps(m, ensure_ascii=False, indent=1), encoding="utf-8")
    tmp.replace(out / "song_metrics.json")
    logger.info(
        "songs (%s, %d): WER %.1f%%, %.1f hallucinated words per guitar minute, median timing "
        "error %.2f s, %.0f%% lines missed, real-time factor %.2f",
        method,
        len(rows),
        100 * m["wer"],
        m["hallucinated_per_min"],
        m["median_timing_error_s"],
        100 * m["missed_share"],
        seconds / max(audio_s, 1e-9),
    )
    return m
