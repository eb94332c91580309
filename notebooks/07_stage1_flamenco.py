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
# # 07 · Stage 1: fine-tuning on cante
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/cante-to-text/cante-to-text/blob/main/notebooks/07_stage1_flamenco.ipynb)
#
# Stage 1 fine-tunes whisper-base on the flamenco corpus: the sung clips of the training
# split, with their guitar and palmas (offline, the synthetic cante of notebook 05; with a
# real corpus, its manifest), mixed with real voices sung by the same transform (the training
# speakers of the real speech corpora), so that the model learns singing rather than the
# generator's voices. A second model, the **spoken control**, is trained exactly the same way
# on the same clips and voices *spoken*. Both are then evaluated on every test set next to
# zero-shot Whisper (notebook 06). (The control costs as much as stage 1: the `cpu` profile
# leaves it out unless `spoken_control=True`; the README gives its numbers and the command.)
#
# **What you will learn**
# - why, on a CPU, the lower encoder layers are frozen and their output cached
#   (`cached_layers`), and what that costs in quality;
# - what a stage config holds and how to run it (`python -m flamenco_lib train --config ...`);
# - to read a training curve;
# - how much stage 1 gains, measured two ways: the relative WER cut from zero-shot, and the
#   sung test set against zero-shot Whisper on the same clips spoken;
# - what the spoken control separates: learning the voices and the lyrics' words, or learning
#   to hear singing;
# - how a training recipe is chosen on dev speakers (the ablations), and whether the gain
#   reaches real voices the model never heard.

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
n_examples: int = 3  # test clips whose transcripts are shown before and after stage 1
spoken_control: bool | None = None  # train the spoken control; None: the profile's (not on cpu)

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
#
# `CONTROL` says whether this run trains the spoken control: `ws.spoken_control` (the
# profile's choice: yes in `smoke` and `gpu`; no in `cpu`, where its 90 steps would add 15
# minutes to a 2-core `make report`) unless the parameter `spoken_control` says otherwise
# (`python -m flamenco_lib report --spoken-control`, or `make report SPOKEN_CONTROL=1`).

# %%
from flamenco_lib import grid, models, notebook

ws = notebook.workspace(profile)  # smoke: FLAMENCO_DATA -> <data>/smoke (once); messages shown
# "auto" resolved; what the stages start from; overrides of the stage-1 configs; test clips per
# evaluation; corpora sizes
profile, MODEL, FROM_BASE, N_EVAL, SIZES = ws.profile, ws.model, ws.from_base, ws.n_eval, ws.sizes
CONTROL = ws.spoken_control if spoken_control is None else spoken_control
print(f"profile {profile}: the spoken control is {'trained' if CONTROL else 'left out'}")

# %% [markdown]
# Imports and the thesis figure style.

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from flamenco_lib import analysis, pipeline, plotting, results, training
from flamenco_lib.data import stats

plotting.set_style()

# %% [markdown]
# The corpora come from notebook 05. So that this notebook also runs on its own (on a fresh
# clone, or in the smoke tests), any corpus that is missing is built here with the same call
# (`build_corpora`: 10-15 minutes for the real ones on 2 cores, seconds in the smoke profile).
# Corpora that exist are left as they are.

# %%
notebook.build_missing_corpora(SIZES)

# %% [markdown]
# ## 1. Why cache the lower encoder layers
#
# A training step runs the encoder over 30 s of log-Mel features per clip (1500 frames through
# 6 layers of whisper-base), then the decoder, then the backward pass through both. A frozen
# layer needs no backward pass and no optimiser update; and since it gives the same output
# every epoch, its output can be computed once and cached on disk, which saves its forward
# pass too. Freezing is cheap, but what is frozen does not learn: a probe reported in
# `configs/README.md` found that adapting the encoder is what counts for singing (the decoder
# alone, or with the top two encoder layers, stayed far behind the top four with it).
#
# With `cached_layers: 2` the conv stem and the first two encoder layers are frozen, and their
# output (1500 x 512 numbers per clip) is computed once and cached (`data/cache/activations/`).
# Each step then starts at layer 2: four encoder layers and the decoder train, for less than a
# full step costs. Stages 2 and 3 of the `cpu` profile do that. Stage 1, which moves the model
# furthest, trains everything (`cached_layers: 0`, as the `gpu` profile does) on every profile
# but the smoke one: chosen on the dev sets (section 8's ablations), where training layers 0-1
# too gained 4.5 points of synthetic cante and 6.4 of the real voices sung, for a step about
# 1.5 times as long.
#
# What a step costs is measured here, on this machine, with this profile's model
# (`notebook.step_costs`): for `cached_layers` 0, 2 and 4, a warm-up step and then two timed
# steps of one batch (random inputs of the right shape, the labels of real lyrics, AdamW, in the
# precision the stage trains in: `precision: auto`). A batch of 2 on a CPU (well under a
# minute in all), 8 on a GPU; the smoke profile times a single step of one clip, only to show
# that the cell works.

