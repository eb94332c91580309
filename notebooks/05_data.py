# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05 · The data: four corpora and a control
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/cante-to-text/cante-to-text/blob/main/notebooks/05_data.ipynb)
#
# Before training anything, look at the data. Everything in this thesis runs offline, so the
# corpora are built on your machine from three ingredients: lyrics written for this project
# (`data/lyrics/coplas.tsv`, 336 coplas in 15 palos), a speech synthesiser (espeak-ng) with a
# speech-to-singing transform (Praat), and real Spanish read speech (Debian's asterisk
# prompts, one es-MX speaker). This notebook builds the corpora where they are missing,
# counts what is in them, shows and plays one clip in three styles, and measures how hard
# they are for Whisper before any fine-tuning.
#
# **What you will learn**
# - which corpus serves which purpose: training, control, calibration, forgetting, and the
#   real-voice test;
# - how the splits are made so that a test score measures generalisation: no lyric in two
#   splits, and a voice (`es-419`) heard only in the test split;
# - what the synthetic singing changes: durations, pitch, vowel lengthening, accompaniment;
# - how much singing and guitar cost zero-shot Whisper on the very same words.

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
# Papermill injects its values after this cell (`make report`; the tests use `profile="smoke"`).

# %% tags=["parameters"]
profile: str = "auto"  # "auto": "gpu" with CUDA (Colab), else "cpu"; "smoke": a quick check
seed: int = 0  # seed of anything random in the notebook
n_examples: int = 3  # transcripts shown side by side in section 8

# %% [markdown]
# Where the data lives. Every folder of the project follows `FLAMENCO_DATA` (default `data/`).
# In the `smoke` profile (the tests, CI) `notebook.workspace` moves it to `<data>/smoke`
# **before anything reads a path**, so that the tiny corpora and the results of a smoke run
# land there and can never overwrite the full corpora in `data/corpora/` or their results.
# Only the model is shared: the machine's whisper-base, converted once from its PyPI wheels
# (notebook 04), is not copied into the smoke folder. Other profiles use the model the stages
# start from (`grid.zero_shot_model`: whisper-base on `cpu`, whisper-small on `gpu`), so
# that their results files are the ones notebooks 06-10 read. Run the cell again and nothing
# moves further: the same folders, the same model.
#
# The library reports what it does (a model built, a stage trained or skipped, a run evaluated)
# as log messages; `workspace` has them printed under each cell.

# %%
from flamenco_lib import notebook, paths

ws = notebook.workspace(profile)  # smoke: FLAMENCO_DATA -> <data>/smoke (once); messages shown
profile = ws.profile  # "auto" resolved
MODEL = ws.model  # whisper-base on cpu (and smoke), whisper-small on gpu
N_EVAL = ws.n_eval  # test clips per zero-shot evaluation (section 8): 100, 3 in smoke

# %% [markdown]
# Imports and the thesis figure style.

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Audio, display

from flamenco_lib import audio as A
from flamenco_lib import plotting, results
from flamenco_lib.data import stats
from flamenco_lib.data.corpus import OFFLINE_CORPORA, build_corpora

plotting.set_style()

