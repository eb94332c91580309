"""The accompaniment and the mix: Karplus-Strong guitar, palmas (or the martinete's anvil) in
the palo's compás, a room's reverb, and voice over accompaniment at a chosen SNR.

Explained in ``notebooks/01_speech_and_log_mel.ipynb`` and ``notebooks/05_data.ipynb`` (the
styles: spoken, a capella, with guitar).
"""

from __future__ import annotations

import numpy as np

from .palos import compas, palo_key, palo_mode
from .settings import (
    A_CAPELLA,
    DEFAULT_TONIC_HZ,
    GUITAR_ROOT_HZ,
    PEAK,
    PLUCK_DECAY_S,
    PROGRESSIONS,
    SAMPLE_RATE,
    SynthError,
)


def pluck(
    freq_hz: float,
    n_samples: int,
    *,
    rng: np.random.Generator,
    sr: int = SAMPLE_RATE,
    decay_s: float = PLUCK_DECAY_S,
    brightness: float = 0.5,
) -> np.ndarray:
    """One plucked string (Karplus-Strong), computed a period at a time with numpy.

    The loop filter is the two-point average convolved with a linear-interpolation fractional
    delay, so the loop delay is ``sr / freq_hz`` samples exactly (to first order).

    Parameters
    ----------
    freq_hz : float, 20 < freq_hz < sr / 8
    n_samples : int >= 0
    rng : np.random.Generator
        Draws the excitation noise.
    decay_s : float > 0
        T60 of the fundamental in seconds.
    brightness : float in [0, 1]
        Share of white noise added to the triangular pluck shape (0: a soft thumb pluck).

    Returns
    -------
    np.ndarray, shape = (n_samples,), dtype float32, peak about 1
    """
    if not 20.0 < freq_hz < sr / 8:
        raise SynthError(f"pluck: frequency {freq_hz} Hz outside (20, {sr / 8}) Hz")
    period = sr / freq_hz
    delay = int(np.floor(period - 0.5))
    frac = period - 0.5 - delay
    g = 10.0 ** (-3.0 / (freq_hz * decay_s))  # loss per round trip: -60 dB after decay_s
    taps = g * np.array([0.5 * (1 - frac), 0.5, 0.5 * frac])
    # The string's initial shape: a triangle peaked where it is plucked (harmonics fall as
    # 1/k^2, the fundamental dominates) plus noise for the attack, more of it when bright.
    where = rng.uniform(0.1, 0.3)
    x = np.arange(delay) / delay
    burst = np.where(x < where, x / where, (1.0 - x) / (1.0 - where))
    burst -= burst.mean()
    noise = rng.uniform(-1.0, 1.0, delay)
    noise -= noise.mean()
    burst = burst / np.abs(burst).max() + float(np.clip(brightness, 0.0, 1.0)) * noise
    y = np.zeros(max(n_samples, delay) + delay + 2)
    y[2 : 2 + delay] = burst
    for s in range(2 + delay, len(y), delay):
        e = min(s + delay, len(y))
        y[s:e] = (
            taps[0] * y[s - delay : e - delay]
            + taps[1] * y[s - delay - 1 : e - delay - 1]
            + taps[2] * y[s - delay - 2 : e - delay - 2]
        )
        if np.abs(y[s:e]).max() < 1e-5:
            break
    out = y[2 : 2 + n_samples]
    peak = np.abs(out).max() if n_samples else 0.0
    return (out / peak if peak > 0 else out).astype(np.float32)


def _beats(n_samples: int, *, tempo_bpm: float, offset_s: float, sr: int) -> np.ndarray:
    """Onset times (s) of every beat from ``offset_s`` to the end."""
    if tempo_bpm <= 0:
        raise SynthError(f"tempo_bpm must be > 0, got {tempo_bpm}")
    return np.arange(offset_s, n_samples / sr, 60.0 / tempo_bpm)


