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
# # 08 · Stage 2: Common Voice against forgetting
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/cante-to-text/cante-to-text/blob/main/notebooks/08_stage2_common_voice.ipynb)
#
# A model fine-tuned on one narrow domain tends to lose some of what it knew: **catastrophic
# forgetting**. Stage 1 trained whisper-base on sung flamenco only; stage 2 continues from it
# on general Spanish read speech (Common Voice; offline, the real Spanish speech corpus),
# with a replay share of stage-1 clips mixed into every batch so that the cante is not
# forgotten in turn. It is measured on both: the cante test set, and the speech test set.
#
# **What you will learn**
# - what forgetting is and how to measure it: the speech test WER before and after
#   fine-tuning;
# - how to point stage 2 at Common Voice (`flamenco_lib.data.corpus.load_common_voice`), and
#   what stands in for it offline;
# - what a replay share is, and how a mixing weight in a config implements it;
# - to read the forgetting plot: cante WER against speech WER, one point per model.

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
common_voice: str = ""  # a Common Voice download folder (train.tsv, clips/) to look at; "": none

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
from flamenco_lib import grid, notebook, paths

ws = notebook.workspace(profile)  # smoke: FLAMENCO_DATA -> <data>/smoke (once); messages shown
# "auto" resolved; what the stages start from; overrides of the stage-1 configs; test clips per
# evaluation; corpora sizes
profile, MODEL, FROM_BASE, N_EVAL, SIZES = ws.profile, ws.model, ws.from_base, ws.n_eval, ws.sizes

# %% [markdown]
# Imports and the thesis figure style.

# %%
from pathlib import Path

import pandas as pd
from IPython.display import display

from flamenco_lib import analysis, pipeline, plotting, results, training
from flamenco_lib.data import stats
from flamenco_lib.data.corpus import load_common_voice

plotting.set_style()

# %% [markdown]
# The corpora come from notebook 05. So that this notebook also runs on its own (on a fresh
# clone, or in the smoke tests), any corpus that is missing is built here with the same call
# (`build_corpora`: 10-15 minutes for the real ones on 2 cores, seconds in the smoke profile).
# Corpora that exist are left as they are.

# %%
notebook.build_missing_corpora(SIZES)

# %% [markdown]
# Stage 2 starts from stage 1's final model (`model: data/checkpoints/stage1` in
# `configs/stage2.yaml`: a stage's output folder means its final model). Notebook 07 trained
# it; `pipeline.run_stage` only reads its saved summary when it is up to date, and trains it
# here when it is missing (so that this notebook also runs on its own).

# %%
pipeline.run_stage(grid.config_file("stage1"), profile=profile, overrides=FROM_BASE)

# %% [markdown]
# ## 1. Common Voice, and its offline stand-in
#
# Common Voice (Mozilla) is crowd-sourced read speech: thousands of Spanish speakers reading
# sentences aloud, with every accent and microphone, CC0. It comes as a folder with
# `train.tsv`, `dev.tsv`, `test.tsv` (the sentence and the clip of each recording) and
# `clips/*.mp3`. `load_common_voice(folder, split="train")` reads that folder (or, when the
# Hugging Face Hub is reachable, streams `mozilla-foundation/common_voice_17_0`) into rows of
# the manifest format: `id`, `audio`, `text`, `split`, `singer` (the speaker), `source`.
#
# To train stage 2 on it, write those rows as a manifest (`flamenco_lib.data.manifest.
# write_manifest`; `audio` relative to the manifest's folder) and make it the first source of
# `configs/stage2.yaml`, in place of `data/corpora/speech/manifest.jsonl`. Offline, and in
# this notebook, the stand-in is the real Spanish speech corpus: Debian's asterisk prompts,
# one es-MX speaker. One speaker and one style of prompt is far narrower than Common Voice,
# so its gains on its own test set are partly adaptation to that speaker (README, "Measured").
# Set `common_voice` to a download folder to look at the real thing.

# %%
if common_voice:
    cv = load_common_voice(common_voice, split="train", max_items=5)
    display(pd.DataFrame(cv.with_format(None)[:5]).drop(columns="audio_path"))
speech = stats.read_frame(paths.data_dir() / "corpora" / "speech" / "manifest.jsonl")
print(
    f"offline stand-in: {len(speech)} prompts, {speech['duration_s'].sum() / 3600:.2f} h, "
    f"speakers: {speech['singer'].nunique()}"
)
speech[["id", "text", "split", "duration_s"]].head()