# %% [markdown]
# ## 1. The corpora: synthetic cante, its controls, and real voices
#
# | corpus | what it is | what it is for |
# |---|---|---|
# | `cante` | the coplas spoken by espeak-ng voices, then sung (long vowels, a melody in the palo's mode, vibrato, melismas, quejíos, repeated lines), with guitar, palmas and reverb | stage 1 training; the **cante test set** |
# | `cante-spoken` | the same clips, same voices and same words, only spoken | the **control**: a model trained on it learns the voices, not the singing |
# | `cante-acapella` | the same test clips sung without accompaniment (only the test split: it is only ever tested) | **calibration**: how much of the difficulty is the singing, how much the guitar |
# | `speech` | real Spanish read speech (asterisk prompts, one es-MX speaker) | stage 2 (the offline stand-in for Common Voice); the **forgetting** check |
# | `speech-drascula` | real Spanish speech of ten characters of the game Drascula (Castilian, 8-bit recordings), **split by speaker** | stage 2; the forgetting check on speakers no model trains on (`real_speech`) |
# | `cante-real` | the asterisk speech, sung by the same transform | stage 1: a real voice sung |
# | `cante-drascula` | the Drascula speech, sung by the same transform | the **real-voice test set** (`real_sung`): did a model learn singing, or only the synthetic voices? |
# | `cante-real-wide`, `cante-drascula-wide` | the training splits of the two above, sung again with a wider range of vocal tracts (formant shift 0.80-1.25 against 0.88-1.15; the same clips otherwise) | stages 1-3: real voices sung (chosen on the dev speakers, notebook 07) |
# | `songs` | whole synthetic songs (coplas sung line by line between guitar falsetas), one row per sung line with its times, its copla and the line before it | stage 3's **verses** (notebook 09's prompt grid); whole recordings (notebook 11) |
#
# `build_corpora` builds each corpus whose manifest is missing, with the same calls as
# `make corpora` (`python -m flamenco_lib data speech|synth`). Where they exist, nothing is
# rendered or rewritten (a rewritten manifest would make every evaluation of it look out of
# date); an interrupted build has no manifest yet and resumes where it stopped. The full
# corpora take about 15 minutes on 2 cores (the 24 songs about 1.2 of them); the smoke
# profile builds 12 clips per style, 6 real utterances per speech corpus and 2 songs in
# seconds.

# %%
SIZES = ws.sizes  # {}: the library's defaults (the thesis corpora); smoke: 12 clips, 6 utterances
manifests = build_corpora(paths.data_dir() / "corpora", **SIZES)
for name, manifest in manifests.items():
    print(f"{name:15s} {OFFLINE_CORPORA[name]}\n{'':15s} {manifest}")

# %% [markdown]
# Every corpus is a manifest: one JSON line per clip with its audio file, what is sung
# (`text`), the lyric as written (`text_canonical`), its split, and for synthetic clips every
# choice the generator made (palo, voice, SNR, tonic, lengthening, vibrato...). Here is one
# clip of the cante corpus as a table row.

# %%
# the songs are lines cut from whole recordings: notebook 11 shows them
frames = {name: stats.read_frame(m) for name, m in manifests.items() if name != "songs"}
cante = frames["cante"]
cante.iloc[0].drop(["audio_path"], errors="ignore")

# %% [markdown]
# ## 2. Clips and hours per split
#
# Each corpus is split into `train` (what the model learns from), `dev` (what we watch while
# training) and `test` (scored once, at the end). The split of a clip comes from a hash of its
# normalised lyric, so the splits **never share a lyric**: a test WER measures how the model
# does on words it was never trained on. The check below: the distinct lyrics of the splits
# add up to the distinct lyrics of the whole corpus. The three synthetic corpora hold the
# same clips, so their counts agree; the sung ones last about twice as long.

# %%
summary = pd.concat({name: stats.corpus_summary(f) for name, f in frames.items()}, names=["corpus"])
for name in frames:
    per_split = summary.loc[name].drop("all")["lyrics"].sum()
    print(f"{name:15s} no lyric in two splits: {per_split == summary.loc[(name, 'all'), 'lyrics']}")
summary.round(2)

# %% [markdown]
# The same hours as a figure: the synthetic corpora are small next to a real training set
# (Common Voice Spanish has hundreds of hours), and the real speech corpus is smaller still.

# %%
hours = summary["hours"].unstack("split").drop(columns="all").reindex(list(frames))
ax = plotting.plot_split_counts(hours, xlabel="hours", title="Hours of audio per corpus and split")
plotting.savefig(
    ax.figure, "05-hours", caption="Hours of audio per corpus and split (train, dev, test)."
)

