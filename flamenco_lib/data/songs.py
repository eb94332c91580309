"""Synthetic songs: whole recordings of one to four minutes, to measure what happens between the
verses (guitar falsetas, pauses) when a recording is transcribed whole
(:mod:`flamenco_lib.recording`).

A song takes the coplas of one palo and sings them one after another in one voice, line by
line (the cante generator's singing, :func:`flamenco_lib.data.synth.render_clip` without its
accompaniment), a line sometimes sung twice as cante does, with short pauses between lines; a
guitar falseta (5-20 s of guitar alone) comes before, between and after the coplas. Guitar and
palmas play through the whole song (louder in the falsetas), in one room (reverb), at the
corpus's voice-to-accompaniment level. The generator knows when each line is sung.

Written like the other corpora: ``audio/<song>.flac`` and a manifest with **one row per sung
line** (``start``/``end`` inside the song's file, ``text`` what is sung, ``song``,
``copla_id``: the copla of the lyrics file it comes from, ``previous_text``: the line sung
before it in the song), plus ``songs.jsonl``: per song its file,
duration, palo, voice, split, falseta times and lines. Splits by lyric: a song draws its coplas
from one split only (the cante corpus's split of each copla).

**Real voices.** With a speech manifest (``data songs --speech MANIFEST``, e.g. the Drascula
voices) the lines are recorded utterances sung by the same transform as the cante corpus's real
voices (:func:`flamenco_lib.data.cante.plan_real_clips`): each song is one speaker of one split
(Drascula's test characters are voices no model trains on), 4-9 utterances in coplas of two to
four lines, with the same falsetas, guitar, palmas and room (:func:`plan_real_songs`).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from ..audio import SAMPLE_RATE
from ..text import normalize
from .cante import HELDOUT_BASE_VOICE, voice_pools
from .lyrics import read_lyrics
from .manifest import write_manifest
from .speech import split_of
from .synth import SynthError
from .synth.accompaniment import guitar, mix, palmas, reverb
from .synth.clips import render_clip
from .synth.palos import palo_key
from .synth.settings import DEFAULT_TEMPO_BPM, PALO_TEMPO_BPM, SNR_DB_RANGE

__all__ = [
    "DEFAULT_REAL_SONGS",
    "DEFAULT_SONGS",
    "FALSETA_S",
    "REAL_LINES",
    "build_song_corpus",
    "plan_real_songs",
    "plan_songs",
    "render_song",
]
logger = logging.getLogger(__name__)

FALSETA_S = (5.0, 20.0)  # guitar alone before, between and after the coplas
PAUSE_S = (0.4, 1.2)  # between two sung lines of a copla
REPEAT_P = 0.25  # a line is sung again right after itself
FALSETA_GAIN_DB = 6.0  # the guitar plays out when nobody sings
DEFAULT_SONGS = 24  # about two minutes to build on 2 cores: 12 test songs (~150 lines), 6 train
DEFAULT_REAL_SONGS = 12  # real-voice songs (notebook 11)
SONG_SPLITS = ("test", "dev", "test", "train")  # songs measure: half of them are test songs
REAL_LINES = (4, 9)  # utterances sung in a real-voice song (min, max)


def render_song(
    coplas: list[list[str]],
    *,
    palo: str,
    voice: str,
    seed: int,
    snr_db_range: tuple[float, float] = SNR_DB_RANGE,
    speech: list[list[np.ndarray]] | None = None,
) -> tuple[np.ndarray, dict]:
    """One song: the ``coplas`` (each a list of lines) sung in order between guitar falsetas.

    With ``speech`` (shaped like ``coplas``: the 16 kHz recording of each line) the recordings
    are sung instead of espeak-ng's voice (``voice`` is then the speaker's name); a line sung
    twice is the same recording sung again to another melody.

    Returns the 16 kHz audio and its metadata: ``lines`` (``text``, ``text_canonical``,
    ``start``, ``end`` in seconds, in order), ``falsetas`` ([start, end] of guitar alone),
    ``duration_s``, ``palo``, ``voice``, ``seed``, ``tempo_bpm``, ``snr_db``.
    """
    sr = SAMPLE_RATE
    rng = np.random.default_rng([int(seed), 7])
    pieces, lines, falsetas, t = [], [], [], 0.0

    def rest(seconds: float, *, falseta: bool) -> None:
        nonlocal t
        pieces.append(np.zeros(int(seconds * sr), dtype=np.float32))
        if falseta:
            falsetas.append([round(t, 3), round(t + seconds, 3)])
        t += int(seconds * sr) / sr

    rest(float(rng.uniform(*FALSETA_S)), falseta=True)
    k = 0
    if speech is not None and [len(c) for c in speech] != [len(c) for c in coplas]:
        raise SynthError("render_song: speech must hold one recording per line of the coplas")
    for c, copla in enumerate(coplas):
        sung_lines = []
        for j, line in enumerate(copla):
            recorded = None if speech is None else speech[c][j]
            sung_lines.append((line, recorded))
            if rng.random() < REPEAT_P:
                sung_lines.append((line, recorded))
        for i, (line, recorded) in enumerate(sung_lines):
            audio, meta = render_clip(
                [line],
                palo=palo,
                voice=voice,
                seed=int(seed) * 1000 + k,
                accompaniment=False,
                speech=recorded,
            )
            k += 1
            pieces.append(audio)
            lines.append(
                {
                    "text": meta["text"],
                    "text_canonical": meta["text_canonical"],
                    "start": round(t, 3),
                    "end": round(t + len(audio) / sr, 3),
                    "copla": c,
                }
            )
            t += len(audio) / sr
            if i < len(sung_lines) - 1:
                rest(float(rng.uniform(*PAUSE_S)), falseta=False)
        rest(float(rng.uniform(*FALSETA_S)), falseta=True)  # between coplas, and the last one
    voice_track = np.concatenate(pieces).astype(np.float64)
    n = len(voice_track)
    tempo = float(rng.uniform(*PALO_TEMPO_BPM.get(palo_key(palo), DEFAULT_TEMPO_BPM)))
    acc = guitar(n, palo=palo, tempo_bpm=tempo, rng=rng, sr=sr).astype(np.float64)
    gain = np.ones(n)
    for s, e in falsetas:
        gain[int(s * sr) : int(e * sr)] = 10.0 ** (FALSETA_GAIN_DB / 20)
    acc *= gain
    acc += 10.0 ** (rng.uniform(-8.0, -2.0) / 20) * palmas(n, palo=palo, tempo_bpm=tempo, rng=rng)
    rt60, wet = float(rng.uniform(0.3, 0.8)), float(rng.uniform(0.1, 0.3))
    room = int(rng.integers(2**31))
    snr = float(rng.uniform(*snr_db_range))
    audio = mix(
        reverb(voice_track, rt60=rt60, wet=wet, rng=np.random.default_rng(room)),
        reverb(acc, rt60=rt60, wet=wet, rng=np.random.default_rng(room)),
        snr_db=snr,
    )
    meta = {
        "lines": lines,
        "falsetas": falsetas,
        "duration_s": round(n / sr, 3),
        "palo": palo_key(palo),
        "voice": voice,
        "seed": int(seed),
        "tempo_bpm": tempo,
        "snr_db": snr,
    }
    return audio, meta


def plan_songs(coplas, *, n: int, seed: int = 0, voices=None, per_song=(2, 4)) -> list[dict]:
    """``n`` songs, each of 2-4 coplas of one palo from one split (the cante corpus's split of
    each copla, so a test song's lyrics are never trained on elsewhere), each in one voice (test
    songs alternate the held-out base voice and the training voices). Splits cycle through
    :data:`SONG_SPLITS`."""
    train_voices, held_voices = voice_pools(voices, heldout=HELDOUT_BASE_VOICE)
    groups: dict[tuple[str, str], list] = {}
    for c in coplas:
        groups.setdefault((palo_key(c.palo), split_of(normalize(c.text), seed=seed)), []).append(c)
    rng = np.random.default_rng([int(seed), 11])
    songs = []
    for i in range(int(n)):
        # the split's turn; a small lyrics file may lack it: then the next split that has a palo
        turn = [SONG_SPLITS[(i + j) % len(SONG_SPLITS)] for j in range(len(SONG_SPLITS))]
        options = {
            sp: sorted(p for (p, s2), v in groups.items() if s2 == sp and len(v) >= per_song[0])
            for sp in dict.fromkeys(turn)
        }
        split = next((sp for sp in turn if options[sp]), None)
        if split is None:
            raise SynthError(f"no palo has {per_song[0]} coplas in one split: no song to sing")
        palo = options[split][int(rng.integers(len(options[split])))]
        pool = groups[(palo, split)]
        m = min(len(pool), int(rng.integers(per_song[0], per_song[1] + 1)))
        picked = [pool[j] for j in rng.choice(len(pool), size=m, replace=False)]
        vpool = held_voices if split == "test" and i % 4 == 0 else train_voices
        songs.append(
            {
                "song": f"song-{i:03d}-{palo}",
                "palo": palo,
                "split": split,
                "voice": vpool[int(rng.integers(len(vpool)))],
                "seed": int(rng.integers(2**31)),
                "coplas": [list(c.lines) for c in picked],
                "copla_ids": [c.id for c in picked],
            }
        )
    return songs


def plan_real_songs(
    speech_manifest: str | Path, *, n: int, seed: int = 0, lines=REAL_LINES
) -> list[dict]:
    """``n`` songs sung by the recorded voices of ``speech_manifest``: each song one speaker
    (``singer``) of one split, ``lines`` (min, max) of the speaker's utterances (each utterance
    a line) in coplas of two to four lines, a palo with guitar. Splits cycle through
    :data:`SONG_SPLITS` (a split without a speaker of ``lines[0]`` utterances gives its turn to
    the next) and a split's speakers take turns; a speaker's utterances are used once each before
    any is used again. Each line keeps its utterance's ``id``, audio and times in ``speech``,
    shaped like ``coplas``."""
    from .manifest import read_manifest
    from .synth import A_CAPELLA, COMPAS

    rows = read_manifest(speech_manifest)
    palos = [p for p in COMPAS if p not in A_CAPELLA]  # falsetas need a guitar
    rng = np.random.default_rng([int(seed), 13])
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        if r.get("audio_path") and str(r.get("text") or "").strip():
            groups.setdefault((r["split"], r.get("singer") or "real"), []).append(r)
    queues: dict[tuple[str, str], list[int]] = {}
    turns: dict[str, int] = {}
    enough = sorted(k for k, v in groups.items() if len(v) >= lines[0])  # (split, speaker)
    songs = []
    for i in range(int(n)):
        turn = [SONG_SPLITS[(i + j) % len(SONG_SPLITS)] for j in range(len(SONG_SPLITS))]
        split = next((sp for sp in turn if any(k[0] == sp for k in enough)), None)
        if split is None:
            raise SynthError(
                f"{speech_manifest}: no speaker has {lines[0]} utterances with audio and text in "
                "one split: no song to sing"
            )
        speakers = [k for k in enough if k[0] == split]
        key = speakers[turns.get(split, 0) % len(speakers)]  # the split's speakers in turn
        turns[split] = turns.get(split, 0) + 1
        left = min(int(rng.integers(lines[0], lines[1] + 1)), len(groups[key]))
        sizes = []
        while left:
            size = min(left, int(rng.integers(2, 4)))
            size += left - size == 1  # no copla of one line after the first
            sizes.append(size)
            left -= size
        picked = []
        for _ in range(sum(sizes)):
            if not queues.get(key):
                queues[key] = [int(x) for x in rng.permutation(len(groups[key]))]
            picked.append(groups[key][queues[key].pop()])
        palo = palos[int(rng.integers(len(palos)))]
        cut = np.cumsum([0, *sizes])
        parts = [picked[a:b] for a, b in zip(cut[:-1], cut[1:])]
        songs.append(
            {
                "song": f"song-real-{i:03d}-{palo}",
                "palo": palo,
                "split": split,
                "voice": key[1],
                "seed": int(rng.integers(2**31)),
                "coplas": [[str(r["text"]).strip() for r in part] for part in parts],
                "copla_ids": [[str(r["id"]) for r in part] for part in parts],
                "speech": [
                    [{"path": r["audio_path"], "start": r["start"], "end": r["end"]} for r in part]
                    for part in parts
                ],
            }
        )
    return songs


def build_song_corpus(
    out: str | Path,
    *,
    lyrics: str | Path | None = None,
    n: int = DEFAULT_SONGS,
    seed: int = 0,
    voices=None,
    progress: bool = True,
    speech_manifest: str | Path | None = None,
    real_lines: tuple[int, int] = REAL_LINES,
) -> Path:
    """Render :func:`plan_songs` (or, with ``speech_manifest``, :func:`plan_real_songs`) into
    ``out``: ``audio/<song>.flac``, ``songs.jsonl`` and the per-line ``manifest.jsonl``. A song
    already written (its FLAC and JSON) is not rendered again. Returns the manifest's path."""
    import soundfile as sf
    from tqdm.auto import tqdm

    out = Path(out)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    if speech_manifest is not None:
        plan = plan_real_songs(speech_manifest, n=n, seed=seed, lines=real_lines)
    else:
        plan = plan_songs(read_lyrics(lyrics), n=n, seed=seed, voices=voices)
    songs = []
    for s in tqdm(plan, desc="songs", unit="song", disable=not progress):
        flac, meta_path = out / "audio" / f"{s['song']}.flac", out / "audio" / f"{s['song']}.json"
        if flac.exists() and meta_path.exists():
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        else:
            audio, meta = render_song(
                s["coplas"],
                palo=s["palo"],
                voice=s["voice"],
                seed=s["seed"],
                speech=_recordings(s.get("speech")),
            )
            meta.update(song=s["song"], split=s["split"], copla_ids=s["copla_ids"])
            meta["source"] = "songs-real" if s.get("speech") else "songs"
            meta["audio"] = f"audio/{s['song']}.flac"
            tmp = flac.with_name(flac.stem + ".tmp.flac")
            sf.write(tmp, audio, SAMPLE_RATE, subtype="PCM_16")
            os.replace(tmp, flac)
            tmp = meta_path.with_name(meta_path.name + ".tmp")
            tmp.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
            os.replace(tmp, meta_path)
        songs.append(meta)
    rows = []
    for meta in songs:
        previous, ids = None, meta.get("copla_ids") or []
        for j, line in enumerate(meta["lines"]):
            c = line.get("copla")  # real-voice songs name utterances, not coplas: no copla_id
            rows.append(
                {
                    "id": f"{meta['song']}-l{j:02d}",
                    "audio": meta["audio"],
                    "start": line["start"],
                    "end": line["end"],
                    "text": line["text"],
                    "text_canonical": line["text_canonical"],
                    "palo": meta["palo"],
                    "singer": meta["voice"],
                    "split": meta["split"],
                    "source": meta.get("source", "songs"),
                    "song": meta["song"],
                    "copla_id": ids[c] if isinstance(c, int) and isinstance(ids[c], str) else None,
                    "previous_text": previous,
                }
            )
            previous = line["text"]
    with open(out / "songs.jsonl", "w", encoding="utf-8") as f:
        for meta in songs:
            f.write(json.dumps(meta, ensure_ascii=False) + "\n")
    write_manifest(rows, out / "manifest.jsonl")
    logger.info("songs: %d songs, %d sung lines -> %s", len(songs), len(rows), out)
    return out / "manifest.jsonl"


def _recordings(speech: list[list[dict]] | None) -> list[list[np.ndarray]] | None:
    """The recordings a real-voice song's plan names (:func:`plan_real_songs`), loaded."""
    if speech is None:
        return None
    from ..audio import load_audio

    return [
        [load_audio(u["path"], start=u["start"], end=u["end"]) for u in copla] for copla in speech
    ]