# %% [markdown]
# ## 2. The replay share
#
# If stage 2 trained on speech alone, it would now forget the cante. So every batch mixes
# both: each slot of a batch draws a source with probability proportional to its `weight`
# (0.7 speech, 0.3 cante: the **replay share** of stage-1 data), then a clip of that source.
# Stage 2 trains fewer steps with a lower learning rate than stage 1: it should repair, not
# relearn. The config as this profile resolves it:

# %%
config = grid.config_file("stage2")
cfg = training.load_config(config, profile=profile)
print(
    f"starts from {cfg.model}\n{cfg.steps} steps of batch {cfg.batch_size}, lr {cfg.lr:g}, "
    f"cached_layers {cfg.cached_layers}"
)
for s in cfg.train:
    print(f"  {s.weight:.0%} of every batch from {Path(s.manifest).parent.name}/{s.split}")

# %% [markdown]
# One corpus, several voices: 74% of the Drascula training lines are the protagonist's. Drawn
# uniformly, a batch would mostly teach his voice. A source with `balance: singer` draws a
# character first, each equally often, then one of that character's lines
# (`training.batch_indices`); stages 2 and 3 draw the Drascula sources so (chosen on the dev
# speakers, section 6). What the stage's own batches draw, against each character's share of
# the lines:

# %%
sources, sizes = training.read_sources(cfg)
weights = [s.weight for s in cfg.train]
drawn = [
    pair
    for step in range(cfg.steps)
    for pair in training.batch_indices(cfg.seed, step, weights, sizes, cfg.batch_size)
]
for k, s in enumerate(cfg.train):
    if s.balance:
        rows = sources[k]
        shares = pd.DataFrame(
            {
                "share of the lines": pd.Series([r[s.balance] for r in rows]).value_counts(
                    normalize=True
                ),
                "share of the draws": pd.Series(
                    [rows[i][s.balance] for j, i in drawn if j == k]
                ).value_counts(normalize=True),
            }
        )
        print(f"{Path(s.manifest).parent.name} (balance: {s.balance})")
        display(shares.fillna(0).round(2))

# %% [markdown]
# ## 3. Training
#
# As in notebook 07, `pipeline.run_stage` trains the stage unless its saved run is up to
# date. Stage 2 freezes stage 1's conv stem and first two encoder layers (stage 1 trained them)
# and caches their output for the clips its batches draw, once: stage 3 starts from stage 2
# with the same frozen layers and reuses them. About 8 minutes in the `cpu` profile.

# %%
stage2 = pipeline.run_stage(config, profile=profile)
print(
    f"{stage2['trainable_params'] / 1e6:.1f} M parameters trained, {stage2['train_seconds'] / 60:.1f} min; "
    f"speech eval WER at the end {100 * stage2.get('eval_wer', float('nan')):.1f}%"
)

# %% [markdown]
# The training loss of stage 2. It starts from a model that already knows part of the mix
# (the replayed cante clips); the speech clips are new to it. Compare its first steps with
# stage 1's in notebook 07.

# %%
ax = plotting.plot_training_curve(
    [e for e in stage2["log"] if "loss" in e],
    x="step",
    y="loss",
    label="stage 2 (70% speech, 30% cante)",
    title="Stage 2: training loss",
)
plotting.savefig(
    ax.figure,
    "08-training-curve",
    caption=(
        "Training loss of stage 2 (speech with a 30% replay of stage-1 cante clips), starting from stage 1."
    ),
)

# %% [markdown]
# ## 4. Every test set
#
# Zero-shot, stage 1 and stage 2 on every test set (`results.evaluate_stages`, the first
# `N_EVAL` clips; runs that are up to date are kept).

# %%
rows = grid.stage_rows("zero-shot", "stage 1", "stage 2", profile=profile, base=MODEL)
results.evaluate_stages(rows, max_items=N_EVAL)
print(results.markdown(results.results_table(stages=rows)))

# %% [markdown]
# ## 5. The forgetting plot
#
# One point per model: its cante test WER on x, its speech test WER on y, with their 95%
# intervals; the arrows follow the training sequence. Moving **left** is learning cante;
# moving **up** is forgetting ordinary speech. Stage 1 should move far left, perhaps up;
# stage 2 should come down without moving right. (The spoken control is drawn too when it
# has been evaluated on both sets.)

