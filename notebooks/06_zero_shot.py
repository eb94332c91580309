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
# # 06 · Zero-shot Whisper: the baseline
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/cante-to-text/cante-to-text/blob/main/notebooks/06_zero_shot.ipynb)
#
# Before fine-tuning anything, measure what Whisper does out of the box. Zero-shot
# whisper-base (the model exactly as OpenAI released it) transcribes every test set of the
# thesis, with the same normaliser and decoding settings that every stage will be evaluated
# with. This row of the results table is the baseline: each stage's gain is measured from it.
#
# **What you will learn**
# - how well a general-purpose recogniser does on sung flamenco, on the same words spoken, on
#   real voices sung, and on ordinary read speech;
# - to read a WER with its 95% bootstrap interval, and a WER per palo and per voice;
# - what Whisper's typical failures on singing look like: loops and repeated phrases
#   (hallucinations), and how to detect them from the text alone;
# - to read an aligned transcript: substitutions, deletions and insertions word by word.

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
n_examples: int = 3  # best and worst transcripts shown in section 5

# %% [markdown]
# Where the data lives. Every path of the project follows `FLAMENCO_DATA` (default `data/`):
# corpora, checkpoints, activation caches and results. In the `smoke` profile (the tests, CI)
# `notebook.workspace` moves it to `<data>/smoke` **before anything reads a path**, exactly as
# in notebook 05, so that the tiny corpora, the smoke models and their results can never
# overwrite the real ones. Only whisper-base is shared: this machine's copy, converted once
# from its PyPI wheels (notebook 04), is not built again in the smoke folder; the smoke runs
# start from it (`FROM_BASE` replaces the configs' `model: base`). The other profiles use the
# configs as they are, and as the zero-shot model the one the stages start from in that
# profile (`grid.zero_shot_model`: whisper-base on `cpu`, whisper-small on `gpu`), so that
# their results files are the ones notebook 10 reads. Run the cell again and nothing moves
# further.
#
# The library reports what it does (a model built, a stage trained or skipped, a run evaluated)
# as log messages; `workspace` has them printed under each cell.

# %%
from flamenco_lib import grid, notebook

ws = notebook.workspace(profile)  # smoke: FLAMENCO_DATA -> <data>/smoke (once); messages shown
# "auto" resolved; what the stages start from; overrides of the stage-1 configs; test clips per
# evaluation; corpora sizes
profile, MODEL, FROM_BASE, N_EVAL, SIZES = ws.profile, ws.model, ws.from_base, ws.n_eval, ws.sizes

# %% [markdown]
# Imports and the thesis figure style.

# %%
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from flamenco_lib import analysis, evaluation, metrics, plotting, results

plotting.set_style()

# %% [markdown]
# The corpora come from notebook 05. So that this notebook also runs on its own (on a fresh
# clone, or in the smoke tests), any corpus that is missing is built here with the same call
# (`build_corpora`: 10-15 minutes for the real ones on 2 cores, seconds in the smoke profile).
# Corpora that exist are left as they are.

# %%
notebook.build_missing_corpora(SIZES)

# %% [markdown]
# ## 1. Zero-shot Whisper on every test set
#
# The five test sets of the thesis (`flamenco_lib.grid.TEST_SETS`):
#
# | test set | what it is | what it measures |
# |---|---|---|
# | `cante` | held-out coplas, sung with guitar and palmas by synthetic voices; half of the clips in a voice never trained on (`es-419`) | the task, on the generator's voices |
# | `cante_spoken` | the same clips spoken | how much of the difficulty is the singing |
# | `real_sung` | real recorded lines of three speakers no model trains on (Drascula's `billie-jean`, `l`, `t`), sung by the same transform | singing in real voices never heard |
# | `real_speech` | the same speakers' lines as recorded | ordinary Spanish of unseen speakers: what fine-tuning forgets |
# | `speech` | real read speech of the asterisk speaker (stage 2 trains on her other prompts) | ordinary Spanish of one speaker |
#
# `results.evaluate_stages` runs the evaluation of the zero-shot row (`grid.stage_rows`
# picks it from `flamenco_lib.grid.STAGES`) on the first `N_EVAL` clips of each test set:
# greedy decoding, in Spanish, then WER and CER against what is sung, after the normaliser of
# `flamenco_lib.text`. Each run writes `predictions.jsonl` and `metrics.json` into
# `data/results/zero-shot__<test set>/`; a run newer than its model and its manifest is kept,
# so a rerun of this notebook only reads them (notebook 05 already made two of them).

