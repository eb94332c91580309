"""Known lyrics aligned to a recording: one timed segment per sung line, for a stage-1 corpus.

A booklet prints each letra once, in order; the singer repeats lines, adds quejíos, skips a
line, and plays guitar between coplas. :func:`align_lyrics` finds where each printed line is sung:

1. **where a voice is, and what it says**: :func:`flamenco_lib.recording.transcribe_recording`
   (voice regions, each decoded; a region is usually one sung line, sometimes two);
2. **which printed line each region sings**: a monotonic alignment by dynamic programming over
   (region, printed line) that maximises the summed text similarity (rapidfuzz's normalised
   ``ratio`` on the normalised texts; a region with one line is compared with the line as it is
   sung, once, twice or with its end repeated: :func:`~flamenco_lib.sung.sung_shapes`, so that a
   line sung twice in one breath is not taken for two printed lines). A region may sing the line
   after the last one, a later one (lines skipped), the **same** one again (a repeat), or two or
   three consecutive printed lines at once, the first of them perhaps a repeat and the last
   perhaps sung twice (its time then cut where the transcript first matches each line's start,
   and the cut moved into the nearest pause of the voice detector inside the region); a region
   that sings one line two or three times with a detector pause between two singings is as many
   occurrences (:func:`_split_repeats`); a region like no printed line (a quejío alone, text over
   the guitar) is left out. Two regions less than :data:`JOIN_GAP_S` apart may sing one line
   together (a line the voice detector cut at a breath), and a region of quejíos alone less than
   :data:`CRY_GAP_S` before the next opens the next line;
3. each aligned line keeps its region's times, its start moved earlier to where the same detector,
   restarted more often (pieces of :data:`ONSET_PIECES`), first hears the voice that runs into it
   (:func:`_earlier_onsets`: a quejío after a falseta is often heard a second late), and a
   **confidence** (the similarity, 0-1); lines under ``min_confidence`` are flagged and left out
   of the corpus, printed lines never found are reported;
4. its **label is what was sung**, written with the printed words
   (:func:`~flamenco_lib.sung.sung_label`): the quejíos heard before the line and the line (or its
   end) as many times as the model heard it (in its own words if it shares a region), and how
   much was heard (:func:`~flamenco_lib.sung.heard_share`). The booklet prints "Mi mare se fue pa
   Ronda" once; the singer sang "Ay, ay, mi mare se fue pa Ronda, mi mare se fue pa Ronda": a
   model trained on the printed line learns to drop quejíos and repeats that the corpus' own
   labels (and the test sets) write out. Each line also keeps the decoded ``region`` it came from:
   the lines of one region are one segment of a corpus written by whole regions
   (:func:`flamenco_lib.data.aligned.align_to_corpus`, ``segments="regions"``).

The times come from the voice detector, not from Whisper's timestamps, so a fine-tuned model that
no longer predicts timestamp tokens aligns as well as zero-shot Whisper.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .sung import QUEJIO, best_shape, heard_share, similarity, sung_label, sung_shapes
from .text import normalize_flamenco

__all__ = [
    "Aligned",
    "align_lines",
    "align_lyrics",
    "read_lyric_lines",
    "sung_label",
    "sung_shapes",
]
logger = logging.getLogger(__name__)

MIN_CONFIDENCE = 0.5  # below: a region is not taken for a printed line
MAX_BLOCK = 3  # printed lines one region may sing at once
JOIN_GAP_S = 1.0  # half a line this close to the next region may be one line with it
CRY_GAP_S = 2.5  # a region of quejíos alone this close to the next region opens its line
PAUSE_COST_S = 2.0  # a cut of a block left by the characters costs as much as one moved this far
MATCH_SLACK = 5.0  # a line's earlier match this close to its best (rapidfuzz points) is its start
JOIN_COST = 0.05  # what joining two regions into one line costs (a repeat in two breaths stays two)
ONSET_PIECES = (6.0, 3.0)  # the detector's pieces (s long, one every s) that date a line's onset
ONSET_BACK_S = 2.0  # ...moving its start at most this much earlier


@dataclass
class Aligned:
    """One sung occurrence of a printed line."""

    line: int  # index of the printed line
    text: str
    start: float
    end: float
    confidence: float
    heard: str  # what the model transcribed there
    sung: str = ""  # the label: the printed line as it was sung (:func:`sung_label`)
    cover: float = 1.0  # how much of the label was heard there (:func:`heard_share`)
    region: int = -1  # the decoded region (or first of two joined) it was sung in


def read_lyric_lines(path: str | Path) -> list[str]:
    """The printed lines of a lyrics text file, in order (blank lines between coplas ignored)."""
    return [
        ln.strip() for ln in Path(path).read_text(encoding="utf-8-sig").splitlines() if ln.strip()
    ]


def _line_starts(heard_norm: str, lines_norm: list[str]) -> list[int]:
    """Where each of consecutive printed lines sung in one region begins in the region's
    normalised transcript: the first at 0, each next one where it first matches best after the
    one before (:func:`_first_match`).

    >>> _line_starts("ay la tierra que pisa el pobre esta mas dura", ["la tierra", "esta mas dura"])
    [0, 31]
    """
    starts, pos = [0], 0
    for line in lines_norm[1:]:
        rest = heard_norm[pos:]
        if len(line) <= len(rest):
            pos += _first_match(line, rest)
        starts.append(pos)
    return starts


def _first_match(line: str, text: str) -> int:
    """Where ``line`` begins in ``text``: the first word from which the text reads most like the
    line (rapidfuzz ``ratio`` of the line against as many characters), a score within
    :data:`MATCH_SLACK` points of the best counting as best, so that a line sung twice begins
    at its first singing, not at its repeat.

    >>> _first_match("esta mas dura", "la tierra esta mas dura esta mas dura")
    10
    """
    from rapidfuzz import fuzz

    words = [0] + [i + 1 for i, c in enumerate(text) if c == " "]
    scores = [fuzz.ratio(line, text[i : i + len(line)]) for i in words]
    top = max(scores)
    return next(i for i, score in zip(words, scores) if score >= top - MATCH_SLACK)


def _cut_at_pauses(edges: list[float], pauses) -> tuple[list[float], list[float]]:
    """The starts and ends of a block of lines sung in one region, from ``edges`` (the region's
    start, the cuts between its lines placed by the characters, its end), each cut moved into a
    pause of the voice inside the region (``pauses``: (start, end) of the detector's gaps),
    the pauses taken in order and each once, so that the cuts moved travel least (a cut left
    where the characters put it counts :data:`PAUSE_COST_S`). A sung line begins where the
    voice comes back after a pause, which the detector hears to a tenth of a second, while the
    characters of a melisma or a quejío say little about its time.

    >>> _cut_at_pauses([10.0, 14.0, 20.0], [(12.0, 12.5)])
    ([10.0, 12.5], [12.0, 20.0])
    """
    cuts = edges[1:-1]
    inner = [p for p in pauses if edges[0] < p[0] and p[1] < edges[-1]]
    n, m = len(cuts), len(inner)
    # cost[i, j]: the least cost of placing the first i cuts with the first j pauses; each step
    # either leaves cut i where it is ("stay"), puts it in pause j ("take"), or leaves pause j
    # unused ("skip")
    cost = np.full((n + 1, m + 1), np.inf)
    cost[0, :] = 0.0
    how: dict[tuple[int, int], str] = {}
    for i in range(1, n + 1):
        for j in range(m + 1):
            options = {"stay": cost[i - 1, j] + PAUSE_COST_S}
            if j:
                options["skip"] = cost[i, j - 1]
                options["take"] = cost[i - 1, j - 1] + abs(sum(inner[j - 1]) / 2 - cuts[i - 1])
            how[(i, j)] = min(options, key=options.get)
            cost[i, j] = options[how[(i, j)]]
    starts, ends = list(edges[:-1]), list(edges[1:])
    i, j = n, m
    while i > 0:  # walk the choices back from the last cut
        step = how[(i, j)]
        if step == "skip":
            j -= 1
            continue
        if step == "take":  # the line before ends where the pause begins, the next starts after
            ends[i - 1], starts[i] = inner[j - 1]
            j -= 1
        i -= 1
    if any(a >= b for a, b in zip(starts, ends)) or any(
        b > a for b, a in zip(ends, starts[1:])
    ):  # a kept cut and a moved one crossed: the characters' cuts
        return list(edges[:-1]), list(edges[1:])
    return starts, ends


def _split_repeats(
    start: float, end: float, text: str, line: str, pauses, words_from: float | None = None
) -> list[tuple]:
    """A region that sings one printed line two or three times (``line`` normalised; its
    :func:`sung_shapes` "twice" or "thrice"), cut into one occurrence per singing where the voice
    detector heard a pause between two singings: ``(start, end, text)`` of each part, the
    quejíos before a singing opening its part. Where a later singing begins is found in the
    words (:func:`_first_match`), its time placed by the characters between ``words_from`` (where
    the words begin, after a region of quejíos that opens the line; default ``start``) and
    ``end``, and moved into the nearest pause after ``words_from`` (:func:`_cut_at_pauses`);
    singings with no pause between them (a line sung twice in one breath) stay one occurrence.

    >>> _split_repeats(10.0, 20.0, "va mi niña, Ay, va mi niña", "va mi nina", [(14.8, 15.5)])
    [(10.0, 14.8, 'va mi niña,'), (15.5, 20.0, 'Ay, va mi niña')]
    """
    words_from = start if words_from is None else words_from
    words = text.split()
    norms = [normalize_flamenco(w, keep_accents=False) for w in words]
    kept = [i for i, w in enumerate(norms) if w and not QUEJIO.match(w)]  # words, not cries
    heard = " ".join(norms[i] for i in kept)
    _, shape = best_shape(heard, sung_shapes(line, sep=" "))
    if shape not in (1, 2) or not heard:  # sung once, or once and its end again
        return [(start, end, text)]
    cuts, pos = [], 0
    for _ in range(shape):  # where the second (and third) singing begins
        skip = pos + len(line) // 2
        if skip >= len(heard):
            break
        pos = skip + _first_match(line, heard[skip:])
        cuts.append(pos)
    edges = [words_from + (end - words_from) * c / len(heard) for c in [0, *cuts, len(heard)]]
    starts, ends = _cut_at_pauses(edges, pauses)
    parts, first_word, part_start = [], 0, start
    for c, part_end, next_start in zip(cuts, ends, starts[1:]):
        if part_end < next_start:  # the cut moved into a pause: two occurrences
            word = heard[:c].count(" ")  # the next singing's first word among the kept ones
            cut = kept[word - 1] + 1 if word else 0  # the cries before it go with it
            parts.append((part_start, part_end, " ".join(words[first_word:cut])))
            first_word, part_start = cut, next_start
    parts.append((part_start, end, " ".join(words[first_word:])))
    return parts


def _words_of_lines(text: str, h: str, cuts: list[int]) -> list[str] | None:
    """The transcript's own words (quejíos kept) of each line of a block, whose normalised
    transcript ``h`` is cut at ``cuts`` (each line's first character, then ``len(h)``): the
    quejíos before a line open its part, as in :func:`_split_repeats`. None when the words do
    not match ``h`` one for one.

    >>> _words_of_lines("Ay, la tierra, ay, esta mas dura", "la tierra esta mas dura", [0, 10, 23])
    ['Ay, la tierra,', 'ay, esta mas dura']
    """
    words = text.split()
    norms = [normalize_flamenco(w, keep_accents=False) for w in words]
    kept = [i for i, w in enumerate(norms) if w and not QUEJIO.match(w)]  # words, not cries
    if len(kept) != len(h.split()):
        return None
    firsts = [0]
    for c in cuts[1:-1]:  # a line's words begin after the last word of the line before
        before = h[:c].count(" ")  # the words of h before the line
        firsts.append(kept[before - 1] + 1 if before else 0)
    firsts.append(len(words))
    return [" ".join(words[a:b]) for a, b in zip(firsts, firsts[1:])]


def _cries_open_lines(heard: list[tuple[float, float, str]]) -> tuple[list[tuple], list[float]]:
    """A region that holds only quejíos, followed within :data:`CRY_GAP_S` by another, is
    joined to it: the cry opens the line (its time and its "Ay" belong to the sung line).
    Returns the regions and, for each, the time its words begin (after the cries joined)."""
    out: list[tuple[float, float, str]] = []
    words_from: list[float] = []
    for start, end, text in heard:
        begins = start
        if out and not normalize_flamenco(out[-1][2]) and start - out[-1][1] <= CRY_GAP_S:
            cry = out.pop()
            words_from.pop()
            start, text = cry[0], f"{cry[2].strip().rstrip(',')}, {text}"
        out.append((start, end, text))
        words_from.append(begins)
    return out, words_from


def _earlier_onsets(aligned: list[Aligned], onsets) -> list[Aligned]:
    """Each line's start moved to the start of an ``onsets`` region (start, end) that holds it
    and begins at most :data:`ONSET_BACK_S` earlier, never before the line before ends (the
    earliest such region). ``onsets`` come from the voice detector restarted more often than the
    one that cut the recording for decoding (:data:`ONSET_PIECES`): a fresh detector hears a
    quejío after a falseta that the other hears a second late, and a region that begins before
    the line before ends is voice running on, not an onset.

    >>> a = Aligned(0, "x", 10.0, 14.0, 1.0, "x")
    >>> [b.start for b in _earlier_onsets([a], [(8.9, 12.0)])]
    [8.9]
    >>> [b.start for b in _earlier_onsets([a], [(7.5, 12.0), (9.0, 9.6)])]  # too far; ends before
    [10.0]
    """
    out, prev_end = [], 0.0
    for a in aligned:
        starts = [s for s, e in onsets if max(prev_end, a.start - ONSET_BACK_S) <= s < a.start <= e]
        out.append(replace(a, start=min(starts)) if starts else a)
        prev_end = max(prev_end, a.end)
    return out


def align_lines(
    heard: list[tuple[float, float, str]],
    printed: list[str],
    *,
    min_confidence=MIN_CONFIDENCE,
    pauses=(),
    onsets=(),
) -> list[Aligned]:
    """Align transcribed regions ``(start, end, text)`` (in time order) to ``printed`` lines
    (in order) as described in the module docstring; ``pauses``: (start, end) of the gaps
    between the voice detector's regions, where a block of lines in one transcribed region is
    cut (:func:`_cut_at_pauses`); ``onsets``: the regions of the detector restarted more often,
    which date each line's start (:func:`_earlier_onsets`). Returns the aligned occurrences in
    time order, confidences below ``min_confidence`` included (the caller decides)."""
    heard, words_from = _cries_open_lines(heard)
    norm_p = [normalize_flamenco(p, keep_accents=False) for p in printed]
    norm_h = [normalize_flamenco(t, keep_accents=False) for _, _, t in heard]
    shapes = [sung_shapes(p, sep=" ") for p in norm_p]  # a lone line, repeated as it is sung
    m, n = len(heard), len(printed)

    def sim(j: int, span: int, f: int, b: int) -> float:
        """Regions j .. j+span-1 (joined) against printed lines f .. f+b-1."""
        h = " ".join(norm_h[j : j + span])
        if b == 1:
            return best_shape(h, shapes[f])[0]
        head = " ".join(norm_p[f : f + b - 1])  # a block's last line as it is sung, too
        return max(similarity(h, f"{head} {shape}") for shape in shapes[f + b - 1])

    def spans(j: int):  # one region, or two closer than JOIN_GAP_S (a line cut by a breath)
        yield 1
        if j + 1 < m and heard[j + 1][0] - heard[j][1] <= JOIN_GAP_S:
            yield 2

    neg = -1e9
    # best[j][i]: best score after j regions, i = index of the last printed line sung + 1; a
    # score counts each region taken by its similarity, so a line cut in two weighs as two
    best = np.full((m + 1, n + 1), neg)
    best[0][0] = 0.0
    back: dict[tuple[int, int], tuple[int, int, int, int]] = {}  # -> (j, i, first line, block)
    for j in range(m):
        for i in range(n + 1):
            if best[j][i] == neg:
                continue
            if best[j][i] > best[j + 1][i]:  # region j sings no printed line
                best[j + 1][i], back[(j + 1, i)] = best[j][i], (j, i, -1, 0)
            for span in spans(j):
                for f in range(max(i - 1, 0), n):  # the last line again, the next, or later
                    for b in range(1, (MAX_BLOCK if span == 1 else 1) + 1):
                        if f + b > n:
                            break
                        s = sim(j, span, f, b)
                        if s < min_confidence:
                            continue
                        score = best[j][i] + span * s - 0.01 * (f - i if f > i else 0)
                        score -= JOIN_COST * (span - 1)  # two breaths stay two lines on a tie
                        if score > best[j + span][f + b]:
                            best[j + span][f + b] = score
                            back[(j + span, f + b)] = (j, i, f, b)
    j, i = m, int(np.argmax(best[m]))
    out: list[Aligned] = []
    while j > 0:
        prev_j, prev_i, f, b = back[(j, i)]
        if f >= 0:
            start, end = heard[prev_j][0], heard[j - 1][1]
            text = ", ".join(t.strip().rstrip(",") for _, _, t in heard[prev_j:j])
            conf = sim(prev_j, j - prev_j, f, b)
            if b == 1:  # one line, perhaps sung twice or three times across pauses
                parts = _split_repeats(start, end, text, norm_p[f], pauses, words_from[prev_j])
                for s0, s1, part in reversed(parts):
                    heard_part = normalize_flamenco(part, keep_accents=False)
                    part_conf = conf if part == text else best_shape(heard_part, shapes[f])[0]
                    sung = sung_label(printed[f], part)
                    cover = heard_share(heard_part, sung)
                    out.append(Aligned(f, printed[f], s0, s1, part_conf, part, sung, cover, prev_j))
            else:  # a block of lines, cut where each begins in the words and in the pauses
                h = " ".join(norm_h[prev_j:j])
                cuts = _line_starts(h, norm_p[f : f + b]) + [len(h)]
                edges = [start + (end - start) * c / max(len(h), 1) for c in cuts]
                starts, ends = _cut_at_pauses(edges, pauses)
                owns = [h[cuts[k] : cuts[k + 1]].strip() for k in range(b)]  # up to the next
                words = _words_of_lines(text, h, cuts) or [text, *owns[1:]]  # quejíos kept
                for k in reversed(range(b)):  # each line as sung judged on its own words
                    sung = sung_label(printed[f + k], words[k], shape_of=owns[k])
                    span, cover = (float(starts[k]), float(ends[k])), heard_share(owns[k], sung)
                    out.append(
                        Aligned(f + k, printed[f + k], *span, conf, text, sung, cover, prev_j)
                    )
        j, i = prev_j, prev_i
    return _earlier_onsets(out[::-1], onsets)


def align_lyrics(
    model,
    processor,
    audio: np.ndarray,
    printed: list[str],
    *,
    name="recording",
    onset_pieces: tuple[float, float] | None = ONSET_PIECES,
    **options,
):
    """Transcribe ``audio`` by voice regions and align ``printed`` to it (:func:`align_lines`).
    Returns ``(aligned, missing)``: the aligned lines and the indices of printed lines found
    nowhere (each also logged as a warning). ``options`` (``vad_threshold``, ``join_s``) go to
    :func:`~flamenco_lib.recording.transcribe_recording`; the detector's pauses inside a
    transcribed region cut the lines sung there, and the same detector on ``onset_pieces``
    (seconds long, one every; :data:`ONSET_PIECES`) dates each line's onset (``None``: the starts
    stay those of the regions decoded)."""
    from .recording import transcribe_recording
    from .voice import VAD_THRESHOLD, voice_regions

    threshold = options.get("vad_threshold", VAD_THRESHOLD)
    regions = voice_regions(audio, threshold=threshold)
    lines = transcribe_recording(
        model, processor, audio, progress=False, name=name, regions=regions, **options
    )
    heard = [(ln.start, ln.end, ln.text) for ln in lines if not ln.dropped and ln.text]
    pauses = [(a[1], b[0]) for a, b in zip(regions, regions[1:])]
    onsets = []
    if onset_pieces:
        chunk_s, hop_s = onset_pieces
        onsets = voice_regions(audio, threshold=threshold, chunk_s=chunk_s, hop_s=hop_s)
    aligned = align_lines(heard, printed, pauses=pauses, onsets=onsets)
    found = {a.line for a in aligned}
    missing = [k for k in range(len(printed)) if k not in found]
    for k in missing:
        logger.warning("%s: printed line %d not found in the audio: %r", name, k + 1, printed[k])
    return aligned, missing
