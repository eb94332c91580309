"""Write the experiment notebooks (clean: no outputs) from the readable cells below.

    python scripts/make_experiment_notebooks.py          # writes every notebook listed in NOTEBOOKS
    python scripts/make_experiment_notebooks.py 10       # only notebooks/10_*.ipynb

Edit the cells here, not in the .ipynb files, so that their history reads as Python in git.
One function per notebook returns its cells (``nb05_data`` ... ``nb10_results``), with an entry in
:data:`NOTEBOOKS`; 06-09 share their first cells (:func:`data_folder_cells`, :func:`corpora_cells`).
The helpers (Markdown and code cells, the Colab setup cell, the notebook metadata) are those of
``scripts/make_theory_notebooks.py``.
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
        from flamenco_lib.paths import default_profile

        profile: str = default_profile()  # "gpu" with CUDA (Colab), else "cpu"; "smoke": a quick check
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
        not copied into the smoke folder. Other profiles use the model the stages start from
        (`pipeline.zero_shot_model`: whisper-base on `cpu`, whisper-small on `gpu`), so that their
        results files are the ones notebooks 06-10 read.
        """),
        code('''
        import os

        from flamenco_lib import models, paths, pipeline

        if profile != "smoke":
            MODEL = pipeline.zero_shot_model(profile)  # whisper-base on cpu, whisper-small on gpu
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
# Shared by 06-09: the data folder (smoke runs in their own), the corpora where missing
# ============================================================================================


def data_folder_cells():
    """Where the data lives, the model, the evaluation size: the first code cell of 06-09."""
    return [
        md("""
        Where the data lives. Every path of the project follows `FLAMENCO_DATA` (default `data/`):
        corpora, checkpoints, activation caches and results. In the `smoke` profile (the tests, CI)
        this cell moves it to `<data>/smoke` **before anything reads a path**, exactly as notebook 05
        does, so that the tiny corpora, the smoke models and their results can never overwrite the
        real ones. Only whisper-base is shared: this machine's copy, converted once from its PyPI
        wheels (notebook 04), is not built again in the smoke folder; the smoke runs start from it
        (`FROM_BASE` replaces the configs' `model: base`). The other profiles use the configs as
        they are, and as the zero-shot model the one the stages start from in that profile
        (`pipeline.zero_shot_model`: whisper-base on `cpu`, whisper-small on `gpu`), so that their
        results files are the ones notebook 10 reads.
        """),
        code('''
        import os

        from flamenco_lib import models, paths, pipeline

        if profile == "smoke" and paths.data_dir().name != "smoke":  # (run twice, the cell changes nothing more)
            BASE = str(models.build_offline_base())  # the offline whisper-base of this machine, built once
            os.environ["FLAMENCO_DATA"] = str(paths.data_dir() / "smoke")
        MODEL = BASE if profile == "smoke" else pipeline.zero_shot_model(profile)  # what the stages start from
        FROM_BASE = {"model": MODEL} if profile == "smoke" else {}  # overrides of the stage-1 configs
        N_EVAL = {"smoke": 3}.get(profile, 100)  # test clips per evaluation (the first ones of each test set)
        SIZES = {"smoke": dict(n=12, n_speech=6)}.get(profile, {})  # corpora sizes, as in notebook 05
        print("data folder:", paths.data_dir(), "| model:", MODEL, "| test clips evaluated:", N_EVAL)
        '''),
    ]


def corpora_cells():
    """The corpora of notebook 05, built here only when one is missing (a notebook runs on its own)."""
    return [
        md("""
        The corpora come from notebook 05. So that this notebook also runs on its own (on a fresh
        clone, or in the smoke tests), any corpus that is missing is built here with the same call
        (`build_corpora`: 10-15 minutes for the real ones on 2 cores, seconds in the smoke profile).
        Corpora that exist are left as they are.
        """),
        code('''
        corpora = paths.data_dir() / "corpora"
        missing = [name for name in OFFLINE_CORPORA if not (corpora / name / "manifest.jsonl").exists()]
        if missing:
            build_corpora(corpora, **SIZES)
        print("corpora:", corpora, "| built now:", ", ".join(missing) or "none")
        '''),
    ]


# ============================================================================================
# 06 — zero-shot whisper-base: the baseline every stage is measured against
# ============================================================================================


def nb06_zero_shot():
    return [
        md("""
        # 06 · Zero-shot Whisper: the baseline

        Before fine-tuning anything, measure what Whisper does out of the box. Zero-shot
        whisper-base (the model exactly as OpenAI released it) transcribes every test set of the
        thesis, with the same normaliser and decoding settings that every stage will be evaluated
        with. This row of the results table is the baseline: each stage's gain is measured from it.

        **What you will learn**
        - how well a general-purpose recogniser does on sung flamenco, on the same words spoken, on
          real voices sung, and on ordinary read speech;
        - to read a WER with its 95% bootstrap interval, and a WER per palo and per voice;
        - what Whisper's typical failures on singing look like: loops and repeated phrases
          (hallucinations), and how to detect them from the text alone;
        - to read an aligned transcript: substitutions, deletions and insertions word by word.
        """),
        *colab_cells(),
        *parameters_cells('''
        n_examples: int = 3  # best and worst transcripts shown in section 5
        '''),
        *data_folder_cells(),
        md("""
        Imports and the thesis figure style.
        """),
        code('''
        import matplotlib.pyplot as plt
        import pandas as pd
        from IPython.display import display

        from flamenco_lib import analysis, evaluation, metrics, pipeline, plotting, results
        from flamenco_lib.data.corpus import OFFLINE_CORPORA, build_corpora

        plotting.set_style()
        '''),
        *corpora_cells(),
        md("""
        ## 1. Zero-shot Whisper on every test set

        The four test sets of the thesis (`flamenco_lib.results.TEST_SETS`):

        | test set | what it is | what it measures |
        |---|---|---|
        | `cante` | held-out coplas, sung with guitar and palmas; half of the clips in a voice never trained on (`es-419`) | the task |
        | `cante_spoken` | the same clips spoken | how much of the difficulty is the singing |
        | `cante_real` | real recorded speech sung by the same transform | singing in a real voice |
        | `speech` | real read speech | ordinary Spanish: later, what fine-tuning forgets |

        `results.evaluate_stages` runs the evaluation of the zero-shot row (`pipeline.stage_rows`
        picks it from `flamenco_lib.results.STAGES`) on the first `N_EVAL` clips of each test set:
        greedy decoding, in Spanish, then WER and CER against what is sung, after the normaliser of
        `flamenco_lib.text`. Each run writes `predictions.jsonl` and `metrics.json` into
        `data/results/zero-shot__<test set>/`; a run newer than its model and its manifest is kept,
        so a rerun of this notebook only reads them (notebook 05 already made two of them).
        """),
        code('''
        rows = pipeline.stage_rows("zero-shot", profile=profile, base=MODEL)
        results.evaluate_stages(rows, max_items=N_EVAL)
        print(results.markdown(results.results_table(stages=rows)))
        '''),
        md("""
        The same numbers as bars with their 95% intervals (a bootstrap over clips: draw the test
        clips again with replacement, many times, and keep the middle 95% of the WERs). Look at the
        gap between `cante_spoken` and `cante`: same words, same voices, only the singing and the
        accompaniment differ. And at `speech`: whisper-base is far from perfect on ordinary
        telephone prompts too, which is the level fine-tuning must not make worse.
        """),
        code('''
        runs = analysis.runs_table()
        zero_shot = runs[runs["model"] == "zero-shot"]
        ax = plotting.plot_stage_comparison(zero_shot, x="test_set", hue=None, title="Zero-shot whisper-base")
        plotting.savefig(ax.figure, "06-test-sets", caption=(
            "Zero-shot whisper-base WER (%) on every test set, with 95% bootstrap intervals over clips."))
        zero_shot[["test_set", "n", "wer", "wer_lo", "wer_hi", "cer"]].round(1)
        '''),
        md("""
        ## 2. Per palo

        The palo sets the melody, the tempo, the compás of the guitar and palmas, and the length
        of the lines. Some palos are sung slowly with long melismas (a seguiriya, a soleá), some
        fast (a bulería, tangos); the martinete is sung over an anvil without guitar. Each bar is
        the WER of the test clips of one palo. A palo has only a few test clips, so its interval is
        wide: read the big differences, not the small ones.
        """),
        code('''
        per_palo = analysis.per_palo_table(test_set="cante")
        if per_palo.empty:
            print("the clips evaluated are all of one palo: no per-palo breakdown")
        else:
            per_palo = per_palo[per_palo["model"] == "zero-shot"].sort_values("wer")
            fig, ax = plt.subplots(figsize=(8, 3))
            plotting.plot_stage_comparison(per_palo, x="palo", hue=None, ax=ax, title="Zero-shot WER per palo (cante test set)")
            plotting.savefig(fig, "06-per-palo", caption=(
                "Zero-shot whisper-base WER (%) per palo on the cante test set, with 95% intervals (few clips per palo)."))
            print("test clips per palo:", dict(zip(per_palo["palo"], per_palo["n"])))
        '''),
        md("""
        ## 3. A voice never heard in training

        Half of the test clips are sung by `es-419` voices (`voice_heldout` in the manifest), which
        no model in this thesis is trained on; the others by the training voices. For zero-shot
        Whisper both are new, so any gap here is a property of the voices themselves, not of
        training. Remember it when a fine-tuned model does better on the seen voices than on the
        held-out one: only the part of the gap beyond this one is what the model learnt of its
        training voices. The same comparison on the spoken clips tells whether the gap comes from
        the voice or from how it sings.
        """),
        code('''
        NAMES = {"True": "held-out voice (es-419)", "False": "seen voices (es)"}
        voices = pd.concat([analysis.per_palo_table(test_set=key, field="voice_heldout").assign(test_set=key)
                            for key in ("cante", "cante_spoken")])
        if voices.empty:
            print("the clips evaluated are all in seen voices, or all in the held-out one: no comparison")
        else:
            voices = voices[voices["model"] == "zero-shot"].copy()
            voices["voice"] = voices["voice_heldout"].astype(str).map(NAMES)
            ax = plotting.plot_stage_comparison(voices, x="voice", hue="test_set", title="Zero-shot WER per voice")
            plotting.savefig(ax.figure, "06-voices", caption=(
                "Zero-shot whisper-base WER (%) on the held-out es-419 voices and on the training voices, sung and "
                "spoken, with 95% intervals."))
            display(voices[["test_set", "voice", "n", "wer", "wer_lo", "wer_hi"]].round(1))
        '''),
        md("""
        ## 4. Hallucinations

        On audio it cannot follow (a long held vowel, guitar between the lines), Whisper's decoder
        may fall back on its language model and write fluent text that was never sung, or get stuck
        repeating a phrase until it runs out of tokens. Three indicators in every `metrics.json`
        spot this from the transcripts alone:

        - `loops`: transcripts whose **compression ratio** (bytes of the text over bytes after
          zlib compression) is above 2.4, Whisper's own threshold for a decoding that went wrong:
          repeated text compresses well;
        - `compression_ratio`: its mean over the transcripts (it grows with the length of a text:
          a short sentence stays below 1, and only repetition takes a transcript past 2.4);
        - `repeated_ngram_rate`: the share of word 3-grams that repeat an earlier 3-gram of the
          same transcript (a sung line *is* sometimes repeated, so not every repetition is an error).

        `flamenco_lib.transcription` already collapses a phrase repeated four or more times in a
        row (its repetition guard) and caps the new tokens per second of audio, so loops are rare
        in these numbers; a high repeated n-gram rate says the guard had work to do.
        """),
        code('''
        INDICATORS = ["n_utterances", "loops", "compression_ratio", "repeated_ngram_rate"]
        table = pd.DataFrame({key: evaluation.load_metrics(results.run_dir("zero-shot", key))
                              for key, _, _ in results.TEST_SETS}).T[INDICATORS]
        table
        '''),
        md("""
        The transcript with the highest compression ratio of each test set, next to what was sung:
        is it a loop, a repeated sung line, or just a short text?
        """),
        code('''
        for key, _, _ in results.TEST_SETS:
            preds = pd.read_json(results.run_dir("zero-shot", key) / "predictions.jsonl", lines=True)
            preds["ratio"] = preds["hypothesis"].map(metrics.compression_ratio)
            top = preds.loc[preds["ratio"].idxmax()]
            print(f"{key}: compression ratio {top['ratio']:.2f} (threshold {metrics.COMPRESSION_RATIO_THRESHOLD})")
            print(f"  sung:    {top['reference']}\\n  written: {top['hypothesis']}\\n")
        '''),
        md("""
        ## 5. The transcripts behind the numbers

        The best and the worst transcripts of the cante test set, aligned word by word after
        normalisation (jiwer's alignment, the one the WER counts): `S` marks a substitution (a word
        heard wrong), `D` a deletion (a word missed, `***` in the transcript), `I` an insertion (a
        word that was not sung, `***` in the reference). Look for the errors singing causes: a
        lengthened vowel heard as two words, an "ay" dropped, a rare word replaced by a common one
        that sounds alike.
        """),
        code('''
        examples = analysis.best_and_worst(results.run_dir("zero-shot", "cante"), n=n_examples)
        for ex in examples.itertuples():
            print(f"[{ex.rank}] {ex.id} ({ex.palo}): WER {ex.wer:.0f}%")
            print("\\n".join(analysis.format_alignment(ex.alignment)), end="\\n\\n")
        '''),
        md("""
        ## Summary

        - Zero-shot whisper-base is the baseline row of every table: same test sets, same
          normaliser, same greedy decoding as every fine-tuned model after it.
        - On the same clips, singing and accompaniment cost it words compared with speech; real
          voices sung by the same transform are hard too, and ordinary speech is far from perfect.
        - Per palo and per voice, the intervals are wide: a handful of clips per group.
        - Loops and repeated n-grams are Whisper's hallucinations; the compression ratio finds them
          from the text alone.

        **Exercises**
        1. Which palo is hardest for zero-shot Whisper? Listen to one of its test clips (notebook
           05, section 7, with its id) and say what makes it hard.
        2. Is the held-out voice harder than the seen ones when *spoken*? What does that tell you
           about a fine-tuned model's gap between the two?
        3. Evaluate the cante test set again with beam search, into a folder of its own:
           `evaluation.evaluate_manifest(MODEL, corpora / "cante/manifest.jsonl", max_items=N_EVAL,
           num_beams=5, out=paths.results_dir() / "zero-shot-beam5__cante")`. Does it loop less?
        4. Count the deletions and insertions in the worst transcripts: which dominates, and why
           would singing cause it?
        """),
    ]


# ============================================================================================
# 07 — stage 1: fine-tuning on the flamenco corpus, and the spoken control
# ============================================================================================


def nb07_stage1_flamenco():
    return [
        md("""
        # 07 · Stage 1: fine-tuning on cante

        Stage 1 fine-tunes whisper-base on the flamenco corpus: the sung clips of the training
        split, with their guitar and palmas (offline, the synthetic cante of notebook 05; with a
        real corpus, its manifest). A second model, the **spoken control**, is trained exactly the
        same way on the same clips *spoken*. Both are then evaluated on every test set next to
        zero-shot Whisper (notebook 06).

        **What you will learn**
        - why, on a CPU, the lower encoder layers are frozen and their output cached
          (`cached_layers`), and what that costs in quality;
        - what a stage config holds and how to run it (`python -m flamenco_lib train --config ...`);
        - to read a training curve;
        - how much stage 1 gains, measured two ways: the relative WER cut from zero-shot, and the
          sung test set against zero-shot Whisper on the same clips spoken;
        - what the spoken control separates: learning the voices and the lyrics' words, or learning
          to hear singing.
        """),
        *colab_cells(),
        *parameters_cells('''
        n_examples: int = 3  # test clips whose transcripts are shown before and after stage 1
        '''),
        *data_folder_cells(),
        md("""
        Imports and the thesis figure style.
        """),
        code('''
        from pathlib import Path

        import matplotlib.pyplot as plt
        import pandas as pd

        from flamenco_lib import analysis, pipeline, plotting, results, training
        from flamenco_lib.data import stats
        from flamenco_lib.data.corpus import OFFLINE_CORPORA, build_corpora

        plotting.set_style()
        '''),
        *corpora_cells(),
        md("""
        ## 1. Why cache the lower encoder layers

        A training step runs the encoder over 30 s of log-Mel features per clip (1500 frames through
        6 layers of whisper-base), then the decoder, then the backward pass through both. On 2 CPU
        cores this was measured (batch 4, `configs/README.md`): about 10 s per step with every
        weight trained, 4 s with the encoder frozen, 1 s for the decoder alone on cached encoder
        outputs. Freezing is cheap, but what is frozen does not learn, and a probe found that
        adapting the encoder is what counts for singing: the decoder alone reached 62% WER, the
        top 2 encoder layers with it 50%, the top 4 with it 28%.

        Hence `cached_layers: 2` in the `cpu` profile: the conv stem and the first two encoder
        layers are frozen, and since a frozen layer gives the same output every epoch, their output
        (1500 x 512 numbers per clip) is computed once and cached on disk
        (`data/cache/activations/`). Each step then starts at layer 2: four encoder layers and the
        decoder train at a fraction of the cost of a full step. The `gpu` profile trains everything
        (`cached_layers: 0`).
        """),
        code('''
        cost = pd.DataFrame({"what trains": ["everything", "decoder (encoder frozen)", "decoder (encoder cached)"],
                             "seconds per step": [10, 4, 1]})  # measured: configs/README.md
        probe = pd.DataFrame({"what trains": ["decoder", "top 2 encoder layers + decoder", "top 4 encoder layers + decoder"],
                              "wer": [0.62, 0.50, 0.28]})  # measured: configs/README.md
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
        plotting.plot_wer_bars(cost, x="what trains", y="seconds per step", percent=False, ax=axes[0],
                               title="Cost of a step (batch 4, 2 cores)")
        plotting.plot_wer_bars(probe, x="what trains", ax=axes[1], title="Probe: WER after fine-tuning")
        fig.tight_layout()
        plotting.savefig(fig, "07-step-costs", caption=(
            "Measured on 2 CPU cores (configs/README.md): seconds per whisper-base training step by what is trained, "
            "and the WER a probe reached training the decoder alone or with the top encoder layers."))
        '''),
        md("""
        How many of whisper-base's parameters train for each value of `cached_layers`
        (`training.freeze_lower`, the function `train_stage` calls): the encoder layers are small
        next to the decoder, whose token embedding alone (51,865 x 512) holds 26.6 M parameters.
        """),
        code('''
        base_model, _ = models.load_whisper(MODEL)
        trainable = {k: training.freeze_lower(base_model, k) for k in (0, 2, 4, 6)}
        pd.DataFrame({"cached_layers": list(trainable),
                      "trainable (M)": [t / 1e6 for t, _ in trainable.values()],
                      "share": [f"{t / n:.0%}" for t, n in trainable.values()]}).round(1)
        '''),
        md("""
        ## 2. The stage configs

        A stage is one YAML file in `configs/` (every key is checked; `configs/README.md` lists
        them): the model it starts from, the training sources with their mixing weights, the
        optimiser and its schedule, steps, batch, precision, `cached_layers`, evaluation and the
        output folder, with overrides per profile. `configs/stage1.yaml` trains on the sung cante
        corpus; `configs/stage1_spoken.yaml` is the same file pointed at `cante-spoken`. Both are
        evaluated during training on the *sung* dev clips. Here are both as this profile resolves
        them (the smoke profile: 4 steps of batch 2 on 8 clips, just enough to run every line).
        """),
        code('''
        CONFIGS = {"stage 1": pipeline.config_file("stage1"), "stage 1, spoken control": pipeline.config_file("stage1_spoken")}
        for row, path in CONFIGS.items():
            cfg = training.load_config(path, profile=profile, overrides=FROM_BASE)
            print(f"{row} ({path.name}): {cfg.steps} steps of batch {cfg.batch_size}, lr {cfg.lr:g} ({cfg.schedule}), "
                  f"cached_layers {cfg.cached_layers}, {cfg.precision}")
            for s in cfg.train:
                print(f"  trains on {Path(s.manifest).parent.name}/{s.split} (weight {s.weight}, max_items {s.max_items})")
            print(f"  -> {cfg.output_dir}")
        '''),
        md("""
        ## 3. Training

        `pipeline.run_stage` trains a stage unless its saved run is up to date: when the final
        model and `train_log.json` are newer than the config, every manifest it reads and the model
        it starts from, and the settings are the same, it only reads the saved summary (rerunning
        this notebook costs nothing). An interrupted run resumes from its last checkpoint; a stage
        whose inputs changed trains again from the start. It prints which it did and why. The same
        from a terminal: `python -m flamenco_lib train --config configs/stage1.yaml [--resume]`.

        In the `cpu` profile each stage takes about 25 minutes (caching the 871 training clips
        about 4, then 90 steps of batch 8); in the smoke profile, seconds.
        """),
        code('''
        summaries = {row: pipeline.run_stage(path, profile=profile, overrides=FROM_BASE) for row, path in CONFIGS.items()}
        for row, s in summaries.items():
            print(f"{row}: {s['trainable_params'] / 1e6:.1f} M of {s['total_params'] / 1e6:.1f} M parameters trained, "
                  f"{s['train_seconds'] / 60:.1f} min; eval WER at the end {100 * s.get('eval_wer', float('nan')):.1f}%")
        '''),
        md("""
        ## 4. Training curves

        The mean training loss (cross-entropy per label token) every `log_every` steps, from each
        stage's `train_log.json`. It should fall fast in the first steps (the model learns the
        voices, the accompaniment and the lyrics' vocabulary) and then flatten as the learning rate
        decays linearly to zero. The control's loss is measured on spoken clips, which are easier,
        so the two curves do not compare the models on the same task: the test sets below do that.
        """),
        code('''
        fig, ax = plt.subplots(figsize=(7, 3))
        plotting.plot_training_losses(summaries, ax=ax, title="Stage 1 and the spoken control: training loss")
        plotting.savefig(fig, "07-training-curves", caption=(
            "Training loss (cross-entropy per label token) of stage 1 on sung clips and of the spoken control on the "
            "same clips spoken."))
        '''),
        md("""
        ## 5. Every test set

        Both models, and the zero-shot baseline of notebook 06, on the first `N_EVAL` clips of every
        test set, with the same runner, normaliser and decoding (`results.evaluate_stages`; runs
        that are up to date are kept). The rows are those of `flamenco_lib.results.STAGES`, so the
        results are the files notebook 10 reads. The spoken control is evaluated on the *sung* test
        set, the question it answers, and on the same clips spoken (its own kind of clip) only.
        """),
        code('''
        rows = pipeline.stage_rows("zero-shot", "stage 1", "stage 1, spoken control", profile=profile, base=MODEL)
        results.evaluate_stages(rows, max_items=N_EVAL)
        print(results.markdown(results.results_table(stages=rows)))
        '''),
        md("""
        The same as bars, one colour per test set. Read it test set by test set: did stage 1
        improve the cante test set, by how much, and did it cost anything on the speech test set
        (what notebook 08 calls forgetting)? Did it help the real voices sung (`cante_real`)?
        """),
        code('''
        runs = analysis.runs_table()
        runs = runs[runs["model"].isin([label for label, *_ in rows])]
        fig, ax = plt.subplots(figsize=(9, 3.4))
        plotting.plot_stage_comparison(runs, ax=ax, title="Zero-shot, stage 1 and the spoken control")
        plotting.savefig(fig, "07-stages", caption=(
            "WER (%) of zero-shot whisper-base, stage 1 and the spoken control on every test set, with 95% intervals."))
        '''),
        md("""
        ## 6. Two yardsticks, and what the control shows

        Stage 1 is measured against zero-shot Whisper in two ways:

        1. the **relative cut** of the cante test WER, (zero-shot - stage 1) / zero-shot;
        2. stage 1 on the **sung** clips against zero-shot Whisper on the **same clips spoken**: has
           the fine-tuned model made singing as easy as speech was for the original?

        The spoken control then splits the gain in two. It learnt the voices, the recording
        conditions and the lyrics' words, but never heard singing: zero-shot → control is what
        that much is worth on the sung test set; control → stage 1 is what hearing the singing in
        training added. A gap counts when the intervals do not overlap.
        """),
        code('''
        wer = analysis.runs_table().set_index(["model", "test_set"])[["wer", "wer_lo", "wer_hi"]]
        BARS = {"zero-shot, spoken clips": ("zero-shot", "cante_spoken"), "zero-shot": ("zero-shot", "cante"),
                "spoken control": ("stage 1, spoken control", "cante"), "stage 1": ("stage 1", "cante")}
        bars = pd.DataFrame([{"system": name, **wer.loc[key]} for name, key in BARS.items()])
        ax = plotting.plot_stage_comparison(bars, x="system", hue=None, title="Sung cante test set (first bar: the same clips spoken)")
        plotting.savefig(ax.figure, "07-vs-zero-shot", caption=(
            "Cante test WER (%) of zero-shot whisper-base, the spoken control and stage 1, next to zero-shot on the "
            "same clips spoken, with 95% intervals."))

        zs, s1, spoken, control = (wer.loc[key] for key in (BARS["zero-shot"], BARS["stage 1"],
                                                           BARS["zero-shot, spoken clips"], BARS["spoken control"]))
        print(f"1. relative cut: {100 * (zs.wer - s1.wer) / zs.wer:.0f}% ({zs.wer:.1f}% -> {s1.wer:.1f}%)")
        apart = s1.wer_hi < spoken.wer_lo or spoken.wer_hi < s1.wer_lo
        print(f"2. stage 1 sung {s1.wer:.1f}% vs zero-shot spoken {spoken.wer:.1f}%: "
              f"{'lower' if s1.wer < spoken.wer else 'not lower'}, intervals {'apart' if apart else 'overlap'}")
        print(f"the control: voices and words {zs.wer:.1f}% -> {control.wer:.1f}%, singing {control.wer:.1f}% -> {s1.wer:.1f}%")
        '''),
        md("""
        ## 7. Before and after

        The same test clips transcribed by zero-shot Whisper, the spoken control and stage 1, next
        to what was sung. Which errors disappear first: the words of the lyrics' vocabulary, the
        quejíos, the repeated lines? Change `seed` to draw other clips.
        """),
        code('''
        RUNS = {"zero-shot": "zero-shot", "control": "stage 1, spoken control", "stage 1": "stage 1"}
        said = stats.compare_styles({name: results.run_dir(row, "cante") / "predictions.jsonl" for name, row in RUNS.items()},
                                    fields=("hypothesis",), keep=("reference", "palo"))
        for row in said.sample(min(n_examples, len(said)), random_state=seed).itertuples(index=False):
            print(f"[{row.id}, {row.palo}]\\n  {'what is sung':10s}  {row.reference}")
            for name, hyp in zip(RUNS, row[3:]):
                print(f"  {name:10s}  {hyp}")
            print()
        '''),
        md("""
        ## Summary

        - On 2 CPU cores, freezing the conv stem and the first two encoder layers and caching their
          output makes a step several times cheaper while four encoder layers still adapt to the
          singing; the GPU profile trains everything.
        - `pipeline.run_stage` trains a stage once and reuses it while its config, data and
          starting model are unchanged; an interrupted run resumes.
        - Stage 1 is judged by the relative cut of the cante WER and against zero-shot Whisper on
          the same clips spoken; the spoken control splits its gain into learning the voices and
          words, and learning the singing.
        - Whatever stage 1 costs on ordinary speech is the subject of notebook 08.

        **Exercises**
        1. Train stage 1 with `cached_layers: 4` (`overrides={**FROM_BASE, "cached_layers": 4,
           "output_dir": "data/checkpoints/stage1-k4"}`): how much faster is a step, and how much
           worse is the cante WER (evaluate it with `evaluation.evaluate_manifest`)?
        2. Is stage 1 better on the seen voices than on the held-out one (the table's last two
           columns)? Compare that gap with zero-shot's (notebook 06, section 3).
        3. The control never heard singing yet improves the sung test set. List three things it
           could have learnt from spoken clips that help with sung ones.
        4. Does stage 1 improve `cante_real` (real voices sung)? What does the answer say about what
           it learnt: singing, or the synthetic voices?
        """),
    ]


# ============================================================================================
# 08 — stage 2: general Spanish speech against forgetting
# ============================================================================================


def nb08_stage2_common_voice():
    return [
        md("""
        # 08 · Stage 2: Common Voice against forgetting

        A model fine-tuned on one narrow domain tends to lose some of what it knew: **catastrophic
        forgetting**. Stage 1 trained whisper-base on sung flamenco only; stage 2 continues from it
        on general Spanish read speech (Common Voice; offline, the real Spanish speech corpus),
        with a replay share of stage-1 clips mixed into every batch so that the cante is not
        forgotten in turn. It is measured on both: the cante test set, and the speech test set.

        **What you will learn**
        - what forgetting is and how to measure it: the speech test WER before and after
          fine-tuning;
        - how to point stage 2 at Common Voice (`flamenco_lib.data.corpus.load_common_voice`), and
          what stands in for it offline;
        - what a replay share is, and how a mixing weight in a config implements it;
        - to read the forgetting plot: cante WER against speech WER, one point per model.
        """),
        *colab_cells(),
        *parameters_cells('''
        common_voice: str = ""  # a Common Voice download folder (train.tsv, clips/) to look at; "": none
        '''),
        *data_folder_cells(),
        md("""
        Imports and the thesis figure style.
        """),
        code('''
        from pathlib import Path

        import pandas as pd
        from IPython.display import display

        from flamenco_lib import analysis, pipeline, plotting, results, training
        from flamenco_lib.data import stats
        from flamenco_lib.data.corpus import OFFLINE_CORPORA, build_corpora, load_common_voice

        plotting.set_style()
        '''),
        *corpora_cells(),
        md("""
        Stage 2 starts from stage 1's final model (`model: data/checkpoints/stage1` in
        `configs/stage2.yaml`: a stage's output folder means its final model). Notebook 07 trained
        it; `pipeline.run_stage` only reads its saved summary when it is up to date, and trains it
        here when it is missing (so that this notebook also runs on its own).
        """),
        code('''
        pipeline.run_stage(pipeline.config_file("stage1"), profile=profile, overrides=FROM_BASE)
        '''),
        md("""
        ## 1. Common Voice, and its offline stand-in

        Common Voice (Mozilla) is crowd-sourced read speech: thousands of Spanish speakers reading
        sentences aloud, with every accent and microphone, CC0. It comes as a folder with
        `train.tsv`, `dev.tsv`, `test.tsv` (the sentence and the clip of each recording) and
        `clips/*.mp3`. `load_common_voice(folder, split="train")` reads that folder (or, when the
        Hugging Face Hub is reachable, streams `mozilla-foundation/common_voice_17_0`) into rows of
        the manifest format: `id`, `audio`, `text`, `split`, `singer` (the speaker), `source`.

        To train stage 2 on it, write those rows as a manifest (`flamenco_lib.data.manifest.
        write_manifest`; `audio` relative to the manifest's folder) and make it the first source of
        `configs/stage2.yaml`, in place of `data/corpora/speech/manifest.jsonl`. Offline, and in
        this notebook, the stand-in is the real Spanish speech corpus: Debian's asterisk prompts,
        one es-MX speaker. One speaker and one style of prompt is far narrower than Common Voice,
        so its gains on its own test set are partly adaptation to that speaker (README, "Measured").
        Set `common_voice` to a download folder to look at the real thing.
        """),
        code('''
        if common_voice:
            cv = load_common_voice(common_voice, split="train", max_items=5)
            display(pd.DataFrame(cv.with_format(None)[:5]).drop(columns="audio_path"))
        speech = stats.read_frame(paths.data_dir() / "corpora" / "speech" / "manifest.jsonl")
        print(f"offline stand-in: {len(speech)} prompts, {speech['duration_s'].sum() / 3600:.2f} h, "
              f"speakers: {speech['singer'].nunique()}")
        speech[["id", "text", "split", "duration_s"]].head()
        '''),
        md("""
        ## 2. The replay share

        If stage 2 trained on speech alone, it would now forget the cante. So every batch mixes
        both: each slot of a batch draws a source with probability proportional to its `weight`
        (0.7 speech, 0.3 cante: the **replay share** of stage-1 data), then a clip of that source.
        Stage 2 trains fewer steps with a lower learning rate than stage 1: it should repair, not
        relearn. The config as this profile resolves it:
        """),
        code('''
        config = pipeline.config_file("stage2")
        cfg = training.load_config(config, profile=profile)
        print(f"starts from {cfg.model}\\n{cfg.steps} steps of batch {cfg.batch_size}, lr {cfg.lr:g}, "
              f"cached_layers {cfg.cached_layers}")
        for s in cfg.train:
            print(f"  {s.weight:.0%} of every batch from {Path(s.manifest).parent.name}/{s.split}")
        '''),
        md("""
        ## 3. Training

        As in notebook 07, `pipeline.run_stage` trains the stage unless its saved run is up to
        date. The activations of the stage-1 clips are cached already (same frozen layers, same
        clips), so only the speech clips are new to the cache. About 8 minutes in the `cpu`
        profile.
        """),
        code('''
        stage2 = pipeline.run_stage(config, profile=profile)
        print(f"{stage2['trainable_params'] / 1e6:.1f} M parameters trained, {stage2['train_seconds'] / 60:.1f} min; "
              f"speech eval WER at the end {100 * stage2.get('eval_wer', float('nan')):.1f}%")
        '''),
        md("""
        The training loss of stage 2. It starts from a model that already knows part of the mix
        (the replayed cante clips); the speech clips are new to it. Compare its first steps with
        stage 1's in notebook 07.
        """),
        code('''
        ax = plotting.plot_training_curve([e for e in stage2["log"] if "loss" in e], x="step", y="loss",
                                          label="stage 2 (70% speech, 30% cante)", title="Stage 2: training loss")
        plotting.savefig(ax.figure, "08-training-curve", caption=(
            "Training loss of stage 2 (speech with a 30% replay of stage-1 cante clips), starting from stage 1."))
        '''),
        md("""
        ## 4. Every test set

        Zero-shot, stage 1 and stage 2 on every test set (`results.evaluate_stages`, the first
        `N_EVAL` clips; runs that are up to date are kept).
        """),
        code('''
        rows = pipeline.stage_rows("zero-shot", "stage 1", "stage 2", profile=profile, base=MODEL)
        results.evaluate_stages(rows, max_items=N_EVAL)
        print(results.markdown(results.results_table(stages=rows)))
        '''),
        md("""
        ## 5. The forgetting plot

        One point per model: its cante test WER on x, its speech test WER on y, with their 95%
        intervals; the arrows follow the training sequence. Moving **left** is learning cante;
        moving **up** is forgetting ordinary speech. Stage 1 should move far left, perhaps up;
        stage 2 should come down without moving right. (The spoken control is drawn too when it
        has been evaluated on both sets.)
        """),
        code('''
        forgetting = analysis.forgetting_table()
        forgetting = forgetting[forgetting["model"].isin(["zero-shot", "stage 1", "stage 1, spoken control", "stage 2"])]
        ax = plotting.plot_forgetting(forgetting, title="Cante learnt against speech forgotten")
        plotting.savefig(ax.figure, "08-forgetting", caption=(
            "Cante test WER against speech test WER (95% intervals) of zero-shot whisper-base, stage 1 and stage 2; "
            "arrows follow the training stages. Left is better cante, down is less forgetting."))
        forgetting.round(1)
        '''),
        md("""
        The same in numbers: what stage 2 changed on each test set, relative to stage 1, and
        whether the change is larger than its uncertainty (the intervals do not overlap).
        """),
        code('''
        wer = analysis.runs_table().set_index(["model", "test_set"])
        for key, _, _ in results.TEST_SETS:
            a, b = wer.loc[("stage 1", key)], wer.loc[("stage 2", key)]
            apart = b.wer_hi < a.wer_lo or a.wer_hi < b.wer_lo
            print(f"{key:13s} stage 1 {a.wer:5.1f}% -> stage 2 {b.wer:5.1f}%  "
                  f"({b.wer - a.wer:+.1f} points; intervals {'apart' if apart else 'overlap'})")
        '''),
        md("""
        ## Summary

        - Forgetting is measured, not assumed: the speech test WER of each model next to its cante
          WER, in one plot.
        - Stage 2 continues from stage 1 on general Spanish speech with a replay share of cante
          clips; the share is just a mixing weight in the config.
        - With Common Voice, stage 2 sees thousands of speakers; offline, the asterisk prompts are
          a single speaker, so their test set overstates what stage 2 gains on general Spanish.

        **Exercises**
        1. Train stage 2 without replay (`overrides={"train": [the speech source only], "output_dir":
           "data/checkpoints/stage2-noreplay"}`) and put its point on the forgetting plot: how far
           right does it move?
        2. Why does stage 2 also change the WER on `cante_real`? (Which voice is sung there?)
        3. With a Common Voice download, build its manifest and train stage 2 on it: is the speech
           test set of the asterisk corpus still the right forgetting check?
        """),
    ]


# ============================================================================================
# 09 — stage 3: prompts in Whisper's previous-text slot, text and soft
# ============================================================================================


def nb09_stage3_prompts():
    return [
        md("""
        # 09 · Stage 3: prompts

        Whisper was trained with the text of the previous 30-second window in front of the current
        one, so that a long recording is transcribed consistently. That slot can hold any text: a
        **prompt**. Stage 3 fills it with what we know about a flamenco recording before hearing
        it, the palo and the vocabulary of flamenco lyrics, and fine-tunes the model to use it. A
        variant learns the prompt itself: 16 free vectors in the same slot (a **soft prompt**),
        with every weight of the model frozen.

        **What you will learn**
        - the prompt layout `<|startofprev|> prompt <|startoftranscript|><|es|><|transcribe|><|notimestamps|> text <|endoftext|>`,
          and why the prompt is masked out of the loss;
        - that the layout used in training is, token for token, what `generate(prompt_ids=...)`
          feeds the decoder at inference;
        - why the prompt is dropped half of the time in training;
        - how a soft prompt trains 0.01% of the parameters;
        - to judge a prompt: the same model decoded with and without it, on cante and on ordinary
          speech.
        """),
        *colab_cells(),
        *parameters_cells(),
        *data_folder_cells(),
        md("""
        Imports and the thesis figure style.
        """),
        code('''
        import matplotlib.pyplot as plt
        import pandas as pd
        from IPython.display import display

        from flamenco_lib import analysis, pipeline, plotting, prompts, results, training
        from flamenco_lib import audio as A
        from flamenco_lib.data.corpus import OFFLINE_CORPORA, build_corpora
        from flamenco_lib.data.manifest import read_manifest

        plotting.set_style()
        '''),
        *corpora_cells(),
        md("""
        Stage 3 starts from stage 2, which starts from stage 1 (notebooks 07 and 08).
        `pipeline.run_stage` only reads their saved summaries when they are up to date, and trains
        them here when they are missing, so that this notebook also runs on its own.
        """),
        code('''
        pipeline.run_stage(pipeline.config_file("stage1"), profile=profile, overrides=FROM_BASE)
        pipeline.run_stage(pipeline.config_file("stage2"), profile=profile)
        cfg = training.load_config(pipeline.config_file("stage3"), profile=profile)
        print("stage 3 starts from", cfg.model, "| prompt kinds:", cfg.prompt_kinds, "| dropped with p =", cfg.prompt_drop)
        '''),
        md("""
        ## 1. The prompt layout

        A prompt is built per clip from the kinds the config names (`prompt_kinds: [palo, lexicon]`):
        the palo ("Soleá.") and a **lexicon**, the most frequent content words of the *training*
        lyrics (never the test ones: the test score must not be given its answers). Here is one
        training clip, its prompt, and the decoder's input and labels that
        `training.collate_labels` builds from them (Whisper's tokens decoded one by one; a space
        belongs to the token after it).

        The decoder is trained to predict each next token, so the labels are the inputs shifted
        left by one. Positions that would predict a prompt token, or `<|startoftranscript|>`, have
        the label -100, which PyTorch's cross-entropy ignores: the model reads the prompt but is
        never trained to *write* it. The loss starts at `<|es|>`, exactly as without a prompt.
        """),
        code('''
        model, processor = models.load_whisper(cfg.model)  # stage 2's final model
        tok = processor.tokenizer
        train = [r for r in read_manifest(cfg.train[0].manifest) if r["split"] == "train"]
        words = prompts.lexicon([r["text"] for r in train if r.get("palo")], size=cfg.lexicon_size)
        example = train[seed % len(train)]
        prompt = prompts.prompts_for([example], kinds=cfg.prompt_kinds, words=words)[0]
        print(f"prompt: {prompt}\\nlabel:  {example['text']}")

        batch = training.collate_labels(tok, [example["text"]], prompts=[prompt])
        inputs, labels = batch["decoder_input_ids"][0].tolist(), batch["labels"][0].tolist()
        layout = pd.DataFrame({"decoder input": [tok.decode([t]) for t in inputs],
                               "label": ["-100 (no loss)" if t == -100 else tok.decode([t]) for t in labels]})
        n_prompt = len(prompts.prompt_token_ids(tok, prompt))  # <|startofprev|> and the prompt's tokens
        print(f"{len(layout)} positions; the first {n_prompt + 1} have no loss (the prompt, then <|startoftranscript|>)")
        display(pd.concat([layout.head(4), layout.iloc[n_prompt - 2 : n_prompt + 6], layout.tail(2)]))
        '''),
        md("""
        At inference, `model.generate(features, prompt_ids=processor.get_prompt_ids(prompt))`
        builds the same layout by itself. The proof: `prompts.generate_decoder_input` listens to the
        decoder with a forward pre-hook while `generate` runs, and returns every token the decoder
        was fed. It must be the training layout: the same prompt and task tokens in the same
        places, then the text, here the tokens the model wrote itself (in training, the label's:
        teacher forcing). Otherwise the model would be trained on one layout and used on another.
        The comparison is by token ids: decoding the text and encoding it again may split a word
        differently (tests/test_prompts.py checks the same on real speech).
        """),
        code('''
        audio = A.load_audio(example["audio_path"], start=example["start"], end=example["end"])
        features = processor.feature_extractor(audio, sampling_rate=A.SAMPLE_RATE, return_tensors="pt").input_features
        fed, out = prompts.generate_decoder_input(model, processor, features.to(model.device, model.dtype), prompt=prompt)
        head = n_prompt + len(training.prefix_ids(tok))  # the prompt, then the 4 task tokens
        print("generate wrote:", tok.decode(out, skip_special_tokens=True))
        print("training layout == what generate fed the decoder, token for token:",
              fed == inputs[:head] + out[: len(fed) - head])
        '''),
        md("""
        ## 2. Training with prompts, and with a soft prompt

        `configs/stage3.yaml` trains like stage 1 (same frozen layers), on 70% cante and 30%
        speech; the speech clips have no palo, so they get no prompt. Each cante clip's prompt is
        **dropped with probability 0.5** (`prompt_drop`): Whisper itself was trained with and
        without previous text, and a model that only ever saw prompts would depend on them.

        `configs/stage3_soft.yaml` freezes the whole model and trains only `k` vectors in the prompt
        slot, started from the embeddings of the lexicon's last tokens (`flamenco_lib.soft_prompt`).
        The encoder is frozen too, so all six layers are cached and a step runs the decoder only.
        The vectors are saved as `soft_prompt.pt` in the model folder, and the evaluation runner
        decodes with them whenever it finds that file.
        """),
        code('''
        CONFIGS = {"stage 3": pipeline.config_file("stage3"), "stage 3, soft prompt": pipeline.config_file("stage3_soft")}
        summaries = {row: pipeline.run_stage(path, profile=profile) for row, path in CONFIGS.items()}
        for row, s in summaries.items():
            print(f"{row}: {s['trainable_params']:,} of {s['total_params']:,} parameters trained "
                  f"({100 * s['trainable_params'] / s['total_params']:.2g}%), {s['train_seconds'] / 60:.1f} min")
        '''),
        md("""
        The training losses. The soft prompt moves about 0.01% of the parameters, with a far larger
        learning rate (5e-3 against 2e-5): its loss can only fall as far as a better prompt for the
        same frozen model allows.
        """),
        code('''
        fig, ax = plt.subplots(figsize=(7, 3))
        plotting.plot_training_losses(summaries, ax=ax, title="Stage 3: training loss")
        plotting.savefig(fig, "09-training-curves", caption=(
            "Training loss of stage 3 with text prompts (dropped half of the time) and of the soft prompt "
            "(the model frozen), both starting from stage 2."))
        '''),
        md("""
        ## 3. With and without prompts

        The comparison grid of `flamenco_lib.results.STAGES`, on the cante test set and the speech
        test set (the forgetting check): stage 2 and stage 3, each decoded without a prompt and with
        the text prompt (palo and lexicon; the lexicon from the training lyrics), and the soft
        prompt. Stage 2 never saw a prompt in training: what a prompt does for it is Whisper's own
        pre-training at work. The speech clips have no palo and their corpus no lyrics, so they get
        no text prompt: on speech a "+ prompts" row decodes exactly as its model without one, and
        only the soft prompt, which is always there, can change the speech WER.
        """),
        code('''
        rows = pipeline.stage_rows("stage 2", "stage 2 + prompts", "stage 3", "stage 3 + prompts", "stage 3, soft prompt",
                                   profile=profile, base=MODEL)
        results.evaluate_stages(rows, max_items=N_EVAL)
        print(results.markdown(results.results_table(stages=rows)))
        '''),
        md("""
        The same as bars: on x the model (stage 2 or 3), in colour how it was decoded. Read it per
        test set: does the text prompt lower stage 3's cante WER more than stage 2's? Does the
        soft prompt match the text prompt with a ten-thousandth of the parameters? And does any
        prompt cost something on speech?
        """),
        code('''
        table = analysis.prompt_table()
        sets = list(table["test_set"].unique())
        fig, axes = plt.subplots(1, len(sets), figsize=(5.5 * len(sets), 3.4), squeeze=False)
        for ax, key in zip(axes[0], sets):
            plotting.plot_prompt_bars(table[table["test_set"] == key], ax=ax, title=f"{key} test set")
        plotting.savefig(fig, "09-prompts", caption=(
            "WER (%) of stage 2 and stage 3 decoded without a prompt, with a text prompt (palo and lexicon) and with a "
            "soft prompt, with 95% intervals."))
        table.round(1)
        '''),
        md("""
        The intervals of the bars overlap, but that alone does not settle it: every model finds the
        same clips hard. The paired bootstrap (notebook 10 explains it) scores two models on the
        same resampled clips; the interval of their difference says whether a prompt, or stage 3,
        really changes the WER. Bar of this stage: stage 3 with prompts should beat stage 2.
        """),
        code('''
        grid = {label for label, *_ in rows}
        paired = analysis.paired_table([p for p in analysis.PAIRS if p[0] in grid and p[1] in grid])
        print(analysis.NO_RESULTS if paired.empty else paired.round(2).to_string(index=False))
        '''),
        md("""
        ## 4. Per palo, with and without prompts

        The prompt names the palo. If that helps, it should help most where the palo changes the
        words: palos with their own vocabulary (the forge of the martinete, the sea of the
        alegrías). The heatmap shows the cante WER per palo for every row of the grid; compare the
        rows of one model with and without its prompt. Few clips per palo: large differences only.
        """),
        code('''
        per_palo = analysis.per_palo_table(test_set="cante")
        if per_palo.empty:
            print("the clips evaluated are all of one palo: no per-palo comparison")
        else:
            per_palo = per_palo[per_palo["model"].isin([label for label, *_ in rows])]
            ax = plotting.plot_wer_heatmap(per_palo, title="Cante test set: WER (%) per palo, with and without prompts")
            plotting.savefig(ax.figure, "09-per-palo", caption=(
                "Cante test WER (%) per palo of stage 2 and stage 3 decoded with and without prompts."))
        '''),
        md("""
        ## Summary

        - A prompt goes into Whisper's previous-text slot: `<|startofprev|>` prompt, then the usual
          `<|startoftranscript|><|es|><|transcribe|><|notimestamps|>` and the text. In training it
          is masked out of the loss (-100) and dropped half of the time; at inference
          `generate(prompt_ids=...)` feeds the decoder exactly the layout used in training.
        - Stage 3 fine-tunes with prompts built from the palo and a lexicon of the training lyrics;
          the soft prompt learns 16 vectors for the same slot with the model frozen.
        - A prompt is judged by decoding the same model with and without it, on cante and on
          ordinary speech.

        **Exercises**
        1. None of the offline corpora has `previous_text` (each clip is a whole copla). In a corpus
           of real recordings cut into verses, what would `prompt_kinds: [palo, previous, lexicon]`
           give the model, and what would its manifest need?
        2. Decode stage 3 with a *wrong* palo in the prompt (`prompts.build_prompt(palo="martinete",
           words=words)` for every clip, `evaluation.evaluate(..., prompts=...)`): how much does the
           WER rise? Does the model read the palo, or only the lexicon?
        3. Train the soft prompt with `soft_prompt: 64`: does a longer prompt help?
        4. Set `prompt_drop: 0` in a copy of `configs/stage3.yaml`: how does that model do *without*
           a prompt?
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
        Imports and the thesis figure style. The notebook only reads results files, so it runs
        alike on every machine. The `profile` only says where they are: the smoke runs of
        notebooks 05-09 keep theirs in `<data>/smoke`, away from the real ones.
        """),
        code('''
        import os

        import matplotlib.pyplot as plt
        from IPython.display import display

        from flamenco_lib import analysis, paths, plotting, report, results

        os.environ["FLAMENCO_DATA"] = str(paths.profile_data_dir(profile))  # smoke: <data>/smoke
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
        difference is not an accident of which clips were drawn (when they do, see the paired
        comparisons below).
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
        ### Is a difference real? Paired comparisons

        Two overlapping intervals do not mean "no difference". The same clips are hard for every
        model, and that shared variation widens both intervals. A *paired* bootstrap resamples the
        clips once and scores both models on the same draw: the interval of the difference is far
        narrower, and when it excludes 0 the difference is real at the 95% level. `p_better` is the
        share of resamples in which the model beats its baseline. The pairs are the thesis'
        questions (`analysis.PAIRS`): what stage 1 gains and how much of it is the singing, whether
        stage 2 keeps it, what prompts bring.
        """),
        code('''
        paired = analysis.paired_table()
        if paired.empty:
            print(analysis.NO_RESULTS)
        else:
            ax = plotting.plot_differences(paired, title="WER difference to the baseline, paired 95% intervals")
            plotting.savefig(ax.figure, "10-paired", caption=(
                "WER difference (points) of each model to its baseline on the same test clips, with paired "
                "bootstrap 95% intervals; left of zero the model is better."))
            display(paired.round(2))
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
    "06_zero_shot.ipynb": nb06_zero_shot,
    "07_stage1_flamenco.ipynb": nb07_stage1_flamenco,
    "08_stage2_common_voice.ipynb": nb08_stage2_common_voice,
    "09_stage3_prompts.ipynb": nb09_stage3_prompts,
    "10_results.ipynb": nb10_results,
}


def main(argv: list[str] | None = None) -> int:
    return write_notebooks(NOTEBOOKS, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