# %% [markdown]
# ## 3. Palos
#
# The coplas come in 15 palos, and the palo sets the melody's mode, the tempo and the compás
# of the guitar and the palmas (a martinete is sung without guitar, over an anvil). Since the
# split goes by lyric, not by palo, most palos appear in every split, but not evenly: a palo
# with few coplas may have no dev clip at all.

# %%
palos = stats.split_table(cante, "palo")
ax = plotting.plot_split_counts(palos, title="Cante corpus: clips per palo and split")
plotting.savefig(ax.figure, "05-palos", caption="Clips per palo and split in the cante corpus.")

# %% [markdown]
# ## 4. Voices: one held out for the test
#
# Training and dev clips use only espeak-ng's Castilian voice `es` and its variants
# (`es+m1` ... `es+f5`: other pitch and timbre settings of the same voice). Half of the test
# clips use the Latin-American voice `es-419` and its variants, which the model never hears
# in training (`voice_heldout` in the manifest); the other half use the training voices. The
# table shows `es-419` in the test column only; the figure shows every voice variant.

# %%
display(stats.split_table(cante, "base_voice"))
voices = stats.split_table(cante, "voice")
ax = plotting.plot_split_counts(voices, title="Cante corpus: clips per voice and split")
plotting.savefig(
    ax.figure,
    "05-voices",
    caption=(
        "Clips per espeak-ng voice and split: the es-419 voices (held out) appear in the test split only."
    ),
)

# %% [markdown]
# ## 5. What the generator drew
#
# Every sung clip records the random choices behind it. The histograms show, per split (each
# as a percentage of its own clips): the duration (at most 29.5 s: Whisper's window is 30 s),
# the voice-to-accompaniment SNR (5-10 dB: the guitar and palmas are loud), the speaking
# pitch of the voice (the melody is built around it, up to 14 semitones above), the mean
# lengthening of the vowels, and the vibrato rate. Train and test should look alike: the splits differ in
# lyrics and voices, not in how they were sung.

# %%
columns = stats.features(cante)
n_rows = int(np.ceil(len(columns) / 3))
fig, axes = plt.subplots(n_rows, 3, figsize=(10, 2.6 * n_rows), squeeze=False)
for ax, column in zip(axes.flat, columns, strict=False):
    plotting.plot_feature_hist(cante, column, ax=ax, xlabel=stats.FEATURES[column])
for ax in axes.flat[len(columns) :]:
    ax.set_visible(False)
fig.tight_layout()
plotting.savefig(
    fig,
    "05-distributions",
    caption=(
        "What the generator drew for the cante corpus, per split: "
        + ", ".join(stats.FEATURES[c] for c in columns)
        + "."
    ),
)
cante[columns].describe().round(2)

# %% [markdown]
# ## 6. Spoken, a cappella, sung: the same clips
#
# The three synthetic corpora share clip ids, voices and sung words; they differ only in the
# singing and the accompaniment. Joined by clip id, each grey line below is one test clip (the
# a-cappella corpus holds the test split only: `--splits test`, the same clips as in a whole
# corpus). Left:
# singing lengthens the vowels 2.5-4 times (more at the end of a line) and adds melismas, so
# a sung clip lasts about twice its spoken version; the guitar adds nothing to the duration.
# Right: the pitch range each clip spans (between the 5th and the 95th percentile of its F0,
# measured with Praat on the test clips; the guitar would confuse the pitch tracker, so only
# spoken and a cappella). Speech wanders within a few semitones; the melody spans about an
# octave.

