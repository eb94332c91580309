"""Content hashes: what decides whether a stage, a run or a download is still what it was.

A leaf module. Contents, not modification times or absolute paths, decide: a ``git pull`` that
only touches comments, a corpus rebuilt identically, or a project moved to another folder changes
no hash here.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

_BLOCK = 1 << 20  # bytes read at a time


def sha256_file(path: str | Path) -> str:
    """sha256 (hex) of one file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_BLOCK), b""):
            h.update(block)
    return h.hexdigest()


def sha256_of(path: str | Path) -> str:
    """sha256 of a file, or of a folder's files (relative names and contents, sorted): a model
    folder hashes the same wherever it lies."""
    path = Path(path)
    if not path.is_dir():
        return sha256_file(path)
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(path)).encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(_BLOCK), b""):
                h.update(block)
    return h.hexdigest()
