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
# # 10 · Results: the stages compared
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/cante-to-text/cante-to-text/blob/main/notebooks/10_results.ipynb)
#
# Every model of the thesis on every test set, in one table and five figures. This notebook
# computes nothing: it reads the results files that the evaluation runner wrote
# (`data/results/<model>__<test set>/metrics.json` and `predictions.jsonl`, made by
# `python -m flamenco_lib results --evaluate`), draws the figures of the report and writes its
# tables. On a fresh clone, before any model is trained, every section says which command
# produces its results, and the notebook still runs to the end.
#
# **What you will learn**
# - to read a WER with its 95% bootstrap interval, and when two models really differ;
# - how much each stage gains on the cante test set, and what it costs on ordinary speech
#   (forgetting);
# - where the errors are: per palo, and substitutions against deletions and insertions;
# - which prompts help stage 3 (the line before, a lyrics catalogue) and which do not;
# - to look at the transcripts behind the numbers: the best and the worst utterances,
#   aligned word by word.

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
example_model: str = "stage 1"  # a row of grid.STAGES: section 7 shows its transcripts
example_test_set: str = "cante"  # ... on this test set
n_examples: int = 3  # best and worst utterances shown

# %% [markdown]
# Imports and the thesis figure style. The notebook only reads results files, so it runs
# alike on every machine. The `profile` only says where they are: the smoke runs of
# notebooks 05-09 keep theirs in `<data>/smoke`, away from the real ones, and
# `notebook.workspace` points `FLAMENCO_DATA` there as it does in 05-09 (without building a
# model: nothing is computed here). Each section below draws its figure with
# `notebook.show_or_explain`, which says which command makes the results when there are none.

# %%
import matplotlib.pyplot as plt
from IPython.display import display

from flamenco_lib import analysis, notebook, plotting, report, results
from flamenco_lib.paths import report_dir, results_dir

profile = notebook.workspace(
    profile, build_model=False
).profile  # smoke: FLAMENCO_DATA -> <data>/smoke

plotting.set_style()
print("results read from:", results_dir())
print("figures and tables written to:", report_dir())

# %% [markdown]
# ## 1. The results table
#
# One row per model, one group of columns per test set: the cante test set (held-out lyrics,
# half of it in a held-out voice), the sung real-voice test set (real recorded speech sung by
# the same transform), the cante clips spoken, and the speech test set. WER and CER are
# percentages of normalised text (`flamenco_lib.text.normalize`, the same for every model),
# with 95% bootstrap intervals over utterances: when two intervals do not overlap, the
# difference is not an accident of which clips were drawn (when they do, see the paired
# comparisons below).

# %%
table = results.results_table()
print(results.markdown(table))

# %% [markdown]
# The same table and the tables of the sections below go into `report/tables/`, as CSV (for
# the thesis' own plots) and Markdown (to paste). `report.write_tables` is the one function
# that writes them; `make report` runs this notebook, so they are rebuilt with the figures.

# %%
written = report.write_tables()
print("\n".join(str(p) for p in written) if written else analysis.NO_RESULTS)

# %% [markdown]
# ### Is a difference real? Paired comparisons
#
# Two overlapping intervals do not mean "no difference". The same clips are hard for every
# model, and that shared variation widens both intervals. A *paired* bootstrap resamples the
# clips once and scores both models on the same draw: the interval of the difference is far
# narrower, and when it excludes 0 the difference is real at the 95% level. `p_better` is the
# share of resamples in which the model beats its baseline. The pairs are the thesis'
# questions (`analysis.PAIRS`): what stage 1 gains and how much of it is the singing, whether
# stage 2 keeps it, what the stages do to real voices never heard, what the soft prompt costs
# speech (the prompts themselves: section 6).

# %%
paired = analysis.paired_table()
if notebook.show_or_explain(
    paired,
    lambda table: plotting.plot_differences(
        table, title="WER difference to the baseline, paired 95% intervals"
    ),
    name="10-paired",
    caption=(
        "WER difference (points) of each model to its baseline on the same test clips, with paired "
        "bootstrap 95% intervals; left of zero the model is better."
    ),
):
    display(paired.round(2))

# %% [markdown]
# ## 2. The stages side by side
#
# Each bar is one model on one test set, with its 95% interval. Read it left to right: the
# zero-shot baseline, stage 1 on the flamenco corpus, the spoken control (trained on the same
# lyrics spoken, not sung; the `cpu` report leaves it out unless asked for, notebook 07), stage 2
# on general speech, stage 3 (trained with prompts, decoded here without one). A gap means that
# model was not evaluated on that set (the control: the cante set sung and spoken; the soft
# prompt, which the `cpu` report also leaves out unless asked for, notebook 09: the speech set).

# %%
runs = analysis.runs_table()
notebook.show_or_explain(
    runs,
    lambda table: plotting.plot_stage_comparison(
        table, ax=plt.subplots(figsize=(10, 3.6))[1], title="WER per model and test set"
    ),
    name="10-stage-comparison",
    caption="WER (%) of every model on every test set, with 95% bootstrap intervals over utterances.",
)

# %% [markdown]
# ## 3. Per palo
#
# The cante test set mixes palos: a fandango or a soleá is sung slower or faster, higher or
# lower, with more or fewer melismas and repeats. The heatmap shows the WER per palo and
# model. A palo has only a few test clips, so one bad clip moves its cell a lot: compare
# rows (models) more than single cells.

# %%
per_palo = analysis.per_palo_table()
if notebook.show_or_explain(
    per_palo,
    lambda table: plotting.plot_wer_heatmap(table, title="Cante test set: WER (%) per palo"),
    name="10-per-palo",
    caption="WER (%) per palo and model on the cante test set (few clips per palo: wide intervals).",
):
    print("test clips per palo:", per_palo.drop_duplicates("palo").set_index("palo")["n"].to_dict())