# %%
STYLES = {
    "spoken": "cante-spoken",
    "a cappella": "cante-acapella",
    "sung + guitar": "cante",
}  # style: corpus
same = stats.compare_styles(
    {style: frames[name] for style, name in STYLES.items()}, fields=("duration_s",)
)
ratio = same["duration_s_sung + guitar"] / same["duration_s_spoken"]
print(
    f"{len(same)} clips in all three styles; sung / spoken duration: median {ratio.median():.2f}, "
    f"range {ratio.min():.2f}-{ratio.max():.2f}"
)
test_ids = same.loc[same["split"] == "test", "id"].head(N_EVAL)
ranges = pd.DataFrame(
    {
        style: stats.pitch_ranges(frames[STYLES[style]], ids=test_ids)
        for style in ("spoken", "a cappella")
    }
)
print(ranges.median().round(1).to_string(), "(median pitch range, semitones)")

fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), gridspec_kw={"width_ratios": [3, 2]})
plotting.plot_paired(
    same,
    [f"duration_s_{s}" for s in STYLES],
    labels=list(STYLES),
    ax=axes[0],
    ylabel="duration (s)",
    title="Duration",
)
plotting.plot_paired(
    ranges,
    list(ranges),
    ax=axes[1],
    ylabel="F0 range, 5-95% (semitones)",
    title=f"Pitch range ({len(ranges)} test clips)",
)
fig.tight_layout()
plotting.savefig(
    fig,
    "05-styles",
    caption=(
        "The same test clips spoken, sung a cappella and sung with guitar (one grey line per clip): duration, and "
        "the range of the voice's F0 in semitones (test clips)."
    ),
)

# %% [markdown]
# ## 7. Look and listen
#
# One test clip in the three styles, as Whisper sees it: the log-Mel spectrogram of notebook
# 01 (80 bands, 10 ms frames), on a shared time axis. Spoken, the harmonics glide and the
# syllables are short; sung, each vowel becomes a long note with vibrato, and the pitch
# track (Praat, bottom) moves in steps between held notes over a wider range; with guitar
# and palmas, the accompaniment fills the gaps between the words and the low bands.
# Change `seed` to draw another clip.

# %%
pool = same[same["split"] == "test"] if (same["split"] == "test").any() else same
clip = pool.sample(1, random_state=seed).iloc[0]
clips = {
    style: A.load_audio(frames[name].set_index("id").loc[clip["id"], "audio_path"])
    for style, name in STYLES.items()
}
print(
    f"{clip['id']} ({clip['palo']}, voice {clip['voice']}): {cante.set_index('id').loc[clip['id'], 'text']}"
)

fig, axes = plt.subplots(4, 1, figsize=(9, 9), sharex=True)
for ax, (style, x) in zip(axes, clips.items(), strict=False):
    plotting.plot_spectrogram(A.log_mel_spectrogram(x).numpy(), ax=ax, title=style)
    ax.set_xlabel("")
for style in ("spoken", "a cappella"):
    t, f0 = stats.f0_track(clips[style])
    plotting.plot_pitch_track(t, f0, ax=axes[3], label=style)
    print(
        f"{style:10s}: median F0 {np.median(f0[f0 > 0]):4.0f} Hz, "
        f"range {stats.pitch_range(clips[style]):4.1f} semitones"
    )
axes[3].set_title("F0 (Praat)")
fig.tight_layout()
plotting.savefig(
    fig,
    "05-look",
    caption=(
        "One test clip spoken, sung a cappella and sung with guitar: log-Mel spectrograms on a shared time "
        "axis, and the F0 of the spoken and the a-cappella versions."
    ),
)

# %% [markdown]
# Listen to the three (the players appear in the executed notebook). Can you follow the words
# of the sung clip without reading them?

# %%
for style, x in clips.items():
    print(style)
    display(Audio(x, rate=A.SAMPLE_RATE))