# %%
TIMING = {  # the batch per profile; 2 timed steps after 1 warm-up, unless said
    "smoke": dict(batch_size=1, steps=1, warmup=0),
    "cpu": dict(batch_size=2),
    "gpu": dict(batch_size=8),
}
cost = notebook.step_costs(MODEL, cached_layers=(0, 2, 4), **TIMING[profile])
setting = "batch {batch_size}, {precision}, {device}, {threads} threads".format(**cost.attrs)
ax = plotting.plot_wer_bars(
    cost,
    x="trains",
    y="seconds per step",
    percent=False,
    title=f"Cost of a training step ({setting})",
)
plotting.savefig(
    ax.figure,
    "07-step-costs",
    caption=(
        f"Seconds per training step of {Path(MODEL).name}, measured when notebook 07 ran ({setting}): everything "
        "trained (cached_layers 0), and the first 2 or 4 encoder layers frozen with their output cached."
    ),
)
cost.round(2)

# %% [markdown]
# How many of whisper-base's parameters train for each value of `cached_layers`
# (`training.freeze_lower`, the function `train_stage` calls): the encoder layers are small
# next to the decoder, whose token embedding alone (51,865 x 512) holds 26.6 M parameters.

# %%
base_model, _ = models.load_whisper(MODEL)
trainable = {k: training.freeze_lower(base_model, k) for k in (0, 2, 4, 6)}
pd.DataFrame(
    {
        "cached_layers": list(trainable),
        "trainable (M)": [t / 1e6 for t, _ in trainable.values()],
        "share": [f"{t / n:.0%}" for t, n in trainable.values()],
    }
).round(1)

# %% [markdown]
# ## 2. The stage configs
#
# A stage is one YAML file in `configs/` (every key is checked; `configs/README.md` lists
# them): the model it starts from, the training sources with their mixing weights, the
# optimiser and its schedule, steps, batch, precision, `cached_layers`, evaluation and the
# output folder, with overrides per profile. `configs/stage1.yaml` trains on the sung cante
# corpus (55% of the batch slots), real voices sung (30%: `cante-drascula-wide` and
# `cante-real-wide`, the training speakers sung with a wider range of vocal tracts than the
# generator's) and the same voices as recorded (15%); `configs/stage1_spoken.yaml` is the same file pointed at `cante-spoken` and
# the same real voices as recorded. Both are evaluated during training on the *sung* dev clips. Here
# they are as this profile resolves them (the smoke profile: 4 steps of batch 2 on 8 clips, just
# enough to run every line; the control only when `CONTROL`).

# %%
CONFIGS = {"stage 1": grid.config_file("stage1")}
if CONTROL:
    CONFIGS["stage 1, spoken control"] = grid.config_file("stage1_spoken")
for row, path in CONFIGS.items():
    cfg = training.load_config(path, profile=profile, overrides=FROM_BASE)
    print(
        f"{row} ({path.name}): {cfg.steps} steps of batch {cfg.batch_size}, lr {cfg.lr:g} ({cfg.schedule}), "
        f"cached_layers {cfg.cached_layers}, {cfg.precision}"
    )
    for s in cfg.train:
        print(
            f"  trains on {Path(s.manifest).parent.name}/{s.split} (weight {s.weight}, max_items {s.max_items})"
        )
    print(f"  -> {cfg.output_dir}")

# %% [markdown]
# ## 3. Training
#
# `pipeline.run_stage` trains a stage unless its saved run is up to date: when the final
# model and `train_log.json` are newer than the config, every manifest it reads and the model
# it starts from, and the settings are the same, it only reads the saved summary (rerunning
# this notebook costs nothing). An interrupted run resumes from its last checkpoint; a stage
# whose inputs changed trains again from the start. It prints which it did and why. The same
# from a terminal: `python -m flamenco_lib train --config configs/stage1.yaml [--resume]`.
#
# In the `cpu` profile stage 1 takes 10-16 minutes on 2 cores with native bf16 (90 steps of
# batch 8, every layer trained: 6.9 to 10.6 s per step on the same kind of AMD EPYC on two
# days); in the smoke profile, seconds.

# %%
summaries = {
    row: pipeline.run_stage(path, profile=profile, overrides=FROM_BASE)
    for row, path in CONFIGS.items()
}
for row, s in summaries.items():
    print(
        f"{row}: {s['trainable_params'] / 1e6:.1f} M of {s['total_params'] / 1e6:.1f} M parameters trained, "
        f"{s['train_seconds'] / 60:.1f} min; eval WER at the end {100 * s.get('eval_wer', float('nan')):.1f}%"
    )

