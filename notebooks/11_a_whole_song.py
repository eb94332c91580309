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
# # 11 · A whole song: from a recording to timed lyrics
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/cante-to-text/cante-to-text/blob/main/notebooks/11_a_whole_song.ipynb)
#
# Every evaluation so far cut the lyrics into clips of one copla. A real recording of a soleá
# lasts minutes: guitar falsetas, a quejío, verses sung and repeated, silences, palmas. This
# notebook transcribes whole songs into lines with times, as a user would from the command
# line (`python -m flamenco_lib transcribe song.mp3 --format lrc`), and measures what happens
# *between* the verses.
#
# **What you will learn**
# - why a recording is cut into windows of at most 30 s, and three ways to cut it: where a voice
#   activity detector hears a voice, fixed 30 s windows, Whisper's own sequential long-form
#   decoding;
# - Whisper's best-known failure on music, text written over instrumental passages, and the
#   indicators that catch it (compression ratio, average log-probability, no-speech probability);
# - song-level measures: WER of the whole song, words written per minute of guitar alone, the
#   error of each line's start time, the share of lines missed.

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
seed: int = 0  # seed of the song corpus
n_songs: int = (
    0  # songs to build; 0: the profile's default (smoke 2, else 24: 12 of them test; 12 real)
)
n_test_songs: int = 0  # test songs evaluated; 0: the profile's default (smoke 1, cpu 3, gpu all 6)

# %% [markdown]
# The workspace (as in notebook 06: the smoke profile works in `<data>/smoke`; corpora that
# are missing are built, as there), the models compared (zero-shot Whisper and the final model of the chain, stage 3, when it is trained)
# and the imports.

# %%
import json

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from flamenco_lib import grid, notebook, plotting, recording, results, song_eval
from flamenco_lib.audio import load_audio, log_mel_spectrogram
from flamenco_lib.data.songs import DEFAULT_REAL_SONGS, DEFAULT_SONGS, REAL_LINES, build_song_corpus
from flamenco_lib.paths import data_dir, report_dir

ws = notebook.workspace(profile)
profile = ws.profile
notebook.build_missing_corpora(ws.sizes)  # the stage configs name them (smoke: seconds)
N_SONGS = n_songs or (2 if profile == "smoke" else DEFAULT_SONGS)  # notebook 05 builds them
N_REAL = n_songs or (2 if profile == "smoke" else DEFAULT_REAL_SONGS)
MAX_TEST = n_test_songs or {"smoke": 1, "cpu": 3}.get(profile)  # cpu: the report's 90 minutes
ROWS = grid.stage_rows("zero-shot", "stage 3", profile=profile, base=ws.model)
METHODS = recording.METHODS  # vad (the default), fixed, longform
plotting.set_style()
print(profile, "| songs:", N_SONGS, "| models:", ROWS)

# %% [markdown]
# ## 1. The songs
#
# `flamenco_lib.data.songs` (`python -m flamenco_lib data songs --out DIR`) sings the coplas
# of one palo line by line with the cante generator's voices, a line sometimes twice, between
# guitar falsetas of 5-20 s; guitar and palmas play throughout, louder when nobody sings. The
# generator knows when each line starts and ends and where the falsetas are: that is what the
# transcripts are measured against. A song's coplas come from one split of the lyrics, so the
# test songs' lyrics were never trained on.

# %%
corpus = data_dir() / "corpora" / "songs"
if not (corpus / "songs.jsonl").exists():
    build_song_corpus(corpus, n=N_SONGS, seed=seed)
songs = [json.loads(x) for x in (corpus / "songs.jsonl").read_text(encoding="utf-8").splitlines()]
for s in songs:
    guitar_s = sum(e - b for b, e in s["falsetas"])
    print(
        f"{s['song']:24s} {s['split']:5s} {s['voice']:12s} {s['duration_s'] / 60:4.1f} min, "
        f"{len(s['lines']):2d} lines, {guitar_s:5.1f} s of guitar alone"
    )

# %% [markdown]
# ## 2. Three ways to cut a song, two models
#
# Whisper reads 30 s at a time. `recording.transcribe_recording` cuts a song with:
# - `vad`: silero-vad finds where a voice is (a small recurrent network on 32 ms frames). After
#   some seconds of guitar its state goes deaf to the voice that begins, so it runs on pieces of
#   10 s that start every 5 s, each from a fresh state, and a moment is voice when a piece hears
#   it. Its regions, joined across breaths under 0.5 s, are the lines, and lines less than 4 s
#   apart share a window (split back by the time of each token). Falsetas are never decoded;
# - `fixed`: consecutive 30 s windows, falsetas included;
# - `longform`: transformers' sequential long-form decoding (Whisper predicts timestamp tokens
#   and the next window starts where the last complete segment ended).
#
# Each window keeps Whisper's indicators, and one that looks like a hallucination (compression
# ratio over 2.4, or likely no speech with an unsure text) is dropped. `song_eval.song_runs`
# evaluates each model with each method on the test songs and keeps each run in
# `data/results/<model>__songs-<method>/`; a rerun with the same songs and models only reads them.

