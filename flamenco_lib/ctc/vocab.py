"""The character vocabulary of the CTC model and text <-> class ids.

Explained in ``notebooks/03_ctc_vs_deep_fusion.ipynb`` (the blank, the vocabulary).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..text import normalize

BLANK = 0  # class index of the CTC blank
# The character vocabulary: blank, space, apostrophe, Spanish letters, digits (prompts say "marque 1").
VOCAB: tuple[str, ...] = ("", " ", "'", *"abcdefghijklmnopqrstuvwxyz", *"áéíóúñü", *"0123456789")
_INDEX = {c: i for i, c in enumerate(VOCAB) if i != BLANK}


def clean_text(text: str) -> str:
    """What the character model can spell: :func:`flamenco_lib.text.normalize`, then only
    characters of :data:`VOCAB` (others dropped), spaces collapsed."""
    kept = "".join(c for c in normalize(text) if c in _INDEX)
    return " ".join(kept.split())


def encode(text: str, *, vocab: Sequence[str] = VOCAB) -> list[int]:
    """Class ids of :func:`clean_text` ``(text)`` (no blanks)."""
    index = _INDEX if vocab is VOCAB else {c: i for i, c in enumerate(vocab) if c}
    return [index[c] for c in clean_text(text) if c in index]


def decode(ids: Sequence[int], *, vocab: Sequence[str] = VOCAB) -> str:
    """The text of class ids (blanks, if any, vanish); spaces collapsed."""
    return " ".join("".join(vocab[int(i)] for i in ids).split())
