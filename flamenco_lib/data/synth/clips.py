"""One clip from a copla: what is sung (:func:`sung_text`), the sung clip (:func:`render_clip`)
and its spoken control (:func:`speak_clip`), each with its metadata.

Explained in ``notebooks/01_speech_and_log_mel.ipynb`` (a copla spoken and sung).
"""

from __future__ import annotations

import re

import numpy as np

from .accompaniment import guitar, mix, palmas, reverb
from .palos import palo_key
from .settings import (
    DEFAULT_TEMPO_BPM,
    FINAL_EXTRA,
    FORMANT_RATIO,
    FRAME_S,
    MAX_CLIP_S,
    PALO_TEMPO_BPM,
    PEAK,
    PITCH_CEILING_HZ,
    PITCH_FLOOR_HZ,
    QUEJIOS,
    SAMPLE_RATE,
    SNR_DB_RANGE,
    STRETCH,
    SynthError,
)
from .singing import sing
from .tts import base_voice, tts


def _clean(lines: list[str]) -> list[str]:
    out = [re.sub(r"\s+", " ", line).strip().rstrip(",;").strip() for line in lines]
    out = [line for line in out if line]
    if not out:
        raise SynthError("no lyrics: every line is empty")
    return out


def recorded_text(lines: list[str]) -> str:
    """The text of a recording sung as is (``render_clip(..., speech=...)``): its lines, joined."""
    return ", ".join(_clean(lines))


def sung_text(
    lines: list[str], *, rng: np.random.Generator, p_quejio: float = 0.5, p_repeat: float = 0.4
) -> tuple[str, str]:
    """What is sung versus the lyric as written, both as plain text, lines joined by ", ".

    A quejío ("Ay", "Ay, ay", "Ayyy") may open the copla (probability ``p_quejio``) and one
    line may be sung twice in a row (``p_repeat``), as singers do. Lines are stripped of
    surrounding spaces and a trailing comma.

    Returns
    -------
    (text_sung, text_canonical) : (str, str)
        e.g. ``("Ay, ay, la luna sale, la luna sale, por la sierra",
        "la luna sale, por la sierra")``.
    """
    lines = _clean(lines)
    repeat = rng.random() < p_repeat
    which = int(rng.integers(len(lines)))
    quejio = rng.random() < p_quejio
    cry = QUEJIOS[int(rng.integers(len(QUEJIOS)))]
    sung = list(lines)
    if repeat:
        sung.insert(which + 1, lines[which])
    if quejio:
        sung.insert(0, cry)
    return ", ".join(sung), ", ".join(lines)


def _stage_rng(seed: int, stage: int) -> np.random.Generator:
    """Independent streams per stage, so a retry or a skipped stage does not shift the others."""
    return np.random.default_rng([int(seed), stage])


def _tts_params(seed: int) -> tuple[int, int]:
    rng = _stage_rng(seed, 1)
    return int(rng.integers(130, 171)), int(rng.integers(35, 66))


