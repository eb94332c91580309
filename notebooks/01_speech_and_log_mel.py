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
# # 01 · Speech, singing and the log-Mel spectrogram
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/cante-to-text/cante-to-text/blob/main/notebooks/01_speech_and_log_mel.ipynb)
#
# Whisper never hears a waveform: it reads an image of 80 log-Mel bands by 3000 frames. This
# notebook builds that image from the samples, one step and one figure at a time, on a real
# Spanish recording, and looks at what changes when the same words are sung.
#
# **What you will learn**
# - the source–filter picture of speech: glottal pulses (pitch) shaped by the vocal tract
#   (formants); voiced and unvoiced sounds;
# - how singing, and cante in particular, differs from speech: pitch range, melisma, vibrato,
#   quejíos;
# - Whisper's log-Mel recipe: framing, window, STFT, power, the mel scale and filterbank,
#   log, the dynamic-range clamp (max − 8), the scaling (x + 4)/4, and the 30 s padding to 80 × 3000;
# - that the derivation equals `flamenco_lib.audio.log_mel_spectrogram` and transformers'
#   `WhisperFeatureExtractor`.

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
#
# Papermill injects its values after this cell (`make report`, the tests use `profile="smoke"`).

# %% tags=["parameters"]
profile: str = "cpu"  # "smoke", "cpu" or "gpu": this notebook is light and runs alike on all three
seed: int = 0  # random choices of the synthetic singing
prompt_id: str = "ss-noservice"  # the real recording used throughout (an asterisk prompt)
copla_index: int = 0  # the lyric of data/lyrics/coplas.tsv rendered spoken and sung
voice: str = "es"  # espeak-ng voice that speaks and sings the copla

# %% [markdown]
# Imports, the thesis figure style, and one real recording of Spanish speech (16 kHz).

# %%
import matplotlib.pyplot as plt
import numpy as np
from scipy.signal import freqz, lfilter

from flamenco_lib import audio as A
from flamenco_lib import plotting
from flamenco_lib.data import speech, synth
from flamenco_lib.data.lyrics import read_lyrics

plotting.set_style()
SR = A.SAMPLE_RATE
item = next(p for p in speech.prompts() if p["id"] == prompt_id)
y = A.load_audio(item["path"])
print(f"{prompt_id}: {len(y) / SR:.2f} s, {len(y)} samples at {SR} Hz")
print("text:", item["text"])

# %% [markdown]
# ## 1. What speech is: a source and a filter
#
# Air from the lungs sets the vocal folds vibrating: they open and close about 100–250 times
# a second in speech, sending a train of **glottal pulses** up the throat. Its period is the
# pitch period; its spectrum is a comb of **harmonics** at multiples of the fundamental F0,
# falling off towards high frequencies. The **vocal tract** (throat, mouth, lips, nose) acts
# as a filter whose resonances, the **formants** F1, F2, F3, ..., depend on where the tongue and
# lips are: they make an /a/ an /a/. Speech = source * filter (a convolution in time, a
# product of spectra, a *sum* of log-spectra — which is what the cepstrum of notebook 02 exploits).
#
# Below: an impulse train at 120 Hz, smoothed into puffs, through three resonators at the
# formants of /a/. The output spectrum is the harmonic comb under the formant envelope.

# %%
f0 = 120.0  # Hz: a low speaking voice
source = np.zeros(int(0.5 * SR))
source[:: int(SR / f0)] = 1.0  # one glottal pulse per period
source = np.convolve(source, np.hanning(16), mode="same")  # each pulse a smooth puff of air
formants = [(730, 90), (1090, 110), (2440, 170)]  # (centre, bandwidth) in Hz: the vowel /a/
denominator = np.array([1.0])
for f, bw in formants:  # a two-pole resonator per formant
    r = np.exp(-np.pi * bw / SR)
    denominator = np.convolve(denominator, [1.0, -2 * r * np.cos(2 * np.pi * f / SR), r**2])
vowel = lfilter([1.0], denominator, source)


def db_spectrum(x):
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x)))) + 1e-9
    return np.fft.rfftfreq(len(x), 1 / SR), 20 * np.log10(spec / spec.max())


