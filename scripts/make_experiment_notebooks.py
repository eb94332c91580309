"""Write the experiment notebooks (clean: no outputs) from the readable cells below.

    python scripts/make_experiment_notebooks.py          # writes every notebook listed in NOTEBOOKS
    python scripts/make_experiment_notebooks.py 10       # only notebooks/10_*.ipynb

Edit the cells here, not in the .ipynb files, so that their history reads as Python in git.
One function per notebook returns its cells (``nb05_data``, ``nb10_results``); notebooks 06-09 are added
the same way, with an entry in :data:`NOTEBOOKS`. The helpers (Markdown and code cells, the Colab setup
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
# 05 — the corpora: what the models learn from and are tested on
# ============================================================================================


def nb05_data():
    return [
        md("""
        # 05 · The data: four corpora and a control

        Before training anything, look at the data. Everything in this thesis runs offline, so the
        corpora are built on your machine from three ingredients: lyrics written for this project
        (`data/lyrics/coplas.tsv`, 336 coplas in 15 palos), a speech synthesiser (espeak-ng) with a
        speech-to-singing transform (Praat), and real Spanish read speech (Debian's asterisk
        prompts, one es-MX speaker). This notebook builds the corpora where they are missing,
        counts what is in them, shows and plays one clip in three styles, and measures how hard
        they are for Whisper before any fine-tuning.

        **What you will learn**
        - which corpus serves which purpose: training, control, calibration, forgetting, and the
          real-voice test;
        - how the splits are made so that a test score measures generalisation: no lyric in two
          splits, and a voice (`es-419`) heard only in the test split;
        - what the synthetic singing changes: durations, pitch, vowel lengthening, accompaniment;
        - how much singing and guitar cost zero-shot Whisper on the very same words.
        """),
        *colab_cells(),
        *parameters_cells('''
        n_examples: int = 3  # transcripts shown side by side in section 8
        '''),
        md("""
        Where the data lives. Every folder of the project follows `FLAMENCO_DATA` (default `data/`).
        In the `smoke` profile (the tests, CI) this cell moves it to `<data>/smoke` **before anything
        reads a path**, so that the tiny corpora and the results of a smoke run land there and can
        never overwrite the full corpora in `data/corpora/` or their results. Only the model is
        shared: the machine's whisper-base, converted once from its PyPI wheels (notebook 04), is
        not copied into the smoke folder. Other profiles use `"base"`, exactly as
        `flamenco_lib.results` does, so that their results files are the same ones.
        """),
        code('''
        import os

        from flamenco_lib import models, paths

        if profile != "smoke":
            MODEL = "base"
        elif paths.data_dir().name != "smoke":  # (run twice, the cell changes nothing more)
            MODEL = str(models.build_offline_base())  # the offline whisper-base of this machine, built once
            os.environ["FLAMENCO_DATA"] = str(paths.data_dir() / "smoke")
        N_EVAL = {"smoke": 3}.get(profile, 100)  # test clips per zero-shot evaluation (section 8)
        print("data folder:", paths.data_dir(), "| model:", MODEL, "| test clips evaluated:", N_EVAL)
        '''),
        md("""
        Imports and the thesis figure style.
        """),
        code('''
        import matplotlib.pyplot as plt
        import numpy as np
        import pandas as pd
        from IPython.display import Audio, display

        from flamenco_lib import audio as A
        from flamenco_lib import plotting, results
        from flamenco_lib.data import stats
        from flamenco_lib.data.corpus import OFFLINE_CORPORA, build_corpora

        plotting.set_style()
        '''),
        md("""
        ## 1. Four corpora and a control

        | corpus | what it is | what it is for |
        |---|---|---|
        | `cante` | the coplas spoken by espeak-ng voices, then sung (long vowels, a melody in the palo's mode, vibrato, melismas, quejíos, repeated lines), with guitar, palmas and reverb | stage 1 training; the **cante test set** |
        | `cante-spoken` | the same clips, same voices and same words, only spoken | the **control**: a model trained on it learns the voices, not the singing |
        | `cante-acapella` | the same clips sung without accompaniment | **calibration**: how much of the difficulty is the singing, how much the guitar |
        | `speech` | real Spanish read speech (asterisk prompts) | stage 2 (the offline stand-in for Common Voice); the **forgetting** check |
        | `cante-real` | that real speech, sung by the same transform | the **real-voice test set**: did a model learn singing, or only the synthetic voices? |

        `build_corpora` builds each corpus whose manifest is missing, with the same calls as
        `make corpora` (`python -m flamenco_lib data speech|synth`). Where they exist, nothing is
        rendered or rewritten (a rewritten manifest would make every evaluation of it look out of
        date); an interrupted build has no manifest yet and resumes where it stopped. The full
        corpora take 10-15 minutes on 2 cores; the smoke profile builds 12 clips per style and 6
        real utterances in seconds.
        """),
        code('''
        SIZES = {"smoke": dict(n=12, n_speech=6)}.get(profile, {})  # {}: the library's defaults (the thesis corpora)
        manifests = build_corpora(paths.data_dir() / "corpora", **SIZES)
        for name, manifest in manifests.items():
            print(f"{name:15s} {OFFLINE_CORPORA[name]}\\n{'':15s} {manifest}")
        '''),
        md("""
        Every corpus is a manifest: one JSON line per clip with its audio file, what is sung
        (`text`), the lyric as written (`text_canonical`), its split, and for synthetic clips every
        choice the generator made (palo, voice, SNR, tonic, lengthening, vibrato...). Here is one
        clip of the cante corpus as a table row.
        """),
        code('''
        frames = {name: stats.read_frame(m) for name, m in manifests.items()}
        cante = frames["cante"]
        cante.iloc[0].drop(["audio_path"], errors="ignore")
        '''),
        md("""
        ## 2. Clips and hours per split

        Each corpus is split into `train` (what the model learns from), `dev` (what we watch while
        training) and `test` (scored once, at the end). The split of a clip comes from a hash of its
        normalised lyric, so the splits **never share a lyric**: a test WER measures how the model
        does on words it was never trained on. The check below: the distinct lyrics of the splits
        add up to the distinct lyrics of the whole corpus. The three synthetic corpora hold the
        same clips, so their counts agree; the sung ones last about twice as long.
        """),
        code('''
        summary = pd.concat({name: stats.corpus_summary(f) for name, f in frames.items()}, names=["corpus"])
        for name in frames:
            per_split = summary.loc[name].drop("all")["lyrics"].sum()
            print(f"{name:15s} no lyric in two splits: {per_split == summary.loc[(name, 'all'), 'lyrics']}")
        summary.round(2)
        '''),
        md("""
        The same hours as a figure: the synthetic corpora are small next to a real training set
        (Common Voice Spanish has hundreds of hours), and the real speech corpus is smaller still.
        """),
        code('''
        hours = summary["hours"].unstack("split").drop(columns="all").reindex(list(frames))
        ax = plotting.plot_split_counts(hours, xlabel="hours", title="Hours of audio per corpus and split")
        plotting.savefig(ax.figure, "05-hours", caption="Hours of audio per corpus and split (train, dev, test).")
        '''),
        md("""
        ## 3. Palos

        The coplas come in 15 palos, and the palo sets the melody's mode, the tempo and the compás
        of the guitar and the palmas (a martinete is sung without guitar, over an anvil). Since the
        split goes by lyric, not by palo, most palos appear in every split, but not evenly: a palo
        with few coplas may have no dev clip at all.
        """),
        code('''
        palos = stats.split_table(cante, "palo")
        ax = plotting.plot_split_counts(palos, title="Cante corpus: clips per palo and split")
        plotting.savefig(ax.figure, "05-palos", caption="Clips per palo and split in the cante corpus.")
        '''),
        md("""
        ## 4. Voices: one held out for the test

        Training and dev clips use only espeak-ng's Castilian voice `es` and its variants
        (`es+m1` ... `es+f5`: other pitch and timbre settings of the same voice). Half of the test
        clips use the Latin-American voice `es-419` and its variants, which the model never hears
        in training (`voice_heldout` in the manifest); the other half use the training voices. The
        table shows `es-419` in the test column only; the figure shows every voice variant.
        """),
        code('''
        display(stats.split_table(cante, "base_voice"))
        voices = stats.split_table(cante, "voice")
        ax = plotting.plot_split_counts(voices, title="Cante corpus: clips per voice and split")
        plotting.savefig(ax.figure, "05-voices", caption=(
            "Clips per espeak-ng voice and split: the es-419 voices (held out) appear in the test split only."))
        '''),
        md("""
        ## 5. What the generator drew

        Every sung clip records the random choices behind it. The histograms show, per split (each
        as a percentage of its own clips): the duration (at most 29.5 s: Whisper's window is 30 s),
        the voice-to-accompaniment SNR (5-10 dB: the guitar and palmas are loud), the speaking
        pitch of the voice (the melody is built around it, up to 14 semitones above), the mean
        lengthening of the vowels, and the vibrato rate. Train and test should look alike: the splits differ in
        lyrics and voices, not in how they were sung.
        """),
        code('''
        columns = stats.features(cante)
        n_rows = int(np.ceil(len(columns) / 3))
        fig, axes = plt.subplots(n_rows, 3, figsize=(10, 2.6 * n_rows), squeeze=False)
        for ax, column in zip(axes.flat, columns):
            plotting.plot_feature_hist(cante, column, ax=ax, xlabel=stats.FEATURES[column])
        for ax in axes.flat[len(columns):]:
            ax.set_visible(False)
        fig.tight_layout()
        plotting.savefig(fig, "05-distributions", caption=(
            "What the generator drew for the cante corpus, per split: "
            + ", ".join(stats.FEATURES[c] for c in columns) + "."))
        cante[columns].describe().round(2)
        '''),
        md("""
        ## 6. Spoken, a cappella, sung: the same clips

        The three synthetic corpora share clip ids, voices and sung words; they differ only in the
        singing and the accompaniment. Joined by clip id, each grey line below is one clip. Left:
        singing lengthens the vowels 2.5-4 times (more at the end of a line) and adds melismas, so
        a sung clip lasts about twice its spoken version; the guitar adds nothing to the duration.
        Right: the pitch range each clip spans (between the 5th and the 95th percentile of its F0,
        measured with Praat on the test clips; the guitar would confuse the pitch tracker, so only
        spoken and a cappella). Speech wanders within a few semitones; the melody spans about an
        octave.
        """),
        code('''
        STYLES = {"spoken": "cante-spoken", "a cappella": "cante-acapella", "sung + guitar": "cante"}  # style: corpus
        same = stats.compare_styles({style: frames[name] for style, name in STYLES.items()}, fields=("duration_s",))
        ratio = same["duration_s_sung + guitar"] / same["duration_s_spoken"]
        print(f"{len(same)} clips in all three styles; sung / spoken duration: median {ratio.median():.2f}, "
              f"range {ratio.min():.2f}-{ratio.max():.2f}")
        test_ids = same.loc[same["split"] == "test", "id"].head(N_EVAL)
        ranges = pd.DataFrame({style: stats.pitch_ranges(frames[STYLES[style]], ids=test_ids)
                               for style in ("spoken", "a cappella")})
        print(ranges.median().round(1).to_string(), "(median pitch range, semitones)")

        fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), gridspec_kw={"width_ratios": [3, 2]})
        plotting.plot_paired(same, [f"duration_s_{s}" for s in STYLES], labels=list(STYLES), ax=axes[0],
                             ylabel="duration (s)", title="Duration")
        plotting.plot_paired(ranges, list(ranges), ax=axes[1], ylabel="F0 range, 5-95% (semitones)",
                             title=f"Pitch range ({len(ranges)} test clips)")
        fig.tight_layout()
        plotting.savefig(fig, "05-styles", caption=(
            "The same clips spoken, sung a cappella and sung with guitar (one grey line per clip): duration, and "
            "the range of the voice's F0 in semitones (test clips)."))
        '''),
        md("""
        ## 7. Look and listen

        One test clip in the three styles, as Whisper sees it: the log-Mel spectrogram of notebook
        01 (80 bands, 10 ms frames), on a shared time axis. Spoken, the harmonics glide and the
        syllables are short; sung, each vowel becomes a long note with vibrato, and the pitch
        track (Praat, bottom) moves in steps between held notes over a wider range; with guitar
        and palmas, the accompaniment fills the gaps between the words and the low bands.
        Change `seed` to draw another clip.
        """),
        code('''
        pool = same[same["split"] == "test"] if (same["split"] == "test").any() else same
        clip = pool.sample(1, random_state=seed).iloc[0]
        clips = {style: A.load_audio(frames[name].set_index("id").loc[clip["id"], "audio_path"])
                 for style, name in STYLES.items()}
        print(f"{clip['id']} ({clip['palo']}, voice {clip['voice']}): {cante.set_index('id').loc[clip['id'], 'text']}")

        fig, axes = plt.subplots(4, 1, figsize=(9, 9), sharex=True)
        for ax, (style, x) in zip(axes, clips.items()):
            plotting.plot_spectrogram(A.log_mel_spectrogram(x).numpy(), ax=ax, title=style)
            ax.set_xlabel("")
        for style in ("spoken", "a cappella"):
            t, f0 = stats.f0_track(clips[style])
            plotting.plot_pitch_track(t, f0, ax=axes[3], label=style)
            print(f"{style:10s}: median F0 {np.median(f0[f0 > 0]):4.0f} Hz, "
                  f"range {stats.pitch_range(clips[style]):4.1f} semitones")
        axes[3].set_title("F0 (Praat)")
        fig.tight_layout()
        plotting.savefig(fig, "05-look", caption=(
            "One test clip spoken, sung a cappella and sung with guitar: log-Mel spectrograms on a shared time "
            "axis, and the F0 of the spoken and the a-cappella versions."))
        '''),
        md("""
        Listen to the three (the players appear in the executed notebook). Can you follow the words
        of the sung clip without reading them?
        """),
        code('''
        for style, x in clips.items():
            print(style)
            display(Audio(x, rate=A.SAMPLE_RATE))
        '''),
        md("""
        ## 8. How hard is it? Zero-shot Whisper on the same clips

        Zero-shot whisper-base transcribes the first test clips of each style (`N_EVAL`: 100, or 3
        in the smoke profile), greedy, in Spanish, with the normaliser and the decoding settings of
        every evaluation in the thesis (`flamenco_lib.evaluation`). The runs are the folders
        `data/results/zero-shot__cante_spoken`, `zero-shot__cante_acapella` and `zero-shot__cante`;
        the first and the last are those of the results notebook (10).
        `flamenco_lib.results.evaluate_stages` keeps a run whose `metrics.json` is newer than its
        model and its manifest, so a rerun of this notebook only reads them.

        Same words, same voices: the gap between spoken and a cappella is what the singing costs,
        the gap between a cappella and sung is what the accompaniment costs. The bars carry 95%
        bootstrap intervals over clips.
        """),
        code('''
        SETS = {"spoken": "cante_spoken", "a cappella": "cante_acapella", "sung + guitar": "cante"}  # style: test set
        test_sets = tuple((key, f"corpora/{STYLES[style]}/manifest.jsonl", "test") for style, key in SETS.items())
        results.evaluate_stages((("zero-shot", MODEL),), test_sets, max_items=N_EVAL)
        runs = {style: results.run_dir("zero-shot", key) for style, key in SETS.items()}
        wer = stats.style_wer(runs)
        ax = plotting.plot_stage_comparison(wer, x="style", hue=None, title="Zero-shot whisper-base, same test clips")
        plotting.savefig(ax.figure, "05-zero-shot", caption=(
            "Zero-shot whisper-base WER (%) on the same test clips spoken, sung a cappella and sung with guitar, "
            "with 95% bootstrap intervals."))
        wer.round(1)
        '''),
        md("""
        The numbers behind the bars: what Whisper wrote for the same clips in the three styles,
        next to what was sung. Look for the kinds of errors: a lengthened vowel heard as two words,
        a quejío ("ay") dropped, a word replaced by a more common one that sounds alike.
        """),
        code('''
        said = stats.compare_styles({style: run / "predictions.jsonl" for style, run in runs.items()},
                                    fields=("hypothesis",), keep=("reference", "palo"))
        for row in said.head(n_examples).itertuples(index=False):
            print(f"[{row.id}, {row.palo}]\\n  {'what is sung':14s}  {row.reference}")
            for style, hyp in zip(SETS, row[3:]):
                print(f"  {style:14s}  {hyp}")
            print()
        '''),
        md("""
        ## Summary

        - Five offline corpora, one manifest format: `cante` (sung with guitar: stage 1 and the
          cante test), `cante-spoken` (the control), `cante-acapella` (the calibration), `speech`
          (stage 2 and forgetting) and `cante-real` (real voices sung: the real-voice test).
        - The splits never share a lyric, and the test split holds out the `es-419` voice: a test
          score measures new words and, for half of the clips, a new voice.
        - Singing doubles the duration of a clip, moves the pitch in held notes with vibrato and
          adds melismas; the accompaniment masks the voice at 5-10 dB SNR.
        - Zero-shot Whisper loses words from spoken to sung on the same clips, and again with the
          guitar: the gap that the three fine-tuning stages try to close (notebooks 06-09).

        **Exercises**
        1. In section 5, is the SNR of the held-out-voice clips any different? Draw it with
           `hue="voice_heldout"` instead of the split.
        2. Set `seed` to another value and look at another clip: where in the spectrogram do the
           melismas show, and where does the guitar cover the voice most?
        3. In section 8, which style loses more words to deletions? Read the `metrics.json` of the
           three runs (`substitutions`, `deletions`, `insertions`) and explain it with what you heard.
        4. The real-voice corpus (`cante-real`) sings real speech. Compare its durations with those
           of the `speech` corpus: does the transform lengthen real speech as much as espeak-ng's?
        """),
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
    "05_data.ipynb": nb05_data,
    "10_results.ipynb": nb10_results,
}


def main(argv: list[str] | None = None) -> int:
    return write_notebooks(NOTEBOOKS, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
