# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · The cepstrum: separating the voice source from the vocal tract
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/cante-to-text/cante-to-text/blob/main/notebooks/02_cepstrum.ipynb)
#
# Speech is source × filter (notebook 01). A logarithm turns the product into a sum, and a
# second Fourier transform pulls the two summands apart: the slow ripple of the formants and
# the fast ripple of the harmonics end up at different **quefrencies**. That is the cepstrum;
# taken on the mel scale with a DCT, it is the MFCC, the feature of speech recognition before
# deep learning.
#
# **What you will learn**
# - log spectrum → inverse FFT → cepstrum over quefrency (a time, in ms);
# - liftering: low quefrencies = envelope (formants), the peak at high quefrency = pitch period;
# - pitch tracking from the cepstrum, on the same words spoken and sung;
# - MFCC = DCT of the log-Mel spectrogram (the "log-Mel cepstrum");
# - why Whisper feeds on log-Mel rather than MFCC;
# - that our MFCC equals `librosa.feature.mfcc`.

# %% [markdown]
# ## Setup
#
# On Google Colab this cell clones the project and installs it with the Debian packages it
# needs; anywhere else it does nothing. With `USE_DRIVE` (the default) it mounts Google
# Drive and keeps corpora, checkpoints, results and the report in
# `MyDrive/cante-to-text/`, so that a disconnected session picks up where it stopped: the
# corpora are not rebuilt and a stage resumes from its last checkpoint. On Colab's GPU the
# notebook's profile is `gpu` (whisper-small from the Hugging Face Hub, full fine-tuning).

# %%
import os
import subprocess
import sys

USE_DRIVE = True  # @param {type:"boolean"}
if "google.colab" in sys.modules:  # Colab only: a no-op on your machine
    REPO_URL = os.environ.get("CANTE_REPO_URL", "https://github.com/cante-to-text/cante-to-text")
    subprocess.run(["git", "clone", "-q", REPO_URL, "/content/cante-to-text"], check=False)
    sys.path.insert(0, "/content/cante-to-text")
    from flamenco_lib.colab import setup

    setup(use_drive=USE_DRIVE)  # Debian packages, pip install -e, data and report on Drive

# %% [markdown]
# ## Parameters

# %% tags=["parameters"]
profile: str = "cpu"  # "smoke", "cpu" or "gpu": light, runs alike on all three
seed: int = 0  # random choices of the singing transform
prompt_id: str = "ss-noservice"  # the real recording (an asterisk prompt)
palo: str = "soleá"  # melody mode of the sung version
frame_length: int = 1024  # samples (64 ms) per cepstral analysis frame: a few pitch periods
n_lifter: int = 30  # quefrency bins (1.9 ms) kept as the envelope
n_mfcc: int = 20  # MFCC coefficients
min_peak: float = 0.1  # cepstral peak height below which a frame counts as unvoiced

# %% [markdown]
# Imports, and the real recording **sung**: `flamenco_lib.data.synth.sing` lengthens its
# vowels and replaces its pitch by a melody with vibrato (Praat PSOLA). Same voice, same
# words, two sources.

# %%
import librosa
import matplotlib.pyplot as plt
import numpy as np

from flamenco_lib import audio as A
from flamenco_lib import cepstrum as C
from flamenco_lib import plotting
from flamenco_lib.data import speech, synth

plotting.set_style()
SR = A.SAMPLE_RATE
item = next(p for p in speech.prompts() if p["id"] == prompt_id)
spoken = A.load_audio(item["path"])
sung, sung_meta = synth.sing(spoken, palo=palo, rng=np.random.default_rng(seed))
print(
    f"spoken {len(spoken) / SR:.1f} s -> sung {len(sung) / SR:.1f} s, "
    f"{sung_meta['n_nuclei']} vowels held, vibrato {sung_meta['vibrato_hz']:.1f} Hz"
)

# %% [markdown]
# ## 1. The log spectrum of a voiced frame
#
# One 64 ms frame from the loudest stretch, Hann-windowed. Its log magnitude spectrum shows
# both factors at once: the **fine ripple** of the harmonics (spaced F0 apart) riding on the
# **slow envelope** of the formants. In the log domain they add.

# %%
energy = np.convolve(spoken**2, np.ones(frame_length), mode="valid")
start = int(np.argmax(energy))
frame = spoken[start : start + frame_length] * np.hanning(frame_length)
hz = np.fft.rfftfreq(frame_length, 1 / SR)
log_spec = np.log(np.abs(np.fft.rfft(frame)) + 1e-10)

fig, ax = plt.subplots(figsize=(9, 2.6))
plotting.plot_spectrum(
    hz, log_spec, ax=ax, title=f"log spectrum of a voiced frame at {start / SR:.2f} s"
)
plotting.savefig(
    fig,
    "02_log_spectrum",
    caption=(
        "Log magnitude spectrum of one voiced frame: a fine comb (the harmonics) on a smooth "
        "envelope (the vocal tract)."
    ),
)