def render_clip(
    lines: list[str],
    *,
    palo: str,
    voice: str,
    seed: int,
    accompaniment: bool = True,
    snr_db_range: tuple[float, float] = SNR_DB_RANGE,
    speech: np.ndarray | None = None,
    formant_ratio: tuple[float, float] = FORMANT_RATIO,
) -> tuple[np.ndarray, dict]:
    """One synthetic cante clip: sung text -> espeak-ng -> singing -> guitar, palmas, reverb, mix.

    Parameters
    ----------
    lines : list of str
        The copla, one verse per item.
    palo : str
        A key of :data:`COMPAS` (unknown palos get the defaults).
    voice : str
        An espeak-ng voice (:func:`espeak_voices`), or the singer's name when ``speech`` is given.
    seed : int
        Everything random derives from it: the same seed gives the same samples.
    accompaniment : bool
        Add guitar (none for martinete), palmas and reverb at an SNR drawn from ``snr_db_range``.
    snr_db_range : (float, float)
        dB of voice over accompaniment.
    speech : np.ndarray, shape = (n_samples,), optional
        Recorded 16 kHz speech of ``lines`` to sing instead of espeak-ng's (then sung as is:
        no quejío or repeat is added and ``text`` equals ``text_canonical``).
    formant_ratio : (float > 0, float > 0)
        Range of the singer's formant shift (vocal tract length; :func:`sing`).

    Returns
    -------
    audio : np.ndarray, shape = (n_samples,), dtype float32, 16 kHz, at most 29.5 s
    meta : dict
        ``text``, ``text_canonical``, ``palo``, ``voice``, ``base_voice``, ``tempo_bpm``,
        ``snr_db`` (None without accompaniment), ``accompaniment``, ``median_f0_hz``,
        ``tonic_hz``, ``duration_s``, ``seed``; also ``mode``, ``n_nuclei``, ``stretch_mean``,
        ``stretch_scale`` (1.0, or less where the lengthening was reduced to fit 29.5 s),
        ``vibrato_hz``, ``vibrato_cents``, ``formant_ratio``, ``n_melismas``, ``consonant_db``,
        ``reverb_rt60_s``, ``tts_rate``, ``tts_pitch`` and
        ``source`` ("espeak-ng" or "speech"). JSON-serialisable.

    Raises
    ------
    SynthError
        When even the spoken lyric is longer than 29.5 s (split the copla).
    """
    sr = SAMPLE_RATE
    if speech is None:
        text, canonical = sung_text(lines, rng=_stage_rng(seed, 0))
        rate, pitch = _tts_params(seed)
        speech = tts(text, voice=voice, rate=rate, pitch=pitch)
    else:
        canonical = text = recorded_text(lines)
        rate = pitch = None
        speech = np.asarray(speech, dtype=np.float32)
    if len(speech) > MAX_CLIP_S * sr:
        raise SynthError(
            f"render_clip: the spoken copla lasts {len(speech) / sr:.1f} s > {MAX_CLIP_S} s; "
            "split it"
        )

    # Sing; if too long, sing again with less lengthening (the same notes), never cut words.
    k = 1.0
    for _ in range(8):
        stretch = (1 + k * (STRETCH[0] - 1), 1 + k * (STRETCH[1] - 1))
        extra = (1 + k * (FINAL_EXTRA[0] - 1), 1 + k * (FINAL_EXTRA[1] - 1))
        sung, smeta = sing(
            speech,
            palo=palo,
            rng=_stage_rng(seed, 2),
            sr=sr,
            stretch=stretch,
            final_extra=extra,
            formant_ratio=formant_ratio,
        )
        if len(sung) <= MAX_CLIP_S * sr:
            break
        k *= 0.95 * (MAX_CLIP_S * sr - len(speech)) / (len(sung) - len(speech))
    else:
        raise SynthError(f"render_clip: could not fit the sung copla into {MAX_CLIP_S} s")

    rng = _stage_rng(seed, 3)
    tempo = float(rng.uniform(*PALO_TEMPO_BPM.get(palo_key(palo), DEFAULT_TEMPO_BPM)))
    snr = None
    rt60 = None
    if accompaniment:
        offset = float(rng.uniform(0.0, 60.0 / tempo))
        snr = float(rng.uniform(*snr_db_range))
        n = len(sung)
        g = guitar(
            n,
            palo=palo,
            tempo_bpm=tempo,
            rng=rng,
            sr=sr,
            tonic_hz=smeta["tonic_hz"],
            offset_s=offset,
        )
        p = palmas(n, palo=palo, tempo_bpm=tempo, rng=rng, sr=sr, offset_s=offset)
        acc = _rms_norm(g) + 10.0 ** (rng.uniform(-8.0, -2.0) / 20) * _rms_norm(p)
        rt60, wet = float(rng.uniform(0.3, 0.8)), float(rng.uniform(0.1, 0.3))
        room = int(rng.integers(2**31))
        voice_r = reverb(sung, sr=sr, rt60=rt60, wet=wet, rng=np.random.default_rng(room))
        acc_r = reverb(acc, sr=sr, rt60=rt60, wet=wet, rng=np.random.default_rng(room))
        audio = mix(voice_r, acc_r, snr_db=snr)
    else:
        audio = sung
    meta = _meta(
        text, canonical, palo=palo_key(palo), voice=voice, seed=seed, duration_s=len(audio) / sr
    )
    meta.update(
        tempo_bpm=tempo if accompaniment else None,
        snr_db=snr,
        accompaniment=bool(accompaniment),
        median_f0_hz=smeta["median_f0_hz"],
        tonic_hz=smeta["tonic_hz"],
        mode=smeta["mode"],
        n_nuclei=smeta["n_nuclei"],
        stretch_mean=smeta["stretch_mean"],
        stretch_scale=k,
        vibrato_hz=smeta["vibrato_hz"],
        vibrato_cents=smeta["vibrato_cents"],
        formant_ratio=smeta["formant_ratio"],
        n_melismas=smeta["n_melismas"],
        consonant_db=smeta["consonant_db"],
        reverb_rt60_s=rt60,
        tts_rate=rate,
        tts_pitch=pitch,
        source="espeak-ng" if rate is not None else "speech",
    )
    return audio, meta


