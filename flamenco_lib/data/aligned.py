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

``segments="regions"`` (``--segments regions``) writes the lines the model heard in one decoded
region (two or three printed lines in one breath, a line sung twice with a pause) as one segment,
their labels joined, instead of cutting the region where each line begins: a cut placed a word
early or late teaches a model to drop the word on one side and invent it on the other.
``"joined"`` (the default) writes each run of lines sung less than 1.5 s apart (a copla) as one
segment, as ``data import`` joins annotated lines.
"""

from __future__ import annotations

from pathlib import Path

from ..align import align_lyrics, read_lyric_lines
from .importers import MAX_SEGMENT_S, Interval, corpus_rows
from .manifest import read_manifest, write_manifest

__all__ = [
    "JOIN_GAP_S",
    "MIN_COVER",
    "MIN_LINE_S",
    "SEGMENTS",
    "align_to_corpus",
    "corpus_segments",
]

# chosen on the dev songs' labels with stage 3 (README, "The price of alignment"): 0.5-0.7
# read the same there, 0.6 left out two fragments and a line of no length among 227 segments
MIN_COVER = 0.6  # below: too little of the label heard there (align.heard_share)
MIN_LINE_S = 0.5  # below: no room for a sung line
SEGMENTS = ("lines", "regions", "joined")  # what one segment holds: corpus_segments()
JOIN_GAP_S = 1.5  # "joined": lines this close are one segment (data import's max_gap_s)


def _check_segments(how: str) -> None:
    if how not in SEGMENTS:
        raise ValueError(f"segments must be one of {SEGMENTS}, not {how!r}")


def corpus_segments(aligned: list, how: str = "lines", keep=None) -> list[tuple[Interval, dict]]:
    """The segments of a corpus from a recording's aligned lines (in time order) and their fields:
    ``how="lines"``, one per line; ``"regions"``, the consecutive lines of one decoded region
    together; ``"joined"``, consecutive lines less than :data:`JOIN_GAP_S` apart together (a copla
    between two falsetas, as ``data import`` joins annotated lines). Never beyond 30 s, and never
    across a line that ``keep`` (a flag per line) leaves out: its audio would be in the segment
    without its words."""
    _check_segments(how)
    groups: list[list] = []
    broken = True  # the next kept line starts a segment
    for a, kept in zip(aligned, keep or [True] * len(aligned)):
        if not kept:
            broken = True
            continue
        last = None if broken else groups[-1][-1]
        together = last is not None and a.end - groups[-1][0].start <= MAX_SEGMENT_S
        if how == "regions":
            together = together and a.region >= 0 and a.region == last.region
        elif how == "joined":
            together = together and a.start - last.end <= JOIN_GAP_S
        else:
            together = False
        if together:
            groups[-1].append(a)
        else:
            groups.append([a])
        broken = False
    out = []
    for g in groups:
        label = ", ".join((a.sung or a.text).strip().rstrip(",") for a in g)
        fields = {
            "text_canonical": ", ".join(a.text.strip().rstrip(",") for a in g),
            "confidence": round(min(a.confidence for a in g), 3),
            "cover": min(a.cover for a in g),
            "heard": ", ".join(dict.fromkeys(a.heard for a in g)),
            "lyric_line": g[0].line + 1,
        }
        if len(g) > 1:
            fields["lyric_lines"] = [a.line + 1 for a in g]
        out.append((Interval(g[0].start, g[-1].end, label), fields))
    return out


def align_to_corpus(
    pairs,
    *,
    out: str | Path,
    model: str = "base",
    palo: str | None = None,
    singer: str | None = None,
    segments: str = "joined",
    **options,
) -> tuple[Path | None, list[str]]:
    """Align each ``(recording, lyrics file)`` of ``pairs`` and write the aligned lines (one
    segment each, or several together: ``segments``, :func:`corpus_segments`; confidence kept)
    into ``<out>/manifest.jsonl`` (rows of other recordings already there are kept; a recording
    aligned again replaces its own). Returns the manifest (None when nothing aligned) and the
    problems (unreadable files, printed lines not found, lines left out). ``options`` go to
    :func:`~flamenco_lib.align.align_lyrics` (``onset_pieces=None``: starts not dated again)."""
    from ..audio import AudioError, load_audio
    from ..models import load_whisper

    _check_segments(segments)  # before any recording is decoded
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
        aligned, missing = align_lyrics(*whisper, audio, printed, name=recording.name, **options)
        problems += [f"{lyrics}:{k + 1}: not found in {recording.name}" for k in missing]
        keep = [a.cover >= MIN_COVER and a.end - a.start >= MIN_LINE_S for a in aligned]
        for a, kept in zip(aligned, keep):
            if not kept:
                problems.append(
                    f"{lyrics}:{a.line + 1}: {recording.name} {a.start:.1f}-{a.end:.1f} s: "
                    f"{a.cover:.0%} of the line heard ({a.heard!r}), left out"
                )
        segs = corpus_segments(aligned, segments, keep)
        new = corpus_rows(
            [interval for interval, _ in segs],
            audio=recording,
            out=out,
            duration=len(audio) / 16000,
            palo=palo,
            singer=singer,
            source="align",
            max_gap_s=-1.0,  # one segment per interval: nothing unaligned between two
        )
        for row, (_, fields) in zip(new, segs):
            row.update(fields)
        rows += new
    if not rows:
        return None, problems
    man = out / "manifest.jsonl"
    if man.exists():  # a corpus grows one recording at a time: keep the others' rows
        done = {r["recording"] for r in rows}
        rows = [r for r in read_manifest(man) if r.get("recording") not in done] + rows
    return write_manifest(rows, man), problems