# %% [markdown]
# ## 4. Training curves
#
# The mean training loss (cross-entropy per label token) every `log_every` steps, from each
# stage's `train_log.json`. It should fall fast in the first steps (the model learns the
# voices, the accompaniment and the lyrics' vocabulary) and then flatten as the learning rate
# decays linearly to zero. The control's loss is measured on spoken clips, which are easier,
# so the two curves do not compare the models on the same task: the test sets below do that.

# %%
fig, ax = plt.subplots(figsize=(7, 3))
plotting.plot_training_losses(
    summaries,
    ax=ax,
    title="Stage 1 and the spoken control: training loss" if CONTROL else "Stage 1: training loss",
)
plotting.savefig(
    fig,
    "07-training-curves",
    caption=(
        "Training loss (cross-entropy per label token) of stage 1 on sung clips"
        + (" and of the spoken control on the same clips spoken." if CONTROL else ".")
    ),
)

# %% [markdown]
# ## 5. Every test set
#
# Both models, and the zero-shot baseline of notebook 06, on the first `N_EVAL` clips of every
# test set, with the same runner, normaliser and decoding (`results.evaluate_stages`; runs
# that are up to date are kept). The rows are those of `flamenco_lib.grid.STAGES`, so the
# results are the files notebook 10 reads. The spoken control is evaluated on the *sung* test
# set, the question it answers, and on the same clips spoken (its own kind of clip) only.

# %%
rows = grid.stage_rows(
    "zero-shot",
    "stage 1",
    *(["stage 1, spoken control"] if CONTROL else []),
    profile=profile,
    base=MODEL,
)
results.evaluate_stages(rows, max_items=N_EVAL)
print(results.markdown(results.results_table(stages=rows)))

# %% [markdown]
# The same as bars, one colour per test set. Read it test set by test set: did stage 1
# improve the cante test set, by how much, and did it cost anything on the speech test set
# (what notebook 08 calls forgetting)? Did it help the real voices it never heard, sung
# (`real_sung`) and spoken (`real_speech`)?

# %%
runs = analysis.runs_table()
runs = runs[runs["model"].isin([label for label, *_ in rows])]
fig, ax = plt.subplots(figsize=(9, 3.4))
models_shown = "zero-shot whisper-base, stage 1" + (" and the spoken control" if CONTROL else "")
plotting.plot_stage_comparison(runs, ax=ax, title=models_shown.capitalize())
plotting.savefig(
    fig,
    "07-stages",
    caption=f"WER (%) of {models_shown} on every test set, with 95% intervals.",
)

# %% [markdown]
# ## 6. Two yardsticks, and what the control shows
#
# Stage 1 is measured against zero-shot Whisper in two ways:
#
# 1. the **relative cut** of the cante test WER, (zero-shot - stage 1) / zero-shot;
# 2. stage 1 on the **sung** clips against zero-shot Whisper on the **same clips spoken**: has
#    the fine-tuned model made singing as easy as speech was for the original?
#
# The spoken control then splits the gain in two. It learnt the voices, the recording
# conditions and the lyrics' words, but never heard singing: zero-shot → control is what
# that much is worth on the sung test set; control → stage 1 is what hearing the singing in
# training added. A gap counts when the intervals do not overlap. (Without the control, as on
# `cpu` by default, the bars and lines about it are left out; the README gives its numbers.)

# %%
wer = analysis.runs_table().set_index(["model", "test_set"])[["wer", "wer_lo", "wer_hi"]]
BARS = {
    "zero-shot, spoken clips": ("zero-shot", "cante_spoken"),
    "zero-shot": ("zero-shot", "cante"),
    **({"spoken control": ("stage 1, spoken control", "cante")} if CONTROL else {}),
    "stage 1": ("stage 1", "cante"),
}
bars = pd.DataFrame([{"system": name, **wer.loc[key]} for name, key in BARS.items()])
ax = plotting.plot_stage_comparison(
    bars, x="system", hue=None, title="Sung cante test set (first bar: the same clips spoken)"
)
plotting.savefig(
    ax.figure,
    "07-vs-zero-shot",
    caption=(
        f"Cante test WER (%) of zero-shot whisper-base{', the spoken control' if CONTROL else ''} and stage 1, "
        "next to zero-shot on the same clips spoken, with 95% intervals."
    ),
)

zs, s1, spoken = (
    wer.loc[BARS[name]] for name in ("zero-shot", "stage 1", "zero-shot, spoken clips")
)
print(f"1. relative cut: {100 * (zs.wer - s1.wer) / zs.wer:.0f}% ({zs.wer:.1f}% -> {s1.wer:.1f}%)")
apart = s1.wer_hi < spoken.wer_lo or spoken.wer_hi < s1.wer_lo
print(
    f"2. stage 1 sung {s1.wer:.1f}% vs zero-shot spoken {spoken.wer:.1f}%: "
    f"{'lower' if s1.wer < spoken.wer else 'not lower'}, intervals {'apart' if apart else 'overlap'}"
)
if CONTROL:
    control = wer.loc[BARS["spoken control"]]
    print(
        f"the control: voices and words {zs.wer:.1f}% -> {control.wer:.1f}%, singing {control.wer:.1f}% -> {s1.wer:.1f}%"
    )

