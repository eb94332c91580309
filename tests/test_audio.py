"""flamenco_lib.audio against librosa, transformers and openai-whisper, on real speech."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from flamenco_lib import audio as A
from flamenco_lib import cepstrum as C

# ---------------------------------------------------------------- loading


@pytest.mark.parametrize(
    "fmt,subtype",
    [("wav", "PCM_16"), ("flac", "PCM_16"), ("ogg", "VORBIS"), ("mp3", "MPEG_LAYER_III")],
)
def test_load_formats_roundtrip(tmp_path, real_speech, fmt, subtype):
    path = tmp_path / f"clip.{fmt}"
    sf.write(path, real_speech, 16000, subtype=subtype)
    y = A.load_audio(path)
    assert y.dtype == np.float32 and y.ndim == 1
    # lossless formats give the samples back; lossy ones keep the waveform recognisable
    # (mp3 adds an encoder delay of a few hundred samples: compare after aligning)
    lag = (
        int(np.argmax(np.correlate(y[16000:24000], real_speech[16000:20000], mode="valid")))
        if fmt == "mp3"
        else 0
    )
    a, b = y[lag:], real_speech
    m = min(len(a), len(b))
    corr = np.corrcoef(a[:m], b[:m])[0, 1]
    assert corr > (0.9999 if subtype == "PCM_16" else 0.9)
    assert abs(len(y) - len(real_speech)) < 0.1 * 16000


def test_load_resamples_and_mixes_down(tmp_path, real_speech):
    import librosa

    y44 = librosa.resample(real_speech, orig_sr=16000, target_sr=44100)
    stereo = np.stack([y44, 0.5 * y44], axis=1)
    path = tmp_path / "stereo44k.wav"
    sf.write(path, stereo, 44100, subtype="FLOAT")
    y = A.load_audio(path)
    assert abs(len(y) - len(real_speech)) <= 2
    expected = 0.75 * real_speech
    n = min(len(y), len(expected))
    assert np.corrcoef(y[:n], expected[:n])[0, 1] > 0.999
    assert np.isclose(np.abs(y).max(), np.abs(expected).max(), rtol=0.05)
    y8 = A.load_audio(path, sr=8000)
    assert abs(len(y8) - len(real_speech) // 2) <= 2


def test_segment_cut(tmp_path, real_speech):
    path = tmp_path / "clip.wav"
    sf.write(path, real_speech, 16000, subtype="FLOAT")
    seg = A.load_audio(path, start=1.0, end=2.5)
    np.testing.assert_array_equal(seg, real_speech[16000:40000])
    tail = A.load_audio(path, start=2.0)
    np.testing.assert_array_equal(tail, real_speech[32000:])


def test_g722_prompt_decodes_through_ffmpeg(speech_prompts):
    y = A.load_audio(speech_prompts[0]["path"])
    assert y.dtype == np.float32 and len(y) > 16000 and np.abs(y).max() > 0.05


def test_gsm_prompt_decodes_through_ffmpeg(tmp_path, real_speech):
    """Headerless GSM 6.10 at 8 kHz (asterisk's ``.gsm`` prompts): libsndfile cannot tell its
    length, so ffmpeg is told the codec; the words' loudness contour survives the codec."""
    import shutil
    import subprocess

    path = tmp_path / "prompt.gsm"
    subprocess.run(
        [shutil.which("ffmpeg"), "-v", "error", "-f", "f32le", "-ar", "16000", "-ac", "1",
         "-i", "-", "-ar", "8000", "-f", "gsm", str(path)],
        input=real_speech.tobytes(), check=True,
    )  # fmt: skip
    y = A.load_audio(path)
    assert y.dtype == np.float32 and abs(len(y) - len(real_speech)) < 16000 * 0.05
    frames = min(len(y), len(real_speech)) // 320  # 20 ms frames: RMS contours
    rms = [np.sqrt((x[: frames * 320].reshape(frames, 320) ** 2).mean(1)) for x in (y, real_speech)]
    assert np.corrcoef(*rms)[0, 1] > 0.9


def test_silence_is_valid(tmp_path):
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(8000, dtype=np.float32), 16000)
    y = A.load_audio(path)
    assert len(y) == 8000 and not y.any()


