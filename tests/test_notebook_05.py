"""The corpus statistics (flamenco_lib.data.stats) on a tiny corpus built in a tmp folder, the corpus
builders' smoke options, and notebooks/05_data.ipynb run in the smoke profile."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import jiwer
import nbformat
import numpy as np
import pytest
import soundfile as sf
import yaml

from flamenco_lib import evaluation, grid
from flamenco_lib.data import speech, stats
from flamenco_lib.data.corpus import (
    OFFLINE_CORPORA,
    TRAINING_VOICES_FORMANT_RATIO,
    build_corpora,
    build_speech_corpus,
)
from flamenco_lib.text import normalize

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "05_data.ipynb"
FIGURES = (
    "05-hours",
    "05-palos",
    "05-voices",
    "05-distributions",
    "05-styles",
    "05-look",
    "05-zero-shot",
)
SR = 16000


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    """Every offline corpus, tiny: 8 clips per synthetic style, 4 prompts of real speech."""
    return build_corpora(tmp_path_factory.mktemp("corpora"), n=8, n_speech=4, progress=False)


@pytest.fixture(scope="module")
def acapella_all(corpora):
    """The same 8 clips sung a cappella, every split (build_corpora renders the test split only)."""
    from flamenco_lib.data.cante import build_synth_corpus

    out = Path(corpora["cante-acapella"]).parent.with_name("cante-acapella-all")
    return build_synth_corpus(out, n=8, style="a-capella", progress=False)["manifest"]


def _rows(manifest):
    return [json.loads(line) for line in Path(manifest).read_text(encoding="utf-8").splitlines()]


def _seconds(manifest, row):
    return sf.info(str(Path(manifest).parent / row["audio"])).duration


@pytest.mark.parametrize(
    "name", ["cante", "speech"]
)  # speech rows have no duration_s: read from the files
def test_corpus_summary_counts_clips_hours_lyrics_and_voices_per_split(corpora, name):
    rows = _rows(corpora[name])
    table = stats.corpus_summary(corpora[name])
    splits = [s for s in ("train", "dev", "test") if any(r["split"] == s for r in rows)]
    assert list(table.index) == splits + ["all"]
    for split in splits + ["all"]:
        part = [r for r in rows if split in ("all", r["split"])]
        seconds = [_seconds(corpora[name], r) for r in part]
        got = table.loc[split]
        assert got["clips"] == len(part)
        assert got["hours"] == pytest.approx(sum(seconds) / 3600, rel=1e-4)
        assert got["mean_s"] == pytest.approx(np.mean(seconds), rel=1e-4)
        assert got["lyrics"] == len({normalize(r["text_canonical"]) for r in part})
        assert got["voices"] == len({r.get("voice") or r["singer"] for r in part})


def test_split_table_counts_every_value_per_split(corpora):
    rows = _rows(corpora["cante"])
    for by in ("palo", "voice", "base_voice"):
        table = stats.split_table(corpora["cante"], by)
        counts = Counter((r[by], r["split"]) for r in rows)
        assert table.to_numpy().sum() == len(rows)
        assert {
            (k, s): table.loc[k, s] for k in table.index for s in table.columns if table.loc[k, s]
        } == counts
    voices = stats.split_table(corpora["cante"], "base_voice")
    if "es-419" in voices.index:  # the held-out voice is only in the test split
        assert voices.loc["es-419"].drop("test", errors="ignore").sum() == 0


def test_compare_styles_joins_the_same_clips_by_id(corpora):
    names = {"spoken": "cante-spoken", "a cappella": "cante-acapella", "sung": "cante"}
    same = stats.compare_styles({s: corpora[n] for s, n in names.items()})
    rows = {s: {r["id"]: r for r in _rows(corpora[n])} for s, n in names.items()}
    assert list(same["id"]) == [i for i in rows["spoken"] if all(i in rows[s] for s in names)]
    test_ids = [i for i, r in rows["sung"].items() if r["split"] == "test"]
    assert len(rows["sung"]) == len(rows["spoken"]) == 8 and test_ids
    assert sorted(same["id"]) == sorted(test_ids)  # the a-cappella set: the test clips only
    for r in same.to_dict("records"):
        for style, name in names.items():
            assert r[f"duration_s_{style}"] == pytest.approx(
                _seconds(corpora[name], rows[style][r["id"]]), rel=1e-4
            )
        assert (
            r["voice"] == rows["sung"][r["id"]]["voice"]
            and r["split"] == rows["sung"][r["id"]]["split"]
        )
    # singing lengthens every clip; the a-cappella and the accompanied versions are sung alike
    assert (same["duration_s_sung"] > 1.3 * same["duration_s_spoken"]).all()
    assert np.allclose(same["duration_s_sung"], same["duration_s_a cappella"], rtol=0.01)


def test_style_wer_reads_metrics_in_the_order_given(tmp_path):
    refs = ["la luna de triana", "mi mare me lo decía", "por la calle del pozo"]
    hyps = {
        "spoken": ["la luna de triana", "mi madre me lo decía", "por la calle del pozo"],
        "sung": ["la lula triana", "me lo decía", "por la calle del pozo va"],
    }
    runs = {}
    for style in ("sung", "missing", "spoken"):
        runs[style] = tmp_path / style
        if style in hyps:
            runs[style].mkdir()
            m = evaluation.score_predictions(
                [{"id": str(k), "text": t} for k, t in enumerate(refs)], hyps[style]
            )
            (runs[style] / "metrics.json").write_text(json.dumps(m), encoding="utf-8")
    table = stats.style_wer(runs)
    assert list(table["style"]) == ["sung", "spoken"] and list(table["n"]) == [3, 3]
    for r in table.itertuples():
        assert r.wer == pytest.approx(100 * jiwer.wer(refs, hyps[r.style]))
        assert r.wer_lo <= r.wer <= r.wer_hi
    assert stats.style_wer({"none": tmp_path / "missing"}).empty


def test_f0_track_and_pitch_range_of_a_tone_and_a_glide():
    t = np.arange(2 * SR) / SR
    times, f0 = stats.f0_track(0.5 * np.sin(2 * np.pi * 220 * t))
    assert times[-1] < 2 and np.median(f0[f0 > 0]) == pytest.approx(220, abs=1)
    assert stats.pitch_range(0.5 * np.sin(2 * np.pi * 220 * t)) == pytest.approx(0, abs=0.1)
    hz = 200 * 2 ** (t / 2)  # one octave up in 2 s, evenly in semitones
    glide = 0.5 * np.sin(2 * np.pi * np.cumsum(hz) / SR)
    assert stats.pitch_range(glide) == pytest.approx(
        0.9 * 12, abs=0.5
    )  # 5th to 95th percentile of 12 semitones
    assert np.isnan(stats.pitch_range(np.zeros(SR)))


def test_pitch_ranges_singing_spans_more_than_speech(corpora, acapella_all):
    spoken, sung = stats.pitch_ranges(corpora["cante-spoken"]), stats.pitch_ranges(acapella_all)
    assert list(spoken.index) == [r["id"] for r in _rows(corpora["cante-spoken"])]
    assert (sung.loc[spoken.index] > spoken).mean() >= 0.75
    some = list(spoken.index[:2])
    assert (
        stats.pitch_ranges(corpora["cante-spoken"], ids=some).tolist() == spoken.loc[some].tolist()
    )


def test_features_lists_only_the_columns_with_values(corpora):
    sung, spoken = stats.read_frame(corpora["cante"]), stats.read_frame(corpora["cante-spoken"])
    assert {"duration_s", "snr_db", "stretch_mean"} <= set(stats.features(sung))
    assert "snr_db" not in stats.features(spoken) and "duration_s" in stats.features(spoken)


def test_build_speech_corpus_keeps_n_evenly_spaced_prompts_with_their_splits(corpora):
    every = {p["id"]: p for p in speech.prompts()}
    rows = _rows(corpora["speech"])
    assert 0 < len(rows) <= 4 and all(r["id"] in every for r in rows)
    assert all(r["split"] == every[r["id"]]["split"] for r in rows)
    assert {r["split"] for r in rows} == {"train", "dev", "test"}  # a test set even when tiny
    real = _rows(corpora["speech-drascula"])
    assert {r["split"] for r in real} == {"train", "dev", "test"}
    assert {r["id"] for r in _rows(corpora["cante-drascula"])} == {f"real-{r['id']}" for r in real}
    ids = list(every)  # in the order build_speech_corpus takes them
    assert rows[0]["id"] == ids[0]  # from the first prompt ...
    assert ids.index(rows[-1]["id"]) > len(ids) / 2  # ... across the whole list
    assert [r["id"] for r in _rows(corpora["cante-real"])] and all(
        r["copla_id"] in {s["id"] for s in rows} for r in _rows(corpora["cante-real"])
    )


def test_the_training_voices_are_sung_again_with_a_wider_range_of_vocal_tracts(corpora):
    # the -wide corpora: the training split of each real-voice corpus, the same clips, each
    # formant ratio drawn from the wider range; the dev and test splits (the real-voice test sets)
    # exist only with the generator's range, and the stages train on the wide ones
    lo, hi = TRAINING_VOICES_FORMANT_RATIO
    for name in ("cante-drascula", "cante-real"):
        default = {r["id"]: r for r in _rows(corpora[name])}
        wide = _rows(corpora[f"{name}-wide"])
        train = [i for i, r in default.items() if r["split"] == "train"]
        assert train and [r["id"] for r in wide] == train
        assert all(lo <= r["formant_ratio"] <= hi for r in wide)
        assert all(r["clip_seed"] == default[r["id"]]["clip_seed"] for r in wide)
        for stage in ("stage1", "stage2", "stage3"):
            cfg = yaml.safe_load(grid.config_file(stage).read_text(encoding="utf-8"))
            manifests = {Path(src["manifest"]).parent.name for src in cfg["train"]}
            assert f"{name}-wide" in manifests and name not in manifests, (stage, manifests)
    assert ("real_sung", "corpora/cante-drascula/manifest.jsonl", "test") in grid.TEST_SETS


def test_build_corpora_leaves_finished_corpora_alone(corpora):
    assert list(corpora) == list(OFFLINE_CORPORA)
    before = {n: m.stat().st_mtime_ns for n, m in corpora.items()}
    again = build_corpora(corpora["cante"].parent.parent, n=8, n_speech=4, progress=False)
    assert again == corpora and {n: m.stat().st_mtime_ns for n, m in again.items()} == before


def test_build_speech_corpus_with_n_zero_writes_an_empty_manifest(tmp_path):
    manifest = build_speech_corpus(tmp_path / "speech", n=0, progress=False)
    assert manifest.read_text() == ""


def _wer_of_predictions(run: Path) -> float:
    """WER recomputed from a run's ``predictions.jsonl`` (normalised references and hypotheses)."""
    from flamenco_lib import metrics

    preds = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    return metrics.wer([p["reference"] for p in preds], [p["hypothesis"] for p in preds])


