"""Text normalisation for scoring Spanish and flamenco transcripts.

:func:`normalize` is Whisper's basic (non-English) normaliser, which keeps accents, plus what
Spanish needs. :func:`normalize_flamenco` also maps Andalusian spellings onto the written
forms and drops quejíos, for scoring against ``text_canonical``.
Used by :mod:`flamenco_lib.metrics`; discussed in ``notebooks/06_zero_shot.ipynb``.
"""

from __future__ import annotations

import re
import unicodedata

# Whisper's basic normaliser drops bracketed and parenthesised spans ("[música]", "(risas)").
_BRACKETS = re.compile(r"[<\[][^>\]]*[>\]]")
_PARENS = re.compile(r"\(([^)]+?)\)")
# Elisions: "pa'" -> "pa", "pa'l" -> "pal", "'tá" -> "tá" (an apostrophe joins, never splits).
_APOSTROPHES = re.compile(r"(?<=\w)['’`´](?=\w)|(?<=\w)['’`´]|['’`´](?=\w)")
_SPACES = re.compile(r"\s+")


def _symbols_to_space(text: str) -> str:
    """NFKC, then every mark (M), symbol (S) and punctuation (P) character becomes a space."""
    return "".join(
        " " if unicodedata.category(c)[0] in "MSP" else c
        for c in unicodedata.normalize("NFKC", text)
    )


def fold_accents(text: str) -> str:
    """Remove diacritics (á→a, ü→u) but keep ñ/Ñ, a letter of its own in Spanish."""
    out = []
    for c in text:
        if c in "ñÑ":
            out.append(c)
            continue
        out.append(
            "".join(d for d in unicodedata.normalize("NFD", c) if unicodedata.category(d) != "Mn")
        )
    return unicodedata.normalize("NFC", "".join(out))


def normalize(text: str, *, keep_accents: bool = True) -> str:
    """Normalise a transcript for WER/CER.

    Whisper's basic normaliser: lowercase, drop ``[...]``, ``<...>`` and ``(...)`` spans, NFKC,
    every Unicode mark/symbol/punctuation character to a space, collapse spaces. Spanish
    additions: elision apostrophes join rather than split (``pa'l`` → ``pal``), and the result
    is stripped. ``¿ ¡ « » — …`` are punctuation and vanish with the rest.

    Parameters
    ----------
    text : str
    keep_accents : bool
        ``False`` folds accents (``canción`` → ``cancion``) but keeps ``ñ``.

    Examples
    --------
    >>> normalize("¿Dónde vas, gitana? [música]")
    'dónde vas gitana'
    >>> normalize("Pa'l puerto, ¡olé!", keep_accents=False)
    'pal puerto ole'
    """
    s = text.lower()
    s = _BRACKETS.sub("", s)
    s = _PARENS.sub("", s)
    s = _APOSTROPHES.sub("", s)
    s = _symbols_to_space(s).lower()
    if not keep_accents:
        s = fold_accents(s)
    return _SPACES.sub(" ", s).strip()


# Andalusian spellings found in cante lyrics, mapped to the written word (lowercase, accents kept).
ANDALUSIAN_SPELLINGS: dict[str, str] = {
    "mare": "madre",
    "pare": "padre",
    "pa": "para",
    "pal": "para el",
    "quió": "quiero",
    "er": "el",
    "ná": "nada",
    "tó": "todo",
    "toa": "toda",
    "tós": "todos",
    "verdá": "verdad",
    "libertá": "libertad",
    "Dió": "dios",
    "dió": "dios",
    "probe": "pobre",
    "mu": "muy",
    "usté": "usted",
    "queré": "querer",
    "pué": "puede",
    "asín": "así",
    "pío": "pido",
}
# Quejíos and fillers that a singer adds and the written lyric lacks.
QUEJIOS = frozenset(
    {"ay", "ayy", "ayyy", "ah", "oh", "eh", "ea", "olé", "ole", "lerele", "lere", "tiritrán"}
)


def normalize_flamenco(text: str, *, keep_accents: bool = True) -> str:
    """:func:`normalize`, then Andalusian spellings to written forms and quejíos dropped.

    Scores a sung transcript against the written lyric (``text_canonical``) without counting
    the singer's "ay" or "mare" for "madre" as errors.

    >>> normalize_flamenco("¡Ay! Mi mare, ay, tó lo que tengo")
    'mi madre todo lo que tengo'
    """
    words = [ANDALUSIAN_SPELLINGS.get(w, w) for w in normalize(text).split() if w not in QUEJIOS]
    s = " ".join(words)
    return fold_accents(s) if not keep_accents else s