@pytest.mark.parametrize(
    "make,needle",
    [
        (lambda p: None, "file not found"),
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_text("these are lyrics, not audio\n" * 20), "not audio"),
    ],
    ids=["missing", "empty", "text"],
)
def test_bad_files_raise_audio_error(tmp_path, make, needle):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(A.AudioError, match=needle) as info:
        A.load_audio(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_truncated_wav(tmp_path, real_speech):
    path = tmp_path / "cut.wav"
    sf.write(path, real_speech, 16000, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(A.AudioError, match="truncated") as info:
        A.load_audio(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "start,end,needle",
    [
        (50.0, None, "outside"),
        (1.0, 99.0, "outside"),
        (2.0, 2.0, "empty segment"),
        (-1.0, 1.0, "negative"),
    ],
)
def test_bad_segments(tmp_path, real_speech, start, end, needle):
    path = tmp_path / "clip.wav"
    sf.write(path, real_speech, 16000)
    with pytest.raises(A.AudioError, match=needle):
        A.load_audio(path, start=start, end=end)


def test_pad_or_trim_numpy_and_torch():
    x = np.arange(10, dtype=np.float32)
    assert A.pad_or_trim(x, 4).tolist() == [0, 1, 2, 3]
    assert A.pad_or_trim(x, 12).tolist() == list(range(10)) + [0, 0]
    t = torch.ones(2, 5)
    assert A.pad_or_trim(t, 8).shape == (2, 8) and A.pad_or_trim(t, 8)[:, 5:].abs().sum() == 0
    assert A.pad_or_trim(t, 3).shape == (2, 3)
    assert A.N_SAMPLES == 480000 and A.N_FRAMES == 3000


# ---------------------------------------------------------------- mel filterbank


@pytest.mark.parametrize("n_mels", [80, 128])
def test_filterbank_equals_librosa(n_mels):
    import librosa

    ours = A.mel_filterbank(sr=16000, n_fft=400, n_mels=n_mels)
    ref = librosa.filters.mel(sr=16000, n_fft=400, n_mels=n_mels)
    assert ours.shape == (n_mels, 201)
    np.testing.assert_allclose(ours, ref, atol=1e-6, rtol=0)


@pytest.mark.parametrize("n_mels", [80, 128])
def test_filterbank_equals_openai_whisper_asset(whisper_assets, n_mels):
    with np.load(whisper_assets / "mel_filters.npz") as f:
        ref = f[f"mel_{n_mels}"]
    np.testing.assert_allclose(A.mel_filterbank(n_mels=n_mels), ref, atol=1e-6, rtol=0)


def test_mel_scale_roundtrip_and_break():
    hz = np.array([0.0, 500.0, 1000.0, 4000.0, 8000.0])
    np.testing.assert_allclose(A.mel_to_hz(A.hz_to_mel(hz)), hz, rtol=1e-12, atol=1e-9)
    assert A.hz_to_mel(1000.0) == pytest.approx(15.0)
    assert A.hz_to_mel(200.0) == pytest.approx(3.0)


# ---------------------------------------------------------------- log-Mel


@pytest.mark.parametrize("seconds", [0.5, 3.0, 11.7, 30.0])
def test_log_mel_equals_whisper_feature_extractor(real_speech, seconds):
    from transformers import WhisperFeatureExtractor

    n = int(seconds * 16000)
    clip = np.resize(real_speech, n)  # longer than the prompt: tiled real speech
    ref = WhisperFeatureExtractor(feature_size=80)(
        clip, sampling_rate=16000, return_tensors="np"
    ).input_features[0]
    ours = A.log_mel_spectrogram(A.pad_or_trim(clip)).numpy()
    assert ours.shape == ref.shape == (80, 3000)
    assert np.abs(ours - ref).max() <= 1e-4


def test_log_mel_batch_equals_single_and_128(real_speech):
    clips = np.stack([A.pad_or_trim(real_speech), A.pad_or_trim(real_speech[: 16000 * 2] * 0.1)])
    batch = A.log_mel_spectrogram(clips)
    assert batch.shape == (2, 80, 3000)
    for i in range(2):
        torch.testing.assert_close(batch[i], A.log_mel_spectrogram(clips[i]))
    # each example has its own 80 dB floor, so a quiet clip is not crushed by a loud one
    assert batch[1].max() < batch[0].max()
    assert A.log_mel_spectrogram(clips[0], n_mels=128).shape == (128, 3000)


def test_log_mel_dynamic_range_clamp(real_speech):
    s = A.log_mel_spectrogram(A.pad_or_trim(real_speech))
    assert float(s.max() - s.min()) == pytest.approx(A.DYNAMIC_RANGE / 4, abs=1e-5)


# ---------------------------------------------------------------- cepstrum and MFCC


@pytest.mark.parametrize("f0", [110.0, 200.0, 441.0])
def test_pulse_train_cepstral_peak_at_period(f0):
    sr = 16000
    period = int(round(sr / f0))
    x = np.zeros(2048)
    x[::period] = 1.0
    # a vocal-tract-like resonance so the envelope and the pitch are both present
    from scipy.signal import lfilter

    x = lfilter([1.0], [1.0, -1.3, 0.8], x)
    c = C.cepstrum(x * np.hanning(len(x)))
    lo, hi = int(sr / 1000), int(sr / 60)
    assert lo + int(np.argmax(c[lo:hi])) == pytest.approx(period, abs=1)
    assert C.cepstral_pitch(x, sr=sr) == pytest.approx(sr / period, rel=0.02)


def test_lifter_keeps_envelope_and_removes_pitch():
    x = np.zeros(1024)
    x[::80] = 1.0  # 200 Hz
    c = C.cepstrum(x * np.hanning(1024))
    smooth = C.lifter(c, n_keep=30)
    assert np.all(smooth[30:-29] == 0) and np.abs(smooth[80]) == 0 and np.abs(c[80]) > 0.05
    np.testing.assert_array_equal(smooth[:30], c[:30])


def test_mfcc_equals_librosa(real_speech):
    import librosa

    S = librosa.power_to_db(librosa.feature.melspectrogram(y=real_speech, sr=16000, n_mels=40))
    ref = librosa.feature.mfcc(S=S, n_mfcc=13)
    np.testing.assert_allclose(C.mfcc(S, n_mfcc=13), ref, rtol=1e-5, atol=1e-4)
    # from audio, librosa's own pipeline (its default STFT, slaney mel, dB): equal too
    ref_y = librosa.feature.mfcc(y=real_speech, sr=16000, n_mfcc=20)
    S_y = librosa.power_to_db(librosa.feature.melspectrogram(y=real_speech, sr=16000))
    np.testing.assert_allclose(C.mfcc(S_y, n_mfcc=20), ref_y, rtol=1e-5, atol=1e-3)


def test_dct_matrix_is_orthonormal():
    D = C.dct_matrix(80, 80)
    np.testing.assert_allclose(D @ D.T, np.eye(80), atol=1e-12)
