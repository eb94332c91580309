"""The synthetic cante corpus: lyrics (or recorded speech) rendered as sung clips + a manifest.

``python -m flamenco_lib data synth --lyrics FILE --out DIR`` calls :func:`build_synth_corpus`,
which plans every clip first (:func:`plan_clips`: which copla, which voice, which seed, which
split), then renders the plan in parallel with :mod:`.synth`:

- **Splits by lyric.** A copla's split comes from a hash of its normalised text, so no lyric is in
  two splits, whatever the file order or the subset.
- **A held-out voice.** Training and dev clips use only voices whose *base* voice is not the
  held-out one (``es-419`` by default); half of the test clips use the held-out base voice and its
  variants, the other half the training voices, so a test score tells both stories
  (``voice_heldout`` in the manifest).
- **Deterministic.** Each clip's seed is a hash of the corpus seed and its id: the same seed gives
  the same samples, whatever ``jobs`` is or the order the workers finish in.
- **Resumable.** A clip is written as ``audio/<id>.flac`` plus ``audio/<id>.json`` (its metadata),
  each through a temporary file renamed into place; a rerun skips finished clips, and the
  manifest is rewritten from the metadata files at the end.
- **Styles.** ``sung`` (singing + guitar/palmas + reverb, the default), ``a-capella`` (singing
  only) and ``spoken`` (the same sung text and TTS settings, not sung: the control). The same
  seed renders the same words with the same voice in every style, so the three corpora differ
  only in the singing and the accompaniment.
- **Real voices.** With ``speech_manifest`` (e.g. the real Spanish speech corpus) the recorded
  utterances are sung instead of TTS, keeping their splits: the sung real-voice test set tells
  whether a model learned singing or only the synthetic voices.

Notebook: ``05_data.ipynb``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..text import normalize
from . import synth
from .lyrics import read_lyrics
from .manifest import SPLITS, ManifestError, read_manifest, write_manifest
from .speech import split_of

STYLES = ("sung", "a-capella", "spoken")
HELDOUT_BASE_VOICE = "es-419"  # test-only base voice (Latin American Spanish); training uses "es"
DEFAULT_N = 1200  # clips: builds in about 5 min on 2 cores (measured, see README)
DEFAULT_REAL_N = None  # every utterance of the speech manifest
# formant shift ratios a corpus may draw from: roughly the vocal tracts of adults and children
# (1.15-1.2 from a man's to a woman's, about 1.35 to a child's); beyond them Praat's shift distorts
FORMANT_RATIO_LIMITS = (0.7, 1.4)


@dataclass(frozen=True)
class Clip:
    """One planned clip (JSON-serialisable with :func:`dataclasses.asdict`)."""

    id: str
    lines: tuple[str, ...]
    palo: str
    voice: str
    split: str
    seed: int
    copla_id: str
    voice_heldout: bool
    speech_path: str | None = None  # recorded speech to sing instead of TTS
    speech_start: float | None = None
    speech_end: float | None = None
    source_id: str | None = None


def _slug(text: str) -> str:
    """An ASCII file-name-safe form of an id: ``"soleá-001"`` -> ``"solea-001"``."""
    s = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", s).strip("-") or "clip"


def clip_seed(seed: int, clip_id: str) -> int:
    """The seed of one clip: a hash of the corpus seed and the clip id (order-independent)."""
    return int(hashlib.sha1(f"{int(seed)}:{clip_id}".encode()).hexdigest()[:8], 16)


def voice_pools(voices: list[str] | None = None, *, heldout: str = HELDOUT_BASE_VOICE):
    """Split the voices into (training voices, held-out voices) by *base* voice.

    A ``+variant`` of a training voice is a training voice: only a different base voice counts as
    held out. Raises :class:`synth.SynthError` when either pool would be empty.
    """
    voices = list(voices or synth.espeak_voices())
    held = [v for v in voices if synth.base_voice(v) == heldout]
    train = [v for v in voices if synth.base_voice(v) != heldout]
    if not held or not train:
        raise synth.SynthError(
            f"voices {voices}: need at least one voice with base {heldout!r} (held out for test) and "
            "one with another base voice; pass --voices with both, or --heldout-voice BASE"
        )
    return train, held


def plan_clips(
    coplas,
    *,
    n: int,
    seed: int = 0,
    voices: list[str] | None = None,
    heldout: str = HELDOUT_BASE_VOICE,
) -> list[Clip]:
    """The clips of a TTS corpus: ``n`` renderings cycling over the coplas (each copla once before
    any twice), every one with its own voice and seed.

    Parameters
    ----------
    coplas : list of :class:`~flamenco_lib.data.lyrics.Copla`
    n : int
        Number of clips (more than the number of coplas renders coplas again with other voices).
    seed : int
        Corpus seed: splits, order, voices and every rendering derive from it.
    voices : list of str, optional
        espeak-ng voices (default: every Spanish voice found, :func:`synth.espeak_voices`).
    heldout : str
        The base voice kept out of training and dev.
    """
    if not coplas:
        raise synth.SynthError("no coplas to render")
    train_voices, held_voices = voice_pools(voices, heldout=heldout)
    order = np.random.default_rng([int(seed), 101]).permutation(len(coplas))
    clips = []
    for k in range(int(n)):
        copla = coplas[order[k % len(coplas)]]
        rendering = k // len(coplas)
        clip_id = f"{_slug(copla.id)}-r{rendering:02d}"
        split = split_of(normalize(copla.text), seed=seed)
        cseed = clip_seed(seed, clip_id)
        # the held-out coin has its own hash: tied to cseed, it would pick only even (or odd) voice indices
        heldout_clip = split == "test" and clip_seed(seed, clip_id + ":heldout") % 2 == 0
        pool = held_voices if heldout_clip else train_voices
        voice = pool[cseed % len(pool)]
        clips.append(
            Clip(
                clip_id, tuple(copla.lines), copla.palo, voice, split, cseed, copla.id, heldout_clip
            )
        )
    return clips


def plan_real_clips(
    speech_manifest: str | Path, *, n: int | None = None, seed: int = 0, palos=None
) -> list[Clip]:
    """Clips that sing recorded speech: one per utterance of ``speech_manifest`` (its split kept,
    a palo drawn per utterance). ``n`` keeps the first ``n`` in a seeded order."""
    rows = read_manifest(speech_manifest)
    palos = list(palos or synth.COMPAS)
    order = np.random.default_rng([int(seed), 102]).permutation(len(rows))
    if n is not None:
        order = order[: int(n)]
    clips = []
    for i in order:
        r = rows[i]
        clip_id = f"real-{_slug(str(r['id']))}"
        cseed = clip_seed(seed, clip_id)
        clips.append(
            Clip(
                clip_id,
                (r["text"],),
                palos[cseed % len(palos)],
                r.get("singer") or "real",
                r["split"],
                cseed,
                str(r["id"]),
                True,
                r["audio_path"],
                r.get("start"),
                r.get("end"),
                str(r["id"]),
            )
        )
    return clips


def render(
    clip: Clip,
    *,
    style: str = "sung",
    snr_db_range=synth.SNR_DB_RANGE,
    formant_ratio=synth.FORMANT_RATIO,
) -> tuple[np.ndarray, dict]:
    """Render one planned clip in a style; returns (audio 16 kHz float32, metadata)."""
    if style not in STYLES:
        raise ValueError(f"style {style!r}: expected one of {STYLES}")
    speech = None
    if clip.speech_path:
        from ..audio import load_audio

        speech = load_audio(clip.speech_path, start=clip.speech_start, end=clip.speech_end)
    lines = list(clip.lines)
    if style == "spoken":
        if speech is not None:
            peak = float(np.abs(speech).max()) or 1.0
            audio = (speech * (synth.PEAK / peak)).astype(np.float32)
            meta = {
                "text": ", ".join(lines),
                "text_canonical": ", ".join(lines),
                "source": "speech",
            }
        else:
            audio, meta = synth.speak_clip(lines, voice=clip.voice, seed=clip.seed)
        meta = {**meta, "palo": clip.palo}
    else:
        audio, meta = synth.render_clip(
            lines,
            palo=clip.palo,
            voice=clip.voice,
            seed=clip.seed,
            accompaniment=style == "sung",
            snr_db_range=snr_db_range,
            speech=speech,
            formant_ratio=formant_ratio,
        )
    return audio, meta


def _row(clip: Clip, meta: dict, style: str, audio_rel: str, settings: str) -> dict:
    row = {
        "id": clip.id,
        "audio": audio_rel,
        "start": None,
        "end": None,
        "text": meta["text"],
        "text_canonical": meta["text_canonical"],
        "palo": clip.palo,
        "singer": clip.voice,
        "split": clip.split,
        "source": f"synth-{style}" + ("-real" if clip.speech_path else ""),
        "copla_id": clip.copla_id,
        "voice": clip.voice,
        "base_voice": synth.base_voice(clip.voice),
        "voice_heldout": clip.voice_heldout,
        "style": style,
        "clip_seed": clip.seed,
        "synth_settings": settings,
    }
    skip = {"text", "text_canonical", "palo", "voice", "base_voice", "seed", "source"}
    row.update({k: v for k, v in meta.items() if k not in skip})
    return row


def _render_to_disk(
    clip_dict: dict, out: str, style: str, snr_db_range, formant_ratio
) -> tuple[str, str | None]:
    """Worker: render one clip into ``out/audio``; returns (id, error message or None)."""
    import soundfile as sf

    clip = Clip(**{**clip_dict, "lines": tuple(clip_dict["lines"])})
    wav = Path(out) / "audio" / f"{clip.id}.flac"
    side = wav.with_suffix(".json")
    try:
        audio, meta = render(
            clip, style=style, snr_db_range=snr_db_range, formant_ratio=formant_ratio
        )
    except Exception as err:  # a bad copla or recording must not stop the corpus
        return clip.id, f"{type(err).__name__}: {err}"
    tmp = wav.with_name(wav.stem + ".tmp.flac")
    sf.write(tmp, audio, synth.SAMPLE_RATE, subtype="PCM_16")
    os.replace(tmp, wav)
    settings = synth.settings_id(style, snr_db_range, formant_ratio)
    row = _row(clip, meta, style, f"audio/{wav.name}", settings)
    tmp = side.with_name(side.stem + ".tmp.json")
    tmp.write_text(json.dumps(row, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, side)
    return clip.id, None


def _finished(out: Path, clip: Clip, style: str, settings: str) -> bool:
    """A clip is finished when its audio and metadata exist *and* match the plan and the
    generator's settings (another voice, style, SNR range or generator version renders the
    clip again)."""
    wav = out / "audio" / f"{clip.id}.flac"
    side = wav.with_suffix(".json")
    if not (wav.exists() and side.exists()):
        return False
    try:
        row = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    got = (
        row.get("voice"),
        row.get("clip_seed"),
        row.get("style"),
        row.get("split"),
        row.get("synth_settings"),
    )
    return got == (clip.voice, clip.seed, style, clip.split, settings)


def build_synth_corpus(
    out: str | Path,
    *,
    lyrics: str | Path | None = None,
    speech_manifest: str | Path | None = None,
    n: int | None = None,
    seed: int = 0,
    jobs: int | None = None,
    style: str = "sung",
    voices: list[str] | None = None,
    heldout: str = HELDOUT_BASE_VOICE,
    snr_db_range: tuple[float, float] = synth.SNR_DB_RANGE,
    splits: tuple[str, ...] | None = None,
    progress: bool = True,
    formant_ratio: tuple[float, float] = synth.FORMANT_RATIO,
) -> dict:
    """Render a synthetic cante corpus into ``out`` (``audio/*.flac`` + ``manifest.jsonl``).

    Parameters
    ----------
    out : path
        Output folder; finished clips already there are kept (resume).
    lyrics : path, optional
        A lyrics file (TSV or JSONL, :func:`~flamenco_lib.data.lyrics.read_lyrics`); default the
        project's ``data/lyrics/coplas.tsv``. Ignored when ``speech_manifest`` is given.
    speech_manifest : path, optional
        Sing these recorded utterances instead of TTS (their splits are kept).
    n : int, optional
        Number of clips (default :data:`DEFAULT_N` for lyrics; every utterance for speech).
    seed : int
        Corpus seed (the same seed gives the same corpus, sample for sample).
    jobs : int, optional
        Worker processes (default: the number of cores).
    style : {"sung", "a-capella", "spoken"}
    voices : list of str, optional
        espeak-ng voices to use (default: every Spanish voice found).
    heldout : str
        Base voice held out of training/dev (half of the test clips use it).
    snr_db_range : (float, float)
        Voice-over-accompaniment SNR range of the ``sung`` style, dB.
    splits : tuple of str, optional
        Render only the clips of these splits (default all). The plan is the same either way, so
        a clip has the same id, voice and samples as in the whole corpus (the a-cappella
        calibration set is only ever tested: ``("test",)``).
    progress : bool
        Show a progress bar.
    formant_ratio : (float, float)
        Range of the singer's formant shift ratio (vocal tract length), drawn per clip; each
        within :data:`FORMANT_RATIO_LIMITS`.

    Returns
    -------
    dict
        ``manifest`` (path), ``rendered``, ``skipped`` (already finished), ``failed``
        (``{id: message}``; those clips are left out of the manifest) and ``clips``.
    """
    from tqdm.auto import tqdm

    if style not in STYLES:
        raise ValueError(f"style {style!r}: expected one of {STYLES}")
    unknown = sorted(set(splits or ()) - set(SPLITS))
    if unknown:
        raise ManifestError(f"splits {unknown}: use some of {', '.join(SPLITS)}")
    lo, hi = map(float, formant_ratio)
    if not FORMANT_RATIO_LIMITS[0] <= lo <= hi <= FORMANT_RATIO_LIMITS[1]:
        raise synth.SynthError(
            f"formant ratio range {lo:g}-{hi:g}: give a low end no larger than the high one, both "
            f"within {FORMANT_RATIO_LIMITS[0]:g}-{FORMANT_RATIO_LIMITS[1]:g} (1.0: the voice's "
            f"own vocal tract; default {synth.FORMANT_RATIO[0]:g}-{synth.FORMANT_RATIO[1]:g})"
        )
    out = Path(out)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    if speech_manifest is not None:
        clips = plan_real_clips(speech_manifest, n=n, seed=seed)
    else:
        coplas = read_lyrics(lyrics)
        clips = plan_clips(
            coplas, n=DEFAULT_N if n is None else n, seed=seed, voices=voices, heldout=heldout
        )
    if splits:
        clips = [c for c in clips if c.split in splits]
    settings = synth.settings_id(style, snr_db_range, (lo, hi))
    todo = [c for c in clips if not _finished(out, c, style, settings)]
    failed: dict[str, str] = {}
    jobs = max(1, int(jobs or os.cpu_count() or 1))
    bar = tqdm(
        total=len(clips),
        initial=len(clips) - len(todo),
        desc=f"synth {style}",
        unit="clip",
        disable=not progress,
    )
    args = (str(out), style, tuple(snr_db_range), (lo, hi))
    if jobs == 1 or len(todo) <= 1:
        for c in todo:
            cid, err = _render_to_disk(asdict(c), *args)
            if err:
                failed[cid] = err
            bar.update()
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(_render_to_disk, asdict(c), *args) for c in todo]
            for fut in as_completed(futures):
                cid, err = fut.result()
                if err:
                    failed[cid] = err
                bar.update()
    bar.close()
    rows = []
    for c in clips:
        side = out / "audio" / f"{c.id}.json"
        if side.exists():
            row = json.loads(side.read_text(encoding="utf-8"))
            if c.speech_path:  # a recording sung: its text is the recording's as the plan has it
                row["text"] = row["text_canonical"] = synth.recorded_text(c.lines)
            rows.append(row)
    manifest = write_manifest(rows, out / "manifest.jsonl")
    if failed:
        (out / "failed.json").write_text(
            json.dumps(failed, ensure_ascii=False, indent=1), encoding="utf-8"
        )
    return {
        "manifest": manifest,
        "rendered": len(todo) - len(failed),
        "skipped": len(clips) - len(todo),
        "failed": failed,
        "clips": len(rows),
    }
