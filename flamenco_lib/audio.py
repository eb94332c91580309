"""Audio in, Whisper features out: loading, 30 s windows, the mel filterbank, the log-Mel
spectrogram. (The cepstrum and MFCC, built on these, are in :mod:`flamenco_lib.cepstrum`.)

Explained step by step in ``notebooks/01_speech_and_log_mel.ipynb``. The log-Mel recipe is
Whisper's own (``whisper/audio.py``); tests check it against transformers'
``WhisperFeatureExtractor``, and the filterbank against ``librosa.filters.mel`` and
openai-whisper's ``mel_filters.npz``.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

import numpy as np
import torch

from .errors import FlamencoError

# Hard-coded audio hyperparameters, as in Whisper.
SAMPLE_RATE = 16000  # Hz
N_FFT = 400  # samples: a 25 ms analysis window
HOP_LENGTH = 160  # samples: a 10 ms hop between frames
CHUNK_LENGTH = 30  # seconds: Whisper's fixed input window
N_SAMPLES = CHUNK_LENGTH * SAMPLE_RATE  # 480000 samples in a 30 s chunk
N_FRAMES = N_SAMPLES // HOP_LENGTH  # 3000 frames in a mel spectrogram input
N_MELS = 80  # mel bands of whisper tiny ... large-v2 (large-v3 uses 128)
LOG_FLOOR = 1e-10  # power floor before log10
DYNAMIC_RANGE = 8.0  # log10 units (80 dB) kept below the loudest bin

# Files that libsndfile cannot read are decoded by ffmpeg; raw codecs need their format named.
_FFMPEG_RAW_FORMATS = {".g722": "g722", ".gsm": "gsm", ".sln": "s16le", ".sln16": "s16le"}


class AudioError(FlamencoError, ValueError):
    """Audio that cannot be used; the message names the file and the problem."""


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def load_audio(
    path: str | Path,
    *,
    sr: int = SAMPLE_RATE,
    start: float | None = None,
    end: float | None = None,
) -> np.ndarray:
    """Read an audio file as mono float32 at ``sr`` Hz, optionally a segment of it.

    wav, flac, ogg and mp3 are read with libsndfile (``soundfile``); anything else that ffmpeg
    decodes (m4a, opus in webm, raw G.722 ``.g722`` and GSM 6.10 ``.gsm`` prompts, ...) goes through ffmpeg.
    Channels are averaged; the signal is resampled with soxr (``librosa.resample``).

    Parameters
    ----------
    path : str or Path
        The audio file.
    sr : int > 0
        Sample rate of the result, in Hz.
    start, end : float >= 0, optional
        Segment bounds in seconds (``None``: the beginning / the end of the file).

    Returns
    -------
    np.ndarray, shape = (n_samples,), dtype float32

    Raises
    ------
    AudioError
        Missing, empty, undecodable or truncated files, and segments outside the file or empty.
        Silence is valid audio and is returned as zeros.
    """
    path = _check_file(path)
    if start is not None and start < 0:
        raise AudioError(f"{path}: segment start {start} s is negative")
    if start is not None and end is not None and end <= start:
        raise AudioError(
            f"{path}: empty segment (start={start} s, end={end} s); end must be > start"
        )

    audio, file_sr = _decode(path)
    if audio.ndim == 2:
        audio = audio.mean(axis=1)
    if not np.all(np.isfinite(audio)):
        raise AudioError(f"{path}: contains NaN or infinite samples")
    duration = len(audio) / file_sr
    if start is not None or end is not None:
        first = 0 if start is None else int(round(start * file_sr))
        last = len(audio) if end is None else int(round(end * file_sr))
        # A tolerance of one 10 ms hop for end times rounded by annotation tools.
        if first >= len(audio) or last > len(audio) + file_sr // 100:
            raise AudioError(
                f"{path}: segment [{start}, {end}] s lies outside the file ({duration:.3f} s long)"
            )
        audio = audio[first:last]
        if audio.size == 0:
            raise AudioError(f"{path}: segment [{start}, {end}] s is empty")
    if file_sr != sr:
        import librosa

        audio = librosa.resample(audio, orig_sr=file_sr, target_sr=sr)
    return np.ascontiguousarray(audio, dtype=np.float32)


def read_each(paths) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """:func:`load_audio` of every path, a bad file not stopping the others: ``(audios,
    failed)``, each keyed by path in the given order; ``failed`` holds each error's message."""
    audios, failed = {}, {}
    for path in paths:
        try:
            audios[str(path)] = load_audio(path)
        except AudioError as err:
            failed[str(path)] = str(err)
    return audios, failed


def audio_duration(path: str | Path) -> float:
    """Duration of an audio file in seconds (header only where libsndfile can read it)."""
    import soundfile as sf

    path = _check_file(path)
    try:
        return float(sf.info(str(path)).duration)
    except Exception:  # noqa: BLE001 - fall back to decoding, which raises AudioError
        audio, file_sr = _decode(path)
        return len(audio) / file_sr


def _check_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: file not found")
    if path.is_dir():
        raise AudioError(f"{path}: is a folder, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file (0 bytes); re-export or re-download it")
    return path