# %% [markdown]
# ### Real voices, speaker by speaker
#
# The real-voice test sets hold three speakers no model trains on (Drascula's `billie-jean`,
# the one female voice, `l` and `t`), about 27 lines each. A mean over them can hide a model
# that helps two voices and fails the third; each cell here is one speaker, sung (`real_sung`)
# or as recorded (`real_speech`). With so few lines per speaker the intervals are wide:
# compare the rows (models) within a column.

# %%
per_speaker = analysis.per_speaker_table()
if notebook.show_or_explain(
    per_speaker,
    lambda table: plotting.plot_wer_heatmap(
        table, columns="speaker", title="Real voices never trained on: WER (%) per speaker"
    ),
    name="10-per-speaker",
    caption=(
        "WER (%) per held-out speaker and model, the Drascula test speakers sung by the transform "
        "(real_sung) and as recorded (real_speech); about 27 lines per speaker."
    ),
):
    print(
        "lines per speaker:",
        per_speaker.drop_duplicates("speaker").set_index("speaker")["n"].to_dict(),
    )

# %% [markdown]
# ## 4. What kind of errors
#
# A word error is a substitution (a word heard wrong), a deletion (a word missed) or an
# insertion (a word that was not sung). Each bar splits one WER into the three, as shares of
# the reference words, so the bar's length is the WER. Melismas and quejíos tend to cause
# deletions and insertions (a stretched vowel heard as two words, an "ay" dropped or
# doubled); a language-model slip is a substitution.

# %%
notebook.show_or_explain(
    analysis.sdi_table(),
    lambda table: plotting.plot_sdi_bars(table, title="Substitutions, deletions and insertions"),
    name="10-sdi",
    caption="Substitutions, deletions and insertions as % of the reference words, per model and test set.",
)

# %% [markdown]
# ## 5. Forgetting
#
# Fine-tuning on cante may cost the model what it knew of ordinary Spanish. Each point is a
# model: its cante WER on x, its speech WER on y; arrows follow the training sequence.
# Moving left is learning cante; moving up is forgetting speech. Stage 2 exists to bring the
# point back down without moving it right.

# %%
notebook.show_or_explain(
    analysis.forgetting_table(),
    lambda table: plotting.plot_forgetting(table, title="Cante learnt against speech forgotten"),
    name="10-forgetting",
    caption=(
        "Cante test WER against speech test WER per model (95% intervals); arrows follow the "
        "training stages. Left is better cante, down is less forgetting."
    ),
)

# %% [markdown]
# ## 6. Prompts
#
# Notebook 09 decodes the verses of the test songs (lines whose copla and line before are
# known) with stage 3 and each kind of prompt: the palo, a lexicon, the line before (the
# model's own transcript of it, and the true one), a copla found in a lyrics catalogue (with
# the copla in the catalogue, and not), a wrong copla (the control), and the soft prompt (not on
# `cpu` unless asked for). Each
# row against stage 2 without a prompt (top) and each prompt against stage 3 without one
# (bottom): the WER difference with its paired 95% interval; left of zero, fewer errors.

# %%
notebook.show_or_explain(
    analysis.paired_table(analysis.PROMPT_PAIRS),
    lambda table: plotting.plot_differences(
        table, title="Verses of the test songs: each prompt against stage 2 and stage 3"
    ),
    name="10-prompts",
    caption=(
        "WER difference (points) with paired 95% intervals on the verses of the test songs: every "
        "row of the prompt grid against stage 2 without a prompt, and each prompt against stage 3 "
        "without one."
    ),
)

# %% [markdown]
# ## 7. The transcripts behind the numbers
#
# The best and the worst utterances of one run, each aligned word by word after
# normalisation (jiwer's alignment, the one the WER counts): `S` marks a substitution, `D` a
# deletion (`***` in the hypothesis), `I` an insertion (`***` in the reference). Change
# `example_model` and `example_test_set` in the parameters to look at another run.


# %%
def print_examples(table):
    """Each utterance: its rank, id, palo and WER, then its alignment."""
    for ex in table.itertuples():
        print(f"[{ex.rank}] {ex.id} ({ex.palo}): WER {ex.wer:.0f}%")
        print("\n".join(analysis.format_alignment(ex.alignment)), end="\n\n")


examples = analysis.best_and_worst(results.run_dir(example_model, example_test_set), n=n_examples)
notebook.show_or_explain(examples, print_examples)  # text only: nothing to save

# %% [markdown]
# ## Summary
#
# - The tables and the five figures of the report come from the results files alone; rerun
#   `python -m flamenco_lib results --evaluate` after training, then this notebook (or
#   `make report`), and they are all up to date.
# - The 95% intervals decide what the thesis may claim: a difference whose intervals overlap
#   is not a result.
# - The stage comparison and the forgetting plot tell the story of the three stages: what
#   each gains on cante and what it costs (or repairs) on ordinary speech.
# - Per palo and per error type, and the aligned transcripts, show *where* the remaining
#   errors are.
#
# **Exercises**
# 1. Which palo is hardest for the zero-shot model, and is it still the hardest after stage 1?
#    Listen to one of its clips: what makes it hard?
# 2. In the S/D/I bars, which error type does stage 1 remove most? Find an example of it in
#    the transcripts of section 7 (set `example_model = "zero-shot"`).
# 3. Do the intervals of stage 1 and stage 2 on the cante set overlap? What may the thesis
#    say about stage 2's effect on cante, then?
# 4. `report/tables/runs.csv` lists the number of utterances `n` of every run next to its
#    interval: how does the width of the interval scale with `n`?
