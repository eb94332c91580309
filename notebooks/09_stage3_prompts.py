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
# # 09 · Stage 3: prompts
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/cante-to-text/cante-to-text/blob/main/notebooks/09_stage3_prompts.ipynb)
#
# Whisper was trained with the text of the previous 30-second window in front of the current
# one, so that a long recording is transcribed consistently. That slot can hold any text: a
# **prompt**. A prompt helps when it holds what the audio leaves ambiguous: a genre label or a
# bag of words adds little. Flamenco has two strong sources: cante builds a copla line by line
# and repeats lines, so **the line just sung** predicts much of the next; and singers mostly
# sing traditional letras that collections print, so **a lyrics catalogue** may hold the
# very copla being sung. Stage 3 fine-tunes the model to use both, one at a time. A variant
# learns the prompt itself: 16 free vectors in the same slot (a **soft prompt**), with every
# weight of the model frozen.
#
# **What you will learn**
# - the prompt layout `<|startofprev|> prompt <|startoftranscript|><|es|><|transcribe|><|notimestamps|> text <|endoftext|>`,
#   and why the prompt is masked out of the loss;
# - that the layout used in training is, token for token, what `generate(prompt_ids=...)`
#   feeds the decoder at inference;
# - why the prompt is dropped some of the time in training, and a wrong copla sometimes given;
# - how a soft prompt trains 0.01% of the parameters;
# - the catalogue prompt: transcribe, search the lyrics, decode again with the letra found;
# - to judge a prompt: the same lines decoded with every kind of prompt, with controls (a copla
#   not in the catalogue, a wrong copla) that show whether the model reads the prompt.

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
soft_prompt: bool | None = None  # train the soft prompt; None: the profile's (not on cpu)

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
from flamenco_lib import grid, models, notebook

ws = notebook.workspace(profile)  # smoke: FLAMENCO_DATA -> <data>/smoke (once); messages shown
# "auto" resolved; what the stages start from; overrides of the stage-1 configs; test clips per
# evaluation; corpora sizes
profile, MODEL, FROM_BASE, N_EVAL, SIZES = ws.profile, ws.model, ws.from_base, ws.n_eval, ws.sizes

# %% [markdown]
# `SOFT` says whether this run trains the soft prompt of section 2: `ws.soft_prompt` (the
# smoke and gpu profiles train it; the cpu profile leaves it out, 5.5 of a 2-core report's
# minutes for a row within noise of stage 2: the README gives its numbers) unless the parameter
# `soft_prompt` says otherwise (`python -m flamenco_lib report --soft-prompt`, or
# `make report SOFT_PROMPT=1`).

# %%
SOFT = ws.soft_prompt if soft_prompt is None else soft_prompt
print(f"profile {profile}: the soft prompt is {'trained' if SOFT else 'left out'}")

# %% [markdown]
# Imports and the thesis figure style.

# %%
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from flamenco_lib import analysis, pipeline, plotting, prompts, results, training
from flamenco_lib import audio as A
from flamenco_lib.data.lyrics import default_lyrics, read_lyrics
from flamenco_lib.data.manifest import read_manifest
from flamenco_lib.paths import data_dir, report_dir

plotting.set_style()

# %% [markdown]
# The corpora come from notebook 05. So that this notebook also runs on its own (on a fresh
# clone, or in the smoke tests), any corpus that is missing is built here with the same call
# (`build_corpora`: 10-15 minutes for the real ones on 2 cores, seconds in the smoke profile).
# Corpora that exist are left as they are.

# %%
notebook.build_missing_corpora(SIZES)

# %% [markdown]
# Stage 3 starts from stage 2, which starts from stage 1 (notebooks 07 and 08).
# `pipeline.run_stage` only reads their saved summaries when they are up to date, and trains
# them here when they are missing, so that this notebook also runs on its own.

# %%
pipeline.run_stage(grid.config_file("stage1"), profile=profile, overrides=FROM_BASE)
pipeline.run_stage(grid.config_file("stage2"), profile=profile)
cfg = training.load_config(grid.config_file("stage3"), profile=profile)
print(
    "stage 3 starts from",
    cfg.model,
    "| prompt kinds:",
    cfg.prompt_kinds,
    "| dropped with p =",
    cfg.prompt_drop,
)

