"""The cepstrum and MFCC: what the log spectrum says about the source and the filter.

The real cepstrum (:func:`cepstrum`) separates the vocal-tract envelope (low quefrencies,
:func:`lifter`) from the pitch of the voice (a peak, :func:`cepstral_pitch`); the MFCC
(:func:`mfcc`) is the same idea on Whisper's log-Mel spectrum, with a DCT.

Explained in ``notebooks/02_cepstrum.ipynb``; tests check the MFCC against
``librosa.feature.mfcc``.
"""

from __future__ import annotations

import numpy as np

from .audio import SAMPLE_RATE


def cepstrum(frames, *, n_fft: int | None = None, eps: float = 1e-10) -> np.ndarray:
    """Real cepstrum: the inverse FFT of the log magnitude spectrum.

    Low quefrencies describe the spectral envelope (formants); a peak at a quefrency ``q``
    seconds reveals a harmonic excitation with period ``q`` (pitch ``1 / q`` Hz).

    Parameters
    ----------
    frames : array, shape = (..., frame_length)
        Time-domain frames (windowed or not).
    n_fft : int, optional
        FFT size (zero-padded); default ``frame_length``.

    Returns
    -------
    np.ndarray, shape = (..., n_fft), indexed by quefrency in samples.
    """
    frames = np.asarray(frames, dtype=np.float64)
    n_fft = frames.shape[-1] if n_fft is None else n_fft
    log_mag = np.log(np.abs(np.fft.rfft(frames, n=n_fft, axis=-1)) + eps)
    return np.fft.irfft(log_mag, n=n_fft, axis=-1)


def cepstral_pitch(
    frame, *, sr: int = SAMPLE_RATE, fmin: float = 60.0, fmax: float = 1000.0
) -> float:
    """Fundamental frequency (Hz) of one frame from its strongest cepstral peak in
    ``[1/fmax, 1/fmin]`` seconds of quefrency. The frame should span a few periods."""
    c = cepstrum(np.asarray(frame) * np.hanning(len(frame)))
    lo, hi = int(sr / fmax), min(int(sr / fmin), len(c) // 2)
    q = lo + int(np.argmax(c[lo:hi]))
    return sr / q


def lifter(ceps, *, n_keep: int) -> np.ndarray:
    """Keep the ``n_keep`` lowest quefrencies (and their mirror); the rest set to zero.

    The FFT of the liftered cepstrum is the smoothed log spectrum: the vocal-tract envelope
    without the harmonics of the voice source.
    """
    ceps = np.array(ceps, dtype=np.float64, copy=True)
    n = ceps.shape[-1]
    ceps[..., n_keep : n - n_keep + 1] = 0.0
    return ceps


def dct_matrix(n_out: int, n_in: int) -> np.ndarray:
    """Orthonormal DCT-II basis, shape = (n_out, n_in): ``y = D @ x`` along the mel axis."""
    k = np.arange(n_out)[:, None]
    n = np.arange(n_in)[None, :]
    basis = np.cos(np.pi * k * (2 * n + 1) / (2 * n_in)) * np.sqrt(2.0 / n_in)
    basis[0] /= np.sqrt(2.0)
    return basis


def mfcc(log_mel, *, n_mfcc: int = 20) -> np.ndarray:
    """Mel-frequency cepstral coefficients: the orthonormal DCT-II of a log-Mel spectrogram.

    This is the "log-Mel cepstrum": the cepstrum taken on the mel-warped log spectrum, with
    the DCT in place of the inverse FFT (the log spectrum is real and even).

    Parameters
    ----------
    log_mel : array, shape = (..., n_mels, n_frames)
        Any log-scaled mel spectrogram (Whisper's, or ``librosa.power_to_db`` of a mel power
        spectrogram).
    n_mfcc : int > 0
        Coefficients kept.

    Returns
    -------
    np.ndarray, shape = (..., n_mfcc, n_frames)

    See Also
    --------
    librosa.feature.mfcc : equal for ``S=log_mel, dct_type=2, norm="ortho"``.
    """
    log_mel = np.asarray(log_mel, dtype=np.float64)
    basis = dct_matrix(n_mfcc, log_mel.shape[-2])
    return np.einsum("km,...mt->...kt", basis, log_mel)
