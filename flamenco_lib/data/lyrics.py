"""Lyrics files: one copla per row, with its palo.

Two formats, accepted wherever lyrics are read:

- TSV with a header row: ``palo``, ``text`` and optionally ``id``; a copla's lines are separated
  by `` / `` (or, when no `` / `` is present, by commas);
- JSONL with the same fields, one object per line.

The project's own lyrics are ``data/lyrics/coplas.tsv`` (original coplas written for it).
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import FlamencoError
from ..paths import project_root


class LyricsError(FlamencoError, ValueError):
    """A lyrics file that cannot be used; the message names the file, the line and the fix."""


@dataclass(frozen=True)
class Copla:
    id: str
    palo: str
    lines: tuple[str, ...] = field(default_factory=tuple)

    @property
    def text(self) -> str:
        """The written lyric as one line of text (lines joined by ", ")."""
        return ", ".join(self.lines)


def default_lyrics() -> Path:
    return project_root() / "data" / "lyrics" / "coplas.tsv"


def split_lines(text: str) -> tuple[str, ...]:
    sep = " / " if " / " in text else ","
    return tuple(x.strip() for x in text.split(sep) if x.strip())


def read_lyrics(path: str | Path | None = None) -> list[Copla]:
    """Coplas of a TSV or JSONL lyrics file (format chosen by content: JSONL if the first
    non-empty line starts with ``{``). Ids are made from the palo and a hash when absent."""
    path = Path(path) if path else default_lyrics()
    if not path.exists():
        raise LyricsError(f"{path}: lyrics file not found")
    raw = path.read_text(encoding="utf-8-sig")
    first = next((ln for ln in raw.splitlines() if ln.strip()), "")
    if not first:
        raise LyricsError(f"{path}: empty lyrics file")
    rows = []
    if first.lstrip().startswith("{"):
        for lineno, line in enumerate(raw.splitlines(), 1):
            if line.strip():
                try:
                    rows.append((lineno, json.loads(line)))
                except json.JSONDecodeError as err:
                    raise LyricsError(f"{path}:{lineno}: not valid JSON ({err.msg})") from None
    else:
        reader = csv.DictReader(raw.splitlines(), delimiter="\t", quoting=csv.QUOTE_NONE)
        missing = {"palo", "text"} - set(reader.fieldnames or [])
        if missing:
            raise LyricsError(
                f"{path}: the header row lacks {sorted(missing)}; a TSV needs a header 'palo<TAB>text' "
                "(and optionally 'id'), one copla per row"
            )
        rows = [(i, r) for i, r in enumerate(reader, 2)]
    coplas, seen = [], set()
    for lineno, r in rows:
        palo, text = (r.get("palo") or "").strip(), (r.get("text") or "").strip()
        if not palo or not text:
            raise LyricsError(f"{path}:{lineno}: a copla needs both 'palo' and 'text'")
        lines = split_lines(text)
        # an id made from the lines, so the same copla gets the same id in TSV and JSONL
        cid = (
            r.get("id") or ""
        ).strip() or f"{palo}-{hashlib.sha1(' / '.join(lines).encode()).hexdigest()[:8]}"
        if cid in seen:
            raise LyricsError(f"{path}:{lineno}: duplicate id {cid!r}")
        seen.add(cid)
        coplas.append(Copla(cid, palo, lines))
    return coplas
