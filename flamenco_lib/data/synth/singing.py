"""Speech to singing with Praat's PSOLA: :func:`sing`, step by step.

Explained in ``notebooks/02_cepstrum.ipynb`` (a real recording sung) and
``notebooks/01_speech_and_log_mel.ipynb`` (a copla spoken, then sung).
"""

from __future__ import annotations

import numpy as np

from .melody import _contour, _melisma, _melody, _scale
from .nuclei import find_nuclei
from .palos import palo_mode
from .settings import (
    CONSONANT_DB,
    CONSONANT_RAMP_S,
    CONTOUR_STEP_S,
    FINAL_EXTRA,
    FORMANT_RATIO,
    FRAME_S,
    MELISMA_P,
    NOTE_ATTACK_S,
    PEAK,
    PITCH_CEILING_HZ,
    PITCH_FLOOR_HZ,
    RAMP_S,
    RANGE_SEMITONES,
    SAMPLE_RATE,
    STRETCH,
    SynthError,
)


def _vowel_gain(n: int, nuclei: np.ndarray, soft_db: float, *, sr: int) -> np.ndarray:
    """Gain per sample: 1 over the nuclei (s, shape (k, 2)), ``-soft_db`` dB elsewhere, ramped."""
    pts = [(0.0, -soft_db)]
    for a, b in nuclei:
        pts += [
            (a - CONSONANT_RAMP_S, -soft_db),
            (a, 0.0),
            (b, 0.0),
            (b + CONSONANT_RAMP_S, -soft_db),
        ]
    pts.append((n / sr, -soft_db))
    t, g = map(np.array, zip(*sorted(pts), strict=True))
    db = np.interp(np.arange(n) / sr, t, g)
    return 10.0 ** (db / 20)


def _shift_formants(speech: np.ndarray, ratio: float, *, sr: int, seed: int) -> np.ndarray:
    """Speech with its formants moved by ``ratio``; pitch and timing kept (Praat "Change gender")."""
    import parselmouth
    from parselmouth.praat import call

    sound = parselmouth.Sound(np.asarray(speech, dtype=np.float64), sampling_frequency=sr)
    parselmouth.praat.run(f"random_initializeWithSeedUnsafelyButPredictably ({seed})")
    try:
        out = call(sound, "Change gender", PITCH_FLOOR_HZ, PITCH_CEILING_HZ, ratio, 0.0, 1.0, 1.0)
    finally:
        parselmouth.praat.run("random_initializeSafelyAndUnpredictably ()")
    y = out.values[0]
    if len(y) != len(speech):  # Praat may round the duration by a sample
        y = np.pad(y, (0, max(0, len(speech) - len(y))))[: len(speech)]
    return y


def _praat_run(obj, lines: list[str]) -> None:
    import parselmouth

    parselmouth.praat.run(obj, "\n".join(lines) + "\n")