# %%
runs = song_eval.song_runs(ROWS, corpus, methods=METHODS, max_songs=MAX_TEST)
table = song_eval.songs_results_table(runs)
display(table.round(2))

# %% [markdown]
# ## 3. One song on its time axis
#
# The first test song: its log-Mel spectrogram, what was sung (top lane) with the falsetas
# shaded, where the voice detector heard a voice, and the lines each model wrote with the
# default method. Text drawn over a shaded falseta is text where nobody sings.

# %%
song = next(s for s in songs if s["split"] == "test")
audio = load_audio(corpus / song["audio"])
lanes = {}
for run in runs:
    name, method = run.name.split("__songs-")
    if method == "vad":
        lines = [json.loads(x) for x in (run / "lines.jsonl").read_text().splitlines()]
        lanes[name] = [ln for ln in lines if ln["song"] == song["song"] and not ln["dropped"]]
fig, ax = plt.subplots(figsize=(11, 4.2))
plotting.plot_song_lines(
    log_mel_spectrogram(audio).numpy(),
    sung=song["lines"],
    falsetas=song["falsetas"],
    lanes=lanes,
    regions=recording.voice_regions(audio),
    ax=ax,
    title=f"{song['song']} ({song['voice']}), {song['duration_s'] / 60:.1f} min",
)
plotting.savefig(
    fig,
    "11-song-lines",
    caption=(
        "A synthetic test song: log-Mel spectrogram, the sung lines, guitar falsetas (shaded), "
        "the voice detector's regions and the lines each model wrote (vad windows)."
    ),
)

# %% [markdown]
# The same lines as a user gets them: an LRC file (`--format lrc`), one `[mm:ss.xx]` tag per
# line, for a lyrics player.

# %%
for name, lines in lanes.items():
    kept = [recording.Line(**{k: v for k, v in ln.items() if k != "song"}) for ln in lines]
    print(f"--- {name}\n" + recording.format_lines(kept, "lrc"))

# %% [markdown]
# ## 4. Song-level results
#
# For each model and method on the test songs: WER of the whole song with its 95% bootstrap
# interval over songs, words written per minute of guitar alone, the median distance between a
# sung line's start and the nearest transcribed line's start, the share of sung lines nothing was
# written over, and the real-time factor (decoding time over song time, on this machine). The
# table goes to `report/tables/songs.csv` and `.md`.

# %%
out = report_dir() / "tables"
out.mkdir(parents=True, exist_ok=True)
table.to_csv(out / "songs.csv", index=False)
(out / "songs.md").write_text(results.to_markdown(table.round(2)) + "\n", encoding="utf-8")
fig, axes = plt.subplots(1, 2, figsize=(9, 2.8))
for ax, col in zip(axes, ("words / guitar min", "median timing error (s)")):
    pivot = table.pivot(index="method", columns="model", values=col).reindex(list(METHODS))
    pivot.plot.bar(ax=ax, rot=0)
    ax.set(ylabel=col, xlabel="")
plotting.savefig(
    fig,
    "11-song-methods",
    caption=(
        "Words written per minute of guitar alone (left) and the median line timing error "
        "(right), by method and model, on the test songs."
    ),
)
print(table[["model", "method", "WER %", "WER lo", "WER hi"]].round(1).to_string(index=False))

# %% [markdown]
# ## 5. Real voices, whole songs
#
# espeak-ng's voices sang the songs above, and every stage trained on those voices. `data songs
# --speech MANIFEST` sings recorded speech instead, with the transform that sang the real-voice
# clips of notebook 05: here the Drascula characters, one character per song, each song in its
# character's split, so the test songs are sung by voices no model trained on. The falsetas,
# guitar, palmas and room are made as above; both models decode with the default method (the
# voice detector's windows). Compare the WER with the clip-level "real voices sung" column of
# notebook 10: a whole song adds the cutting into lines to what a clip measures.

# %%
real_corpus = data_dir() / "corpora" / "songs-real"
if not (real_corpus / "songs.jsonl").exists():
    build_song_corpus(
        real_corpus,
        n=N_REAL,
        seed=seed,
        speech_manifest=data_dir() / "corpora" / "speech-drascula" / "manifest.jsonl",
        real_lines=(1, 2) if profile == "smoke" else REAL_LINES,  # smoke: one test utterance
    )
real_songs = song_eval.read_songs(real_corpus, "test", MAX_TEST)
for s in real_songs:
    print(
        f"{s['song']:28s} {s['voice']:22s} {s['duration_s'] / 60:4.1f} min, {len(s['lines'])} lines"
    )