# %%
rows = grid.stage_rows("zero-shot", profile=profile, base=MODEL)
results.evaluate_stages(rows, max_items=N_EVAL)
print(results.markdown(results.results_table(stages=rows)))

# %% [markdown]
# The same numbers as bars with their 95% intervals (a bootstrap over clips: draw the test
# clips again with replacement, many times, and keep the middle 95% of the WERs). Look at the
# gap between `cante_spoken` and `cante`: same words, same voices, only the singing and the
# accompaniment differ. And at `speech`: whisper-base is far from perfect on ordinary
# telephone prompts too, which is the level fine-tuning must not make worse.

# %%
runs = analysis.runs_table()
zero_shot = runs[runs["model"] == "zero-shot"]
ax = plotting.plot_stage_comparison(
    zero_shot, x="test_set", hue=None, title="Zero-shot whisper-base"
)
plotting.savefig(
    ax.figure,
    "06-test-sets",
    caption=(
        "Zero-shot whisper-base WER (%) on every test set, with 95% bootstrap intervals over clips."
    ),
)
zero_shot[["test_set", "n", "wer", "wer_lo", "wer_hi", "cer"]].round(1)

# %% [markdown]
# ## 2. Per palo
#
# The palo sets the melody, the tempo, the compás of the guitar and palmas, and the length
# of the lines. Some palos are sung slowly with long melismas (a seguiriya, a soleá), some
# fast (a bulería, tangos); the martinete is sung over an anvil without guitar. Each bar is
# the WER of the test clips of one palo. A palo has only a few test clips, so its interval is
# wide: read the big differences, not the small ones.

# %%
per_palo = analysis.per_palo_table(test_set="cante")
if per_palo.empty:
    print("the clips evaluated are all of one palo: no per-palo breakdown")
else:
    per_palo = per_palo[per_palo["model"] == "zero-shot"].sort_values("wer")
    fig, ax = plt.subplots(figsize=(8, 3))
    plotting.plot_stage_comparison(
        per_palo, x="palo", hue=None, ax=ax, title="Zero-shot WER per palo (cante test set)"
    )
    plotting.savefig(
        fig,
        "06-per-palo",
        caption=(
            "Zero-shot whisper-base WER (%) per palo on the cante test set, with 95% intervals (few clips per palo)."
        ),
    )
    print("test clips per palo:", dict(zip(per_palo["palo"], per_palo["n"], strict=True)))

# %% [markdown]
# ## 3. A voice never heard in training
#
# Half of the test clips are sung by `es-419` voices (`voice_heldout` in the manifest), which
# no model in this thesis is trained on; the others by the training voices. For zero-shot
# Whisper both are new, so any gap here is a property of the voices themselves, not of
# training. Remember it when a fine-tuned model does better on the seen voices than on the
# held-out one: only the part of the gap beyond this one is what the model learnt of its
# training voices. The same comparison on the spoken clips tells whether the gap comes from
# the voice or from how it sings.

# %%
NAMES = {"True": "held-out voice (es-419)", "False": "seen voices (es)"}
voices = pd.concat(
    [
        analysis.per_palo_table(test_set=key, field="voice_heldout").assign(test_set=key)
        for key in ("cante", "cante_spoken")
    ]
)
if voices.empty:
    print("the clips evaluated are all in seen voices, or all in the held-out one: no comparison")
else:
    voices = voices[voices["model"] == "zero-shot"].copy()
    voices["voice"] = voices["voice_heldout"].astype(str).map(NAMES)
    ax = plotting.plot_stage_comparison(
        voices, x="voice", hue="test_set", title="Zero-shot WER per voice"
    )
    plotting.savefig(
        ax.figure,
        "06-voices",
        caption=(
            "Zero-shot whisper-base WER (%) on the held-out es-419 voices and on the training voices, sung and "
            "spoken, with 95% intervals."
        ),
    )
    display(voices[["test_set", "voice", "n", "wer", "wer_lo", "wer_hi"]].round(1))