def _chord_of_beat(k: int, beats: int, accents: tuple[int, ...], n_chords: int) -> int:
    """Index in the progression of the chord under beat ``k`` (0-based, from the cycle start).

    Long cycles (>= 6 beats) walk the whole progression in one cycle, a chord per accent group;
    short cycles hold one chord per cycle.
    """
    cycle, b = divmod(k, beats)
    if beats < 6:
        return cycle % n_chords
    group = sum(1 for a in sorted(accents) if a < b + 1)  # accents before this beat
    n_groups = len(accents) + (0 if max(accents) == beats else 1)
    return min(n_chords - 1, group * n_chords // n_groups)


def guitar(
    n_samples: int,
    *,
    palo: str,
    tempo_bpm: float,
    rng: np.random.Generator,
    sr: int = SAMPLE_RATE,
    tonic_hz: float | None = None,
    offset_s: float = 0.0,
) -> np.ndarray:
    """Plucked-string guitar (Karplus-Strong) playing the palo's cadence in its compás.

    Accented beats get a rasgueado (the chord strummed low to high, a few ms between strings),
    the other beats a bass note and an upper string. Phrygian palos play the Andalusian cadence
    Am-G-F-E over the tonic E; major and minor palos I-IV-V7-I and i-iv-V7-i. Martinete is
    a capella: silence.

    Parameters
    ----------
    n_samples : int >= 0
    palo : str
    tempo_bpm : float > 0
        Beats of the compás count per minute.
    rng : np.random.Generator
    sr : int > 0
    tonic_hz : float, optional
        The singer's tonic (E of the cadence); the guitar plays it an octave or more lower.
        Default E2.
    offset_s : float >= 0
        Time of beat 1 of the first cycle (share it with :func:`palmas`).

    Returns
    -------
    np.ndarray, shape = (n_samples,), dtype float32
    """
    out = np.zeros(n_samples, dtype=np.float64)
    if palo_key(palo) in A_CAPELLA or n_samples == 0:
        return out.astype(np.float32)
    beats, accents = compas(palo)
    chords = PROGRESSIONS[palo_mode(palo)]
    root = float(tonic_hz or DEFAULT_TONIC_HZ)
    while root >= GUITAR_ROOT_HZ[1]:
        root /= 2
    while root < GUITAR_ROOT_HZ[0]:
        root *= 2
    times = _beats(n_samples, tempo_bpm=tempo_bpm, offset_s=offset_s, sr=sr)
    which = [_chord_of_beat(k, beats, accents, len(chords)) for k in range(len(times) + 1)]
    beat_s = 60.0 / tempo_bpm
    for k, t in enumerate(times):
        chord = chords[which[k]]
        nxt = next((j for j in range(k + 1, len(which)) if which[j] != which[k]), len(which))
        ring_s = min(offset_s + nxt * beat_s - t, 2.0)  # until the chord changes
        if (k % beats) + 1 in accents:  # rasgueado: every string, low to high, bright
            gap = rng.uniform(0.008, 0.016)
            strings = [
                (i * gap, semis, rng.uniform(0.7, 1.0), 0.8) for i, semis in enumerate(chord)
            ]
        else:  # the thumb on the root (dark), then an upper string half a beat later
            upper = chord[int(rng.integers(2, len(chord)))]
            strings = [
                (0.0, chord[0], rng.uniform(0.6, 0.8), 0.1),
                (beat_s / 2, upper, rng.uniform(0.2, 0.35), 0.4),
            ]
        for dt, semis, amp, bright in strings:
            start = round((t + dt) * sr)
            n = min(int((ring_s - dt) * sr), n_samples - start)
            if n <= 0:
                continue
            note = pluck(root * 2.0 ** (semis / 12), n, rng=rng, sr=sr, brightness=bright)
            fade = min(n, int(0.02 * sr))
            note[n - fade :] *= np.linspace(1.0, 0.0, fade)  # damped at the chord change
            out[start : start + n] += amp * note
    peak = np.abs(out).max()
    return (out / peak * PEAK if peak > 0 else out).astype(np.float32)


def _clap(rng: np.random.Generator, sr: int, *, centre_hz: float) -> np.ndarray:
    """One hand clap: 2-3 hands' band-passed noise bursts, a few ms apart, decaying in ~10 ms."""
    from scipy.signal import butter, sosfilt

    n = int(0.12 * sr)
    t = np.arange(n) / sr
    out = np.zeros(n)
    for _ in range(int(rng.integers(2, 4))):
        lag = int(rng.uniform(0.0, 0.008) * sr)
        tau = rng.uniform(0.006, 0.016)
        burst = rng.standard_normal(n - lag) * np.exp(-t[: n - lag] / tau)
        fc = centre_hz * rng.uniform(0.8, 1.25)
        sos = butter(2, [fc / 1.6, min(fc * 1.6, sr / 2 * 0.95)], btype="band", fs=sr, output="sos")
        out[lag:] += sosfilt(sos, burst)
    return out / (np.abs(out).max() + 1e-12)


def _anvil(rng: np.random.Generator, sr: int) -> np.ndarray:
    """One hammer stroke on an anvil: inharmonic decaying partials and a click."""
    n = int(0.8 * sr)
    t = np.arange(n) / sr
    f0 = rng.uniform(700.0, 1000.0)
    out = sum(
        rng.uniform(0.3, 1.0)
        / (i + 1)
        * np.sin(2 * np.pi * f0 * r * t + rng.uniform(0, 2 * np.pi))
        * np.exp(-t / rng.uniform(0.08, 0.3))
        for i, r in enumerate((1.0, 2.76, 5.40, 8.93))
    )
    click = int(0.004 * sr)
    out[:click] += rng.standard_normal(click) * np.linspace(1.0, 0.0, click)
    return out / np.abs(out).max()


def palmas(
    n_samples: int,
    *,
    palo: str,
    tempo_bpm: float,
    rng: np.random.Generator,
    sr: int = SAMPLE_RATE,
    offset_s: float = 0.0,
) -> np.ndarray:
    """Hand claps in the palo's compás: loud claps on the accents, soft (sordas) on other beats.

    Martinete gets anvil strokes on its accents instead. Beat 1 of the first cycle falls at
    ``offset_s``.

    Returns
    -------
    np.ndarray, shape = (n_samples,), dtype float32
    """
    out = np.zeros(n_samples, dtype=np.float64)
    beats, accents = compas(palo)
    anvil = palo_key(palo) in A_CAPELLA
    for k, t in enumerate(_beats(n_samples, tempo_bpm=tempo_bpm, offset_s=offset_s, sr=sr)):
        accent = (k % beats) + 1 in accents
        if anvil:
            if not accent:
                continue
            hit, amp = _anvil(rng, sr), rng.uniform(0.8, 1.0)
        elif accent:
            hit, amp = _clap(rng, sr, centre_hz=1800.0), rng.uniform(0.8, 1.0)
        else:
            hit, amp = _clap(rng, sr, centre_hz=700.0), rng.uniform(0.15, 0.3)
        start = round((t + rng.normal(0.0, 0.004)) * sr)
        start = min(max(start, 0), n_samples)
        m = min(len(hit), n_samples - start)
        out[start : start + m] += amp * hit[:m]
    peak = np.abs(out).max()
    return (out / peak * PEAK if peak > 0 else out).astype(np.float32)


def reverb(
    x: np.ndarray,
    *,
    sr: int = SAMPLE_RATE,
    rt60: float = 0.4,
    wet: float = 0.2,
    rng: np.random.Generator,
) -> np.ndarray:
    """A room: convolution with exponentially decaying noise (-60 dB after ``rt60`` s).

    The impulse response has unit energy; the result is ``(1 - wet) * x + wet * (x * h)``,
    cut to the input's length.

    Returns
    -------
    np.ndarray, shape = x.shape, dtype float32
    """
    from scipy.signal import fftconvolve

    if rt60 <= 0 or not 0.0 <= wet <= 1.0:
        raise SynthError(f"reverb: need rt60 > 0 and 0 <= wet <= 1, got rt60={rt60}, wet={wet}")
    n = max(1, int(rt60 * sr))
    t = np.arange(n) / sr
    h = rng.standard_normal(n) * 10.0 ** (-3.0 * t / rt60)
    h /= np.sqrt(np.sum(h**2))
    x = np.asarray(x, dtype=np.float64)
    wet_sig = fftconvolve(x, h)[: len(x)]
    return ((1.0 - wet) * x + wet * wet_sig).astype(np.float32)


def active_mask(
    voice: np.ndarray, *, sr: int = SAMPLE_RATE, floor_db: float = 40.0, frame_s: float = 0.02
) -> np.ndarray:
    """Samples of the voice's active part: 20 ms frames within ``floor_db`` of the loudest frame.

    Returns
    -------
    np.ndarray, shape = voice.shape, dtype bool
    """
    hop = max(1, int(frame_s * sr))
    n = int(np.ceil(len(voice) / hop))
    padded = np.pad(np.asarray(voice, dtype=np.float64), (0, n * hop - len(voice)))
    power = np.mean(padded.reshape(n, hop) ** 2, axis=1)
    if power.max() == 0:
        return np.zeros(len(voice), bool)
    frames = power >= power.max() * 10.0 ** (-floor_db / 10)
    return np.repeat(frames, hop)[: len(voice)]


def mix(voice: np.ndarray, accompaniment: np.ndarray, *, snr_db: float) -> np.ndarray:
    """Voice plus accompaniment at a given SNR, peak-normalised to :data:`PEAK` (<= 0.99).

    The accompaniment (cut or zero-padded to the voice's length) is scaled so that
    ``10 log10(P_voice / P_accompaniment) = snr_db``, both powers measured over the voice's
    active part (:func:`active_mask`). A silent accompaniment leaves the voice alone.

    Returns
    -------
    np.ndarray, shape = voice.shape, dtype float32
    """
    v = np.asarray(voice, dtype=np.float64)
    a = np.zeros_like(v)
    m = min(len(v), len(accompaniment))
    a[:m] = np.asarray(accompaniment[:m], dtype=np.float64)
    active = active_mask(v)
    if not active.any():
        raise SynthError("mix: the voice is silent")
    p_voice, p_acc = np.mean(v[active] ** 2), np.mean(a[active] ** 2)
    out = v + (np.sqrt(p_voice / (p_acc * 10.0 ** (snr_db / 10))) * a if p_acc > 0 else 0.0)
    return (out * (PEAK / np.abs(out).max())).astype(np.float32)