freq_h, response = freqz([1.0], denominator, worN=2048, fs=SR)
fig, axes = plt.subplots(1, 3, figsize=(11, 2.8), sharey=True)
plotting.plot_spectrum(
    *db_spectrum(source[:4096]), ax=axes[0], title="source: glottal pulses", ylabel="dB"
)
plotting.plot_spectrum(
    freq_h,
    20 * np.log10(np.abs(response) / np.abs(response).max()),
    ax=axes[1],
    title="filter: vocal tract (/a/)",
    ylabel="dB",
    color="C1",
)
plotting.plot_spectrum(
    *db_spectrum(vowel[:4096]), ax=axes[2], title="speech = source × filter", ylabel="dB"
)
for ax in axes:
    ax.set(xlim=(0, 4000), ylim=(-80, 5))
plotting.savefig(
    fig,
    "01_source_filter",
    caption=(
        "Source-filter model of a vowel: glottal pulses (source), the vocal tract's response for "
        "/a/ (filter), and their product, the speech spectrum (dB)."
    ),
)

# %% [markdown]
# **Voiced and unvoiced.** Vowels and voiced consonants (m, n, l, b, d ...) have the harmonic
# source; unvoiced consonants (s, f, j, the t of *tecla*) replace it by turbulent noise at a
# constriction: no pitch, no harmonics, energy high up in frequency and many zero crossings.
# We pick both kinds of 25 ms frame from the real recording by energy and zero-crossing rate.

# %%
frames = np.lib.stride_tricks.sliding_window_view(y, A.N_FFT)[:: A.HOP_LENGTH]
energy_db = 10 * np.log10((frames**2).mean(axis=1) + 1e-12)
zcr = (np.diff(np.sign(frames), axis=1) != 0).mean(axis=1)
loud = energy_db > energy_db.max() - 30
voiced_i = int(np.argmax(np.where(loud, energy_db - 200 * zcr, -np.inf)))
unvoiced_i = int(np.argmax(np.where(loud, zcr, -np.inf)))
print(
    f"voiced frame at {voiced_i * 0.01:.2f} s (zero-crossing rate {zcr[voiced_i]:.2f}), "
    f"unvoiced at {unvoiced_i * 0.01:.2f} s (rate {zcr[unvoiced_i]:.2f})"
)

fig, axes = plt.subplots(2, 2, figsize=(10, 4.4))
for col, (i, name) in enumerate([(voiced_i, "voiced"), (unvoiced_i, "unvoiced")]):
    plotting.plot_waveform(frames[i], ax=axes[0, col], title=f"{name} frame (25 ms)")
    plotting.plot_spectrum(*db_spectrum(frames[i]), ax=axes[1, col], ylabel="dB")
    axes[1, col].set(ylim=(-80, 5))
fig.tight_layout()
plotting.savefig(
    fig,
    "01_voiced_unvoiced",
    caption=(
        "A voiced and an unvoiced 25 ms frame of the real recording: waveforms, and their spectra"
        " (dB): harmonics against noise."
    ),
)

# %% [markdown]
# ## 2. Singing, and cante
#
# Singing keeps the filter (the words' vowels and consonants) but takes the source under
# control:
# - **pitch range**: speech wanders within a few semitones; a melody spans an octave or more,
#   and cante climbs high and holds there;
# - **melisma**: one vowel carries several notes and lasts up to seconds, so the vowels grow
#   and the consonants do not (a hard case for a recogniser trained on speech tempo);
# - **vibrato**: a periodic pitch wobble of 5–7 Hz and tens of cents on held notes;
# - **quejíos**: the lament "¡ay!" sung on its own, an opening or a cry inside the verse, with
#   melisma; and lines repeated, words cut or joined in Andalusian speech (*pa'l*, *mare*).
#
# The project's synthetic cante makes this concrete: the same copla spoken by espeak-ng, then
# sung (vowels lengthened, a melody in the palo's mode, vibrato; no guitar here) with Praat.
# Horizontal stripes in the sung log-Mel are harmonics of held notes; their waves are vibrato.

# %%
copla = read_lyrics()[copla_index]
lines = list(copla.lines[:2])
spoken, spoken_meta = synth.speak_clip(lines, voice=voice, seed=seed)
sung, sung_meta = synth.render_clip(
    lines, palo=copla.palo, voice=voice, seed=seed, accompaniment=False
)
print(f"{copla.palo}: {sung_meta['text']!r}")
print(
    f"spoken {len(spoken) / SR:.1f} s, sung {len(sung) / SR:.1f} s; "
    f"vibrato {sung_meta['vibrato_hz']:.1f} Hz, {sung_meta['vibrato_cents']:.0f} cents"
)