def sing(
    speech: np.ndarray,
    *,
    palo: str,
    rng: np.random.Generator,
    sr: int = SAMPLE_RATE,
    stretch: tuple[float, float] = STRETCH,
    vibrato_hz: tuple[float, float] = (5.0, 6.0),
    vibrato_cents: tuple[float, float] = (30, 80),
    range_semitones: tuple[float, float] = RANGE_SEMITONES,
    final_extra: tuple[float, float] = FINAL_EXTRA,
    melisma: float = MELISMA_P,
    formant_ratio: tuple[float, float] = FORMANT_RATIO,
    consonant_db: tuple[float, float] = CONSONANT_DB,
) -> tuple[np.ndarray, dict]:
    """Turn speech into singing with Praat's PSOLA (``Manipulation``, overlap-add resynthesis).

    Syllable nuclei (:func:`find_nuclei`) are lengthened by a factor drawn from ``stretch``
    (times ``final_extra`` on the last nucleus of a line); every other frame keeps its duration,
    so consonants stay intact. F0 is replaced by a melody in the palo's mode around a tonic
    near the speaker's median F0: one note held per nucleus, portamento between notes, vibrato
    on the held notes; held notes plus vibrato stay within ``range_semitones`` of the median.
    A long held note may become a melisma: 2-4 notes of the scale on the same vowel, ending on
    the note itself (probability ``melisma``). Before all that, the formants are shifted by a
    ratio drawn from ``formant_ratio`` (Praat's "Change gender", pitch and timing kept): another
    vocal tract than the TTS voice's. Works on any speech (espeak-ng or recorded).

    Parameters
    ----------
    speech : np.ndarray, shape = (n_samples,)
        Mono speech at ``sr`` Hz.
    palo : str
        Chooses the mode (:data:`PALO_MODE`).
    rng : np.random.Generator
        The only source of randomness: the same state gives the same song.
    sr : int > 0
    stretch : (float >= 1, float >= 1)
        Range of the nuclei's lengthening factors.
    vibrato_hz, vibrato_cents : (float, float)
        Ranges of the clip's vibrato rate (Hz) and depth (cents, peak deviation).
    range_semitones : (float, float)
        The melody's range in semitones around the median speaking F0.
    final_extra : (float >= 1, float >= 1)
        Range of the extra lengthening of a line's last nucleus.
    melisma : float in [0, 1]
        Probability that a held note of at least :data:`MELISMA_MIN_S` is ornamented.
    formant_ratio : (float > 0, float > 0)
        Range of the formant shift ratio (1.0: none).

    Returns
    -------
    audio : np.ndarray, shape = (n_samples_out,), dtype float32, peak :data:`PEAK`
    meta : dict
        ``median_f0_hz``, ``tonic_hz``, ``mode``, ``n_nuclei``, ``n_lines``, ``stretch_mean``,
        ``stretch_max``, ``vibrato_hz``, ``vibrato_cents``, ``formant_ratio``, ``n_melismas``,
        ``duration_in_s``, ``duration_s`` and ``held_notes``: ``[(start_s, end_s, hz), ...]``
        in the sung time axis (an ornament gives one entry per note).
    """
    speech = _checked_speech(speech, sr=sr)
    lo_st, hi_st = map(float, range_semitones)
    mode = palo_mode(palo)
    # Random choices, always drawn in this order (determinism for a given rng state): formant
    # ratio, consonant level, Praat's seed, vibrato, stretch factors, tonic, melody, melismas.
    ratio = float(rng.uniform(*formant_ratio))
    soft_db = float(rng.uniform(*consonant_db))
    praat_seed = int(rng.integers(2**31))
    nuc = find_nuclei(speech, sr=sr)  # (the formant shift keeps the timing: same nuclei)
    if abs(ratio - 1.0) > 1e-6:
        speech = _shift_formants(speech, ratio, sr=sr, seed=praat_seed)
    regions, line_end, median = nuc["regions"], nuc["line_end"], nuc["median_f0_hz"]
    vib_hz = float(rng.uniform(*vibrato_hz))
    vib_cents = float(rng.uniform(*vibrato_cents))
    factors = _stretch_factors(line_end, stretch=stretch, final_extra=final_extra, rng=rng)
    # Held notes with their vibrato stay inside the range.
    lo, hi = lo_st + vib_cents / 100, hi_st - vib_cents / 100
    tonic_st = _draw_tonic(lo, hi, range_semitones=range_semitones, rng=rng)
    notes = _melody(line_end, mode=mode, tonic_st=tonic_st, lo=lo, hi=hi, rng=rng)

    # Lengthen the nuclei; then place the notes on them in the sung time axis.
    dur = len(speech) / sr
    duration_tier = _duration_tier(regions, factors, dur=dur)
    grid, out_t = _sung_time(*duration_tier, dur=dur)
    nuclei_out = _to_sung_time(regions, grid, out_t)
    held, notes, n_melismas = _held_notes(
        nuclei_out, notes, mode=mode, tonic_st=tonic_st, lo=lo, hi=hi, melisma=melisma, rng=rng
    )
    pitch_tier = _pitch_tier(
        held, notes, grid, out_t, median=median, vib_hz=vib_hz, vib_st=vib_cents / 100
    )

    # Resynthesise, sing the consonants softer, normalise.
    sung = _resynthesize(
        speech, sr=sr, dur=dur, duration_tier=duration_tier, pitch_tier=pitch_tier, seed=praat_seed
    )
    if soft_db > 0:
        sung = sung * _vowel_gain(len(sung), nuclei_out, soft_db, sr=sr)
    audio = _to_peak(sung)

    meta = {
        "median_f0_hz": median,
        "tonic_hz": float(median * 2.0 ** (tonic_st / 12)),
        "mode": mode,
        "n_nuclei": len(regions),
        "n_lines": int(line_end.sum()),
        "stretch_mean": float(factors.mean()),
        "stretch_max": float(factors.max()),
        "vibrato_hz": vib_hz,
        "vibrato_cents": vib_cents,
        "formant_ratio": ratio,
        "consonant_db": soft_db,
        "n_melismas": n_melismas,
        "duration_in_s": dur,
        "duration_s": len(audio) / sr,
        "held_notes": [
            (float(a), float(b), float(median * 2.0 ** (n / 12)))
            for (a, b), n in zip(held, notes, strict=True)
        ],
    }
    return audio, meta


