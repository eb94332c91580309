"""Synthetic cante: flamenco-style lyrics spoken by espeak-ng, then sung, accompanied and mixed.

The chain for one clip (:func:`render_clip`), as in DESIGN.md ("Synthetic cante"):

1. :func:`sung_text` — what is sung: a quejío ("Ay") may open the copla, a line may be repeated;
2. :func:`tts` — espeak-ng speaks it (Spanish voices of Spain and Latin America, variants);
3. :func:`sing` — speech to singing with Praat's PSOLA ``Manipulation`` (praat-parselmouth):
   the syllable nuclei (vowels) are lengthened, the other frames keep their duration, and F0
   is replaced by a melody in the palo's mode (one held note per nucleus, portamento between
   notes, vibrato on held notes, descending cadences to the tonic);
4. :func:`guitar` (Karplus-Strong plucked strings on the Andalusian cadence) and :func:`palmas`
   (hand claps; an anvil for the martinete) in the palo's compás, :func:`reverb`, and
   :func:`mix` at a controlled SNR.

A measured lesson is built in: uniform time stretching or phase-vocoder pitch shifting destroy
the words (WER > 100 % on real speech); lengthening only the nuclei and moving F0 with PSOLA
keeps the task hard but fair. :func:`speak_clip` renders the same text spoken (the control).
"""

from __future__ import annotations

import functools
import io
import re
import shutil
import subprocess
import unicodedata

import numpy as np

SAMPLE_RATE = 16000  # Hz: every clip, as Whisper wants it
PEAK = 0.9  # peak amplitude of a rendered clip (full scale = 1.0)
MAX_CLIP_S = 29.5  # s: a sung clip longer than this is re-sung with less lengthening (30 s window)
ESPEAK_INSTALL_HINT = "sudo apt-get install espeak-ng"
MBROLA_VOICES = ("mb-es1", "mb-es2", "mb-es3", "mb-es4")  # used only where MBROLA works

# Analysis of the speech (all frames are FRAME_S apart).
FRAME_S = 0.01  # s: hop of the energy, voicing and Praat manipulation frames
ENERGY_WINDOW_S = 0.03  # s: window of the frame energy
ENERGY_SMOOTH_S = 0.05  # s: Hann smoothing of the energy envelope (dB)
PITCH_FLOOR_HZ = 75.0  # Hz: Praat pitch floor (speech and manipulation)
PITCH_CEILING_HZ = 600.0  # Hz: Praat pitch ceiling
NUCLEUS_PROMINENCE_DB = 2.0  # dB: an energy peak must rise this much above its surroundings
NUCLEUS_MIN_GAP_S = 0.08  # s: closer energy peaks are one nucleus
NUCLEUS_FLOOR_DB = 25.0  # dB: nuclei are at most this far below the loudest frame
NUCLEUS_DROP_DB = 6.0  # dB: a nucleus extends while the energy stays within this of its peak
NUCLEUS_MAX_HALF_S = 0.12  # s: a nucleus extends at most this far either side of its peak
NUCLEUS_MIN_S = 0.03  # s: shortest nucleus
PAUSE_S = 0.12  # s: a silent, unvoiced run this long ends a sung line
STRETCH = (2.5, 4.0)  # lengthening factors of a syllable nucleus (vowel)
FINAL_EXTRA = (2.0, 3.0)  # extra lengthening (times the stretch) of the last nucleus of a line

# The melody (times in the sung, i.e. output, time axis).
NOTE_ATTACK_S = 0.04  # s: the glide into a note ends this far into its nucleus (at most)
GLIDE_MAX_S = 0.15  # s: longest portamento between two notes
VIBRATO_DELAY_S = 0.08  # s: a held note starts plain ...
VIBRATO_RAMP_S = 0.15  # s: ... and its vibrato reaches full depth after this ramp
CONTOUR_STEP_S = 0.01  # s: spacing of the PitchTier points
RAMP_S = 0.005  # s: DurationTier ramps between 1.0 and a nucleus' stretch
RANGE_SEMITONES = (-2.0, 14.0)  # the melody around the speaking median F0: cantaores sing high
# Melisma: a held note this long may become an ornament of 2-4 notes of the scale on one vowel.
MELISMA_P = 1.0  # probability that a long enough held note is ornamented
MELISMA_MIN_S = 0.3  # s: shortest held note that is ornamented
MELISMA_GLIDE_S = 0.05  # s: portamento between the notes of an ornament (at most)
# Ornaments as scale steps relative to the held note; each ends on the note itself.
MELISMA_PATTERNS = ((1, 0), (-1, 0), (0, 1, 0), (1, 0, -1, 0), (2, 1, 0), (-1, 1, 0))
CONSONANT_DB = (8.0, 14.0)  # dB: consonants (all but the nuclei) sung this much softer than vowels
CONSONANT_RAMP_S = 0.03  # s: gain ramp between a nucleus and its consonants
FORMANT_RATIO = (0.88, 1.15)  # formant shift of the singer (vocal tract length), drawn per clip