def _decode(path: Path) -> tuple[np.ndarray, int]:
    """Decode a whole file: (samples, sample rate); 2-D (n, channels) for multichannel."""
    import soundfile as sf

    if path.suffix.lower() not in _FFMPEG_RAW_FORMATS:
        try:
            with sf.SoundFile(str(path)) as f:
                declared = f.frames
                audio = f.read(dtype="float32", always_2d=False)
                file_sr = f.samplerate
        except sf.LibsndfileError as err:
            if _looks_truncated(path):
                raise AudioError(
                    f"{path}: truncated file ({err}); re-export or re-download it"
                ) from None
            if shutil.which("ffmpeg") is None:
                raise AudioError(
                    f"{path}: not audio, or a format libsndfile cannot decode ({err}). "
                    "Install ffmpeg (apt-get install ffmpeg) to decode more formats."
                ) from None
        except RuntimeError as err:  # soundfile < 0.11 raises RuntimeError
            raise AudioError(f"{path}: undecodable audio ({err})") from None
        else:
            if len(audio) < declared or _looks_truncated(path):
                raise AudioError(
                    f"{path}: truncated file (the header promises {declared} frames, "
                    f"{len(audio)} could be read); re-export or re-download it"
                )
            if len(audio) == 0:
                raise AudioError(f"{path}: holds no samples (a header without audio)")
            return audio, int(file_sr)
    return _decode_ffmpeg(path)


def _looks_truncated(path: Path) -> bool:
    """True for a RIFF/WAVE file whose data chunk claims more bytes than the file holds."""
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return False
        size = path.stat().st_size
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            chunk = f.read(8)
            if len(chunk) < 8:
                return True
            length = int.from_bytes(chunk[4:8], "little")
            if chunk[:4] == b"data":
                return pos + 8 + length > size and length != 0xFFFFFFFF
            pos += 8 + length + (length & 1)
        return pos > size


def _decode_ffmpeg(path: Path, sr: int = SAMPLE_RATE) -> tuple[np.ndarray, int]:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise AudioError(
            f"{path}: needs ffmpeg to decode; install it (apt-get install ffmpeg, or conda install ffmpeg)"
        )
    cmd = [ffmpeg, "-nostdin", "-v", "error", "-threads", "0"]
    raw = _FFMPEG_RAW_FORMATS.get(path.suffix.lower())
    if raw in ("g722", "gsm"):  # headerless: ffmpeg is told the codec
        cmd += ["-f", raw]
    elif raw == "s16le":
        cmd += [
            "-f",
            "s16le",
            "-ar",
            "16000" if path.suffix.lower() == ".sln16" else "8000",
            "-ac",
            "1",
        ]
    cmd += ["-i", str(path), "-f", "f32le", "-ac", "1", "-ar", str(sr), "-"]
    proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0:
        msg = proc.stderr.decode(errors="replace").strip().splitlines()
        reason = msg[-1] if msg else f"ffmpeg exit code {proc.returncode}"
        raise AudioError(f"{path}: not audio or undecodable ({reason})")
    audio = np.frombuffer(proc.stdout, dtype=np.float32)
    if audio.size == 0:
        raise AudioError(f"{path}: decodes to no samples (not audio, or empty)")
    return audio.copy(), sr


def pad_or_trim(audio, length: int = N_SAMPLES, *, axis: int = -1):
    """Zero-pad or cut ``audio`` along ``axis`` to ``length`` samples (numpy or torch).

    Whisper always sees exactly 30 s: shorter inputs are padded with digital silence.
    """
    if torch.is_tensor(audio):
        n = audio.shape[axis]
        if n > length:
            audio = audio.narrow(axis, 0, length)
        elif n < length:
            pad = [0] * (2 * audio.ndim)
            pad[2 * (audio.ndim - 1 - (axis % audio.ndim)) + 1] = length - n
            audio = torch.nn.functional.pad(audio, pad)
        return audio
    audio = np.asarray(audio)
    n = audio.shape[axis]
    if n > length:
        audio = np.take(audio, np.arange(length), axis=axis)
    elif n < length:
        widths = [(0, 0)] * audio.ndim
        widths[axis] = (0, length - n)
        audio = np.pad(audio, widths)
    return audio


# --------------------------------------------------------------------------------------------
# Mel scale and filterbank (written out; see notebooks/01_speech_and_log_mel.ipynb)
# --------------------------------------------------------------------------------------------

_F_SP = 200.0 / 3  # Hz per mel below the break (Slaney: 3 mels per 200 Hz)
_MIN_LOG_HZ = 1000.0  # Hz where the scale turns logarithmic
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP  # = 15 mels
_LOGSTEP = np.log(6.4) / 27.0  # 27 mel steps per factor 6.4 in frequency