fig, axes = plt.subplots(2, 2, figsize=(11, 4.8), sharex=True)
for col, (x, name) in enumerate([(spoken, "spoken"), (sung, "sung")]):
    plotting.plot_waveform(x, ax=axes[0, col], title=f"{name}: {copla.palo}")
    plotting.plot_spectrogram(A.log_mel_spectrogram(x).numpy(), ax=axes[1, col], colorbar=col == 1)
axes[0, 0].set_xlim(0, max(len(spoken), len(sung)) / SR)
fig.tight_layout()
plotting.savefig(
    fig,
    "01_spoken_vs_sung",
    caption=(
        "The same copla spoken and sung: waveforms and log-Mel spectrograms (lengthened vowels, a"
        " held pitch, the accompaniment)."
    ),
)

# %% [markdown]
# ## 3. The log-Mel spectrogram, step by step
#
# From here on we rebuild Whisper's input from the real recording with plain numpy, in the
# order of `whisper/audio.py`. The waveform first.

# %%
fig, ax = plt.subplots(figsize=(9, 2.4))
plotting.plot_waveform(y, ax=ax, title=f"Waveform: {prompt_id} ({len(y) / SR:.1f} s)")
plotting.savefig(
    fig,
    "01_waveform",
    caption=(
        "Waveform of one real Spanish recording (Debian's asterisk prompts), the input of the "
        "derivation."
    ),
)

# %% [markdown]
# ### 3.1 Padding to 30 s
#
# Whisper's encoder has a fixed input of 30 s: `N_SAMPLES = 480000` samples. Shorter audio is
# padded with digital silence (zeros), longer audio is cut (long-form transcription slides
# the window). The padding is why Whisper hallucinates less on short clips than one fears:
# it was trained on exactly this.

# %%
x = A.pad_or_trim(y)  # zeros after the speech, up to N_SAMPLES
print(x.shape, f"= {A.CHUNK_LENGTH} s x {SR} Hz")

# %% [markdown]
# ### 3.2 Framing
#
# Speech is stationary only over a few tens of milliseconds, so the signal is cut into
# overlapping **frames**: `N_FFT = 400` samples (25 ms) every `HOP_LENGTH = 160` samples
# (10 ms, 100 frames per second). Like `torch.stft(center=True)`, the signal is first padded
# by 200 samples at each end by reflection, so that frame *t* is centred on sample 160 *t*.