real_runs = song_eval.song_runs(
    ROWS, real_corpus, methods=("vad",), max_songs=MAX_TEST, name="songs-real"
)
real_table = song_eval.songs_results_table(real_runs)
display(real_table.round(2))
real_table.to_csv(out / "songs-real.csv", index=False)
(out / "songs-real.md").write_text(
    results.to_markdown(real_table.round(2)) + "\n", encoding="utf-8"
)

# %% [markdown]
# ## 6. Known lyrics: aligned to the song
#
# A supervisor often has a recording's lyrics as a booklet prints them (each line once, in order,
# no times). `flamenco_lib.align` (`python -m flamenco_lib data align RECORDING LYRICS.txt --out
# CORPUS`) transcribes the voice regions as above and matches the printed lines to them in order
# by dynamic programming: a line may be sung twice, skipped, or share a region with its
# neighbours; a region may sing nothing printed (a quejío). A line's start is dated by the same
# detector restarted every 3 s (`align.ONSET_PIECES`): the one that cut the song for decoding,
# restarted every 5 s, often hears a quejío after a falseta a second late. Each aligned line is
# labelled with **what was sung**, in the printed words: the quejío heard before the line and the
# line as many times as the model heard it (`sung.sung_label`). A booklet prints "Mi mare se fue pa
# Ronda" once; a model trained on that label for "Ay, ay, mi mare se fue pa Ronda, mi mare se fue pa
# Ronda" learns to drop the quejíos and repeats. `data align` writes each run of lines sung less
# than 1.5 s apart (a copla) as one segment of a stage-1 corpus: cut between every two lines, a
# corpus trains a stage 1 about 8 points worse on whole coplas than the generator's own lines,
# joined, under 2 (`--segments`; README, "The price of alignment").
# `song_eval.alignment_runs` aligns each evaluated test song's printed lyrics with each model and
# scores the times against the generator's.

# %%
align_runs = song_eval.alignment_runs(ROWS, corpus, max_songs=MAX_TEST)
align_table = song_eval.alignment_table(align_runs)
display(align_table.round(2))
align_table.to_csv(out / "songs-alignment.csv", index=False)
(out / "songs-alignment.md").write_text(
    results.to_markdown(align_table.round(2)) + "\n", encoding="utf-8"
)

# %% [markdown]
# The labels the last model's alignment gives the first test song, next to what it heard there
# (the label keeps the printed words; only the shape of the singing comes from the transcript;
# `cover`: how much of the label was heard there, `data align` leaves out lines under 0.6):

# %%
for run in align_runs[-1:]:
    last = json.loads((run / "alignment.json").read_text(encoding="utf-8"))
    first_song = next(r for r in last["per_song"] if r["song"] == song["song"])
    labels = pd.DataFrame(first_song["aligned"])
    cols = ["start", "end", "text", "sung", "heard", "confidence", "cover"]
    display(labels.reindex(columns=cols).round(2))

# %% [markdown]
# The first test song again: what was sung (top lane) and the printed lines where each model
# placed them.

# %%
aligned_lanes = {}
for run in align_runs:
    m = json.loads((run / "alignment.json").read_text(encoding="utf-8"))
    first = next(r for r in m["per_song"] if r["song"] == song["song"])
    aligned_lanes[run.name.split("__songs-")[0] + " (aligned)"] = first["aligned"]
fig, ax = plt.subplots(figsize=(11, 3.6))
plotting.plot_song_lines(
    log_mel_spectrogram(audio).numpy(),
    sung=song["lines"],
    falsetas=song["falsetas"],
    lanes=aligned_lanes,
    ax=ax,
    title=f"{song['song']}: the printed lyrics aligned",
)
plotting.savefig(
    fig,
    "11-song-aligned",
    caption=(
        "The printed lyrics of a test song aligned to the audio by each model (voice regions "
        "transcribed, then matched to the lines in order), under the lines as sung."
    ),
)

# %% [markdown]
# ## Summary
#
# - Songs sung by recorded voices that no model trained on (section 5) put the models where a
#   user's recording puts them: an unknown voice, a whole song.
# - Decoding only where someone sings removes nearly all text over the guitar and dates each
#   line by the voice itself; fixed windows and long-form decoding write over the falsetas and
#   date lines by window.
# - A window holds one or two lines with the voice detector, so the model sees less context than
#   with 30 s windows: compare the WER columns before choosing for your own recordings.
# - The stages train a fifth of their examples with timestamp tokens (`timestamp_share` in the
#   configs), so that the fine-tuned model keeps the time tokens long-form decoding needs.
# - Printed lyrics aligned to the audio give timed lines without anyone timing them by hand:
#   the way from a supervisor's recordings and booklets to a stage-1 corpus.
#
# **Exercises**
# 1. Transcribe a recording of your own: `python -m flamenco_lib transcribe FILE --format lrc
#    --model data/checkpoints/stage3/final` and open the `.lrc` next to the audio.
# 2. Change `min_silence_s` of `recording.voice_regions` and rerun section 2: how do the timing
#    error and the WER move?