# %%
forgetting = analysis.forgetting_table()
forgetting = forgetting[
    forgetting["model"].isin(["zero-shot", "stage 1", "stage 1, spoken control", "stage 2"])
]
ax = plotting.plot_forgetting(forgetting, title="Cante learnt against speech forgotten")
plotting.savefig(
    ax.figure,
    "08-forgetting",
    caption=(
        "Cante test WER against speech test WER (95% intervals) of zero-shot whisper-base, stage 1 and stage 2; "
        "arrows follow the training stages. Left is better cante, down is less forgetting."
    ),
)
forgetting.round(1)

# %% [markdown]
# The same in numbers: what stage 2 changed on each test set, relative to stage 1, and
# whether the change is larger than its uncertainty (the intervals do not overlap).

# %%
wer = analysis.runs_table().set_index(["model", "test_set"])
for key, _, _ in grid.TEST_SETS:
    a, b = wer.loc[("stage 1", key)], wer.loc[("stage 2", key)]
    apart = b.wer_hi < a.wer_lo or a.wer_hi < b.wer_lo
    print(
        f"{key:13s} stage 1 {a.wer:5.1f}% -> stage 2 {b.wer:5.1f}%  "
        f"({b.wer - a.wer:+.1f} points; intervals {'apart' if apart else 'overlap'})"
    )

# %% [markdown]
# ## 6. Voices it never heard: stages 2 and 3 on the dev speakers
#
# The speech test set above is the asterisk speaker, whose other prompts stage 2 trains on:
# mostly adaptation to one voice. The forgetting that matters is on speakers no model trains
# on: the Drascula dev characters, sung and as recorded (notebook 07, section 8, chose stage 1's
# recipe on them). `ablation.CHAIN_ABLATIONS` lists changes to stages 2 and 3 (how far they
# move, which layers, which speech they learn); `python -m flamenco_lib ablate --chain` trains
# each from the project's stage 1 (about 7 minutes on 2 cores) and scores its final model
# beside the configs' stages 1-3. The notebook only reads those results (training them is not
# part of `make report`); the README gives the table with its paired intervals. On the dev
# speakers stage 2 gave back part of stage 1's gain on both real-voice sets. Drawing the
# Drascula characters equally often (section 2) moved every dev set the right way, within
# noise, and the configs do so since; no change tried brought the real speech back to stage
# 1's level: the offline stand-in for Common Voice is two narrow kinds of text from five
# speakers. Moving stage 3's final weights back a fifth of the way to whisper-base's
# (`wise_ft: {model: base, alpha: 0.8}` in a config, a weight-space ensemble) gave it back, on
# these dev speakers and on the test speakers, but took with it what stage 3 learnt from the
# previous line (notebook 09's grid), and so did its decoder moved back alone, on the dev
# verses; stage 2 moved back toward whisper-base cost the sung voices, and moved halfway back
# toward stage 1 it helped every dev set a little (within noise) but left stage 3 less to learn
# from the previous line: not adopted (README, "Real voices").

# %%
from flamenco_lib import ablation

ablation.show_dev_runs(
    ablation.chain_runs(),
    name="08-chain-ablations",
    title="Stages 2 and 3 on the dev sets (speakers no model trains on)",
    caption=(
        "Dev WER (%) of zero-shot whisper-base, the configs' stages 1-3 and stage 3 after each change to "
        "stages 2 and 3: synthetic cante dev lyrics, the Drascula dev speakers sung and as recorded, "
        "with 95% intervals."
    ),
    message="no chain ablation results yet: run `python -m flamenco_lib ablate --chain` (about 40 minutes on 2 cores)",
)

# %% [markdown]
# ## Summary
#
# - Forgetting is measured, not assumed: the speech test WER of each model next to its cante
#   WER, in one plot.
# - Stage 2 continues from stage 1 on general Spanish speech with a replay share of cante
#   clips; the share is just a mixing weight in the config.
# - With Common Voice, stage 2 sees thousands of speakers; offline, the asterisk prompts are
#   a single speaker, so their test set overstates what stage 2 gains on general Spanish.
# - On speakers no model trains on (the dev characters) stage 2 costs real speech a few
#   points instead of repairing it; section 6 reads the changes tried against that.
#
# **Exercises**
# 1. Train stage 2 without replay (`overrides={"train": [the speech source only], "output_dir":
#    "data/checkpoints/stage2-noreplay"}`) and put its point on the forgetting plot: how far
#    right does it move?
# 2. Stage 2 trains on the asterisk speaker only. Compare what it does to `speech` (her other
#    prompts) and to `real_speech` (speakers it never heard): which one is forgetting measured on?
# 3. With a Common Voice download, build its manifest and train stage 2 on it: is the speech
#    test set of the asterisk corpus still the right forgetting check?