# %%
padded = np.pad(x, A.N_FFT // 2, mode="reflect")
frames = np.lib.stride_tricks.sliding_window_view(padded, A.N_FFT)[:: A.HOP_LENGTH]
print("frames:", frames.shape, "(3001 frames of 400 samples; the last one is dropped below)")

fig, ax = plt.subplots(figsize=(9, 2.6))
plotting.plot_frames(y, start=voiced_i * A.HOP_LENGTH, n_frames=4, ax=ax)
plotting.savefig(
    fig,
    "01_framing",
    caption=(
        "Framing: four consecutive 25 ms analysis windows (400 samples) every 10 ms (160 samples)."
    ),
)

# %% [markdown]
# ### 3.3 The window
#
# Cutting a frame out abruptly is multiplying by a rectangle, whose spectrum has tall side
# lobes: energy of one harmonic **leaks** into far-away bins. A **Hann** window tapers the
# frame to zero at both ends, trading a wider main lobe for side lobes ~30 dB lower. Whisper
# uses the *periodic* Hann window of 400 points, `0.5 − 0.5 cos(2πn/400)` (as `torch.hann_window`).

# %%
n = np.arange(A.N_FFT)
window = 0.5 - 0.5 * np.cos(2 * np.pi * n / A.N_FFT)  # periodic Hann
frame = frames[voiced_i + 1]  # the voiced frame (frames are now centred: shifted by one hop)

fig, axes = plt.subplots(1, 2, figsize=(11, 2.8))
plotting.plot_waveform(
    frame, ax=axes[0], label="frame", title="one frame, before and after the window"
)
plotting.plot_waveform(frame * window, ax=axes[0], label="× Hann")
axes[0].legend(loc="upper right")
f_bins = np.fft.rfftfreq(A.N_FFT, 1 / SR)
for w, name in [(np.ones(A.N_FFT), "rectangular"), (window, "Hann")]:
    mag = np.abs(np.fft.rfft(frame * w))
    plotting.plot_spectrum(
        f_bins,
        20 * np.log10(mag / mag.max() + 1e-9),
        ax=axes[1],
        label=name,
        ylabel="dB",
        title="leakage: rectangular vs Hann",
    )
axes[1].set(ylim=(-90, 5))
plotting.savefig(
    fig,
    "01_window",
    caption=(
        "One frame with and without the Hann window, and the leakage of each in the spectrum (dB)."
    ),
)

# %% [markdown]
# ### 3.4 STFT and power
#
# The FFT of each windowed frame gives 201 frequency bins from 0 to 8 kHz (a bin every 40 Hz);
# together they form the short-time Fourier transform. Whisper keeps the **power** |X|² and
# drops the last frame (3001 → 3000). In decibels, the harmonics of the voiced stretches are
# the fine horizontal stripes, the formants the broad dark-to-bright bands.

# %%
stft = np.fft.rfft(frames * window, axis=-1)  # (3001, 201) complex
power = (np.abs(stft) ** 2)[:-1].T  # (201, 3000): frequency x time
print("power spectrogram:", power.shape)

n_speech = len(y) // A.HOP_LENGTH  # frames that hold speech (the rest is padding)
fig, ax = plt.subplots(figsize=(9, 2.8))
plotting.plot_spectrogram(
    10 * np.log10(power[:, :n_speech] + 1e-10),
    ax=ax,
    y_axis="hz",
    label="dB",
    title="power spectrogram (STFT), dB",
)
plotting.savefig(
    fig,
    "01_power_spectrogram",
    caption=("Power spectrogram (STFT, 400-point frames, 10 ms hop) of the recording, in dB."),
)

# %% [markdown]
# ### 3.5 The mel scale and the filterbank
#
# We hear pitch roughly linearly below 1 kHz and logarithmically above. The **mel scale**
# (Slaney's version, as in librosa and Whisper) is linear up to 1 kHz and logarithmic beyond.
# 80 triangular filters, equally spaced in mel, pool the 201 bins into 80 bands: narrow at low
# frequencies (a few harmonics each), broad at high ones. Each triangle has the same area.

# %%
filters = A.mel_filterbank()  # (80, 201)
fig, axes = plt.subplots(1, 2, figsize=(11, 2.8))
plotting.plot_mel_scale(ax=axes[0])
plotting.plot_filterbank(filters, ax=axes[1])
plotting.savefig(
    fig,
    "01_mel_filterbank",
    caption=(
        "The mel scale against frequency, and Whisper's 80 Slaney mel filters over the 201 STFT "
        "bins."
    ),
)
print(
    "filters:",
    filters.shape,
    "| band 1 spans",
    f"{np.ptp(f_bins[filters[1] > 0]):.0f} Hz, band 79 spans {np.ptp(f_bins[filters[79] > 0]):.0f} Hz",
)

# %% [markdown]
# ### 3.6 Mel power, log, clamp and scale
#
# - **mel power** `filters @ power`: 80 × 3000;
# - **log**: `log10(max(mel, 1e-10))` — loudness is perceived logarithmically, and a gain
#   becomes an offset;
# - **dynamic-range clamp**: values more than 8 (= 80 dB) below the clip's maximum are raised
#   to `max − 8`: the digital silence of the padding (log10(1e-10) = −10) and faint noise all
#   land on one floor;
# - **scale**: `(x + 4) / 4` maps the typical range to about [−1, 1.5] for the network.

# %%
mel_power = filters.astype(np.float64) @ power  # (80, 3000)
log_mel = np.log10(np.maximum(mel_power, A.LOG_FLOOR))
clamped = np.maximum(log_mel, log_mel.max() - A.DYNAMIC_RANGE)
ours = (clamped + 4.0) / 4.0
print(
    "log10 range:",
    log_mel.min().round(2),
    "..",
    log_mel.max().round(2),
    "| after the clamp:",
    clamped.min().round(2),
    "..",
    clamped.max().round(2),
)

fig, axes = plt.subplots(1, 2, figsize=(11, 2.8))
plotting.plot_histogram(
    log_mel,
    ax=axes[0],
    title="log10 mel power (padding at -10)",
    xlabel="log10 power",
    mark=log_mel.max() - A.DYNAMIC_RANGE,
    mark_label="max − 8",
)
plotting.plot_histogram(
    ours, ax=axes[1], title="after clamp and (x + 4) / 4", xlabel="Whisper input value"
)
fig.tight_layout()
plotting.savefig(
    fig,
    "01_clamp",
    caption=(
        "Histograms of the log10 mel power before and after Whisper's clamp to max - 8 and "
        "scaling (x + 4) / 4."
    ),
)

fig, axes = plt.subplots(3, 1, figsize=(9, 6.6), sharex=True)
plotting.plot_spectrogram(
    mel_power[:, :n_speech],
    ax=axes[0],
    title="mel power (linear): only the loudest bands show",
    label="power",
)
plotting.plot_spectrogram(log_mel[:, :n_speech], ax=axes[1], title="log10 mel power", label="log10")
plotting.plot_spectrogram(
    ours[:, :n_speech], ax=axes[2], title="clamped to max − 8 and scaled: Whisper's input"
)
fig.tight_layout()
plotting.savefig(
    fig,
    "01_log_mel_steps",
    caption=(
        "The log-Mel steps on the recording: mel power, log10 mel power, then clamped and scaled "
        "(Whisper's input)."
    ),
)

# %% [markdown]
# ### 3.7 The whole input: 80 × 3000
#
# This is everything Whisper's encoder sees of the recording: the speech, then the padding at
# the clamp floor up to 30 s.

# %%
fig, ax = plt.subplots(figsize=(9, 2.8))
plotting.plot_spectrogram(
    ours, ax=ax, title=f"Whisper's input: {ours.shape[0]} bands × {ours.shape[1]} frames (30 s)"
)
plotting.savefig(
    fig,
    "01_log_mel",
    caption=(
        "Whisper's log-Mel input of the recording, derived by hand: 80 bands by 3000 frames (30 "
        "s), the padding at the floor."
    ),
)

# %% [markdown]
# ## 4. Check: the derivation equals the library and transformers
#
# `flamenco_lib.audio.log_mel_spectrogram` does the same in torch (float32, batched), and
# transformers' `WhisperFeatureExtractor` is what fine-tuning code usually calls. All three
# must agree (float32 rounding aside); tests/test_audio.py checks the same on every run.

# %%
from transformers import WhisperFeatureExtractor

library = A.log_mel_spectrogram(x).numpy()
hf = (
    WhisperFeatureExtractor(feature_size=A.N_MELS)
    .__call__(y, sampling_rate=SR, return_tensors="np")
    .input_features[0]
)
diff_library, diff_hf = np.abs(ours - library).max(), np.abs(ours - hf).max()
print(f"shapes: ours {ours.shape}, library {library.shape}, transformers {hf.shape}")
print(f"max |ours - flamenco_lib| = {diff_library:.2e}")
print(f"max |ours - WhisperFeatureExtractor| = {diff_hf:.2e}")
assert ours.shape == library.shape == hf.shape == (A.N_MELS, A.N_FRAMES)
assert diff_library < 1e-3 and diff_hf < 1e-3

# %% [markdown]
# ## Summary
#
# - Speech is a source (glottal pulses: pitch and harmonics; or noise for unvoiced sounds)
#   through a filter (the vocal tract: formants). Singing keeps the filter and takes over the
#   source: wide pitch range, long vowels (melisma), vibrato, quejíos.
# - Whisper's input is the log-Mel spectrogram of exactly 30 s: frames of 25 ms every 10 ms,
#   periodic Hann window, power spectrum, 80 Slaney mel filters, `log10`, clamp to the
#   loudest value minus 8, `(x + 4) / 4`: an 80 × 3000 image.
# - Our step-by-step numpy derivation equals `flamenco_lib.audio.log_mel_spectrogram` and
#   `WhisperFeatureExtractor` to float32 rounding.
#
# ## Exercises
#
# 1. Replace the periodic Hann window with `np.hanning(400)` (symmetric). How large is the
#    difference to Whisper's features? Would a model notice?
# 2. Double `HOP_LENGTH`. What happens to the time resolution of a vibrato at 6 Hz?
# 3. Remove the dynamic-range clamp: what does the padding look like, and why might a
#    model trained with the clamp misbehave on unclamped input?
# 4. Render the same copla with another voice (`voice="es+f3"`) or palo: which parts of the
#    log-Mel change between spoken and sung, which stay?
