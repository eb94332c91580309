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

from ..errors import FlamencoError

FIELDS = (
    "id",
    "audio",
    "start",
    "end",
    "text",
    "text_canonical",
    "palo",
    "singer",
    "split",
    "source",
)
SPLITS = ("train", "dev", "test")


class ManifestError(FlamencoError, ValueError):
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
    """Write rows as JSONL atomically (a temporary file renamed into place). A manifest whose
    content would not change is left alone, so its date still tells when the corpus last changed
    (evaluations older than their manifest are rerun: :func:`flamenco_lib.results.evaluate_stages`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(
        json.dumps(
            {k: v for k, v in row.items() if not k.startswith("_") and k != "audio_path"},
            ensure_ascii=False,
        )
        + "\n"
        for row in rows
    )
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return path
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


REQUIRED = ("id", "audio", "text", "split")
MAX_SEGMENT_S = 30.0  # Whisper's window
MAX_LABEL_TOKENS = 448  # Whisper's decoder context, special tokens included
_LABEL_OVERHEAD = 5  # <|startoftranscript|><|es|><|transcribe|><|notimestamps|> ... <|endoftext|>


def validate_manifest(path: str | Path, *, check_audio: bool = True, tokenizer=None) -> list[str]:
    """Every problem of a manifest, one ``"<file>:<line>: <problem>"`` string each ([] = valid).

    Checked: JSON and required fields; audio missing, undecodable or escaping the manifest's
    folder; segments over 30 s, outside the file or empty; empty text; duplicate ids; the same
    lyric in two splits; labels over Whisper's 448-token limit (``tokenizer``: any object with
    ``encode``; default: byte length as an upper bound, the real tokenizer only when needed).
    """
    from ..audio import AudioError, audio_duration
    from ..text import normalize

    path = Path(path)
    problems: list[str] = []
    if not path.exists():
        return [f"{path}: manifest not found"]
    root = path.parent.resolve()
    seen_ids: dict[str, int] = {}
    lyric_split: dict[str, tuple[str, int]] = {}
    durations: dict[str, float | None] = {}
    with open(path, encoding="utf-8") as f:
        lines = list(enumerate(f, 1))
    for lineno, line in lines:
        where = f"{path}:{lineno}"
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            problems.append(f"{where}: not valid JSON ({err.msg})")
            continue
        if not isinstance(row, dict):
            problems.append(f"{where}: expected a JSON object")
            continue
        missing = [k for k in REQUIRED if row.get(k) in (None, "") and k != "text"]
        if missing:
            problems.append(f"{where}: missing field(s) {', '.join(missing)}")
        rid = row.get("id")
        if rid is not None:
            if rid in seen_ids:
                problems.append(f"{where}: duplicate id {rid!r} (first on line {seen_ids[rid]})")
            else:
                seen_ids[rid] = lineno
        text = row.get("text")
        if not isinstance(text, str) or not text.strip():
            problems.append(f"{where}: empty text")
        else:
            n_bytes = len(text.encode("utf-8")) + _LABEL_OVERHEAD
            if n_bytes > MAX_LABEL_TOKENS:  # bytes bound tokens from above: tokenise only these
                tokenizer = tokenizer or _default_tokenizer()
                n_tok = (
                    len(tokenizer.encode(" " + text.strip(), add_special_tokens=False))
                    + _LABEL_OVERHEAD
                )
                if n_tok > MAX_LABEL_TOKENS:
                    problems.append(
                        f"{where}: label of {n_tok} tokens exceeds Whisper's {MAX_LABEL_TOKENS}"
                    )
        split = row.get("split")
        if split is not None and split not in SPLITS:
            problems.append(f"{where}: split {split!r} is not one of {', '.join(SPLITS)}")
        lyric = row.get("text_canonical") or text
        if isinstance(lyric, str) and lyric.strip() and split in SPLITS:
            key = normalize(lyric)
            if key in lyric_split and lyric_split[key][0] != split:
                other, other_line = lyric_split[key]
                problems.append(
                    f"{where}: the same lyric is in split {split!r} and in {other!r} (line {other_line})"
                )
            lyric_split.setdefault(key, (split, lineno))
        audio = row.get("audio")
        if not isinstance(audio, str) or not audio:
            continue
        audio_path = (path.parent / audio).resolve()
        if not audio_path.is_relative_to(root):
            problems.append(f"{where}: audio path {audio!r} escapes the manifest's folder {root}")
            continue
        start, end = row.get("start"), row.get("end")
        for name, value in (("start", start), ("end", end)):
            if value is not None and (not isinstance(value, (int, float)) or value < 0):
                problems.append(f"{where}: {name} must be a number of seconds >= 0 or null")
                start = end = None
        if start is not None and end is not None and end <= start:
            problems.append(f"{where}: empty segment (start {start} s >= end {end} s)")
            continue
        if not check_audio:
            continue
        key = str(audio_path)
        if key not in durations:
            try:
                durations[key] = audio_duration(audio_path)
            except AudioError as err:
                durations[key] = None
                problems.append(f"{where}: {err}")
                continue
        duration = durations[key]
        if duration is None:
            problems.append(f"{where}: audio {audio!r} is missing or undecodable (see above)")
            continue
        seg_start, seg_end = start or 0.0, end if end is not None else duration
        if seg_start >= duration or seg_end > duration + 0.01:
            problems.append(
                f"{where}: segment [{seg_start}, {seg_end}] s lies outside {audio!r} ({duration:.2f} s)"
            )
        elif seg_end - seg_start > MAX_SEGMENT_S:
            problems.append(
                f"{where}: segment of {seg_end - seg_start:.1f} s is longer than Whisper's {MAX_SEGMENT_S:.0f} s "
                "window; cut it with start/end"
            )
    return problems


def _default_tokenizer():
    from transformers import WhisperTokenizer

    from ..models import resolve

    return WhisperTokenizer.from_pretrained(resolve("base"))
