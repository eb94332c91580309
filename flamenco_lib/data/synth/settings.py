"""Every setting of the synthetic cante generator, :func:`settings_id` (their hash, written
into each clip's metadata) and :class:`SynthError`.

Explained in ``notebooks/01_speech_and_log_mel.ipynb`` (a copla spoken and sung) and
``notebooks/05_data.ipynb`` (the corpora).
"""

from __future__ import annotations

from ...errors import FlamencoError

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


def settings_id(
    style: str,
    snr_db_range: tuple[float, float] = SNR_DB_RANGE,
    formant_ratio: tuple[float, float] = FORMANT_RATIO,
) -> str:
    """A short hash of every generator setting that shapes a clip of this style.

    Written into each clip's metadata, so that a rerun of ``data synth`` after the generator
    changed renders the clips again instead of keeping stale ones.
    """
    import hashlib
    import json

    settings: dict = {"style": style, "quejios": QUEJIOS, "peak": PEAK}
    if style != "spoken":
        settings.update(
            stretch=STRETCH,
            final_extra=FINAL_EXTRA,
            range=RANGE_SEMITONES,
            melisma=MELISMA_P,
            melisma_min_s=MELISMA_MIN_S,
            patterns=MELISMA_PATTERNS,
            consonant_db=CONSONANT_DB,
            formant_ratio=tuple(map(float, formant_ratio)),
            glide=(GLIDE_MAX_S, MELISMA_GLIDE_S),
            max_clip_s=MAX_CLIP_S,
        )
    if style == "sung":
        settings.update(snr_db_range=tuple(map(float, snr_db_range)), pluck_decay_s=PLUCK_DECAY_S)
    blob = json.dumps(settings, sort_keys=True, default=str).encode()
    return hashlib.sha1(blob).hexdigest()[:12]


class SynthError(FlamencoError, RuntimeError):
    """The synthetic cante cannot be rendered; the message says why and what to do."""