def _snapshot(folder: Path) -> dict:
    return (
        {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}
        if folder.exists()
        else {}
    )


@pytest.mark.notebook
def test_data_notebook_builds_tiny_corpora_draws_and_evaluates_in_the_smoke_folder(
    tmp_path, smoke_folders
):
    papermill = pytest.importorskip("papermill")
    data, report = smoke_folders
    real_corpora = ROOT / "data" / "corpora"
    before = _snapshot(real_corpora)
    out = tmp_path / "05_data.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOK),
        str(out),
        parameters={"profile": "smoke"},
        kernel_name="python3",
        cwd=str(ROOT),
        progress_bar=False,
    )
    assert _snapshot(real_corpora) == before, "the smoke run touched data/corpora"
    assert (
        not (data / "corpora").exists() and not (data / "results").exists()
    )  # all went to <data>/smoke
    smoke = data / "smoke"
    assert all((smoke / "corpora" / name / "manifest.jsonl").exists() for name in OFFLINE_CORPORA)
    assert len(_rows(smoke / "corpora" / "cante" / "manifest.jsonl")) == 12
    missing = [f"{f}.png" for f in FIGURES if not (report / "figures" / f"{f}.png").exists()]
    assert not missing, f"figures not written: {missing}"
    n_test = sum(
        r["split"] == "test" for r in _rows(smoke / "corpora" / "cante" / "manifest.jsonl")
    )
    for key in ("cante", "cante_spoken", "cante_acapella"):
        run = smoke / "results" / f"zero-shot__{key}"
        m = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
        assert m["n_utterances"] == min(3, n_test)
        assert m["wer"] == pytest.approx(
            _wer_of_predictions(run)
        )  # the score is of what was written
    executed = nbformat.read(out, as_version=4)
    text = "".join(
        o.get("text", "")
        for c in executed.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
    )
    assert (
        "no lyric in two splits: False" not in text
        and text.count("no lyric in two splits: True") == len(OFFLINE_CORPORA) - 1
    )  # the songs' lines are shown by notebook 11, not here
    assert "what is sung" in text