# %% [markdown]
# ## 8. How hard is it? Zero-shot Whisper on the same clips
#
# Zero-shot whisper-base transcribes the first test clips of each style (`N_EVAL`: 100, or 3
# in the smoke profile), greedy, in Spanish, with the normaliser and the decoding settings of
# every evaluation in the thesis (`flamenco_lib.evaluation`). The runs are the folders
# `data/results/zero-shot__cante_spoken`, `zero-shot__cante_acapella` and `zero-shot__cante`;
# the first and the last are those of the results notebook (10).
# `flamenco_lib.results.evaluate_stages` keeps a run whose `metrics.json` is newer than its
# model and its manifest, so a rerun of this notebook only reads them.
#
# Same words, same voices: the gap between spoken and a cappella is what the singing costs,
# the gap between a cappella and sung is what the accompaniment costs. The bars carry 95%
# bootstrap intervals over clips.

# %%
SETS = {
    "spoken": "cante_spoken",
    "a cappella": "cante_acapella",
    "sung + guitar": "cante",
}  # style: test set
test_sets = tuple(
    (key, f"corpora/{STYLES[style]}/manifest.jsonl", "test") for style, key in SETS.items()
)
results.evaluate_stages((("zero-shot", MODEL),), test_sets, max_items=N_EVAL)
runs = {style: results.run_dir("zero-shot", key) for style, key in SETS.items()}
wer = stats.style_wer(runs)
ax = plotting.plot_stage_comparison(
    wer, x="style", hue=None, title="Zero-shot whisper-base, same test clips"
)
plotting.savefig(
    ax.figure,
    "05-zero-shot",
    caption=(
        "Zero-shot whisper-base WER (%) on the same test clips spoken, sung a cappella and sung with guitar, "
        "with 95% bootstrap intervals."
    ),
)
wer.round(1)

# %% [markdown]
# The numbers behind the bars: what Whisper wrote for the same clips in the three styles,
# next to what was sung. Look for the kinds of errors: a lengthened vowel heard as two words,
# a quejío ("ay") dropped, a word replaced by a more common one that sounds alike.

# %%
said = stats.compare_styles(
    {style: run / "predictions.jsonl" for style, run in runs.items()},
    fields=("hypothesis",),
    keep=("reference", "palo"),
)
for row in said.head(n_examples).itertuples(index=False):
    print(f"[{row.id}, {row.palo}]\n  {'what is sung':14s}  {row.reference}")
    for style, hyp in zip(SETS, row[3:], strict=True):
        print(f"  {style:14s}  {hyp}")
    print()

# %% [markdown]
# ## Summary
#
# - Ten offline corpora, one manifest format: `cante` (sung with guitar: stage 1 and the
#   cante test), `cante-spoken` (the control), `cante-acapella` (the calibration), `speech` and
#   `speech-drascula` (real speech: stage 2 and forgetting), `cante-real` and `cante-drascula`
#   (real voices sung: the real-voice test on speakers no model trains on) and their training
#   splits sung with a wider range of vocal tracts (`-wide`: what the stages train on), and
#   `songs` (whole songs: stage 3's verses, notebook 11).
# - The splits never share a lyric, and the test split holds out the `es-419` voice: a test
#   score measures new words and, for half of the clips, a new voice.
# - Singing doubles the duration of a clip, moves the pitch in held notes with vibrato and
#   adds melismas; the accompaniment masks the voice at 5-10 dB SNR.
# - Zero-shot Whisper loses words from spoken to sung on the same clips, and again with the
#   guitar: the gap that the three fine-tuning stages try to close (notebooks 06-09).
#
# **Exercises**
# 1. In section 5, is the SNR of the held-out-voice clips any different? Draw it with
#    `hue="voice_heldout"` instead of the split.
# 2. Set `seed` to another value and look at another clip: where in the spectrogram do the
#    melismas show, and where does the guitar cover the voice most?
# 3. In section 8, which style loses more words to deletions? Read the `metrics.json` of the
#    three runs (`substitutions`, `deletions`, `insertions`) and explain it with what you heard.
# 4. The real-voice corpus (`cante-real`) sings real speech. Compare its durations with those
#    of the `speech` corpus: does the transform lengthen real speech as much as espeak-ng's?