def hz_to_mel(hz):
    """Slaney's mel scale (as in the Auditory Toolbox, librosa's default, Whisper): linear
    below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / _F_SP
    logpart = _MIN_LOG_MEL + np.log(np.maximum(hz, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP
    return np.where(hz >= _MIN_LOG_HZ, logpart, linear)


def mel_to_hz(mel):
    """Inverse of :func:`hz_to_mel`."""
    mel = np.asarray(mel, dtype=np.float64)
    linear = _F_SP * mel
    logpart = _MIN_LOG_HZ * np.exp(_LOGSTEP * (np.maximum(mel, _MIN_LOG_MEL) - _MIN_LOG_MEL))
    return np.where(mel >= _MIN_LOG_MEL, logpart, linear)


def mel_filterbank(
    *,
    sr: int = SAMPLE_RATE,
    n_fft: int = N_FFT,
    n_mels: int = N_MELS,
    fmin: float = 0.0,
    fmax: float | None = None,
) -> np.ndarray:
    """Triangular mel filters with Slaney area normalisation.

    ``n_mels + 2`` points equally spaced on the mel scale between ``fmin`` and ``fmax`` are the
    feet and peaks of ``n_mels`` overlapping triangles over the FFT bin frequencies; each
    triangle is scaled by ``2 / (its width in Hz)`` so that every band has the same area.

    Parameters
    ----------
    sr : int > 0
        Sample rate in Hz.
    n_fft : int > 0
        FFT size; the filters cover the ``n_fft // 2 + 1`` non-negative frequency bins.
    n_mels : int > 0
        Number of mel bands.
    fmin, fmax : float >= 0
        Frequency range in Hz (``fmax=None``: the Nyquist frequency ``sr / 2``).

    Returns
    -------
    np.ndarray, shape = (n_mels, n_fft // 2 + 1), dtype float32

    See Also
    --------
    librosa.filters.mel : the reference this equals to 1e-6 (tests/test_audio.py).
    """
    if sr <= 0 or n_fft <= 0 or n_mels <= 0:
        raise ValueError(
            f"mel_filterbank: sr, n_fft and n_mels must be > 0 (got {sr}, {n_fft}, {n_mels})"
        )
    fmax = sr / 2 if fmax is None else fmax
    fft_hz = np.linspace(0.0, sr / 2, n_fft // 2 + 1)
    points_hz = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    lower, centre, upper = points_hz[:-2, None], points_hz[1:-1, None], points_hz[2:, None]
    rising = (fft_hz - lower) / (centre - lower)
    falling = (upper - fft_hz) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= 2.0 / (upper - lower)  # Slaney normalisation: equal area per band
    return weights.astype(np.float32)


@functools.lru_cache(maxsize=8)
def _mel_filters_torch(n_mels: int, device: str) -> torch.Tensor:
    return torch.from_numpy(mel_filterbank(n_mels=n_mels)).to(device)


@functools.lru_cache(maxsize=8)
def _hann_window(device: str) -> torch.Tensor:
    return torch.hann_window(N_FFT, device=device)


def log_mel_spectrogram(audio, *, n_mels: int = N_MELS, device: str | torch.device | None = None):
    """Whisper's log-Mel spectrogram of one waveform or a batch, at 16 kHz.

    Hann window of 400 samples, hop 160, centred STFT with reflection padding; the last frame
    is dropped; power spectrum; mel filterbank; ``log10`` with a 1e-10 floor; values more than
    8 (80 dB) below each example's maximum are raised to it; then ``(x + 4) / 4``.
    Pad to 30 s first (:func:`pad_or_trim`) to get Whisper's input of 3000 frames.

    Parameters
    ----------
    audio : np.ndarray or torch.Tensor, shape = (n_samples,) or (batch, n_samples)
    n_mels : int
        80 (Whisper up to large-v2) or 128 (large-v3).
    device : optional
        Where to compute (default: the tensor's device, or the CPU).

    Returns
    -------
    torch.Tensor, float32, shape = (n_mels, n_frames) or (batch, n_mels, n_frames),
    with ``n_frames = n_samples // 160``.
    """
    x = audio if torch.is_tensor(audio) else torch.from_numpy(np.asarray(audio, dtype=np.float32))
    if device is not None:
        x = x.to(device)
    x = x.float()
    if x.ndim not in (1, 2):
        raise ValueError(
            f"log_mel_spectrogram: expected shape (n,) or (batch, n), got {tuple(x.shape)}"
        )
    dev = str(x.device)
    window, filters = _hann_window(dev), _mel_filters_torch(n_mels, dev)
    if x.ndim == 1:
        return _log_mel(x, window, filters)
    # On the CPU a few clips at a time keep the spectra in cache: ~3x faster than one big batch.
    step = len(x) if x.is_cuda else _CPU_CHUNK
    return torch.cat([_log_mel(x[i : i + step], window, filters) for i in range(0, len(x), step)])


_CPU_CHUNK = 4  # clips per STFT call on the CPU (measured by benchmarks/log_mel.py)


def _log_mel(x: torch.Tensor, window: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
    stft = torch.stft(x, N_FFT, HOP_LENGTH, window=window, return_complex=True)
    power = stft[..., :-1].abs().square_()
    log_spec = torch.clamp(filters @ power, min=LOG_FLOOR).log10_()
    peak = log_spec.amax(dim=(-2, -1), keepdim=True)
    log_spec = torch.maximum(log_spec, peak - DYNAMIC_RANGE)
    return (log_spec + 4.0) / 4.0
