"""Known lyrics aligned to a recording: one timed segment per sung line, for a stage-1 corpus.

A booklet prints each letra once, in order; the singer repeats lines, adds quejíos, skips a
line, and plays guitar between coplas. :func:`align_lyrics` finds where each printed line is sung:

1. **where a voice is, and what it says**: :func:`flamenco_lib.recording.transcribe_recording`
   (voice regions, each decoded; a region is usually one sung line, sometimes two);
2. **which printed line each region sings**: a monotonic alignment by dynamic programming over
   (region, printed line) that maximises the summed text similarity (rapidfuzz's normalised
   ``ratio`` on the normalised texts). A region may sing the line after the last one, a later
   one (lines skipped), the **same** one again (a repeat), or two or three consecutive printed
   lines at once (its time then shared by their lengths); a region like no printed line (a
   quejío, text over the guitar) is left out;
3. each aligned line keeps its region's times and a **confidence** (the similarity, 0-1); lines
   under ``min_confidence`` are flagged and left out of the corpus, printed lines never found are
   reported.

The times come from the voice detector, not from Whisper's timestamps, so a fine-tuned model that
no longer predicts timestamp tokens aligns as well as zero-shot Whisper.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .text import normalize_flamenco

__all__ = ["Aligned", "align_lines", "align_lyrics", "align_to_corpus", "read_lyric_lines"]
logger = logging.getLogger(__name__)

MIN_CONFIDENCE = 0.5  # below: a region is not taken for a printed line
MAX_BLOCK = 3  # printed lines one region may sing at once


@dataclass
class Aligned:
    """One sung occurrence of a printed line."""

    line: int  # index of the printed line
    text: str
    start: float
    end: float
    confidence: float
    heard: str  # what the model transcribed there


def read_lyric_lines(path: str | Path) -> list[str]:
    """The printed lines of a lyrics text file, in order (blank lines between coplas ignored)."""
    return [
        ln.strip() for ln in Path(path).read_text(encoding="utf-8-sig").splitlines() if ln.strip()
    ]


def _sim(a: str, b: str) -> float:
    from rapidfuzz import fuzz

    return fuzz.ratio(a, b) / 100.0


def align_lines(
    heard: list[tuple[float, float, str]], printed: list[str], *, min_confidence=MIN_CONFIDENCE
) -> list[Aligned]:
    """Align transcribed regions ``(start, end, text)`` (in time order) to ``printed`` lines
    (in order) as described in the module docstring. Returns the aligned occurrences in time
    order, confidences below ``min_confidence`` included (the caller decides)."""
    norm_p = [normalize_flamenco(p, keep_accents=False) for p in printed]
    norm_h = [normalize_flamenco(t, keep_accents=False) for _, _, t in heard]
    m, n = len(heard), len(printed)
    neg = -1e9
    # best[j][i]: best score after j regions, i = index of the last printed line sung + 1
    best = np.full((m + 1, n + 1), neg)
    best[0][0] = 0.0
    back: dict[tuple[int, int], tuple[int, int, int]] = {}  # -> (previous i, first line, block)
    for j in range(m):
        for i in range(n + 1):
            if best[j][i] == neg:
                continue
            if best[j][i] > best[j + 1][i]:  # region j sings no printed line
                best[j + 1][i], back[(j + 1, i)] = best[j][i], (i, -1, 0)
            first_options = range(max(i - 1, 0), n)  # the last line again, the next, or later
            for f in first_options:
                for b in range(1, MAX_BLOCK + 1):
                    if f + b > n or (f < i and b > 1):
                        break
                    s = _sim(norm_h[j], " ".join(norm_p[f : f + b]))
                    if s < min_confidence:
                        continue
                    score = best[j][i] + s - 0.01 * (f - i if f > i else 0)  # skips cost a little
                    if score > best[j + 1][f + b]:
                        best[j + 1][f + b], back[(j + 1, f + b)] = score, (i, f, b)
    i = int(np.argmax(best[m]))
    out: list[Aligned] = []
    for j in range(m, 0, -1):
        prev, f, b = back[(j, i)]
        if f >= 0:
            start, end, text = heard[j - 1]
            lengths = np.array([len(norm_p[k]) or 1 for k in range(f, f + b)], dtype=float)
            edges = start + (end - start) * np.concatenate(
                [[0], np.cumsum(lengths) / lengths.sum()]
            )
            conf = _sim(norm_h[j - 1], " ".join(norm_p[f : f + b]))
            for k in reversed(range(b)):
                out.append(
                    Aligned(f + k, printed[f + k], float(edges[k]), float(edges[k + 1]), conf, text)
                )
        i = prev
    return out[::-1]


def align_lyrics(model, processor, audio: np.ndarray, printed: list[str], *, name="recording"):
    """Transcribe ``audio`` by voice regions and align ``printed`` to it (:func:`align_lines`).
    Returns ``(aligned, missing)``: the aligned lines (confidence >= :data:`MIN_CONFIDENCE`) and
    the indices of printed lines found nowhere (each also logged as a warning)."""
    from .recording import transcribe_recording

    lines = transcribe_recording(model, processor, audio, progress=False, name=name)
    heard = [(ln.start, ln.end, ln.text) for ln in lines if not ln.dropped and ln.text]
    aligned = align_lines(heard, printed)
    found = {a.line for a in aligned}
    missing = [k for k in range(len(printed)) if k not in found]
    for k in missing:
        logger.warning("%s: printed line %d not found in the audio: %r", name, k + 1, printed[k])
    return aligned, missing


def align_to_corpus(
    pairs,
    *,
    out: str | Path,
    model: str = "base",
    palo: str | None = None,
    singer: str | None = None,
) -> tuple[Path | None, list[str]]:
    """Align each ``(recording, lyrics file)`` of ``pairs`` and write the aligned lines (one
    segment each, confidence kept) into ``<out>/manifest.jsonl`` (rows of other recordings
    already there are kept; a recording aligned again replaces its own). Returns the manifest (None when
    nothing aligned) and the problems (unreadable files, printed lines not found)."""
    from .audio import AudioError, load_audio
    from .data.importers import Interval, corpus_rows
    from .data.manifest import write_manifest
    from .models import load_whisper

    out = Path(out)
    whisper = None
    rows, problems = [], []
    for recording, lyrics in pairs:
        recording, lyrics = Path(recording), Path(lyrics)
        try:
            audio = load_audio(recording)
            printed = read_lyric_lines(lyrics)
        except (AudioError, OSError) as err:
            problems.append(f"{err} (skipped)")
            continue
        if not printed:
            problems.append(f"{lyrics}: no lyric lines (skipped)")
            continue
        whisper = whisper or load_whisper(model)
        aligned, missing = align_lyrics(*whisper, audio, printed, name=recording.name)
        problems += [f"{lyrics}:{k + 1}: not found in {recording.name}" for k in missing]
        new = corpus_rows(
            [Interval(a.start, a.end, a.text) for a in aligned],
            audio=recording,
            out=out,
            duration=len(audio) / 16000,
            palo=palo,
            singer=singer,
            source="align",
            max_gap_s=-1.0,  # one segment per sung line: nothing unaligned between two lines
        )
        for row, a in zip(new, aligned):
            row.update(confidence=round(a.confidence, 3), heard=a.heard, lyric_line=a.line + 1)
        rows += new
    if not rows:
        return None, problems
    man = out / "manifest.jsonl"
    if man.exists():  # a corpus grows one recording at a time: keep the others' rows
        from .data.manifest import read_manifest

        done = {r["recording"] for r in rows}
        rows = [r for r in read_manifest(man) if r.get("recording") not in done] + rows
    return write_manifest(rows, man), problems