# %% [markdown]
# ## 1. The prompt layout
#
# A prompt is built per clip from the kinds `flamenco_lib.prompts` knows: the palo ("Soleá."),
# a **lexicon** (the most frequent content words of the *training* lyrics, never the test
# ones), the **previous** line sung in the same recording, and the **catalogue**'s letra.
# The config trains `prompt_kinds: [previous, catalogue]`, one kind per example
# (`prompt_pick: one`). Verses, one sung line each with the line before it and the copla it
# comes from, are the lines of the synthetic songs (notebook 11 sings them whole). Here is one
# verse, its two prompts, and the decoder's input and labels that `training.collate_labels`
# builds from the catalogue prompt (Whisper's tokens decoded one by one; a space belongs to
# the token after it).
#
# The decoder is trained to predict each next token, so the labels are the inputs shifted
# left by one. Positions that would predict a prompt token, or `<|startoftranscript|>`, have
# the label -100, which PyTorch's cross-entropy ignores: the model reads the prompt but is
# never trained to *write* it. The loss starts at `<|es|>`, exactly as without a prompt.

# %%
model, processor = models.load_whisper(cfg.model)  # stage 2's final model
tok = processor.tokenizer
train = [r for r in read_manifest(cfg.train[0].manifest) if r["split"] == "train"]
words = prompts.lexicon([r["text"] for r in train if r.get("palo")], size=cfg.lexicon_size)
letras = {c.id: c.text for c in read_lyrics(default_lyrics())}  # the catalogue: coplas.tsv
verses = read_manifest(data_dir() / "corpora" / "songs" / "manifest.jsonl")
verses = [r for r in verses if r["split"] != "test" and r["previous_text"]]  # never a test line
example = verses[seed % len(verses)]
prompt = prompts.build_prompt(copla=letras[example["copla_id"]])
print(f"catalogue prompt: {prompt}")
print(f"previous prompt:  {prompts.build_prompt(previous=example['previous_text'])}")
print(f"label:            {example['text']}")

batch = training.collate_labels(tok, [example["text"]], prompts=[prompt])
inputs, labels = batch["decoder_input_ids"][0].tolist(), batch["labels"][0].tolist()
layout = pd.DataFrame(
    {
        "decoder input": [tok.decode([t]) for t in inputs],
        "label": ["-100 (no loss)" if t == -100 else tok.decode([t]) for t in labels],
    }
)
n_prompt = len(prompts.prompt_token_ids(tok, prompt))  # <|startofprev|> and the prompt's tokens
print(
    f"{len(layout)} positions; the first {n_prompt + 1} have no loss (the prompt, then <|startoftranscript|>)"
)
display(pd.concat([layout.head(4), layout.iloc[n_prompt - 2 : n_prompt + 6], layout.tail(2)]))

# %% [markdown]
# At inference, `model.generate(features, prompt_ids=processor.get_prompt_ids(prompt))`
# builds the same layout by itself. The proof: `prompts.generate_decoder_input` listens to the
# decoder with a forward pre-hook while `generate` runs, and returns every token the decoder
# was fed. It must be the training layout: the same prompt and task tokens in the same
# places, then the text, here the tokens the model wrote itself (in training, the label's:
# teacher forcing). Otherwise the model would be trained on one layout and used on another.
# The comparison is by token ids: decoding the text and encoding it again may split a word
# differently (tests/test_prompts.py checks the same on real speech).

# %%
audio = A.load_audio(example["audio_path"], start=example["start"], end=example["end"])
features = processor.feature_extractor(
    audio, sampling_rate=A.SAMPLE_RATE, return_tensors="pt"
).input_features
fed, out = prompts.generate_decoder_input(
    model, processor, features.to(model.device, model.dtype), prompt=prompt
)
head = n_prompt + len(training.prefix_ids(tok))  # the prompt, then the 4 task tokens
print("generate wrote:", tok.decode(out, skip_special_tokens=True))
print(
    "training layout == what generate fed the decoder, token for token:",
    fed == inputs[:head] + out[: len(fed) - head],
)

