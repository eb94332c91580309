"""Corpora as manifests and as ``datasets`` objects the training code can use.

- :func:`build_speech_corpus` — a real Spanish speech corpus (the asterisk prompts, or the
  Drascula voices: :data:`SPEECH_SOURCES`) as 16 kHz FLAC files and a manifest
  (``python -m flamenco_lib data speech [--source drascula] --out DIR``);
- :func:`build_corpora` — every offline corpus under one folder, those missing only
  (``notebooks/05_data.ipynb``);
- :func:`load_corpus` — any manifest as a ``DatasetDict`` by split, audio decoded lazily;
- :func:`load_common_voice` — the official Common Voice download folder, or a hub dataset id.

Audio is decoded by :func:`flamenco_lib.audio.load_audio` (libsndfile, ffmpeg for the rest), on
access, never all at once: a corpus of hundreds of hours costs only its metadata in memory.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ..audio import N_SAMPLES, SAMPLE_RATE, load_audio
from . import speech
from .manifest import FIELDS, SPLITS, ManifestError, read_manifest, write_manifest

CV_SPLITS = ("train", "dev", "test", "validated", "other", "invalidated")
# the manifest's fields with the resolved audio path in place of the relative one
_META_COLUMNS = tuple("audio_path" if f == "audio" else f for f in FIELDS)


SPEECH_SOURCES = {  # data speech --source: where the real speech comes from
    "asterisk": "Debian's asterisk prompts: one es-MX speaker, telephone prompts",
    "drascula": "Drascula's Spanish voice-over: 10 characters, Castilian, split by speaker",
}


def _speech_items(source: str, seed: int) -> tuple[list[dict], callable, str, dict]:
    """The utterances of a speech source, how to decode one (16 kHz mono float32), the
    manifest's ``source`` and what was left out (for the log)."""
    if source == "asterisk":
        items = [{**i, "singer": "asterisk-es-MX-f"} for i in speech.prompts(seed=seed)]
        return items, lambda i: load_audio(i["path"]), "asterisk-core-sounds-es", {}
    if source == "drascula":
        import librosa

        from . import drascula

        items, dropped = drascula.lines()

        def decode(item):
            y = drascula.read_als(item["path"])
            return librosa.resample(y, orig_sr=drascula.FILE_RATE, target_sr=SAMPLE_RATE)

        return items, decode, "drascula-spanish", dropped
    raise ManifestError(f"speech source {source!r}: use one of {', '.join(SPEECH_SOURCES)}")


def _subset(items: list[dict], n: int) -> list[dict]:
    """``n`` of ``items`` (all when ``n`` is larger), evenly spaced in order within each split, and
    every split kept (one item at least, the rest shared in proportion): a smoke corpus of a few
    utterances still has the train, dev and test splits its full corpus has."""
    if n >= len(items):
        return list(items)
    by_split: dict[str, list[dict]] = {}
    for item in items:
        by_split.setdefault(item["split"], []).append(item)
    names = sorted(by_split, key=lambda k: -len(by_split[k]))[:n]  # the largest splits first
    quota = {k: 1 for k in names}
    share = {k: (n - len(names)) * len(by_split[k]) / len(items) for k in names}
    for k in names:
        quota[k] += int(share[k])
    for k in sorted(names, key=lambda k: share[k] - int(share[k]), reverse=True):
        if sum(quota.values()) < n:  # the rest by largest remainder: exactly n in all
            quota[k] += 1
    kept = {
        id(by_split[k][i])
        for k in names
        for i in np.linspace(0, len(by_split[k]) - 1, min(quota[k], len(by_split[k])))
        .round()
        .astype(int)
    }
    return [item for item in items if id(item) in kept]


def build_speech_corpus(
    out: str | Path,
    *,
    source: str = "asterisk",
    seed: int = 0,
    n: int | None = None,
    progress: bool = True,
) -> Path:
    """Decode the real speech of ``source`` (:data:`SPEECH_SOURCES`) into
    ``out/audio/<id>.flac`` (16 kHz) and write ``out/manifest.jsonl``. Utterances over 30 s
    (Whisper's window) are left out. Resumable: finished files are kept. ``n`` keeps only ``n``
    utterances, evenly spaced within each split, every split kept (smoke runs; their splits are
    those of the full corpus). Splits: asterisk by a hash of the transcript; Drascula by speaker (held-out
    characters in dev and test). Returns the manifest path."""
    import logging

    import soundfile as sf
    from tqdm.auto import tqdm

    out = Path(out)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    rows = []
    items, decode, source_name, dropped = _speech_items(source, seed)
    if dropped:
        logging.getLogger(__name__).info(
            "%s: %d lines kept, left out: %s", source, len(items),
            ", ".join(f"{k} {v}" for k, v in dropped.items()),
        )  # fmt: skip
    if n is not None:
        items = _subset(items, int(n))
    for item in tqdm(
        items, desc=f"speech corpus ({source})", unit="utterance", disable=not progress
    ):
        rel = f"audio/{item['id']}.flac"
        dest = out / rel
        if not dest.exists():
            y = decode(item)
            if len(y) > N_SAMPLES:
                continue
            tmp = dest.with_suffix(".tmp.flac")
            sf.write(tmp, y, SAMPLE_RATE, subtype="PCM_16")
            tmp.replace(dest)
        rows.append(
            {
                "id": item["id"],
                "audio": rel,
                "start": None,
                "end": None,
                "text": item["text"],
                "text_canonical": item["text"],
                "palo": None,
                "singer": item["singer"],
                "split": item["split"],
                "source": source_name,
            }
        )
    return write_manifest(rows, out / "manifest.jsonl")