# --------------------------------------------------------------------------------------------
# The steps of sing
# --------------------------------------------------------------------------------------------


def _checked_speech(speech, *, sr: int) -> np.ndarray:
    """``speech`` as float64, or a :class:`SynthError` when it is too short, not mono or not finite."""
    speech = np.asarray(speech, dtype=np.float64)
    if speech.ndim != 1 or len(speech) < int(0.2 * sr):
        raise SynthError(f"sing: need mono speech of at least 0.2 s, got shape {speech.shape}")
    if not np.all(np.isfinite(speech)):
        raise SynthError("sing: speech contains NaN or infinite samples")
    return speech


def _stretch_factors(
    line_end: np.ndarray,
    *,
    stretch: tuple[float, float],
    final_extra: tuple[float, float],
    rng: np.random.Generator,
) -> np.ndarray:
    """Lengthening factor of each nucleus, times an extra one on the last nucleus of a line."""
    n_nuc = len(line_end)
    return rng.uniform(*stretch, size=n_nuc) * np.where(
        line_end, rng.uniform(*final_extra, size=n_nuc), 1.0
    )


def _draw_tonic(
    lo: float, hi: float, *, range_semitones: tuple[float, float], rng: np.random.Generator
) -> float:
    """The tonic in semitones above the speaking F0: one of the lowest whole semitones of
    ``[lo, hi]``, leaving room above it for the melody."""
    first, last = int(np.ceil(lo)), int(np.floor(hi))
    if last < first:
        raise SynthError(
            f"sing: range_semitones {range_semitones} leaves no room for a note with vibrato"
        )
    return float(rng.integers(first, max(first, min(first + 4, last - 5)) + 1))


def _duration_tier(
    regions: np.ndarray, factors: np.ndarray, *, dur: float
) -> tuple[np.ndarray, np.ndarray]:
    """Points (times, stretch) of the DurationTier (original time axis): 1.0 everywhere, the
    factor over each nucleus, with :data:`RAMP_S` ramps between."""
    pts_t, pts_v = [0.0], [1.0]
    for (a, b), s in zip(regions, factors, strict=True):
        a0 = max(a - RAMP_S, pts_t[-1] + 1e-4)
        pts_t += [a0, max(a, a0 + 1e-4), b, b + RAMP_S]
        pts_v += [1.0, s, s, 1.0]
    pts_t, pts_v = np.array(pts_t), np.array(pts_v)
    keep = pts_t <= dur
    return pts_t[keep], pts_v[keep]