def speak_clip(lines: list[str], *, voice: str, seed: int) -> tuple[np.ndarray, dict]:
    """The spoken control: what :func:`render_clip` would sing for this seed, only spoken.

    Same sung text (quejío, repeat) and espeak-ng settings as ``render_clip(..., seed=seed)``;
    no singing, accompaniment or reverb. The meta has the same keys (``palo``, ``tempo_bpm``,
    ``snr_db``, ``tonic_hz`` ... are None).

    Returns
    -------
    audio : np.ndarray, shape = (n_samples,), dtype float32, 16 kHz, peak :data:`PEAK`
    meta : dict
    """
    import parselmouth

    text, canonical = sung_text(lines, rng=_stage_rng(seed, 0))
    rate, pitch = _tts_params(seed)
    speech = tts(text, voice=voice, rate=rate, pitch=pitch)
    peak = np.abs(speech).max()
    audio = (speech * (PEAK / peak)).astype(np.float32) if peak > 0 else speech
    f0 = (
        parselmouth.Sound(audio.astype(np.float64), sampling_frequency=SAMPLE_RATE)
        .to_pitch_ac(time_step=FRAME_S, pitch_floor=PITCH_FLOOR_HZ, pitch_ceiling=PITCH_CEILING_HZ)
        .selected_array["frequency"]
    )
    meta = _meta(
        text, canonical, palo=None, voice=voice, seed=seed, duration_s=len(audio) / SAMPLE_RATE
    )
    meta.update(
        tempo_bpm=None,
        snr_db=None,
        accompaniment=False,
        median_f0_hz=float(np.median(f0[f0 > 0])) if (f0 > 0).any() else None,
        tonic_hz=None,
        mode=None,
        n_nuclei=None,
        stretch_mean=None,
        stretch_scale=None,
        vibrato_hz=None,
        vibrato_cents=None,
        formant_ratio=None,
        n_melismas=None,
        consonant_db=None,
        reverb_rt60_s=None,
        tts_rate=rate,
        tts_pitch=pitch,
        source="espeak-ng",
    )
    return audio, meta


def _meta(
    text: str, canonical: str, *, palo: str | None, voice: str, seed: int, duration_s: float
) -> dict:
    return {
        "text": text,
        "text_canonical": canonical,
        "palo": palo,
        "voice": voice,
        "base_voice": base_voice(voice),
        "seed": int(seed),
        "duration_s": float(duration_s),
    }


def _rms_norm(x: np.ndarray) -> np.ndarray:
    rms = np.sqrt(np.mean(np.asarray(x, dtype=np.float64) ** 2))
    return x / rms if rms > 0 else x