# %% [markdown]
# ## 2. Training with prompts, and with a soft prompt
#
# `configs/stage3.yaml` trains like stage 1 (same frozen layers), on 70% cante (whole coplas,
# the verses of the training songs, the real voices sung) and 30% speech, which gets no prompt.
# A cante clip or verse gets one kind of prompt, drawn among those it has: its copla
# (`catalogue`; in 30% of those a **near miss**, another copla of the same palo, the search's
# typical mistake, so that the model learns to ignore a wrong letra) or the line sung before it
# (`previous`). The prompt is **dropped with probability 0.3** (`prompt_drop`): Whisper itself
# was trained with and without previous text, and a model that only ever saw prompts would
# depend on them.
#
# `configs/stage3_soft.yaml` freezes the whole model and trains only `k` vectors in the prompt
# slot, started from the embeddings of the lexicon's last tokens (`flamenco_lib.soft_prompt`).
# The encoder is frozen too, so all six layers are cached and a step runs the decoder only.
# The vectors are saved as `soft_prompt.pt` in the model folder, and the evaluation runner
# decodes with them whenever it finds that file.

# %%
CONFIGS = {"stage 3": grid.config_file("stage3")}
if SOFT:
    CONFIGS["stage 3, soft prompt"] = grid.config_file("stage3_soft")
summaries = {row: pipeline.run_stage(path, profile=profile) for row, path in CONFIGS.items()}
for row, s in summaries.items():
    print(
        f"{row}: {s['trainable_params']:,} of {s['total_params']:,} parameters trained "
        f"({100 * s['trainable_params'] / s['total_params']:.2g}%), {s['train_seconds'] / 60:.1f} min"
    )

# %% [markdown]
# The training losses. The soft prompt moves about 0.01% of the parameters, with a far larger
# learning rate (5e-3 against 2e-5): its loss can only fall as far as a better prompt for the
# same frozen model allows.

# %%
fig, ax = plt.subplots(figsize=(7, 3))
plotting.plot_training_losses(summaries, ax=ax, title="Stage 3: training loss")
plotting.savefig(
    fig,
    "09-training-curves",
    caption=(
        "Training loss of stage 3 with text prompts (dropped 30% of the time)"
        + (" and of the soft prompt (the model frozen), both" if SOFT else ",")
        + " starting from stage 2."
    ),
)

# %% [markdown]
# ## 3. Stage 3 on the test sets
#
# Before any prompt: is stage 3, decoded **without** one, still as good as stage 2? It trained
# with a prompt most of the time, and a model that learned to lean on its prompt could be worse
# without it. The rows of `flamenco_lib.grid.STAGES`: stage 2 and stage 3 on the cante test
# set, the held-out speakers sung and spoken, and the speech set (the forgetting check); the
# soft prompt, which is always there, on the speech set: does it cost ordinary Spanish? The
# prompts themselves are compared in section 4, on lines that have a line before them and a
# copla.

# %%
rows = grid.stage_rows(
    "stage 2", "stage 3", *(["stage 3, soft prompt"] if SOFT else []), profile=profile, base=MODEL
)
results.evaluate_stages(rows, max_items=N_EVAL)
print(results.markdown(results.results_table(stages=rows)))

# %% [markdown]
# The intervals of two rows overlap, but that alone does not settle it: every model finds the
# same clips hard. The paired bootstrap (notebook 10 explains it) scores two models on the
# same resampled clips; the interval of their difference says whether stage 3 really changes
# the WER.

# %%
evaluated = {label for label, *_ in rows}
paired = analysis.paired_table(
    [p for p in analysis.PAIRS if p[0] in evaluated and p[1] in evaluated]
)
print(analysis.NO_RESULTS if paired.empty else paired.round(2).to_string(index=False))

# %% [markdown]
# ## 4. Prompts that carry information: the line before, and the catalogue
#
# The grid of `flamenco_lib.grid.PROMPT_GRID`, on the **verses** of the test songs (their
# coplas are test coplas: never trained on), every row the same lines decoded another way:
#
# - stage 2 and stage 3 without a prompt, then stage 3 with the palo, with the lexicon;
# - **previous, own**: each song's lines decoded in order, each prompted with the model's own
#   transcript of the line before (Whisper's `condition_on_previous_text`); **previous,
#   true**: the line actually sung before it, an upper bound;
# - **catalogue, copla in**: two passes. The first transcribes without a prompt; its
#   transcript searches the catalogue (`coplas.tsv`, rapidfuzz's `token_set_ratio`,
#   `flamenco_lib.catalogue`), and the second pass decodes with the letra found as the prompt;
# - **catalogue, copla out**: the same with the test coplas removed from the catalogue, what a
#   singer of new lyrics gets: the letra found is always a wrong one;
# - **mismatched copla**: a random other copla as the prompt, the control that shows whether
#   the model reads its prompt or takes any text as a hint;
# - the soft prompt (when `SOFT`).
#
# The same call from the command line, e.g. the catalogue row:
# `python -m flamenco_lib evaluate --model data/checkpoints/stage3/final --manifest
# data/corpora/songs/manifest.jsonl --split test --prompt-kinds catalogue`
# (`--leave-out-evaluated` for the copla out, `--mismatched` for the control,
# `--prompt-kinds previous --previous own`).