def _sung_time(
    pts_t: np.ndarray, pts_v: np.ndarray, *, dur: float
) -> tuple[np.ndarray, np.ndarray]:
    """``(grid, out_t)``: a 1 ms grid of original times and the sung time of each."""
    grid = np.arange(0.0, dur + 1e-3, 1e-3)  # s, original time
    rate = np.interp(grid, pts_t, pts_v)  # Praat interpolates linearly between points
    out_t = np.r_[0.0, np.cumsum((rate[1:] + rate[:-1]) / 2 * np.diff(grid))]  # sung times
    return grid, out_t


def _to_sung_time(regions: np.ndarray, grid: np.ndarray, out_t: np.ndarray) -> np.ndarray:
    """Start and end (s) of each region, shape (n, 2), moved to the sung time axis."""
    return np.stack(
        [np.interp(regions[:, 0], grid, out_t), np.interp(regions[:, 1], grid, out_t)], axis=1
    )


def _held_notes(
    nuclei_out: np.ndarray,
    notes: np.ndarray,
    *,
    mode: str,
    tonic_st: float,
    lo: float,
    hi: float,
    melisma: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, int]:
    """The held notes (s, sung time) and their semitones: each nucleus after its attack, long
    ones ornamented (:func:`_melisma`); also the number of melismas."""
    held = nuclei_out.copy()
    held[:, 0] += np.minimum(NOTE_ATTACK_S, 0.25 * (held[:, 1] - held[:, 0]))
    scale = tonic_st + _scale(mode, lo - tonic_st, hi - tonic_st)
    return _melisma(held, notes, scale, p=melisma, rng=rng)


def _pitch_tier(
    held: np.ndarray,
    notes: np.ndarray,
    grid: np.ndarray,
    out_t: np.ndarray,
    *,
    median: float,
    vib_hz: float,
    vib_st: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Points (original times, Hz) of the PitchTier, sampled evenly in sung time."""
    u = np.arange(0.0, out_t[-1], CONTOUR_STEP_S)
    hz = median * 2.0 ** (_contour(u, held, notes, vib_hz=vib_hz, vib_st=vib_st) / 12)
    t_orig = np.interp(u, out_t, grid)
    return t_orig, hz


def _resynthesize(
    speech: np.ndarray,
    *,
    sr: int,
    dur: float,
    duration_tier: tuple[np.ndarray, np.ndarray],
    pitch_tier: tuple[np.ndarray, np.ndarray],
    seed: int,
) -> np.ndarray:
    """Praat's ``Manipulation`` of ``speech`` with both tiers replaced, resynthesised by
    overlap-add (PSOLA)."""
    import parselmouth
    from parselmouth.praat import call

    sound = parselmouth.Sound(speech, sampling_frequency=sr)
    manipulation = call(sound, "To Manipulation", FRAME_S, PITCH_FLOOR_HZ, PITCH_CEILING_HZ)
    duration = call("Create DurationTier", "stretch", 0.0, dur)
    _praat_run(
        duration, [f"Add point: {t:.6f}, {v:.6f}" for t, v in zip(*duration_tier, strict=True)]
    )
    pitch = call("Create PitchTier", "melody", 0.0, dur)
    _praat_run(pitch, [f"Add point: {t:.6f}, {f:.4f}" for t, f in zip(*pitch_tier, strict=True)])
    call([manipulation, duration], "Replace duration tier")
    call([manipulation, pitch], "Replace pitch tier")
    # Praat's overlap-add draws random periods to lengthen unvoiced stretches: seed its
    # generator from ours (then give it back to the clock) so the same rng gives the same audio.
    parselmouth.praat.run(f"random_initializeWithSeedUnsafelyButPredictably ({seed})")
    try:
        return call(manipulation, "Get resynthesis (overlap-add)").values[0]
    finally:
        parselmouth.praat.run("random_initializeSafelyAndUnpredictably ()")


def _to_peak(sung: np.ndarray) -> np.ndarray:
    """``sung`` scaled to peak :data:`PEAK`, as float32; silence is a :class:`SynthError`."""
    peak = np.abs(sung).max()
    if not np.isfinite(peak) or peak == 0:
        raise SynthError("sing: Praat resynthesis gave silence")
    return (sung * (PEAK / peak)).astype(np.float32)
