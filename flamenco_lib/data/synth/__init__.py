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

Submodules, in the order of the chain: :mod:`.settings` (every setting, :func:`settings_id`,
:class:`SynthError`), :mod:`.palos`, :mod:`.tts` (espeak-ng), :mod:`.nuclei` and
:mod:`.melody` (what :mod:`.singing` needs), :mod:`.singing` (:func:`sing`),
:mod:`.accompaniment` (guitar, palmas, reverb, mix) and :mod:`.clips` (:func:`render_clip`,
:func:`speak_clip`).
"""

from .accompaniment import active_mask, guitar, mix, palmas, pluck, reverb
from .clips import recorded_text, render_clip, speak_clip, sung_text
from .nuclei import find_nuclei
from .palos import compas, palo_key, palo_mode
from .settings import (
    A_CAPELLA,
    COMPAS,
    CONSONANT_DB,
    CONSONANT_RAMP_S,
    CONTOUR_STEP_S,
    DEFAULT_COMPAS,
    DEFAULT_TEMPO_BPM,
    DEFAULT_TONIC_HZ,
    ENERGY_SMOOTH_S,
    ENERGY_WINDOW_S,
    ESPEAK_INSTALL_HINT,
    FINAL_EXTRA,
    FORMANT_RATIO,
    FRAME_S,
    GLIDE_MAX_S,
    GUITAR_ROOT_HZ,
    HALF_CADENCES,
    MAX_CLIP_S,
    MBROLA_VOICES,
    MELISMA_GLIDE_S,
    MELISMA_MIN_S,
    MELISMA_P,
    MELISMA_PATTERNS,
    MODES,
    NOTE_ATTACK_S,
    NUCLEUS_DROP_DB,
    NUCLEUS_FLOOR_DB,
    NUCLEUS_MAX_HALF_S,
    NUCLEUS_MIN_GAP_S,
    NUCLEUS_MIN_S,
    NUCLEUS_PROMINENCE_DB,
    PALO_MODE,
    PALO_TEMPO_BPM,
    PAUSE_S,
    PEAK,
    PITCH_CEILING_HZ,
    PITCH_FLOOR_HZ,
    PLUCK_DECAY_S,
    PROGRESSIONS,
    QUEJIOS,
    RAMP_S,
    RANGE_SEMITONES,
    SAMPLE_RATE,
    SNR_DB_RANGE,
    STRETCH,
    TWELVE,
    VIBRATO_DELAY_S,
    VIBRATO_RAMP_S,
    SynthError,
    settings_id,
)
from .singing import sing
from .tts import base_voice, espeak_voices, tts

__all__ = [
    "A_CAPELLA",
    "COMPAS",
    "CONSONANT_DB",
    "CONSONANT_RAMP_S",
    "CONTOUR_STEP_S",
    "DEFAULT_COMPAS",
    "DEFAULT_TEMPO_BPM",
    "DEFAULT_TONIC_HZ",
    "ENERGY_SMOOTH_S",
    "ENERGY_WINDOW_S",
    "ESPEAK_INSTALL_HINT",
    "FINAL_EXTRA",
    "FORMANT_RATIO",
    "FRAME_S",
    "GLIDE_MAX_S",
    "GUITAR_ROOT_HZ",
    "HALF_CADENCES",
    "MAX_CLIP_S",
    "MBROLA_VOICES",
    "MELISMA_GLIDE_S",
    "MELISMA_MIN_S",
    "MELISMA_P",
    "MELISMA_PATTERNS",
    "MODES",
    "NOTE_ATTACK_S",
    "NUCLEUS_DROP_DB",
    "NUCLEUS_FLOOR_DB",
    "NUCLEUS_MAX_HALF_S",
    "NUCLEUS_MIN_GAP_S",
    "NUCLEUS_MIN_S",
    "NUCLEUS_PROMINENCE_DB",
    "PALO_MODE",
    "PALO_TEMPO_BPM",
    "PAUSE_S",
    "PEAK",
    "PITCH_CEILING_HZ",
    "PITCH_FLOOR_HZ",
    "PLUCK_DECAY_S",
    "PROGRESSIONS",
    "QUEJIOS",
    "RAMP_S",
    "RANGE_SEMITONES",
    "SAMPLE_RATE",
    "SNR_DB_RANGE",
    "STRETCH",
    "SynthError",
    "TWELVE",
    "VIBRATO_DELAY_S",
    "VIBRATO_RAMP_S",
    "active_mask",
    "base_voice",
    "compas",
    "espeak_voices",
    "find_nuclei",
    "guitar",
    "mix",
    "palmas",
    "palo_key",
    "palo_mode",
    "pluck",
    "recorded_text",
    "render_clip",
    "reverb",
    "settings_id",
    "sing",
    "speak_clip",
    "sung_text",
    "tts",
]