# %% [markdown]
# ## 4. Hallucinations
#
# On audio it cannot follow (a long held vowel, guitar between the lines), Whisper's decoder
# may fall back on its language model and write fluent text that was never sung, or get stuck
# repeating a phrase until it runs out of tokens. Three indicators in every `metrics.json`
# spot this from the transcripts alone:
#
# - `loops`: transcripts whose **compression ratio** (bytes of the text over bytes after
#   zlib compression) is above 2.4, Whisper's own threshold for a decoding that went wrong:
#   repeated text compresses well;
# - `compression_ratio`: its mean over the transcripts (it grows with the length of a text:
#   a short sentence stays below 1, and only repetition takes a transcript past 2.4);
# - `repeated_ngram_rate`: the share of word 3-grams that repeat an earlier 3-gram of the
#   same transcript (a sung line *is* sometimes repeated, so not every repetition is an error).
#
# `flamenco_lib.transcription` already collapses a phrase repeated four or more times in a
# row (its repetition guard) and caps the new tokens per second of audio, so loops are rare
# in these numbers; a high repeated n-gram rate says the guard had work to do.

# %%
INDICATORS = ["n_utterances", "loops", "compression_ratio", "repeated_ngram_rate"]
table = pd.DataFrame(
    {
        key: evaluation.load_metrics(results.run_dir("zero-shot", key))
        for key, _, _ in grid.TEST_SETS
    }
).T[INDICATORS]
display(table)

# %% [markdown]
# The transcript with the highest compression ratio of each test set, next to what was sung:
# is it a loop, a repeated sung line, or just a short text?

# %%
for key, _, _ in grid.TEST_SETS:
    preds = pd.read_json(results.run_dir("zero-shot", key) / "predictions.jsonl", lines=True)
    preds["ratio"] = preds["hypothesis"].map(metrics.compression_ratio)
    top = preds.loc[preds["ratio"].idxmax()]
    print(
        f"{key}: compression ratio {top['ratio']:.2f} (threshold {metrics.COMPRESSION_RATIO_THRESHOLD})"
    )
    print(f"  sung:    {top['reference']}\n  written: {top['hypothesis']}\n")

# %% [markdown]
# ## 5. The transcripts behind the numbers
#
# The best and the worst transcripts of the cante test set, aligned word by word after
# normalisation (jiwer's alignment, the one the WER counts): `S` marks a substitution (a word
# heard wrong), `D` a deletion (a word missed, `***` in the transcript), `I` an insertion (a
# word that was not sung, `***` in the reference). Look for the errors singing causes: a
# lengthened vowel heard as two words, an "ay" dropped, a rare word replaced by a common one
# that sounds alike.

# %%
examples = analysis.best_and_worst(results.run_dir("zero-shot", "cante"), n=n_examples)
for ex in examples.itertuples():
    print(f"[{ex.rank}] {ex.id} ({ex.palo}): WER {ex.wer:.0f}%")
    print("\n".join(analysis.format_alignment(ex.alignment)), end="\n\n")

# %% [markdown]
# ## Summary
#
# - Zero-shot whisper-base is the baseline row of every table: same test sets, same
#   normaliser, same greedy decoding as every fine-tuned model after it.
# - On the same clips, singing and accompaniment cost it words compared with speech; real
#   voices sung by the same transform are hard too, and ordinary speech is far from perfect.
# - Per palo and per voice, the intervals are wide: a handful of clips per group.
# - Loops and repeated n-grams are Whisper's hallucinations; the compression ratio finds them
#   from the text alone.
#
# **Exercises**
# 1. Which palo is hardest for zero-shot Whisper? Listen to one of its test clips (notebook
#    05, section 7, with its id) and say what makes it hard.
# 2. Is the held-out voice harder than the seen ones when *spoken*? What does that tell you
#    about a fine-tuned model's gap between the two?
# 3. Evaluate the cante test set again with beam search, into a folder of its own:
#    `evaluation.evaluate_manifest(MODEL, corpora / "cante/manifest.jsonl", max_items=N_EVAL,
#    num_beams=5, out=paths.results_dir() / "zero-shot-beam5__cante")`. Does it loop less?
# 4. Count the deletions and insertions in the worst transcripts: which dominates, and why
#    would singing cause it?