# %%
N_VERSES = N_EVAL if profile == "smoke" else None  # every test verse (about 140 lines on cpu)
prompt_rows = [
    row
    for row in grid.stage_rows(profile=profile, table=grid.PROMPT_GRID)
    if SOFT or row[0] != "stage 3, soft prompt"
]
results.evaluate_stages(prompt_rows, grid.VERSES, max_items=N_VERSES)
prompt_grid = analysis.prompt_grid_table()
prompt_grid.round(1)

# %% [markdown]
# `top1`/`top5`: the share of lines whose copla the first pass found first / among the five
# best (copla in the catalogue). Each row paired against stage 2 without a prompt, and each
# prompt against stage 3 without one: the difference in WER points with its paired 95%
# bootstrap interval (left of zero: fewer errors).

# %%
prompt_pairs = analysis.paired_table(analysis.PROMPT_PAIRS)
notebook.show_or_explain(
    prompt_pairs,
    lambda table: plotting.plot_differences(
        table, title="Verses of the test songs: each prompt against stage 2 and stage 3"
    ),
    name="09-prompt-grid",
    caption=(
        "WER difference (points) with paired 95% intervals on the verses of the test songs: every "
        "row of the prompt grid against stage 2 without a prompt (top), and each prompt against "
        "stage 3 without one (bottom)."
    ),
)
out = report_dir() / "tables"
out.mkdir(parents=True, exist_ok=True)
prompt_grid.to_csv(out / "prompt_grid.csv", index=False)
grid_md = [  # a row without a search has no top-1/top-5: to_markdown leaves the cell empty
    results.to_markdown(t.round(2)) for t in (prompt_grid, prompt_pairs) if not t.empty
]
(out / "prompt_grid.md").write_text("\n\n".join(grid_md) + "\n", encoding="utf-8")
prompt_pairs.round(2)

# %% [markdown]
# Read it from the controls up. A model that reads its prompt gets better with the right copla
# and no worse with a wrong one (mismatched, copla out); a model that took any text as a hint
# would move with all three. The previous line carries less: the next line of a copla is not
# written in the one before, only its words and rhyme are nearer.

# %% [markdown]
# ## Summary
#
# - A prompt goes into Whisper's previous-text slot: `<|startofprev|>` prompt, then the usual
#   `<|startoftranscript|><|es|><|transcribe|><|notimestamps|>` and the text. In training it
#   is masked out of the loss (-100) and sometimes dropped; at inference
#   `generate(prompt_ids=...)` feeds the decoder exactly the layout used in training.
# - A prompt helps only if it carries what the audio leaves open: stage 3 trains with the copla
#   of a lyrics catalogue (sometimes a near miss) and with the line sung before, one kind per
#   example; the palo and a lexicon are the weak prompts it is compared with. The soft prompt
#   learns 16 vectors for the same slot with the model frozen.
# - A prompt is judged by decoding the same lines with and without it, paired, and with
#   controls: a copla not in the catalogue and a wrong copla must not make it worse.
#
# **Exercises**
# 1. Search the catalogue with `--catalogue-method bm25` instead of `fuzzy`: which finds more
#    coplas from the first pass's transcripts (`top1`, `top5`), and does the WER follow?
# 2. Give the catalogue row the *true* copla instead of the one found (the upper bound of the
#    search: `evaluation.evaluate(..., prompts=...)` with `prompts.build_prompt(copla=...)`):
#    how much of the remaining error is the search's?
# 3. Train the soft prompt with `soft_prompt: 64`: does a longer prompt help?
# 4. Set `prompt_drop: 0` in a copy of `configs/stage3.yaml`: how does that model do *without*
#    a prompt?