# Modes as semitones above the tonic (flamenco Phrygian: E F G A B C D over a tonic E).
MODES = {
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
}
# Scale steps above the tonic where a line that is not the last may end (a half cadence).
HALF_CADENCES = {"phrygian": (0, 1, 3), "major": (0, 1, 4), "minor": (0, 1, 4)}
PALO_MODE = {"alegrías": "major", "guajira": "major", "farruca": "minor"}  # others: phrygian

# Compás: (beats per cycle, accented beats, counted from 1).
TWELVE = (12, (3, 6, 8, 10, 12))
COMPAS: dict[str, tuple[int, tuple[int, ...]]] = {
    "soleá": TWELVE,
    "alegrías": TWELVE,
    "bulería": TWELVE,
    "guajira": TWELVE,
    "petenera": TWELVE,
    "seguiriya": (12, (1, 3, 5, 8, 11)),  # the amalgam 2+2+3+3+2
    "martinete": (12, (1, 3, 5, 8, 11)),  # a capella; only the anvil keeps it
    "tangos": (4, (2, 3, 4)),
    "tientos": (4, (1, 3)),
    "farruca": (4, (1, 3)),
    "fandango": (3, (1,)),
    "malagueña": (3, (1,)),
    "granaína": (3, (1,)),
    "taranta": (3, (1,)),
    "sevillanas": (3, (1,)),
}
DEFAULT_COMPAS = TWELVE
# Tempo ranges of the compás count, in beats per minute.
PALO_TEMPO_BPM = {
    "soleá": (140.0, 180.0),
    "alegrías": (160.0, 200.0),
    "bulería": (220.0, 270.0),
    "guajira": (140.0, 180.0),
    "petenera": (130.0, 170.0),
    "seguiriya": (140.0, 180.0),
    "martinete": (110.0, 140.0),
    "tangos": (100.0, 130.0),
    "tientos": (70.0, 95.0),
    "farruca": (80.0, 110.0),
    "fandango": (150.0, 190.0),
    "malagueña": (90.0, 120.0),
    "granaína": (90.0, 120.0),
    "taranta": (90.0, 120.0),
    "sevillanas": (180.0, 210.0),
}
DEFAULT_TEMPO_BPM = (130.0, 170.0)
A_CAPELLA = ("martinete",)  # sung without guitar

# Guitar chords as semitones above the guitar's root (E2 = 0 when the tonic is E).
_E, _AM = (0, 7, 12, 16, 19, 24), (5, 12, 17, 20, 24)
_G, _F = (3, 7, 10, 15, 19, 27), (1, 8, 13, 17, 20, 25)
_A, _B7, _EM = (5, 12, 17, 21, 24), (7, 11, 17, 19, 26), (0, 7, 12, 15, 19, 24)
PROGRESSIONS = {
    "phrygian": (_AM, _G, _F, _E),  # the Andalusian cadence Am-G-F-E
    "major": (_E, _A, _B7, _E),  # I-IV-V7-I
    "minor": (_EM, _AM, _B7, _EM),  # i-iv-V7-i
}
GUITAR_ROOT_HZ = (70.0, 140.0)  # Hz: the guitar's root is the tonic moved into this octave
DEFAULT_TONIC_HZ = 82.41  # Hz: E2
PLUCK_DECAY_S = 1.2  # s: T60 of a plucked string
QUEJIOS = ("Ay", "Ay, ay", "Ayyy")
SNR_DB_RANGE = (5.0, 10.0)  # dB: voice over guitar, palmas and reverb


def settings_id(style: str, snr_db_range: tuple[float, float] = SNR_DB_RANGE) -> str:
    """A short hash of every generator setting that shapes a clip of this style.

    Written into each clip's metadata, so that a rerun of ``data synth`` after the generator
    changed renders the clips again instead of keeping stale ones.
    """
    import hashlib
    import json

    settings: dict = {"style": style, "quejios": QUEJIOS, "peak": PEAK}
    if style != "spoken":
        settings.update(
            stretch=STRETCH, final_extra=FINAL_EXTRA, range=RANGE_SEMITONES, melisma=MELISMA_P,
            melisma_min_s=MELISMA_MIN_S, patterns=MELISMA_PATTERNS, consonant_db=CONSONANT_DB,
            formant_ratio=FORMANT_RATIO, glide=(GLIDE_MAX_S, MELISMA_GLIDE_S), max_clip_s=MAX_CLIP_S,
        )
    if style == "sung":
        settings.update(snr_db_range=tuple(map(float, snr_db_range)), pluck_decay_s=PLUCK_DECAY_S)
    blob = json.dumps(settings, sort_keys=True, default=str).encode()
    return hashlib.sha1(blob).hexdigest()[:12]


