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
# # 09 · Stage 3: prompts
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/cante-to-text/cante-to-text/blob/main/notebooks/09_stage3_prompts.ipynb)
#
# Whisper was trained with the text of the previous 30-second window in front of the current
# one, so that a long recording is transcribed consistently. That slot can hold any text: a
# **prompt**. Stage 3 fills it with what we know about a flamenco recording before hearing
# it, the palo and the vocabulary of flamenco lyrics, and fine-tunes the model to use it. A
# variant learns the prompt itself: 16 free vectors in the same slot (a **soft prompt**),
# with every weight of the model frozen.
#
# **What you will learn**
# - the prompt layout `<|startofprev|> prompt <|startoftranscript|><|es|><|transcribe|><|notimestamps|> text <|endoftext|>`,
#   and why the prompt is masked out of the loss;
# - that the layout used in training is, token for token, what `generate(prompt_ids=...)`
#   feeds the decoder at inference;
# - why the prompt is dropped half of the time in training;
# - how a soft prompt trains 0.01% of the parameters;
# - to judge a prompt: the same model decoded with and without it, on cante and on ordinary
#   speech.

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
# Imports and the thesis figure style.

# %%
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from flamenco_lib import analysis, pipeline, plotting, prompts, results, training
from flamenco_lib import audio as A
from flamenco_lib.data.manifest import read_manifest

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
# A prompt is built per clip from the kinds the config names (`prompt_kinds: [palo, lexicon]`):
# the palo ("Soleá.") and a **lexicon**, the most frequent content words of the *training*
# lyrics (never the test ones: the test score must not be given its answers). Here is one
# training clip, its prompt, and the decoder's input and labels that
# `training.collate_labels` builds from them (Whisper's tokens decoded one by one; a space
# belongs to the token after it).
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
example = train[seed % len(train)]
prompt = prompts.prompts_for([example], kinds=cfg.prompt_kinds, words=words)[0]
print(f"prompt: {prompt}\nlabel:  {example['text']}")

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
# `configs/stage3.yaml` trains like stage 1 (same frozen layers), on 70% cante and 30%
# speech; the speech clips have no palo, so they get no prompt. Each cante clip's prompt is
# **dropped with probability 0.5** (`prompt_drop`): Whisper itself was trained with and
# without previous text, and a model that only ever saw prompts would depend on them.
#
# `configs/stage3_soft.yaml` freezes the whole model and trains only `k` vectors in the prompt
# slot, started from the embeddings of the lexicon's last tokens (`flamenco_lib.soft_prompt`).
# The encoder is frozen too, so all six layers are cached and a step runs the decoder only.
# The vectors are saved as `soft_prompt.pt` in the model folder, and the evaluation runner
# decodes with them whenever it finds that file.

# %%
CONFIGS = {
    "stage 3": grid.config_file("stage3"),
    "stage 3, soft prompt": grid.config_file("stage3_soft"),
}
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
        "Training loss of stage 3 with text prompts (dropped half of the time) and of the soft prompt "
        "(the model frozen), both starting from stage 2."
    ),
)

# %% [markdown]
# ## 3. With and without prompts
#
# The comparison grid of `flamenco_lib.grid.STAGES`, on the cante test set and the speech
# test set (the forgetting check): stage 2 and stage 3, each decoded without a prompt and with
# the text prompt (palo and lexicon; the lexicon from the training lyrics), and the soft
# prompt. Stage 2 never saw a prompt in training: what a prompt does for it is Whisper's own
# pre-training at work. The speech clips have no palo and their corpus no lyrics, so they get
# no text prompt: on speech a "+ prompts" row decodes exactly as its model without one, and
# only the soft prompt, which is always there, can change the speech WER.

# %%
rows = grid.stage_rows(
    "stage 2",
    "stage 2 + prompts",
    "stage 3",
    "stage 3 + prompts",
    "stage 3, soft prompt",
    profile=profile,
    base=MODEL,
)
results.evaluate_stages(rows, max_items=N_EVAL)
print(results.markdown(results.results_table(stages=rows)))

