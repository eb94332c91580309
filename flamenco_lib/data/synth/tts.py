"""Speech from espeak-ng: the Spanish voices found here, their base voices, and :func:`tts`.

Explained in ``notebooks/01_speech_and_log_mel.ipynb`` (a copla spoken, then sung).
"""

from __future__ import annotations

import functools
import io
import re
import shutil
import subprocess

import numpy as np

from .settings import ESPEAK_INSTALL_HINT, MBROLA_VOICES, SAMPLE_RATE, SynthError


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
