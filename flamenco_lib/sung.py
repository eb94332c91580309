"""How a printed line was sung: its shapes (once, twice, its end again) and the label written
for it from what a model heard (:func:`sung_label`, :func:`heard_share`). Used by
:mod:`flamenco_lib.align` for each aligned line."""

from __future__ import annotations

import re

import numpy as np

from .text import QUEJIOS, normalize, normalize_flamenco

__all__ = ["QUEJIO", "best_shape", "heard_share", "similarity", "sung_label", "sung_shapes"]

QUEJIO = re.compile(r"^a+y+$")  # besides text.QUEJIOS: "ayyyy", "aay" as Whisper spells a long cry


def similarity(a: str, b: str) -> float:
    """rapidfuzz's normalised ``ratio`` of two texts, 0-1."""
    from rapidfuzz import fuzz

    return fuzz.ratio(a, b) / 100.0


def sung_shapes(line: str, sep: str = ", ") -> list[str]:
    """The ways a singer sings a printed line: once, twice, three times, or once followed by its
    last words again (a repeat of the line's end), shortest first.

    >>> sung_shapes("va mi niña")
    ['va mi niña', 'va mi niña, va mi niña', 'va mi niña, va mi niña, va mi niña', 'va mi niña, mi niña']
    """
    words = line.split()
    shapes = [line, sep.join([line] * 2), sep.join([line] * 3)]
    return shapes + [f"{line}{sep}{' '.join(words[k:])}" for k in range(1, len(words) - 1)]


def best_shape(heard_norm: str, shapes_norm: list[str]) -> tuple[float, int]:
    """(similarity, index) of the sung shape most like a normalised transcript (on a tie the
    first, the shortest kind)."""
    scores = [similarity(heard_norm, c) for c in shapes_norm]
    k = int(np.argmax(scores))
    return scores[k], k


def sung_label(
    printed: str, heard: str, *, whole_line: bool = True, shape_of: str | None = None
) -> str:
    """The printed line as the singer sang it, judged from what the model heard there.

    The quejíos the model heard before the first word (``"Ay, ay"``: :data:`text.QUEJIOS`,
    :data:`QUEJIO`) open the label; then, with ``whole_line``, the :func:`sung_shapes` of the
    printed line most like the rest of the heard text (rapidfuzz ``ratio``). The words are the
    printed ones: the model's misheard words never enter the label, only the shape of the
    singing. ``shape_of``: the words whose shape is judged, when they are not the heard text
    after its quejíos (a line sung in one region with others: its own part of the region's
    words); ``whole_line=False`` keeps the quejío and the printed line once.

    >>> sung_label("Mi mare se fue pa Ronda", "Ay, ay, mi madre se fue marronza, se fue marronza")
    'Ay, ay, Mi mare se fue pa Ronda, se fue pa Ronda'
    """
    line = printed.strip().rstrip(",").strip()
    words = normalize(heard).split()
    cries = []
    while len(words) > 1 and (words[0] in QUEJIOS or QUEJIO.match(words[0])):
        cries.append(words.pop(0))
    body = line
    rest = normalize_flamenco(" ".join(words) if shape_of is None else shape_of, keep_accents=False)
    if whole_line and rest:
        shapes = sung_shapes(line)
        _, k = best_shape(rest, [normalize_flamenco(c, keep_accents=False) for c in shapes])
        body = shapes[k]
    if not cries:
        return body
    return ", ".join([cries[0].capitalize(), *cries[1:], body])


def heard_share(heard_norm: str, sung: str) -> float:
    """How much of a label the model heard: the characters of the normalised transcript (quejíos
    dropped) against the label's, at most 1: a breath's "despacio" labelled "me fumé un puro
    despacio" reads far below 1, a misheard line near 1.

    >>> heard_share("despacio", "Ay, me fumé un puro despacio")
    0.33
    """
    label = normalize_flamenco(sung, keep_accents=False)
    return round(min(1.0, len(heard_norm) / max(len(label), 1)), 2)