# %% [markdown]
# The same as bars: on x the model (stage 2 or 3), in colour how it was decoded. Read it per
# test set: does the text prompt lower stage 3's cante WER more than stage 2's? Does the
# soft prompt match the text prompt with a ten-thousandth of the parameters? And does any
# prompt cost something on speech?

# %%
table = analysis.prompt_table()
sets = list(table["test_set"].unique())
fig, axes = plt.subplots(1, len(sets), figsize=(5.5 * len(sets), 3.4), squeeze=False)
for ax, key in zip(axes[0], sets, strict=True):
    plotting.plot_prompt_bars(table[table["test_set"] == key], ax=ax, title=f"{key} test set")
plotting.savefig(
    fig,
    "09-prompts",
    caption=(
        "WER (%) of stage 2 and stage 3 decoded without a prompt, with a text prompt (palo and lexicon) and with a "
        "soft prompt, with 95% intervals."
    ),
)
table.round(1)

# %% [markdown]
# The intervals of the bars overlap, but that alone does not settle it: every model finds the
# same clips hard. The paired bootstrap (notebook 10 explains it) scores two models on the
# same resampled clips; the interval of their difference says whether a prompt, or stage 3,
# really changes the WER. Bar of this stage: stage 3 with prompts should beat stage 2.

# %%
grid = {label for label, *_ in rows}
paired = analysis.paired_table([p for p in analysis.PAIRS if p[0] in grid and p[1] in grid])
print(analysis.NO_RESULTS if paired.empty else paired.round(2).to_string(index=False))

# %% [markdown]
# ## 4. Per palo, with and without prompts
#
# The prompt names the palo. If that helps, it should help most where the palo changes the
# words: palos with their own vocabulary (the forge of the martinete, the sea of the
# alegrías). The heatmap shows the cante WER per palo for every row of the grid; compare the
# rows of one model with and without its prompt. Few clips per palo: large differences only.

# %%
per_palo = analysis.per_palo_table(test_set="cante")
if per_palo.empty:
    print("the clips evaluated are all of one palo: no per-palo comparison")
else:
    per_palo = per_palo[per_palo["model"].isin([label for label, *_ in rows])]
    ax = plotting.plot_wer_heatmap(
        per_palo, title="Cante test set: WER (%) per palo, with and without prompts"
    )
    plotting.savefig(
        ax.figure,
        "09-per-palo",
        caption=(
            "Cante test WER (%) per palo of stage 2 and stage 3 decoded with and without prompts."
        ),
    )

# %% [markdown]
# ## Summary
#
# - A prompt goes into Whisper's previous-text slot: `<|startofprev|>` prompt, then the usual
#   `<|startoftranscript|><|es|><|transcribe|><|notimestamps|>` and the text. In training it
#   is masked out of the loss (-100) and dropped half of the time; at inference
#   `generate(prompt_ids=...)` feeds the decoder exactly the layout used in training.
# - Stage 3 fine-tunes with prompts built from the palo and a lexicon of the training lyrics;
#   the soft prompt learns 16 vectors for the same slot with the model frozen.
# - A prompt is judged by decoding the same model with and without it, on cante and on
#   ordinary speech.
#
# **Exercises**
# 1. None of the offline corpora has `previous_text` (each clip is a whole copla). In a corpus
#    of real recordings cut into verses, what would `prompt_kinds: [palo, previous, lexicon]`
#    give the model, and what would its manifest need?
# 2. Decode stage 3 with a *wrong* palo in the prompt (`prompts.build_prompt(palo="martinete",
#    words=words)` for every clip, `evaluation.evaluate(..., prompts=...)`): how much does the
#    WER rise? Does the model read the palo, or only the lexicon?
# 3. Train the soft prompt with `soft_prompt: 64`: does a longer prompt help?
# 4. Set `prompt_drop: 0` in a copy of `configs/stage3.yaml`: how does that model do *without*
#    a prompt?