class SynthError(RuntimeError):
    """The synthetic cante cannot be rendered; the message says why and what to do."""


# --------------------------------------------------------------------------------------------
# Palos
# --------------------------------------------------------------------------------------------


def _fold(text: str) -> str:
    return "".join(
        c
        for c in unicodedata.normalize("NFD", text.strip().lower())
        if unicodedata.category(c) != "Mn"
    )


_PALO_BY_FOLDED = {_fold(p): p for p in COMPAS}


def palo_key(palo: str) -> str:
    """The palo's name as in :data:`COMPAS` ("Solea" -> "soleá"); unknown names lowercased."""
    return _PALO_BY_FOLDED.get(_fold(palo), palo.strip().lower())


def compas(palo: str) -> tuple[int, tuple[int, ...]]:
    """(beats per cycle, accented beats) of a palo; :data:`DEFAULT_COMPAS` when unknown."""
    return COMPAS.get(palo_key(palo), DEFAULT_COMPAS)


def palo_mode(palo: str) -> str:
    """The mode of the palo's melody and chords: "phrygian", "major" or "minor"."""
    return PALO_MODE.get(palo_key(palo), "phrygian")


# --------------------------------------------------------------------------------------------
# espeak-ng
# --------------------------------------------------------------------------------------------


def _espeak() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise SynthError(f"espeak-ng not found on PATH; install it: {ESPEAK_INSTALL_HINT}")
    return exe


@functools.lru_cache(maxsize=1)
def espeak_voices() -> list[str]:
    """The Spanish espeak-ng voices usable here, e.g. ``["es", "es+f1", ..., "es-419+m8"]``.

    Base voices (Spain ``es``, Latin America ``es-419``) come from ``espeak-ng --voices=es``,
    each alone and with the ordinary male and female variants (``+m1`` ... ``+f5``) listed by
    ``espeak-ng --voices=variant``; MBROLA voices ``mb-es1`` ... ``mb-es4`` are added only
    where they actually speak (the ``mbrola`` program and its voice files are installed).
    """
    exe = _espeak()
    listing = subprocess.run(
        [exe, "--voices=es"], capture_output=True, text=True, check=True
    ).stdout
    bases = []
    for row in listing.splitlines()[1:]:
        cols = row.split()
        if len(cols) >= 5 and not cols[4].startswith("mb/") and cols[1] in ("es", "es-419"):
            bases.append(cols[1])
    bases = sorted(set(bases), key=("es", "es-419").index)
    listing = subprocess.run(
        [exe, "--voices=variant"], capture_output=True, text=True, check=True
    ).stdout
    variants = sorted(
        {m.group(1) for m in re.finditer(r"!v/([mf]\d+)\b", listing)},
        key=lambda v: (v[0] != "m", int(v[1:])),
    )
    voices = [v for b in bases for v in [b] + [f"{b}+{var}" for var in variants]]
    voices += [v for v in MBROLA_VOICES if _speaks(exe, v)]
    return voices


