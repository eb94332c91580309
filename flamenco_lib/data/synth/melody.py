"""The melody a copla is sung to: the palo's scale, one note per nucleus with cadences, the F0
contour (held notes, portamento, vibrato) and melismas.

Explained in ``notebooks/02_cepstrum.ipynb`` (the sung pitch track against its target notes).
"""

from __future__ import annotations

import numpy as np

from .settings import (
    GLIDE_MAX_S,
    HALF_CADENCES,
    MELISMA_GLIDE_S,
    MELISMA_MIN_S,
    MELISMA_PATTERNS,
    MODES,
    VIBRATO_DELAY_S,
    VIBRATO_RAMP_S,
)


def _scale(mode: str, lo: float, hi: float) -> np.ndarray:
    """Semitones above the tonic of the mode's notes within [lo, hi]; sorted."""
    notes = [d + 12 * o for o in range(-2, 3) for d in MODES[mode]]
    return np.array(sorted(s for s in notes if lo <= s <= hi), dtype=np.float64)


def _melody(
    line_end: np.ndarray,
    *,
    mode: str,
    tonic_st: float,
    lo: float,
    hi: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """One note per nucleus, in semitones above the speaking median F0; shape (n_nuclei,).

    Each line starts a few steps above its goal, moves stepwise, and descends to a cadence:
    the tonic for the last line, a half cadence (tonic, 2nd, 4th or 5th step) otherwise.
    """
    scale = _scale(mode, lo - tonic_st, hi - tonic_st)
    tonic = int(np.argmin(np.abs(scale)))
    top = len(scale) - 1
    ends = np.flatnonzero(line_end)
    notes = np.empty(len(line_end), dtype=np.int64)
    start = 0
    for j, end in enumerate(ends):
        n = end - start + 1
        last_line = j == len(ends) - 1
        goal = tonic if last_line else tonic + int(rng.choice(HALF_CADENCES[mode]))
        goal = min(goal, top)
        idx = min(goal + int(rng.integers(2, 5)), top)
        k = min(3, n - 1)  # nuclei of the final descent
        line = []
        for _ in range(n - k):
            line.append(idx)
            idx = int(np.clip(idx + rng.choice([-1, 0, 1], p=[0.4, 0.25, 0.35]), 0, top))
        if k:  # descend stepwise from the last note to the goal
            line += list(np.round(np.linspace(max(line[-1], goal), goal, k + 1)[1:]).astype(int))
        notes[start : end + 1] = line[:n]
        start = end + 1
    return tonic_st + scale[notes]


def _contour(
    t: np.ndarray, held: np.ndarray, notes: np.ndarray, *, vib_hz: float, vib_st: float
) -> np.ndarray:
    """Melodic F0 in semitones at output times ``t``: held notes, raised-cosine glides, vibrato.

    Parameters
    ----------
    t : np.ndarray, shape = (n_times,)
        Sung (output) times in seconds, increasing.
    held : np.ndarray, shape = (n_notes, 2)
        Start and end (s) of each steady note.
    notes : np.ndarray, shape = (n_notes,)
        Semitones of each note.
    vib_hz, vib_st : float
        Vibrato rate (Hz) and depth (semitones, peak deviation).

    Returns
    -------
    np.ndarray, shape = (n_times,)
    """

    def steady(i: int, tt: np.ndarray) -> np.ndarray:
        # Vibrato starts at phase 0 after a plain onset and fades in: continuous at both ends.
        v0 = held[i, 0] + VIBRATO_DELAY_S
        depth = np.clip((tt - v0) / VIBRATO_RAMP_S, 0.0, 1.0)
        return notes[i] + vib_st * depth * np.sin(2 * np.pi * vib_hz * np.maximum(tt - v0, 0.0))

    st = np.full(t.shape, float(notes[0]), dtype=np.float64)
    for i in range(len(notes)):
        a, b = held[i]
        if i > 0:
            # Hold where the previous note ended, then glide into this one (portamento).
            prev_end = float(held[i - 1, 1])
            last = float(steady(i - 1, np.array([prev_end]))[0])
            g0 = max(prev_end, a - GLIDE_MAX_S)
            st[(t > prev_end) & (t < g0)] = last
            m = (t >= g0) & (t < a)
            x = (t[m] - g0) / max(a - g0, 1e-9)
            st[m] = last + (notes[i] - last) * (0.5 - 0.5 * np.cos(np.pi * x))
        m = (t >= a) & (t <= b)
        st[m] = steady(i, t[m])
    st[t > held[-1, 1]] = steady(len(notes) - 1, held[-1, 1:2])[0]
    return st


def _melisma(
    held: np.ndarray, notes: np.ndarray, scale: np.ndarray, *, p: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, int]:
    """Ornament long held notes: split each into the notes of a :data:`MELISMA_PATTERNS` entry.

    ``held`` (n, 2) are the notes' start and end (s), ``notes`` (n,) their semitones, ``scale``
    the semitones the ornament may use. An ornamented note's time is shared evenly by its
    sub-notes, each but the first starting after a short glide; the last is the note itself.

    Returns
    -------
    held : np.ndarray, shape = (n_out, 2)
    notes : np.ndarray, shape = (n_out,)
    n_melismas : int
        How many notes were ornamented.
    """
    out_h, out_n, count = [], [], 0
    for (a, b), note in zip(held, notes, strict=True):
        if b - a < MELISMA_MIN_S or rng.random() >= p:
            out_h.append((a, b))
            out_n.append(note)
            continue
        pattern = MELISMA_PATTERNS[int(rng.integers(len(MELISMA_PATTERNS)))]
        k = int(np.argmin(np.abs(scale - note)))
        step = (b - a) / len(pattern)
        glide = min(MELISMA_GLIDE_S, 0.3 * step)
        for j, off in enumerate(pattern):
            start = a + j * step + (glide if j else 0.0)
            out_h.append((start, a + (j + 1) * step))
            out_n.append(note if off == 0 else scale[int(np.clip(k + off, 0, len(scale) - 1))])
        count += 1
    return np.array(out_h, dtype=np.float64), np.array(out_n, dtype=np.float64), count
