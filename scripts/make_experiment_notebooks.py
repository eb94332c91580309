"""Write the experiment notebooks (clean: no outputs) from the readable cells below.

    python scripts/make_experiment_notebooks.py          # writes every notebook listed in NOTEBOOKS
    python scripts/make_experiment_notebooks.py 10       # only notebooks/10_*.ipynb

Edit the cells here, not in the .ipynb files, so that their history reads as Python in git.
One function per notebook returns its cells (``nb10_results``); notebooks 05-09 are added the same
way, with an entry in :data:`NOTEBOOKS`. The helpers (Markdown and code cells, the Colab setup
cell, the notebook metadata) are those of ``scripts/make_theory_notebooks.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from textwrap import dedent


sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_theory_notebooks import code, colab_cells, md, write_notebooks  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def parameters_cells(extra: str = ""):
    """The papermill parameters cell every experiment notebook shares, plus its own literals."""
    shared = dedent('''
        profile: str = "cpu"  # "smoke", "cpu" or "gpu"
        seed: int = 0  # seed of anything random in the notebook
        ''')
    return [
        md("""
        ## Parameters

        Papermill injects its values after this cell (`make report`; the tests use `profile="smoke"`).
        """),
        code(shared.strip() + "\n" + dedent(extra).strip(), tags=("parameters",)),
    ]


# ============================================================================================
# 10 — results: every stage on every test set
# ============================================================================================


def nb10_results():
    return [
        md("""
        # 10 · Results: the stages compared

        Every model of the thesis on every test set, in one table and five figures. This notebook
        computes nothing: it reads the results files that the evaluation runner wrote
        (`data/results/<model>__<test set>/metrics.json` and `predictions.jsonl`, made by
        `python -m flamenco_lib results --evaluate`), draws the figures of the report and writes its
        tables. On a fresh clone, before any model is trained, every section says which command
        produces its results, and the notebook still runs to the end.

        **What you will learn**
        - to read a WER with its 95% bootstrap interval, and when two models really differ;
        - how much each stage gains on the cante test set, and what it costs on ordinary speech
          (forgetting);
        - where the errors are: per palo, and substitutions against deletions and insertions;
        - whether a text prompt or a soft prompt helps the stage-3 models;
        - to look at the transcripts behind the numbers: the best and the worst utterances,
          aligned word by word.
        """),
        *colab_cells(),
        *parameters_cells('''
        example_model: str = "stage 1"  # a row of flamenco_lib.results.STAGES: section 7 shows its transcripts
        example_test_set: str = "cante"  # ... on this test set
        n_examples: int = 3  # best and worst utterances shown
        '''),
        md("""
        Imports and the thesis figure style. The `profile` changes nothing here: the notebook only
        reads results files, so it runs alike on every machine.
        """),
        code('''
        import matplotlib.pyplot as plt

        from flamenco_lib import analysis, plotting, report, results
        from flamenco_lib.paths import report_dir, results_dir

        plotting.set_style()
        print("results read from:", results_dir())
        print("figures and tables written to:", report_dir())
        '''),
        md("""
        ## 1. The results table

        One row per model, one group of columns per test set: the cante test set (held-out lyrics,
        half of it in a held-out voice), the sung real-voice test set (real recorded speech sung by
        the same transform), the cante clips spoken, and the speech test set. WER and CER are
        percentages of normalised text (`flamenco_lib.text.normalize`, the same for every model),
        with 95% bootstrap intervals over utterances: when two intervals do not overlap, the
        difference is not an accident of which clips were drawn.
        """),
        code('''
        table = results.results_table()
        print(results.markdown(table))
        '''),
        md("""
        The same table and the tables of the sections below go into `report/tables/`, as CSV (for
        the thesis' own plots) and Markdown (to paste). `report.write_tables` is the one function
        that writes them; `make report` runs this notebook, so they are rebuilt with the figures.
        """),
        code('''
        written = report.write_tables()
        print("\\n".join(str(p) for p in written) if written else analysis.NO_RESULTS)
        '''),
        md("""
        ## 2. The stages side by side

        Each bar is one model on one test set, with its 95% interval. Read it left to right: the
        zero-shot baseline, stage 1 on the flamenco corpus, the spoken control (trained on the same
        lyrics spoken, not sung), stage 2 on general speech, stage 3 with prompts. A gap means that
        model was not evaluated on that set (the stage-3 grid covers the cante and speech sets only).
        """),
        code('''
        runs = analysis.runs_table()
        if runs.empty:
            print(analysis.NO_RESULTS)
        else:
            fig, ax = plt.subplots(figsize=(10, 3.6))
            plotting.plot_stage_comparison(runs, ax=ax, title="WER per model and test set")
            plotting.savefig(fig, "10-stage-comparison", caption=(
                "WER (%) of every model on every test set, with 95% bootstrap intervals over utterances."))
        '''),
        md("""
        ## 3. Per palo

        The cante test set mixes palos: a fandango or a soleá is sung slower or faster, higher or
        lower, with more or fewer melismas and repeats. The heatmap shows the WER per palo and
        model. A palo has only a few test clips, so one bad clip moves its cell a lot: compare
        rows (models) more than single cells.
        """),
        code('''
        per_palo = analysis.per_palo_table()
        if per_palo.empty:
            print(analysis.NO_RESULTS)
        else:
            ax = plotting.plot_wer_heatmap(per_palo, title="Cante test set: WER (%) per palo")
            plotting.savefig(ax.figure, "10-per-palo", caption=(
                "WER (%) per palo and model on the cante test set (few clips per palo: wide intervals)."))
            print("test clips per palo:", per_palo.drop_duplicates("palo").set_index("palo")["n"].to_dict())
        '''),
        md("""
        ## 4. What kind of errors

        A word error is a substitution (a word heard wrong), a deletion (a word missed) or an
        insertion (a word that was not sung). Each bar splits one WER into the three, as shares of
        the reference words, so the bar's length is the WER. Melismas and quejíos tend to cause
        deletions and insertions (a stretched vowel heard as two words, an "ay" dropped or
        doubled); a language-model slip is a substitution.
        """),
        code('''
        sdi = analysis.sdi_table()
        if sdi.empty:
            print(analysis.NO_RESULTS)
        else:
            ax = plotting.plot_sdi_bars(sdi, title="Substitutions, deletions and insertions")
            plotting.savefig(ax.figure, "10-sdi", caption=(
                "Substitutions, deletions and insertions as % of the reference words, per model and test set."))
        '''),
        md("""
        ## 5. Forgetting

        Fine-tuning on cante may cost the model what it knew of ordinary Spanish. Each point is a
        model: its cante WER on x, its speech WER on y; arrows follow the training sequence.
        Moving left is learning cante; moving up is forgetting speech. Stage 2 exists to bring the
        point back down without moving it right.
        """),
        code('''
        forgetting = analysis.forgetting_table()
        if forgetting.empty:
            print(analysis.NO_RESULTS)
        else:
            ax = plotting.plot_forgetting(forgetting, title="Cante learnt against speech forgotten")
            plotting.savefig(ax.figure, "10-forgetting", caption=(
                "Cante test WER against speech test WER per model (95% intervals); arrows follow the "
                "training stages. Left is better cante, down is less forgetting."))
        '''),
        md("""
        ## 6. Prompts

        Stage 3 trains Whisper with a text prompt in its previous-text slot (the palo and words of
        a flamenco lexicon); the soft-prompt variant learns prompt vectors instead. The bars compare
        stage 2 and stage 3 decoded without a prompt, with the text prompt, and with the soft
        prompt. Stage 2 never saw prompts in training: if a prompt helps it, that is Whisper's own
        pre-training at work; stage 3 should gain more.
        """),
        code('''
        prompts = analysis.prompt_table()
        if prompts.empty or (prompts["prompt"] == "none").all():
            print(analysis.NO_RESULTS)
        else:
            sets = list(prompts["test_set"].unique())
            fig, axes = plt.subplots(1, len(sets), figsize=(5.5 * len(sets), 3.4), squeeze=False)
            for ax, key in zip(axes[0], sets):
                plotting.plot_prompt_bars(prompts[prompts["test_set"] == key], ax=ax, title=f"{key} test set")
            plotting.savefig(fig, "10-prompts", caption=(
                "WER (%) of stage 2 and stage 3 decoded without a prompt, with a text prompt and with a "
                "soft prompt, with 95% intervals."))
        '''),
        md("""
        ## 7. The transcripts behind the numbers

        The best and the worst utterances of one run, each aligned word by word after
        normalisation (jiwer's alignment, the one the WER counts): `S` marks a substitution, `D` a
        deletion (`***` in the hypothesis), `I` an insertion (`***` in the reference). Change
        `example_model` and `example_test_set` in the parameters to look at another run.
        """),
        code('''
        examples = analysis.best_and_worst(results.run_dir(example_model, example_test_set), n=n_examples)
        if examples.empty:
            print(analysis.NO_RESULTS)
        else:
            for ex in examples.itertuples():
                print(f"[{ex.rank}] {ex.id} ({ex.palo}): WER {ex.wer:.0f}%")
                print("\\n".join(analysis.format_alignment(ex.alignment)), end="\\n\\n")
        '''),
        md("""
        ## Summary

        - The tables and the five figures of the report come from the results files alone; rerun
          `python -m flamenco_lib results --evaluate` after training, then this notebook (or
          `make report`), and they are all up to date.
        - The 95% intervals decide what the thesis may claim: a difference whose intervals overlap
          is not a result.
        - The stage comparison and the forgetting plot tell the story of the three stages: what
          each gains on cante and what it costs (or repairs) on ordinary speech.
        - Per palo and per error type, and the aligned transcripts, show *where* the remaining
          errors are.

        **Exercises**
        1. Which palo is hardest for the zero-shot model, and is it still the hardest after stage 1?
           Listen to one of its clips: what makes it hard?
        2. In the S/D/I bars, which error type does stage 1 remove most? Find an example of it in
           the transcripts of section 7 (set `example_model = "zero-shot"`).
        3. Do the intervals of stage 1 and stage 2 on the cante set overlap? What may the thesis
           say about stage 2's effect on cante, then?
        4. `report/tables/runs.csv` lists the number of utterances `n` of every run next to its
           interval: how does the width of the interval scale with `n`?
        """),
    ]


NOTEBOOKS = {
    "10_results.ipynb": nb10_results,
}


def main(argv: list[str] | None = None) -> int:
    return write_notebooks(NOTEBOOKS, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