def _speaks(exe: str, voice: str) -> bool:
    """Whether espeak-ng produces audio with this voice (it exits 0 even when MBROLA is missing)."""
    try:
        out = subprocess.run(
            [exe, "-v", voice, "--stdout"],
            input=b"hola",
            capture_output=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and len(out.stdout) > 1000


def base_voice(voice: str) -> str:
    """The base voice without its variant: ``"es+f2"`` -> ``"es"``, ``"es-419+m3"`` -> ``"es-419"``.

    Splits hold out a base voice, so that a test voice is not merely a variant of a training one.
    """
    return voice.split("+", 1)[0]


def tts(text: str, *, voice: str, rate: int = 150, pitch: int = 50) -> np.ndarray:
    """Speak ``text`` with espeak-ng.

    The text goes to espeak-ng's standard input (never through a shell, never as an option);
    the WAV it writes on standard output (22050 Hz) is resampled to :data:`SAMPLE_RATE`.

    Parameters
    ----------
    text : str
        UTF-8 text; commas give short pauses.
    voice : str
        An espeak-ng voice, e.g. ``"es"``, ``"es-419+f2"`` (see :func:`espeak_voices`).
    rate : int
        Words per minute (espeak-ng ``-s``; 80 ... 450).
    pitch : int
        Base pitch (espeak-ng ``-p``; 0 ... 99).

    Returns
    -------
    np.ndarray, shape = (n_samples,), dtype float32, at 16 kHz

    Raises
    ------
    SynthError
        espeak-ng missing or failing, an unknown voice, or empty text.
    """
    import librosa
    import soundfile as sf

    if not text.strip():
        raise SynthError("tts: empty text")
    exe = _espeak()
    cmd = [exe, "-v", voice, "-s", str(int(rate)), "-p", str(int(pitch)), "-b", "1", "--stdout"]
    try:
        out = subprocess.run(
            cmd, input=text.encode("utf-8"), capture_output=True, timeout=120, check=False
        )
    except subprocess.TimeoutExpired:
        raise SynthError(f"tts: espeak-ng timed out on {len(text)} characters") from None
    err = out.stderr.decode("utf-8", "replace").strip()
    if out.returncode != 0 or len(out.stdout) <= 44:
        raise SynthError(
            f"tts: espeak-ng -v {voice} produced no audio (exit {out.returncode}): "
            f"{err or 'no message'}"
        )
    audio, sr = sf.read(io.BytesIO(out.stdout), dtype="float32")
    if audio.ndim == 2:
        audio = audio.mean(axis=1)
    if sr != SAMPLE_RATE:
        audio = librosa.resample(audio, orig_sr=sr, target_sr=SAMPLE_RATE)
    return np.ascontiguousarray(audio, dtype=np.float32)


# --------------------------------------------------------------------------------------------
# Speech to singing
# --------------------------------------------------------------------------------------------


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
        l = r = p
        while (
            l - 1 >= max(lo_lim, p - max_half)
            and voiced[l - 1]
            and env[l - 1] >= env[p] - NUCLEUS_DROP_DB
        ):
            l -= 1
        while (
            r + 1 <= min(hi_lim, p + max_half)
            and voiced[r + 1]
            and env[r + 1] >= env[p] - NUCLEUS_DROP_DB
        ):
            r += 1
        a, b = (l - 0.5) * FRAME_S, (r + 0.5) * FRAME_S
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
    for (a, b), note in zip(held, notes):
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


def _vowel_gain(n: int, nuclei: np.ndarray, soft_db: float, *, sr: int) -> np.ndarray:
    """Gain per sample: 1 over the nuclei (s, shape (k, 2)), ``-soft_db`` dB elsewhere, ramped."""
    pts = [(0.0, -soft_db)]
    for a, b in nuclei:
        pts += [(a - CONSONANT_RAMP_S, -soft_db), (a, 0.0), (b, 0.0), (b + CONSONANT_RAMP_S, -soft_db)]
    pts.append((n / sr, -soft_db))
    t, g = map(np.array, zip(*sorted(pts)))
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
    import parselmouth
    from parselmouth.praat import call

    speech = np.asarray(speech, dtype=np.float64)
    if speech.ndim != 1 or len(speech) < int(0.2 * sr):
        raise SynthError(f"sing: need mono speech of at least 0.2 s, got shape {speech.shape}")
    if not np.all(np.isfinite(speech)):
        raise SynthError("sing: speech contains NaN or infinite samples")
    lo_st, hi_st = map(float, range_semitones)
    mode = palo_mode(palo)
    ratio = float(rng.uniform(*formant_ratio))
    soft_db = float(rng.uniform(*consonant_db))
    praat_seed = int(rng.integers(2**31))
    nuc = find_nuclei(speech, sr=sr)  # (the formant shift keeps the timing: same nuclei)
    if abs(ratio - 1.0) > 1e-6:
        speech = _shift_formants(speech, ratio, sr=sr, seed=praat_seed)
    regions, line_end, median = nuc["regions"], nuc["line_end"], nuc["median_f0_hz"]
    n_nuc = len(regions)

    # Random choices, always drawn in this order (determinism for a given rng state).
    vib_hz = float(rng.uniform(*vibrato_hz))
    vib_cents = float(rng.uniform(*vibrato_cents))
    factors = rng.uniform(*stretch, size=n_nuc) * np.where(
        line_end, rng.uniform(*final_extra, size=n_nuc), 1.0
    )
    # Held notes with their vibrato stay inside the range.
    lo, hi = lo_st + vib_cents / 100, hi_st - vib_cents / 100
    first, last = int(np.ceil(lo)), int(np.floor(hi))
    if last < first:
        raise SynthError(
            f"sing: range_semitones {range_semitones} leaves no room for a note with vibrato"
        )
    tonic_st = float(rng.integers(first, max(first, min(first + 4, last - 5)) + 1))
    notes = _melody(line_end, mode=mode, tonic_st=tonic_st, lo=lo, hi=hi, rng=rng)

    # DurationTier (original time axis): 1.0 everywhere, the factor over each nucleus.
    dur = len(speech) / sr
    pts_t, pts_v = [0.0], [1.0]
    for (a, b), s in zip(regions, factors):
        a0 = max(a - RAMP_S, pts_t[-1] + 1e-4)
        pts_t += [a0, max(a, a0 + 1e-4), b, b + RAMP_S]
        pts_v += [1.0, s, s, 1.0]
    pts_t, pts_v = np.array(pts_t), np.array(pts_v)
    keep = pts_t <= dur
    pts_t, pts_v = pts_t[keep], pts_v[keep]
    grid = np.arange(0.0, dur + 1e-3, 1e-3)  # s, original time
    rate = np.interp(grid, pts_t, pts_v)  # Praat interpolates linearly between points
    out_t = np.r_[0.0, np.cumsum((rate[1:] + rate[:-1]) / 2 * np.diff(grid))]  # sung times

    def to_out(t):
        return np.interp(t, grid, out_t)

    held = np.stack([to_out(regions[:, 0]), to_out(regions[:, 1])], axis=1)
    held[:, 0] += np.minimum(NOTE_ATTACK_S, 0.25 * (held[:, 1] - held[:, 0]))
    scale = tonic_st + _scale(mode, lo - tonic_st, hi - tonic_st)
    held, notes, n_melismas = _melisma(held, notes, scale, p=melisma, rng=rng)

    # PitchTier (original time axis) sampled evenly in sung time.
    u = np.arange(0.0, out_t[-1], CONTOUR_STEP_S)
    hz = median * 2.0 ** (_contour(u, held, notes, vib_hz=vib_hz, vib_st=vib_cents / 100) / 12)
    t_orig = np.interp(u, out_t, grid)

    sound = parselmouth.Sound(speech, sampling_frequency=sr)
    manipulation = call(sound, "To Manipulation", FRAME_S, PITCH_FLOOR_HZ, PITCH_CEILING_HZ)
    duration_tier = call("Create DurationTier", "stretch", 0.0, dur)
    _praat_run(duration_tier, [f"Add point: {t:.6f}, {v:.6f}" for t, v in zip(pts_t, pts_v)])
    pitch_tier = call("Create PitchTier", "melody", 0.0, dur)
    _praat_run(pitch_tier, [f"Add point: {t:.6f}, {f:.4f}" for t, f in zip(t_orig, hz)])
    call([manipulation, duration_tier], "Replace duration tier")
    call([manipulation, pitch_tier], "Replace pitch tier")
    # Praat's overlap-add draws random periods to lengthen unvoiced stretches: seed its
    # generator from ours (then give it back to the clock) so the same rng gives the same audio.
    parselmouth.praat.run(f"random_initializeWithSeedUnsafelyButPredictably ({praat_seed})")
    try:
        sung = call(manipulation, "Get resynthesis (overlap-add)").values[0]
    finally:
        parselmouth.praat.run("random_initializeSafelyAndUnpredictably ()")
    if soft_db > 0:
        nuclei_out = np.stack([to_out(regions[:, 0]), to_out(regions[:, 1])], axis=1)
        sung = sung * _vowel_gain(len(sung), nuclei_out, soft_db, sr=sr)
    peak = np.abs(sung).max()
    if not np.isfinite(peak) or peak == 0:
        raise SynthError("sing: Praat resynthesis gave silence")
    audio = (sung * (PEAK / peak)).astype(np.float32)

    meta = {
        "median_f0_hz": median,
        "tonic_hz": float(median * 2.0 ** (tonic_st / 12)),
        "mode": mode,
        "n_nuclei": n_nuc,
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
            (float(a), float(b), float(median * 2.0 ** (n / 12))) for (a, b), n in zip(held, notes)
        ],
    }
    return audio, meta


# --------------------------------------------------------------------------------------------
# Accompaniment
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Clips
# --------------------------------------------------------------------------------------------


def _clean(lines: list[str]) -> list[str]:
    out = [re.sub(r"\s+", " ", line).strip().rstrip(",;").strip() for line in lines]
    out = [line for line in out if line]
    if not out:
        raise SynthError("no lyrics: every line is empty")
    return out


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
        canonical = text = ", ".join(_clean(lines))
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
            speech, palo=palo, rng=_stage_rng(seed, 2), sr=sr, stretch=stretch, final_extra=extra
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
