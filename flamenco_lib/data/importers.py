"""Timed annotations people already have, turned into a corpus of the project's manifest.

``python -m flamenco_lib data import ANNOTATIONS... --audio-dir DIR --out CORPUS`` reads each
annotation file by its extension, finds its recording (same stem) in ``DIR``, and writes a
manifest whose segments point into the long recordings (``start``/``end``; nothing is cut):

- Praat ``.TextGrid`` and ELAN ``.eaf``: the intervals of one tier (``--tier``; by default the
  only tier, or the one named like lyrics / letra / text / transcription), read with
  ``pympi-ling`` (one kept library for both formats, the reader ELAN's own users script with);
- ``.srt`` subtitles: the ``srt`` package, block by block, so one broken block is reported with
  its line and the others are read;
- ``.lrc`` karaoke lyrics (``[mm:ss.xx]text``; a line ends where the next one starts, the last
  at the recording's end) and Audacity label tracks (``.txt``: ``start<TAB>end<TAB>text``): plain
  text formats of one line per interval, parsed here with the line number of every problem.

Neighbouring lines of a recording are joined into segments of at most 30 s (a gap of more than
``max_gap_s`` starts a new segment), each with ``previous_text`` (the segment before it in the
same recording). Empty intervals are skipped. A recording's segments share one split (a hash of
its file name). The recordings are hard-linked into ``CORPUS/audio/`` (copied only across
filesystems), so the corpus is self-contained without doubling the disk it takes.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..errors import FlamencoError
from .manifest import write_manifest
from .speech import split_of

__all__ = [
    "FORMATS",
    "AnnotationError",
    "Interval",
    "import_annotations",
    "read_annotations",
    "segments_from",
]
logger = logging.getLogger(__name__)

MAX_SEGMENT_S = 30.0
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".m4a", ".opus", ".aiff", ".aif")
LYRIC_TIER = re.compile(r"lyric|letra|text|transcri|verse|cante", re.IGNORECASE)
_LRC = re.compile(r"^\[(\d+):(\d{1,2}(?:\.\d+)?)\](.*)$")
_LRC_TAG = re.compile(r"^\[[a-zA-Z]+:.*\]$")  # [ar:Artist], [ti:Title], [offset:...]


class AnnotationError(FlamencoError, ValueError):
    """An annotation file that cannot be imported at all (its message names the file)."""


@dataclass
class Interval:
    """One annotated stretch of a recording: seconds, text, and where it was read (line)."""

    start: float
    end: float | None
    text: str
    line: int | None = None


def _pick_tier(names: list[str], tier: str | None, path: Path) -> str:
    if tier is not None:
        if tier not in names:
            raise AnnotationError(
                f"{path}: no tier {tier!r} (tiers: {', '.join(names)}); pass --tier"
            )
        return tier
    if len(names) == 1:
        return names[0]
    lyric = [n for n in names if LYRIC_TIER.search(n)]
    if len(lyric) == 1:
        return lyric[0]
    raise AnnotationError(
        f"{path}: {len(names)} tiers ({', '.join(names)}): say which holds the lyrics with --tier"
    )


def read_textgrid(path: Path, *, tier: str | None = None) -> tuple[list[Interval], list[str]]:
    from pympi import Praat

    try:
        grid = Praat.TextGrid(str(path))
    except Exception as err:  # pympi raises bare exceptions on malformed files
        raise AnnotationError(f"{path}: not a readable TextGrid ({err})") from err
    names = [t.name for t in grid.get_tiers()]
    t = grid.get_tier(_pick_tier(names, tier, path))
    return [Interval(float(s), float(e), str(x)) for s, e, x in t.get_intervals(sort=True)], []


def read_eaf(path: Path, *, tier: str | None = None) -> tuple[list[Interval], list[str]]:
    from pympi import Elan

    try:
        eaf = Elan.Eaf(str(path), suppress_version_warning=True)
    except Exception as err:
        raise AnnotationError(f"{path}: not a readable ELAN file ({err})") from err
    name = _pick_tier(list(eaf.get_tier_names()), tier, path)
    data = sorted(eaf.get_annotation_data_for_tier(name))
    return [Interval(s / 1000, e / 1000, str(v)) for s, e, v, *_ in data], []


def read_srt(path: Path, **_) -> tuple[list[Interval], list[str]]:
    import srt

    text = path.read_text(encoding="utf-8-sig")
    out, problems, line = [], [], 1
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        if block.strip():
            first = line + len(block) - len(block.lstrip("\n"))
            try:
                for sub in srt.parse(block + "\n"):
                    t0, t1 = sub.start.total_seconds(), sub.end.total_seconds()
                    out.append(Interval(t0, t1, sub.content.replace("\n", " "), first))
            except srt.SRTParseError as err:
                problems.append(f"{path}:{first}: not an SRT block ({str(err).splitlines()[0]})")
        line += block.count("\n") + 2
    return out, problems


def read_lrc(path: Path, **_) -> tuple[list[Interval], list[str]]:
    stamps, problems = [], []
    for n, raw in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
        s = raw.strip()
        if not s or _LRC_TAG.match(s):
            continue
        m = _LRC.match(s)
        if not m:
            problems.append(f"{path}:{n}: expected [mm:ss.xx]text, got {s[:40]!r}")
            continue
        stamps.append((int(m.group(1)) * 60 + float(m.group(2)), m.group(3).strip(), n))
    stamps.sort(key=lambda x: x[0])
    out = []
    for k, (t, text, n) in enumerate(stamps):  # a line lasts until the next one starts
        out.append(Interval(t, stamps[k + 1][0] if k + 1 < len(stamps) else None, text, n))
    return out, problems


def read_audacity(path: Path, **_) -> tuple[list[Interval], list[str]]:
    out, problems = [], []
    for n, raw in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
        if not raw.strip() or raw.startswith("\\"):  # a spectral selection line: not a label
            continue
        parts = raw.split("\t")
        try:
            start, end = float(parts[0]), float(parts[1])
        except (ValueError, IndexError):
            problems.append(f"{path}:{n}: expected start<TAB>end<TAB>text, got {raw[:40]!r}")
            continue
        if end < start:
            problems.append(f"{path}:{n}: the label ends ({end}) before it starts ({start})")
            continue
        out.append(Interval(start, end, parts[2] if len(parts) > 2 else "", n))
    return out, problems


FORMATS = {
    ".textgrid": read_textgrid,
    ".eaf": read_eaf,
    ".srt": read_srt,
    ".lrc": read_lrc,
    ".txt": read_audacity,
}


def read_annotations(path: str | Path, *, tier: str | None = None):
    """``(intervals, problems)`` of one annotation file, by its extension (:data:`FORMATS`).
    A file that cannot be read at all raises :class:`AnnotationError` naming it."""
    path = Path(path)
    reader = FORMATS.get(path.suffix.lower())
    if reader is None:
        raise AnnotationError(
            f"{path}: unknown annotation format; use one of {', '.join(sorted(FORMATS))}"
        )
    if not path.exists():
        raise AnnotationError(f"{path}: file not found")
    return reader(path, tier=tier)


def segments_from(
    intervals: list[Interval], *, duration: float, max_s: float = MAX_SEGMENT_S, max_gap_s=1.5
) -> list[dict]:
    """Join consecutive non-empty intervals into segments of at most ``max_s`` seconds; a gap
    over ``max_gap_s`` starts a new one. An interval without an end (LRC's last line) ends at
    ``duration``; one longer than ``max_s`` alone is kept as one segment cut to ``max_s``."""
    segs: list[dict] = []
    for iv in intervals:
        text = " ".join(iv.text.split())
        end = min(iv.end if iv.end is not None else duration, duration)
        if not text or end <= iv.start:
            continue
        if segs and iv.start - segs[-1]["end"] <= max_gap_s and end - segs[-1]["start"] <= max_s:
            segs[-1]["end"] = end
            segs[-1]["text"] += " " + text
        else:
            segs.append({"start": iv.start, "end": min(end, iv.start + max_s), "text": text})
    return segs


def _link(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        return
    try:
        os.link(src, dest)
    except OSError:  # another filesystem: a copy is the only way to keep the corpus whole
        shutil.copy2(src, dest)


def corpus_rows(
    intervals: list[Interval],
    *,
    audio: Path,
    out: Path,
    duration: float,
    palo: str | None = None,
    singer: str | None = None,
    source: str = "import",
    seed: int = 0,
    max_gap_s: float = 1.5,
) -> list[dict]:
    """Manifest rows of one recording's intervals (:func:`segments_from`; ``max_gap_s < 0``:
    one segment per interval), the recording hard-linked into ``<out>/audio/``; ids
    ``<stem>-NNN``, one split per recording."""
    _link(audio, out / "audio" / audio.name)
    rows, previous = [], None
    segs = segments_from(intervals, duration=duration, max_gap_s=max_gap_s)
    for k, seg in enumerate(segs):
        rows.append(
            {
                "id": f"{audio.stem}-{k:03d}",
                "audio": f"audio/{audio.name}",
                "start": round(seg["start"], 3),
                "end": round(seg["end"], 3),
                "text": seg["text"],
                "text_canonical": seg["text"],
                "palo": palo,
                "singer": singer or audio.stem,
                "split": split_of(audio.stem, seed=seed),
                "source": source,
                "recording": audio.name,
                "previous_text": previous,
            }
        )
        previous = seg["text"]
    return rows


def import_annotations(
    annotations,
    *,
    audio_dir: str | Path,
    out: str | Path,
    tier: str | None = None,
    palo: str | None = None,
    singer: str | None = None,
    seed: int = 0,
) -> tuple[Path | None, list[str]]:
    """Import every annotation file into ``<out>/manifest.jsonl``. Returns the manifest (None
    when nothing could be imported) and every problem, ``"<file>[:<line>]: <what>"``; a bad
    file or line is reported and skipped, the rest imported."""
    from ..audio import AudioError, audio_duration

    out, audio_dir = Path(out), Path(audio_dir)
    rows, problems = [], []
    for ann in map(Path, annotations):
        try:
            intervals, bad = read_annotations(ann, tier=tier)
        except AnnotationError as err:
            problems.append(str(err))
            continue
        problems += bad
        audio = next(
            (
                audio_dir / f"{ann.stem}{ext}"
                for ext in AUDIO_EXTENSIONS
                if (audio_dir / f"{ann.stem}{ext}").exists()
            ),
            None,
        )
        if audio is None:
            problems.append(f"{ann}: no recording {ann.stem}.* in {audio_dir} (skipped)")
            continue
        try:
            duration = audio_duration(audio)
        except AudioError as err:
            problems.append(f"{ann}: {err} (skipped)")
            continue
        rows += corpus_rows(
            intervals,
            audio=audio,
            out=out,
            duration=duration,
            palo=palo,
            singer=singer,
            source=f"import-{ann.suffix.lower().lstrip('.')}",
            seed=seed,
        )
    if not rows:
        return None, problems
    man = write_manifest(rows, out / "manifest.jsonl")
    logger.info("imported %d segments from %d file(s) -> %s", len(rows), len(annotations), man)
    return man, problems