# The training speakers' real voices are sung for training with a wider formant shift than the
# generator's (0.80-1.25 against 0.88-1.15: more vocal tracts from the same few voices), chosen on
# the dev speakers (python -m flamenco_lib ablate, README "Real voices"); their dev and test
# splits, the real-voice test sets, keep the generator's range.
TRAINING_VOICES_FORMANT_RATIO = (0.80, 1.25)
# those corpora (their training splits only) -> the speech corpus each sings
WIDE_SUNG_CORPORA = {"cante-real-wide": "speech", "cante-drascula-wide": "speech-drascula"}
# The offline corpora (DESIGN.md, "Offline first"), by folder name under data/corpora.
OFFLINE_CORPORA = {
    "speech": "real Spanish read speech (asterisk prompts): stage 2 and the forgetting check",
    "cante": "synthetic cante, sung with guitar and palmas: stage 1 and the cante test set",
    "cante-spoken": "the same clips spoken: the control",
    "cante-acapella": "the same test clips sung without accompaniment: the calibration",
    "cante-real": "the asterisk speaker sung: real-voice training (its test split: a seen speaker)",
    "speech-drascula": "real speech of 10 characters, split by speaker: held-out speakers' speech",
    "cante-drascula": "those voices sung: real-voice training and the held-out real-voice test",
    "cante-drascula-wide": "their training split sung with a wider range of vocal tracts: stages 1-3",
    "cante-real-wide": "the asterisk speaker's training split sung likewise: stages 1-3",
    "songs": "whole synthetic songs, one row per sung line with the line before it: stage 3's verses",
}


def build_corpora(
    root: str | Path,
    *,
    n: int | None = None,
    n_speech: int | None = None,
    n_songs: int | None = None,
    jobs: int | None = None,
    progress: bool = True,
) -> dict[str, Path]:
    """Build the :data:`OFFLINE_CORPORA` under ``root`` (``data/corpora``: what ``make corpora``
    builds, plus the a-cappella set). Every builder resumes: finished clips are kept, clips made
    with other settings are rendered again, and an unchanged manifest is not rewritten (so the
    evaluations of an unchanged corpus stay valid).

    Parameters
    ----------
    root : path
        The folder of the corpora (one subfolder each).
    n : int, optional
        Clips of the three synthetic corpora (default 1200, the corpus of the thesis).
    n_speech : int, optional
        Utterances of each real speech corpus (default all); the real-voice sets sing every one.
    n_songs : int, optional
        Synthetic songs (default :data:`flamenco_lib.data.songs.DEFAULT_SONGS`).
    jobs : int, optional
        Worker processes of the synthesiser (default: every core).

    Returns
    -------
    dict
        ``{name: manifest path}`` in :data:`OFFLINE_CORPORA` order.
    """
    from .cante import build_synth_corpus
    from .songs import DEFAULT_SONGS, build_song_corpus

    root = Path(root)
    out = {name: root / name / "manifest.jsonl" for name in OFFLINE_CORPORA}
    build_speech_corpus(root / "speech", n=n_speech, progress=progress)
    for name, style, splits in (
        ("cante", "sung", None),
        ("cante-spoken", "spoken", None),
        ("cante-acapella", "a-capella", ("test",)),  # only ever tested (the calibration)
    ):
        build_synth_corpus(
            root / name, n=n, style=style, splits=splits, jobs=jobs, progress=progress
        )
    build_speech_corpus(root / "speech-drascula", source="drascula", n=n_speech, progress=progress)
    for name, speech_corpus in (("cante-real", "speech"), ("cante-drascula", "speech-drascula")):
        build_synth_corpus(
            root / name, speech_manifest=out[speech_corpus], jobs=jobs, progress=progress
        )
        build_wide_sung_corpus(root, f"{name}-wide", jobs=jobs, progress=progress)
    build_song_corpus(root / "songs", n=n_songs or DEFAULT_SONGS, progress=progress)
    return out


def build_wide_sung_corpus(
    root: str | Path, name: str, *, jobs: int | None = None, progress: bool = True
) -> Path:
    """Render (or finish) ``root/name``, one of :data:`WIDE_SUNG_CORPORA`: the training split of
    its speech corpus under ``root`` sung with :data:`TRAINING_VOICES_FORMANT_RATIO`; returns
    its manifest. A corpus already rendered with the same settings is kept."""
    from .cante import build_synth_corpus

    root = Path(root)
    return build_synth_corpus(
        root / name,
        speech_manifest=root / WIDE_SUNG_CORPORA[name] / "manifest.jsonl",
        splits=("train",),
        formant_ratio=TRAINING_VOICES_FORMANT_RATIO,
        jobs=jobs,
        progress=progress,
    )["manifest"]