# %% [markdown]
# ## 7. Before and after
#
# The same test clips transcribed by zero-shot Whisper, the spoken control (when trained) and
# stage 1, next to what was sung. Which errors disappear first: the words of the lyrics' vocabulary, the
# quejíos, the repeated lines? Change `seed` to draw other clips.

# %%
RUNS = {
    "zero-shot": "zero-shot",
    **({"control": "stage 1, spoken control"} if CONTROL else {}),
    "stage 1": "stage 1",
}
said = stats.compare_styles(
    {name: results.run_dir(row, "cante") / "predictions.jsonl" for name, row in RUNS.items()},
    fields=("hypothesis",),
    keep=("reference", "palo"),
)
for row in said.sample(min(n_examples, len(said)), random_state=seed).itertuples(index=False):
    print(f"[{row.id}, {row.palo}]\n  {'what is sung':10s}  {row.reference}")
    for name, hyp in zip(RUNS, row[3:], strict=True):
        print(f"  {name:10s}  {hyp}")
    print()

# %% [markdown]
# ## 8. Real voices: what makes the gain transfer
#
# A model trained on the generator's voices alone learns those voices: on real voices it never
# heard, sung by the same transform, it gains little (the first ablation below). Stage 1
# therefore also trains on the real voices of the *training* speakers sung (the asterisk
# speaker and four Drascula characters); the test speakers are three other characters. Which
# recipe to use was chosen one change at a time on the **dev** speakers (three more Drascula
# characters), never on the test sets: the share of real voices in the batches, real speech
# replayed as in stage 2, how far the model moves (learning rate, the layers trained, LoRA
# adapters), a wider range of vocal tracts for the training speakers (the transform's formant
# shift, `data synth --formant-min/--formant-max`), the speaking rate (speed perturbation,
# `speed_perturb` in a stage config), and SpecAugment masks on the log-Mel features
# (`spec_augment`). Stages 2 and 3 are read on the same dev sets in notebook 08, section 6.
#
# `ablation.ABLATIONS` lists the changes; `python -m flamenco_lib ablate` trains each (about
# 10 minutes on 2 cores) into `data/checkpoints/ablations/` and scores it on the dev sets.
# The notebook only reads those results (training them is not part of `make report`); the
# README shows the table of the thesis with the command that produced it.

# %%
from flamenco_lib import ablation

ablation.show_dev_runs(
    ablation.ablation_runs(),
    name="07-ablations",
    title="Stage-1 ablations on the dev sets (speakers no model trains on)",
    caption=(
        "Dev WER (%) of zero-shot whisper-base and of each stage-1 ablation: synthetic cante dev lyrics, "
        "the Drascula dev speakers sung and as recorded, with 95% intervals."
    ),
    message="no ablation results yet: run `python -m flamenco_lib ablate` (about an hour on 2 cores)",
)

# %% [markdown]
# ## Summary
#
# - On 2 CPU cores, freezing the conv stem and the first two encoder layers and caching their
#   output makes a step cheaper (section 1 measures by how much, on this machine) while four
#   encoder layers still adapt to the singing; stages 2 and 3 do that, while stage 1 trains
#   everything, as the GPU profile does: on the dev sets the lower layers learn the singing too.
# - `pipeline.run_stage` trains a stage once and reuses it while its config, data and
#   starting model are unchanged; an interrupted run resumes.
# - Stage 1 is judged by the relative cut of the cante WER and against zero-shot Whisper on
#   the same clips spoken; the spoken control splits its gain into learning the voices and
#   words, and learning the singing.
# - Whatever stage 1 costs on ordinary speech is the subject of notebook 08.
#
# **Exercises**
# 1. Train stage 1 with `cached_layers: 4` (`overrides={**FROM_BASE, "cached_layers": 4,
#    "output_dir": "data/checkpoints/stage1-k4"}`): how much faster is a step, and how much
#    worse is the cante WER (evaluate it with `evaluation.evaluate_manifest`)?
# 2. Is stage 1 better on the seen voices than on the held-out one (the table's last two
#    columns)? Compare that gap with zero-shot's (notebook 06, section 3).
# 3. The control never heard singing yet improves the sung test set. List three things it
#    could have learnt from spoken clips that help with sung ones.
# 4. Train the ablation "synthetic only" (`python -m flamenco_lib ablate "synthetic only"`) and
#    compare it with stage 1 on `real_sung`: what does the difference say about what a model
#    trained on the generator's voices alone learns, singing or the voices?
