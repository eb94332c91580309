"""More real voices, offline: the Spanish voice-over of the adventure game Drascula (Debian's
``drascula-spanish``, with its texts in ``drascula``'s ``drascula.dat``; Drascula licence, DFSG-free).

About 780 recorded lines by 10 characters (one of them female), Castilian accents, about 0.7 h.
The recordings are poor (8-bit, 11 kHz): this corpus tests voices and accents a model never
heard, not fidelity. Its splits are by **speaker** (:data:`SPLIT_OF_CHARACTER`): the test and dev
characters are voices that no model trains on.

The files, as this module reads them:

- a line is ``<PREFIX><N>.ALS`` under ``/usr/share/scummvm/drascula/es/`` (links into ``../en``
  are English lines, skipped): raw unsigned 8-bit mono PCM at 11025 Hz after a 32-byte header,
  with 64 trailing bytes that are not sound;
- its text is entry ``N`` of the text array of ``PREFIX`` (:data:`CHARACTERS`, in file order) in
  ``drascula.dat`` (:func:`read_texts`), in the Spanish column (language 1). The ``S`` and ``F``
  files are sound effects.

Most texts are upper case without accents; a line in capitals is kept in sentence case
(:func:`sentence_case`: capitals make poor training labels), and scores fold case and accents
(``flamenco_lib.metrics.normalizer_for``: the references have no accents). About 90 lines are ad-libs that do not
match their audio: a line whose speech rate is implausible (:data:`CHARS_PER_SECOND`) is left out
and counted (:func:`lines`).

Notebook: ``05_data.ipynb``.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np

from ..errors import FlamencoError
from ..text import normalize

SOUNDS_DIR = Path("/usr/share/scummvm/drascula/es")
DAT_FILE = Path("/usr/share/scummvm/drascula.dat")
DEBIAN_PACKAGES = ("drascula", "drascula-spanish")
INSTALL_HINT = "sudo apt-get install -y " + " ".join(DEBIAN_PACKAGES) + "  (or: make setup)"
FILE_RATE = 11025  # Hz: the .ALS files' sample rate
HEADER_BYTES, TRAILER_BYTES = 32, 64  # around the PCM samples of an .ALS file
SPANISH = 1  # language column of drascula.dat
# drascula.dat's layout: 13 tables of fixed-size records before the texts (bytes per record)
_RECORD_BYTES = (4, 4, 4, 2, 4, 2, 4, 2, 2, 20, 20, 10, 8)
# file-name prefix -> (text array of drascula.dat, character); the arrays after these are menus
CHARACTERS = {
    "": (0, "john-hacker"),  # the protagonist
    "D": (1, "drascula"),
    "B": (2, "b"),
    "BJ": (3, "billie-jean"),  # the one female voice
    "E": (4, "e"),
    "I": (5, "igor"),
    "L": (6, "l"),
    "P": (7, "p"),
    "T": (8, "t"),
    "VB": (9, "von-braun"),
}
# splits by speaker: three held-out characters (the female one among them) for test (81 lines) and
# three for dev (50 lines: one dev character alone has 16, too few to choose between runs)
SPLIT_OF_CHARACTER = {
    "billie-jean": "test",
    "l": "test",
    "t": "test",
    "p": "dev",
    "e": "dev",
    "b": "dev",
}
CHARS_PER_SECOND = (6.0, 24.0)  # plausible Spanish speech, letters and spaces per second


class DrasculaMissing(FlamencoError, FileNotFoundError):
    """The Debian packages with the Drascula voices or texts are not installed."""


def read_texts(dat: str | Path = DAT_FILE, *, language: int = SPANISH) -> list[list[str]]:
    """The text arrays of ``drascula.dat`` in one language: ``texts[array][entry]``.

    Layout (big-endian): a 9-byte header; 13 tables, each a u16 record count and fixed-size
    records; a u16 number of languages; then 15 text arrays, each a u16 entry count followed, per
    language, by a u16 block size, 2 padding bytes, and the entries, each a u16 length (counting
    itself) and cp850 text padded with NUL.
    """
    path = Path(dat)
    if not path.exists():
        raise DrasculaMissing(f"{path}: Drascula's texts not found; install them: {INSTALL_HINT}")
    data = path.read_bytes()
    if not data.startswith(b"DRASCULA"):
        raise FlamencoError(f"{path}: not a drascula.dat (no DRASCULA header)")

    def u16(at: int) -> int:
        return struct.unpack_from(">H", data, at)[0]

    off = 9
    for size in _RECORD_BYTES:
        off += 2 + u16(off) * size
    n_languages = u16(off)
    off += 2
    if not 0 <= language < n_languages:
        raise ValueError(f"language {language}: the file has {n_languages}")
    arrays = []
    while off < len(data):
        n, off = u16(off), off + 2
        for lang in range(n_languages):
            block_end = off + 2 + u16(off)
            if lang == language:
                entries, at = [], off + 4
                for _ in range(n):
                    length = u16(at)
                    entries.append(data[at + 2 : at + length].split(b"\0")[0].decode("cp850"))
                    at += length
                arrays.append(entries)
            off = block_end
    return arrays


def read_als(path: str | Path) -> np.ndarray:
    """The samples of one ``.ALS`` line as float32 in [-1, 1) at :data:`FILE_RATE`."""
    raw = np.frombuffer(Path(path).read_bytes(), dtype=np.uint8)
    pcm = raw[HEADER_BYTES : len(raw) - TRAILER_BYTES]
    return (pcm.astype(np.float32) - 128.0) / 128.0


def _parse(name: str) -> tuple[str, int] | None:
    stem = name.rsplit(".", 1)[0].upper()
    digits = len(stem) - len(stem.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    prefix, number = stem[:digits], stem[digits:]
    return (prefix, int(number)) if number.isdigit() and prefix in CHARACTERS else None


_SENTENCE_START = re.compile(r"(^|[.!?]\s+)([¡¿\"'«(\s]*)(\w)")


def sentence_case(text: str) -> str:
    """A line written in capitals in sentence case (``"¡QUE MUERTO NI OCHO CUARTOS!"`` ->
    ``"¡Que muerto ni ocho cuartos!"``); a line with lower-case letters is kept as written.

    Drascula writes most lines in capitals. As training labels they would teach a model to write
    in capitals, which Whisper's tokenizer splits into many more tokens than ordinary text (the
    first probe trained on them decoded held-out speech worse, in capitals). Accents stay missing:
    scores fold them (:func:`flamenco_lib.metrics.normalizer_for`)."""
    if any(c.islower() for c in text):
        return text
    return _SENTENCE_START.sub(lambda m: m[1] + m[2] + m[3].upper(), text.lower())


def lines(
    sounds_dir: str | Path = SOUNDS_DIR, dat: str | Path = DAT_FILE
) -> tuple[list[dict], dict[str, int]]:
    """Every Spanish line with its text: ``{"id", "path", "text", "singer", "split", "seconds"}``,
    sorted by id, and how many were left out, by reason (an English stand-in, no text, an
    implausible speech rate, a training line whose text a held-out character also says)."""
    sounds_dir = Path(sounds_dir)
    if not sounds_dir.is_dir():
        raise DrasculaMissing(
            f"{sounds_dir}: Drascula's Spanish voices not found; install them: {INSTALL_HINT}"
        )
    texts = read_texts(dat)
    items, dropped = [], {"english": 0, "no text": 0, "speech rate": 0}
    for path in sorted(sounds_dir.glob("*.[Aa][Ll][Ss]")):
        parsed = _parse(path.name)
        if parsed is None:  # sound effects (S, F)
            continue
        if path.is_symlink():  # an English line standing in for a missing Spanish one
            dropped["english"] += 1
            continue
        prefix, number = parsed
        array, character = CHARACTERS[prefix]
        text = texts[array][number].strip() if number < len(texts[array]) else ""
        if not text:
            dropped["no text"] += 1
            continue
        seconds = (path.stat().st_size - HEADER_BYTES - TRAILER_BYTES) / FILE_RATE
        rate = len(text) / max(seconds, 1e-3)
        if not CHARS_PER_SECOND[0] <= rate <= CHARS_PER_SECOND[1]:
            dropped["speech rate"] += 1
            continue
        items.append({
            "id": f"drascula-{character}-{number:03d}",
            "path": path,
            "text": sentence_case(text),
            "singer": f"drascula-{character}",
            "split": SPLIT_OF_CHARACTER.get(character, "train"),
            "seconds": seconds,
        })  # fmt: skip
    # no text in two splits (DESIGN.md): a held-out character's line keeps it, training loses it
    held_out = {normalize(r["text"]) for r in items if r["split"] != "train"}
    kept = [r for r in items if r["split"] != "train" or normalize(r["text"]) not in held_out]
    dropped["said by a held-out character too"] = len(items) - len(kept)
    return sorted(kept, key=lambda r: r["id"]), dropped