# %% [markdown]
# ## 2. The cepstrum
#
# Treat the log spectrum as a signal and take its inverse Fourier transform: the **real
# cepstrum** `c = IFFT(log |FFT(x)|)`. Its axis is **quefrency**, a time in samples (or ms):
# a ripple of the log spectrum that repeats every F0 Hz becomes a peak at quefrency 1/F0 — the
# pitch period. The envelope, which varies slowly over frequency, stays at low quefrencies.
# (The words are anagrams on purpose: cepstrum, quefrency, liftering.)

# %%
ceps = C.cepstrum(frame)  # = np.fft.irfft(np.log(np.abs(np.fft.rfft(frame)) + 1e-10))
f0 = C.cepstral_pitch(spoken[start : start + frame_length])
print(f"cepstral peak at {1000 / f0:.2f} ms -> F0 = {f0:.0f} Hz")

fig, ax = plt.subplots(figsize=(9, 2.6))
plotting.plot_cepstrum(ceps, ax=ax, mark_pitch=f0)
ax.set_title("real cepstrum: low quefrency = envelope, peak = pitch period")
plotting.savefig(
    fig,
    "02_cepstrum",
    caption=(
        "Real cepstrum of the same frame: low quefrencies hold the envelope, the peak marks the "
        "pitch period."
    ),
)

# %% [markdown]
# ## 3. Liftering: envelope and excitation apart
#
# **Liftering** is filtering in the quefrency domain. Keep the lowest `n_lifter` coefficients
# and transform back: the smooth **envelope** (vocal tract, formants). What remains, the log
# spectrum minus the envelope, is the **excitation**: the harmonic comb of the source.

# %%
envelope = np.fft.rfft(C.lifter(ceps, n_keep=n_lifter)).real
excitation = log_spec - envelope

fig, axes = plt.subplots(1, 2, figsize=(11, 2.8))
plotting.plot_spectrum(hz, log_spec, ax=axes[0], label="log spectrum", lw=0.6)
plotting.plot_spectrum(
    hz,
    envelope,
    ax=axes[0],
    label=f"envelope (first {n_lifter} quefrencies)",
    lw=1.6,
    title="low quefrencies: the vocal tract",
)
plotting.plot_spectrum(
    hz, excitation, ax=axes[1], title="the rest: the source's harmonics", color="C2"
)
axes[1].set_xlim(0, 2000)
fig.tight_layout()
plotting.savefig(
    fig,
    "02_liftering",
    caption=(
        "Liftering: the spectral envelope from the first quefrencies, and the remaining "
        "excitation (the harmonics)."
    ),
)


# %% [markdown]
# ## 4. Pitch from the cepstrum: spoken vs sung
#
# Slide the 64 ms frame along each clip every 10 ms; where the frame is loud (within 25 dB of
# the loudest) and its cepstral peak between 1/600 s and 1/70 s is strong enough
# (`min_peak`, a voicing decision), that peak's quefrency gives F0. Speech **glides**: its
# pitch rises and falls continuously over each phrase. The sung version moves in a
# **staircase** of held notes (dashed: the notes the transform asked for) with vibrato on
# them, and its cepstral peaks are much stronger: a held note is more periodic than speech.
# (This synthetic melody stays within about an octave, which this lively speaker's intonation
# also spans; real cante often reaches further.)


# %%
def track(x):
    frames = np.lib.stride_tricks.sliding_window_view(x, frame_length)[:: A.HOP_LENGTH]
    level = 10 * np.log10((frames**2).mean(axis=1) + 1e-12)
    ceps = C.cepstrum(frames * np.hanning(frame_length))  # one cepstrum per frame
    lo, hi = int(SR / 600), int(SR / 70)  # quefrencies of 600 Hz ... 70 Hz
    peak = ceps[:, lo:hi].max(axis=1)
    f0s = SR / (lo + ceps[:, lo:hi].argmax(axis=1))
    voiced = (level > level.max() - 25) & (peak > min_peak)
    f0s[~voiced] = np.nan
    return (np.arange(len(frames)) * A.HOP_LENGTH + frame_length / 2) / SR, f0s, peak[voiced]


t_spoken, f0_spoken, peak_spoken = track(spoken)
t_sung, f0_sung, peak_sung = track(sung)
for name, f, pk in [("spoken", f0_spoken, peak_spoken), ("sung", f0_sung, peak_sung)]:
    lo, med, hi = np.nanpercentile(f, [5, 50, 95])
    step = np.abs(np.diff(12 * np.log2(f)))  # semitones from one voiced frame to the next
    step = step[np.isfinite(step)]
    print(
        f"{name:6s}: median F0 {med:4.0f} Hz, 5-95 % range {12 * np.log2(hi / lo):4.1f} semitones, "
        f"steady frames (< 0.3 st / 10 ms) {np.mean(step < 0.3):4.0%}, median cepstral peak {np.median(pk):.2f}"
    )

fig, axes = plt.subplots(2, 1, figsize=(9, 4.6), sharey=True)
plotting.plot_pitch_track(t_spoken, f0_spoken, ax=axes[0], title="spoken (real voice)")
plotting.plot_pitch_track(
    t_sung,
    f0_sung,
    ax=axes[1],
    title=f"sung ({palo}), same voice and words",
    notes=sung_meta["held_notes"],
)
axes[0].set_ylim(70, 600)
fig.tight_layout()
plotting.savefig(
    fig,
    "02_pitch_spoken_vs_sung",
    caption=(
        "F0 of the same words spoken by a real voice and sung by the transform (held notes marked)."
    ),
)