def _decode(batch: dict) -> dict:
    """``datasets`` transform: add the decoded waveform of each row (lazily, on access)."""
    batch = dict(batch)
    batch["audio"] = [
        {"array": load_audio(p, start=s, end=e), "sampling_rate": SAMPLE_RATE}
        for p, s, e in zip(batch["audio_path"], batch["start"], batch["end"])
    ]
    return batch


def rows_to_dataset(rows: list[dict]):
    """A ``datasets.Dataset`` of manifest rows whose ``audio`` column decodes on access."""
    from datasets import Dataset

    extra = sorted({k for r in rows for k in r} - set(_META_COLUMNS) - {"audio", "_line"})
    table = {c: [r.get(c) for r in rows] for c in (*_META_COLUMNS, *extra)}
    for c in ("start", "end"):
        table[c] = [None if v is None else float(v) for v in table[c]]
    ds = Dataset.from_dict(table)
    ds.set_transform(_decode)
    return ds


def load_corpus(manifest: str | Path, *, splits: tuple[str, ...] | None = None):
    """A manifest as a ``datasets.DatasetDict`` keyed by split.

    Each row has the manifest's fields, ``audio_path`` and ``audio`` =
    ``{"array": float32 16 kHz mono, "sampling_rate": 16000}``, decoded (and cut by
    ``start``/``end``) when the row is read.
    """
    from datasets import DatasetDict

    rows = read_manifest(manifest)
    if not rows:
        raise ManifestError(f"{manifest}: no segments")
    wanted = splits or tuple(s for s in SPLITS if any(r["split"] == s for r in rows))
    return DatasetDict({s: rows_to_dataset([r for r in rows if r["split"] == s]) for s in wanted})


def load_common_voice(
    path_or_id: str | Path, *, split: str, max_items: int | None = None, language: str = "es"
):
    """Common Voice as a ``datasets.Dataset`` with the manifest's columns.

    ``path_or_id`` is the official download folder (``train.tsv``, ``dev.tsv``, ``test.tsv``,
    ``validated.tsv``, ``clips/*.mp3``) or, when the hub is reachable, a dataset id such as
    ``mozilla-foundation/common_voice_17_0`` (streamed, ``language`` config).
    """
    path = Path(path_or_id).expanduser()
    if path.is_dir():
        tsv = path / f"{split}.tsv"
        if split not in CV_SPLITS or not tsv.exists():
            raise ManifestError(
                f"{path}: no {split}.tsv; a Common Voice folder has {', '.join(s + '.tsv' for s in CV_SPLITS[:4])}"
            )
        rows = []
        with open(tsv, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            for need in ("path", "sentence"):
                if need not in (reader.fieldnames or []):
                    raise ManifestError(
                        f"{tsv}: column {need!r} missing (columns: {reader.fieldnames})"
                    )
            for r in reader:
                clip = path / "clips" / r["path"]
                rows.append(
                    {
                        "id": Path(r["path"]).stem,
                        "audio_path": str(clip),
                        "start": None,
                        "end": None,
                        "text": r["sentence"],
                        "text_canonical": r["sentence"],
                        "palo": None,
                        "singer": r.get("client_id"),
                        "split": "dev" if split == "dev" else split,
                        "source": "common_voice",
                    }
                )
                if max_items and len(rows) >= max_items:
                    break
        return rows_to_dataset(rows)
    from ..models import hub_reachable

    if not hub_reachable():
        raise ManifestError(
            f"{path_or_id}: not a folder, and the Hugging Face Hub is unreachable; download Common Voice "
            "(https://commonvoice.mozilla.org/es/datasets) and pass the extracted folder"
        )
    return _load_common_voice_hub(
        str(path_or_id), split=split, max_items=max_items, language=language
    )


def _load_common_voice_hub(dataset_id: str, *, split: str, max_items: int | None, language: str):
    """A streamed ``IterableDataset`` (decoded example by example) with the manifest's columns."""
    from datasets import Audio, load_dataset

    hub_split = {"dev": "validation"}.get(split, split)
    stream = load_dataset(dataset_id, language, split=hub_split, streaming=True)
    stream = stream.cast_column("audio", Audio(sampling_rate=SAMPLE_RATE))
    if max_items:
        stream = stream.take(max_items)

    def to_row(ex):
        return {
            "id": Path(ex.get("path") or "").stem,
            "text": ex["sentence"],
            "text_canonical": ex["sentence"],
            "singer": ex.get("client_id"),
            "split": split,
            "source": dataset_id,
            "audio": {
                "array": np.asarray(ex["audio"]["array"], np.float32),
                "sampling_rate": SAMPLE_RATE,
            },
        }

    return stream.map(to_row)
