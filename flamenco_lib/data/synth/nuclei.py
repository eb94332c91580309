"""Analysis of the speech to be sung: its syllable nuclei (vowels), lines and speaking F0.

Explained in ``notebooks/02_cepstrum.ipynb`` (a real recording sung).
"""

from __future__ import annotations

import numpy as np

from .settings import (
    ENERGY_SMOOTH_S,
    ENERGY_WINDOW_S,
    FRAME_S,
    NUCLEUS_DROP_DB,
    NUCLEUS_FLOOR_DB,
    NUCLEUS_MAX_HALF_S,
    NUCLEUS_MIN_GAP_S,
    NUCLEUS_MIN_S,
    NUCLEUS_PROMINENCE_DB,
    PAUSE_S,
    PITCH_CEILING_HZ,
    PITCH_FLOOR_HZ,
    SAMPLE_RATE,
    SynthError,
)


def _energy_db(x: np.ndarray, sr: int) -> np.ndarray:
    """Smoothed frame energy in dB, frame ``k`` centred on ``k * FRAME_S``; shape (n_frames,)."""
    hop = round(FRAME_S * sr)
    win = round(ENERGY_WINDOW_S * sr)
    n_frames = int(np.ceil(len(x) / hop))
    padded = np.pad(x.astype(np.float64), (win // 2, win + n_frames * hop - len(x)))
    frames = np.lib.stride_tricks.sliding_window_view(padded, win)[::hop][:n_frames]
    db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    k = max(3, round(ENERGY_SMOOTH_S / FRAME_S) | 1)
    kernel = np.hanning(k + 2)[1:-1]
    return np.convolve(np.pad(db, k // 2, mode="edge"), kernel / kernel.sum(), mode="valid")


def _voicing(sound, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """(voiced mask on our frames, F0 in Hz of the voiced Praat frames)."""
    pitch = sound.to_pitch_ac(
        time_step=FRAME_S, pitch_floor=PITCH_FLOOR_HZ, pitch_ceiling=PITCH_CEILING_HZ
    )
    f0 = pitch.selected_array["frequency"]
    if len(f0) == 0:
        return np.zeros(n_frames, bool), f0
    # Praat's frames are FRAME_S apart from pitch.xs()[0]: take the nearest one.
    nearest = np.round((np.arange(n_frames) * FRAME_S - pitch.xs()[0]) / FRAME_S).astype(int)
    voiced = f0[np.clip(nearest, 0, len(f0) - 1)] > 0
    return voiced, f0[f0 > 0]


def find_nuclei(speech: np.ndarray, *, sr: int = SAMPLE_RATE) -> dict:
    """Syllable nuclei of speech: voiced peaks of the smoothed energy envelope, with their vowels.

    Parameters
    ----------
    speech : np.ndarray, shape = (n_samples,)
    sr : int > 0

    Returns
    -------
    dict
        ``"regions"``: float array, shape = (n_nuclei, 2), start and end (s) of each nucleus;
        ``"line_end"``: bool array, shape = (n_nuclei,), the nucleus ends a line (a pause or
        the clip follows); ``"median_f0_hz"``: the speaking F0.

    Raises
    ------
    SynthError
        No voiced speech.
    """
    import parselmouth
    from scipy.signal import find_peaks

    sound = parselmouth.Sound(np.asarray(speech, dtype=np.float64), sampling_frequency=sr)
    env = _energy_db(speech, sr)
    n = len(env)
    voiced, f0 = _voicing(sound, n)
    if len(f0) < 3 or not voiced.any():
        raise SynthError("sing: no voiced speech found (is this speech?)")
    loud = env.max()
    peaks, _ = find_peaks(
        env, prominence=NUCLEUS_PROMINENCE_DB, distance=max(1, int(NUCLEUS_MIN_GAP_S / FRAME_S))
    )
    peaks = [int(p) for p in peaks if voiced[p] and env[p] > loud - NUCLEUS_FLOOR_DB]
    if not peaks:
        peaks = [int(np.argmax(np.where(voiced, env, -np.inf)))]
    max_half = round(NUCLEUS_MAX_HALF_S / FRAME_S)
    regions = []
    for i, p in enumerate(peaks):
        lo_lim = (peaks[i - 1] + p) // 2 + 1 if i > 0 else 0
        hi_lim = (p + peaks[i + 1]) // 2 - 1 if i + 1 < len(peaks) else n - 1
        left = right = p
        while (
            left - 1 >= max(lo_lim, p - max_half)
            and voiced[left - 1]
            and env[left - 1] >= env[p] - NUCLEUS_DROP_DB
        ):
            left -= 1
        while (
            right + 1 <= min(hi_lim, p + max_half)
            and voiced[right + 1]
            and env[right + 1] >= env[p] - NUCLEUS_DROP_DB
        ):
            right += 1
        a, b = (left - 0.5) * FRAME_S, (right + 0.5) * FRAME_S
        if b - a < NUCLEUS_MIN_S:
            a, b = p * FRAME_S - NUCLEUS_MIN_S / 2, p * FRAME_S + NUCLEUS_MIN_S / 2
        regions.append((max(a, 0.0), min(b, len(speech) / sr)))
    # A line ends where a silent, unvoiced run of PAUSE_S follows a nucleus (or the clip ends).
    floor = np.percentile(env, 5)
    silent = (env < max(floor + 10.0, np.percentile(env, 95) - 30.0)) & ~voiced
    pause_frames = round(PAUSE_S / FRAME_S)
    line_end = np.zeros(len(regions), bool)
    line_end[-1] = True
    for i in range(len(regions) - 1):
        seg = silent[int(regions[i][1] / FRAME_S) : int(regions[i + 1][0] / FRAME_S) + 1]
        runs = (
            np.diff(np.flatnonzero(np.diff(np.r_[0, seg.astype(np.int8), 0])))[::2]
            if seg.any()
            else []
        )
        line_end[i] = len(runs) > 0 and max(runs) >= pause_frames
    return {
        "regions": np.array(regions, dtype=np.float64),
        "line_end": line_end,
        "median_f0_hz": float(np.median(f0)),
    }