# %% [markdown]
# ## 5. MFCC: the cepstrum of the log-Mel spectrum
#
# Mel-frequency cepstral coefficients apply the same idea to the 80 log-Mel bands of
# notebook 01: a **DCT-II** (the inverse FFT of a real, even sequence) along the mel axis of
# each frame, keeping the first 13–20 coefficients. Low coefficients describe the envelope
# (formants); the pitch harmonics, smeared by the mel filters, mostly fall beyond the cut.

# %%
log_mel = A.log_mel_spectrogram(spoken).numpy()  # (80, n_frames), Whisper's features
coeffs = C.mfcc(log_mel, n_mfcc=n_mfcc)  # (n_mfcc, n_frames)

fig, axes = plt.subplots(2, 1, figsize=(9, 4.8), sharex=True)
plotting.plot_spectrogram(log_mel, ax=axes[0], title="log-Mel (80 bands)")
plotting.plot_spectrogram(
    coeffs,
    ax=axes[1],
    y_axis="coef",
    label="MFCC",
    title=f"MFCC: DCT of each frame, first {n_mfcc} coefficients",
)
fig.tight_layout()
plotting.savefig(
    fig,
    "02_mfcc",
    caption=(
        "The log-Mel spectrogram and its MFCC: the DCT of each frame, first coefficients only."
    ),
)


# %% [markdown]
# ## 6. Why Whisper feeds on log-Mel, not MFCC
#
# MFCCs were made for Gaussian-mixture HMM recognisers: the DCT **decorrelates** the bands so
# that diagonal covariances suffice, and truncation keeps the model small. A neural network
# needs neither. The DCT is linear, so the network's first layer can learn it (or something
# better) if it helps; truncation only **throws information away** — the harmonic detail that
# tells a held, vibrating note from speech, and the fine spectral shape the decoder can use;
# and the log-Mel bands keep **locality in frequency**, which convolutions exploit (a pitch
# shift moves a pattern along the band axis; after the DCT it changes every coefficient).
# Below: the log-Mel rebuilt from 13 MFCCs by the inverse DCT, for the spoken and the sung
# clip. The envelope survives; the harmonics of the sung notes vanish.


# %%
def from_mfcc(lm, k):
    basis = C.dct_matrix(k, lm.shape[0])  # orthonormal rows: the inverse is the transpose
    return basis.T @ C.mfcc(lm, n_mfcc=k)


sung_mel = A.log_mel_spectrogram(sung).numpy()
fig, axes = plt.subplots(2, 2, figsize=(11, 4.8))
for row, (lm, name) in enumerate([(log_mel, "spoken"), (sung_mel, "sung")]):
    plotting.plot_spectrogram(lm, ax=axes[row, 0], title=f"{name}: log-Mel", colorbar=False)
    plotting.plot_spectrogram(
        from_mfcc(lm, 13), ax=axes[row, 1], title=f"{name}: rebuilt from 13 MFCC", colorbar=False
    )
fig.tight_layout()
plotting.savefig(
    fig,
    "02_mfcc_reconstruction",
    caption=(
        "Spoken and sung log-Mel spectrograms, and the same rebuilt from 13 MFCC: the envelope "
        "stays, the pitch goes."
    ),
)

# %% [markdown]
# ## 7. Check: equal to librosa
#
# `librosa.feature.mfcc` on the same log-Mel input (`S=`), with the orthonormal DCT-II.
# tests/test_audio.py checks the same on every run.

# %%
reference = librosa.feature.mfcc(S=log_mel, n_mfcc=n_mfcc, dct_type=2, norm="ortho")
diff = np.abs(coeffs - reference).max()
print(f"max |ours - librosa.feature.mfcc| = {diff:.2e}")
assert coeffs.shape == reference.shape and diff < 1e-4

# %% [markdown]
# ## Summary
#
# - The real cepstrum `IFFT(log |FFT(x)|)` turns source × filter into a sum along quefrency:
#   the vocal tract at low quefrencies, the pitch period as a peak higher up.
# - Liftering separates them: the envelope (formants) and the excitation (harmonics).
# - The cepstral peak tracks pitch (and its height says how periodic, how voiced, a frame is); the
#   sung version holds steady notes with vibrato where speech glides.
# - MFCC = DCT of the log-Mel spectrum, truncated; it equals `librosa.feature.mfcc`.
# - Whisper keeps the full log-Mel: the network learns its own transform, and nothing is discarded.
#
# ## Exercises
#
# 1. Vary `n_lifter` (10, 30, 80). When does the "envelope" start to show harmonics?
# 2. Track pitch with `frame_length=512`: what goes wrong for a low male voice (F0 ≈ 100 Hz)?
# 3. Compare the cepstral pitch track of the sung clip with `librosa.pyin`. Where do they differ?
# 4. How many MFCCs do you need before the rebuilt sung log-Mel shows the held harmonics again?
