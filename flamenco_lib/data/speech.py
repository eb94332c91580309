"""Real Spanish read speech, offline: Debian's ``asterisk-core-sounds-es-g722``.

About 490 telephone prompts read by one real es-MX speaker, 16 kHz wideband G.722, licensed
CC-BY-SA-3.0; their transcripts ship in ``core-sounds-es.txt.gz`` of the
``asterisk-core-sounds-es`` package. It stands in for Common Voice when no hub is reachable:
stage 2's general speech and the forgetting check (``notebooks/08_stage2_common_voice.ipynb``).
"""

from __future__ import annotations

import gzip
import hashlib
import re
from pathlib import Path

from ..errors import FlamencoError
from ..text import normalize

SOUNDS_DIR = Path("/usr/share/asterisk/sounds/es")
TRANSCRIPTS = Path("/usr/share/doc/asterisk-core-sounds-es/core-sounds-es.txt.gz")
DEBIAN_PACKAGES = ("asterisk-core-sounds-es-g722", "asterisk-core-sounds-es")
INSTALL_HINT = "sudo apt-get install -y " + " ".join(DEBIAN_PACKAGES) + "  (or: make setup)"
SPLIT_FRACTIONS = {"train": 0.70, "dev": 0.10, "test": 0.20}
_NON_SPEECH = re.compile(r"^\s*\[[^\]]*\]\s*$")  # "[tono simple]": a tone, not speech


class SpeechCorpusMissing(FlamencoError, FileNotFoundError):
    """The Debian packages with the prompts are not installed."""


def read_transcripts(path: Path = TRANSCRIPTS) -> dict[str, str]:
    """``{prompt name: transcript}``; non-speech entries (``[tono simple]``) are skipped and
    bracketed asides inside a transcript (``Sus saludos [temporales] ...``) are kept as words."""
    if not path.exists():
        raise SpeechCorpusMissing(f"{path}: transcripts not found; install them: {INSTALL_HINT}")
    out = {}
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith(";") or ":" not in line:
                continue
            name, text = line.split(":", 1)
            text = text.strip()
            if not text or _NON_SPEECH.match(text):
                continue
            out[name.strip()] = re.sub(r"[\[\]]", "", text).strip()
    return out


def split_of(key: str, *, seed: int = 0) -> str:
    """A fixed split from a hash of ``key`` and the seed: stable whatever the order or the subset.
    Keyed by the normalised transcript, so prompts with the same words share a split."""
    h = int(hashlib.sha1(f"{seed}:{key}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    edge = 0.0
    for split, frac in SPLIT_FRACTIONS.items():
        edge += frac
        if h < edge:
            return split
    return "test"


def prompts(
    *, sounds_dir: Path = SOUNDS_DIR, transcripts: Path = TRANSCRIPTS, seed: int = 0
) -> list[dict]:
    """Every prompt with audio and a transcript: ``{"id", "path", "text", "split"}``, sorted by id."""
    if not sounds_dir.exists():
        raise SpeechCorpusMissing(
            f"{sounds_dir}: asterisk Spanish prompts not found; install them: {INSTALL_HINT}"
        )
    items = []
    for name, text in sorted(read_transcripts(transcripts).items()):
        path = sounds_dir / f"{name}.g722"
        if path.exists():
            split = split_of(normalize(text), seed=seed)
            items.append({"id": name.replace("/", "-"), "path": path, "text": text, "split": split})
    return items
