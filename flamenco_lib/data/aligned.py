"""Recordings with their printed lyrics, aligned and written as a corpus of the project's manifest.

``python -m flamenco_lib data align RECORDING LYRICS.txt... --out CORPUS``: each recording is
transcribed by voice regions and its printed lines aligned to it
(:func:`flamenco_lib.align.align_lyrics`); every aligned line becomes one segment of the long
recording (:func:`flamenco_lib.data.importers.corpus_rows`: the recording hard-linked into
``CORPUS/audio/``, nothing cut), labelled as it was sung, with its confidence, what the model
heard there and the printed line's number. A line the model heard only a fragment of (less than
:data:`MIN_COVER` of its label: a breath's "despacio" labelled "me fumé un puro despacio") or
shorter than :data:`MIN_LINE_S` is left out, with a line saying so: its label would teach words
that are not in its audio. ``scripts/align_e2e.py`` trains stage 1 on such a corpus.
"""

from __future__ import annotations

from pathlib import Path

from ..align import align_lyrics, read_lyric_lines
from .importers import Interval, corpus_rows
from .manifest import read_manifest, write_manifest

__all__ = ["MIN_COVER", "MIN_LINE_S", "align_to_corpus"]

# chosen on the dev songs' labels with stage 3 (README, "The price of alignment"): 0.5-0.7
# read the same there, 0.6 left out two fragments and a line of no length among 227 segments
MIN_COVER = 0.6  # below: too little of the label heard there (align.heard_share)
MIN_LINE_S = 0.5  # below: no room for a sung line


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
    from ..audio import AudioError, load_audio
    from ..models import load_whisper

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
        kept = []
        for a in aligned:
            if a.cover >= MIN_COVER and a.end - a.start >= MIN_LINE_S:
                kept.append(a)
            else:
                problems.append(
                    f"{lyrics}:{a.line + 1}: {recording.name} {a.start:.1f}-{a.end:.1f} s: "
                    f"{a.cover:.0%} of the line heard ({a.heard!r}), left out"
                )
        aligned = kept
        new = corpus_rows(
            [Interval(a.start, a.end, a.sung or a.text) for a in aligned],
            audio=recording,
            out=out,
            duration=len(audio) / 16000,
            palo=palo,
            singer=singer,
            source="align",
            max_gap_s=-1.0,  # one segment per sung line: nothing unaligned between two lines
        )
        for row, a in zip(new, aligned):
            row.update(
                text_canonical=a.text,
                confidence=round(a.confidence, 3),
                cover=a.cover,
                heard=a.heard,
                lyric_line=a.line + 1,
            )
        rows += new
    if not rows:
        return None, problems
    man = out / "manifest.jsonl"
    if man.exists():  # a corpus grows one recording at a time: keep the others' rows
        done = {r["recording"] for r in rows}
        rows = [r for r in read_manifest(man) if r.get("recording") not in done] + rows
    return write_manifest(rows, man), problems
