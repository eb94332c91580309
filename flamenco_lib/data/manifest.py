"""The manifest: one JSON object per line, one segment each.

``{"id", "audio", "start", "end", "text", "text_canonical", "palo", "singer", "split", "source"}``

``audio`` is relative to the manifest's folder; ``start``/``end`` (seconds, or null for the whole
file) cut a segment of at most 30 s; ``text`` is what is sung, ``text_canonical`` the lyric as
written. Extra keys (voice, snr_db, ...) are kept and carried along.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

FIELDS = ("id", "audio", "start", "end", "text", "text_canonical", "palo", "singer", "split", "source")
SPLITS = ("train", "dev", "test")


class ManifestError(ValueError):
    """A manifest that cannot be read; the message names the file, the line and the fix."""


def read_manifest(path: str | Path) -> list[dict]:
    """Rows of a JSONL manifest, each with every field of :data:`FIELDS` (missing ones as None)
    and ``audio_path``, the absolute path of its audio."""
    path = Path(path)
    if not path.exists():
        raise ManifestError(f"{path}: manifest not found")
    rows = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ManifestError(f"{path}:{lineno}: not valid JSON ({err.msg})") from None
            if not isinstance(row, dict):
                raise ManifestError(f"{path}:{lineno}: expected a JSON object per line")
            for k in FIELDS:
                row.setdefault(k, None)
            if row["audio"]:
                row["audio_path"] = str((path.parent / row["audio"]).resolve())
            row["_line"] = lineno
            rows.append(row)
    return rows


def write_manifest(rows, path: str | Path) -> Path:
    """Write rows as JSONL atomically (a temporary file renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            clean = {k: v for k, v in row.items() if not k.startswith("_") and k != "audio_path"}
            f.write(json.dumps(clean, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return path
