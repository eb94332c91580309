"""Notebooks 06-09 run in order in the smoke profile, in one tmp data folder: each trains what it
needs (reusing what the one before trained), evaluates, and draws its figures, all under
<data>/smoke; nothing is written to the project's own data folder."""

from __future__ import annotations

import json
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import yaml

from flamenco_lib import grid, metrics, models, results

ROOT = Path(__file__).resolve().parents[1]
CHAIN = {  # notebook: (figures it always draws, rows of grid.STAGES it evaluates)
    "06_zero_shot.ipynb": (["06-test-sets"], ["zero-shot"]),
    "07_stage1_flamenco.ipynb": (
        ["07-step-costs", "07-training-curves", "07-stages", "07-vs-zero-shot"],
        ["stage 1", "stage 1, spoken control"],
    ),
    "08_stage2_common_voice.ipynb": (["08-training-curve", "08-forgetting"], ["stage 2"]),
    "09_stage3_prompts.ipynb": (
        ["09-training-curves", "09-prompt-grid"],
        ["stage 3", "stage 3, soft prompt"],
    ),
}
BY_GROUP = {
    "06-per-palo": ("zero-shot", "palo"),
    "06-voices": ("zero-shot", "voice_heldout"),
}  # drawn when the clips evaluated have more than one group
SETS = {label: opts[0].get("sets") if opts else None for label, _, *opts in grid.STAGES}


def _snapshot(folder: Path) -> dict:
    return (
        {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}
        if folder.exists()
        else {}
    )


def _outputs(path) -> str:
    nb = nbformat.read(path, as_version=4)
    return "".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )


def _run_without(papermill, name: str, option: str, out: Path) -> str:
    """Notebook ``name`` run again in smoke with the opt-in ``option`` off (as on cpu): its text."""
    papermill.execute_notebook(
        str(ROOT / "notebooks" / name),
        str(out),
        parameters={"profile": "smoke", option: False},
        kernel_name="python3",
        cwd=str(ROOT),
        progress_bar=False,
    )
    return _outputs(out)


@pytest.mark.notebook
def test_experiment_notebooks_train_evaluate_and_draw_in_the_smoke_folder(tmp_path, smoke_folders):
    papermill = pytest.importorskip("papermill")
    data, report = smoke_folders
    base = models.build_offline_base()  # already built: the folder the zero-shot runs name
    real = {name: _snapshot(ROOT / "data" / name) for name in ("corpora", "checkpoints", "smoke")}
    started = time.time()
    text = {}
    for name in CHAIN:
        out = tmp_path / name
        papermill.execute_notebook(
            str(ROOT / "notebooks" / name),
            str(out),
            parameters={"profile": "smoke"},
            kernel_name="python3",
            cwd=str(ROOT),
            progress_bar=False,
        )
        text[name] = _outputs(out)

    # the project's data folder is untouched (another job may be writing results there: ours name tmp_path)
    assert {name: _snapshot(ROOT / "data" / name) for name in real} == real
    for f in (ROOT / "data" / "results").glob("*/metrics.json"):
        assert f.stat().st_mtime < started or str(tmp_path) not in f.read_text(encoding="utf-8"), f
    smoke = data / "smoke"
    assert (
        not (data / "corpora").exists() and not (data / "results").exists()
    )  # all went to <data>/smoke

    # each stage trained once: later notebooks reuse it
    assert "stage1: training, not trained yet" in text["07_stage1_flamenco.ipynb"]
    assert "stage1: up to date, not trained again" in text["08_stage2_common_voice.ipynb"]
    # no chain ablation is trained by the notebooks: notebook 08 says which command makes them
    assert "ablate --chain" in text["08_stage2_common_voice.ipynb"]
    assert "stage2: up to date, not trained again" in text["09_stage3_prompts.ipynb"]
    assert "token for token: True" in text["09_stage3_prompts.ipynb"]

    figures = report / "figures"
    for name, (expected, rows) in CHAIN.items():
        missing = [
            f"{f}.{ext}"
            for f in expected
            for ext in ("png", "pdf", "json")
            if not (figures / f"{f}.{ext}").exists()
        ]
        assert not missing, f"{name} did not write {missing}"
        for row in rows:
            for key, manifest, split in grid.TEST_SETS:
                if SETS[row] and key not in SETS[row]:
                    continue
                run = results.run_dir(row, key, root=smoke / "results")
                m = json.loads((run / "metrics.json").read_text())
                n_test = sum(
                    json.loads(line)["split"] == split
                    for line in (smoke / manifest).read_text().splitlines()
                )
                assert m["n_utterances"] == min(3, n_test), (row, key)
                preds = [
                    json.loads(x) for x in (run / "predictions.jsonl").read_text().splitlines()
                ]
                refs, hyps = [p["reference"] for p in preds], [p["hypothesis"] for p in preds]
                assert m["wer"] == pytest.approx(metrics.wer(refs, hyps)), (row, key)
                # the smoke model, not the real one
                trained = m["model"].startswith(str(smoke / "checkpoints"))
                assert (
                    m["model"] == str(data / "models" / base.name)
                    if row == "zero-shot"
                    else trained
                ), (row, key)
                assert m["decoding"]["prompts"] == ("+ prompts" in row), (row, key)
    # the step costs of 07 are measured when it runs (one step of one clip in smoke), not literals
    from flamenco_lib.plotting import caption_of

    caption = caption_of(figures / "07-step-costs.png")
    assert "measured when notebook 07 ran (batch 1," in caption and base.name in caption
    soft = json.loads(
        (
            results.run_dir("stage 3, soft prompt", "speech", root=smoke / "results")
            / "metrics.json"
        ).read_text()
    )
    k = yaml.safe_load((ROOT / "configs" / "stage3_soft.yaml").read_text())["profiles"]["smoke"][
        "soft_prompt"
    ]
    assert soft["soft_prompt_k"] == k
    for figure, (row, field) in BY_GROUP.items():
        m = json.loads(
            (results.run_dir(row, "cante", root=smoke / "results") / "metrics.json").read_text()
        )
        if any(g["field"] == field for g in m["per_group"]):
            assert (figures / f"{figure}.png").exists(), figure

    # notebook 09's prompt grid: every row on the same verses of the smoke test song
    prompt_grid = pd.read_csv(report / "tables" / "prompt_grid.csv")
    assert list(prompt_grid["model"]) == [label for label, *_ in grid.PROMPT_GRID]
    assert set(prompt_grid["n"]) == {3}
    copla_in = prompt_grid.set_index("model").loc["stage 3 + catalogue, copla in"]
    assert 0 <= copla_in["top1"] <= copla_in["top5"] <= 100
    assert "nan" not in (report / "tables" / "prompt_grid.md").read_text()
    # the report builds from these results: notebook 10 reads the smoke folder, writes the tables,
    # and the index page shows the smoke runs' table and names every figure
    papermill.execute_notebook(
        str(ROOT / "notebooks" / "10_results.ipynb"),
        str(tmp_path / "10.ipynb"),
        parameters={"profile": "smoke"},
        kernel_name="python3",
        cwd=str(ROOT),
        progress_bar=False,
    )
    table = pd.read_csv(report / "tables" / "results.csv")
    assert set(table["model"]) == {row for rows in (r for _, r in CHAIN.values()) for row in rows}
    from flamenco_lib import report as report_lib

    page = report_lib.build_index(profile="smoke", timings={}).read_text(encoding="utf-8")
    assert "no results yet" not in page and "<td>stage 3, soft prompt</td>" in page
    for png in figures.glob("*.png"):
        assert f'src="figures/{png.name}"' in page, png.name

    # notebook 11: whole songs, zero-shot and the smoke stage 3, every method, all in <data>/smoke
    papermill.execute_notebook(
        str(ROOT / "notebooks" / "11_a_whole_song.ipynb"),
        str(tmp_path / "11.ipynb"),
        parameters={"profile": "smoke"},
        kernel_name="python3",
        cwd=str(ROOT),
        progress_bar=False,
    )
    songs = pd.read_csv(report / "tables" / "songs.csv")
    assert sorted(zip(songs["model"], songs["method"])) == sorted(
        (m, k) for m in ("stage-3", "zero-shot") for k in ("fixed", "longform", "vad")
    )
    real = pd.read_csv(report / "tables" / "songs-real.csv")  # section 5: real voices' songs
    assert sorted(zip(real["model"], real["method"])) == [("stage-3", "vad"), ("zero-shot", "vad")]
    assert list(real["songs"]) == [1, 1]
    for run in (smoke / "results").glob("*__songs-real-*"):
        m = json.loads((run / "song_metrics.json").read_text())
        assert m["method"] == "vad" and m["per_song"][0]["song"].startswith("song-real-")
    for run in (smoke / "results").glob("*__songs-*"):
        if "__songs-real-" in run.name:  # checked above
            continue
        if run.name.endswith("__songs-align"):  # the printed lyrics aligned (section 5)
            m = json.loads((run / "alignment.json").read_text())
            song = m["per_song"][0]
            assert m["songs"] == 1 and song["sung"] >= song["printed"] >= 1
            assert all(a["start"] < a["end"] for a in song["aligned"])
            continue
        m = json.loads((run / "song_metrics.json").read_text())
        assert m["songs"] == 1 and 0 <= m["wer"] and m["audio_seconds"] > 30
    aligned = pd.read_csv(report / "tables" / "songs-alignment.csv")
    assert sorted(aligned["model"]) == ["stage-3", "zero-shot"]
    for f in ("11-song-lines", "11-song-methods", "11-song-aligned"):
        assert (figures / f"{f}.png").exists(), f
    assert not (ROOT / "data" / "corpora" / "songs").exists() or (
        (ROOT / "data" / "corpora" / "songs").stat().st_mtime < started
    )

    # notebook 07 without the spoken control (what the cpu profile does unless told otherwise):
    # stage 1 is reused, the control neither trained nor evaluated, and no figure speaks of it
    control = results.run_dir("stage 1, spoken control", "cante", root=smoke / "results")
    evaluated = (control / "metrics.json").stat().st_mtime_ns
    assert "the control: voices and words" in text["07_stage1_flamenco.ipynb"]
    alone = _run_without(
        papermill, "07_stage1_flamenco.ipynb", "spoken_control", tmp_path / "07-no-control.ipynb"
    )
    assert "the spoken control is left out" in alone
    assert "stage1: up to date, not trained again" in alone and "stage1_spoken" not in alone
    assert "the control: voices and words" not in alone and "1. relative cut" in alone
    assert (control / "metrics.json").stat().st_mtime_ns == evaluated
    for f in ("07-training-curves", "07-stages", "07-vs-zero-shot"):
        assert "spoken control" not in caption_of(figures / f"{f}.png"), f

    # notebook 09 without the soft prompt (what the cpu profile does unless told otherwise): stage
    # 3 is reused, the soft prompt neither trained nor evaluated again, and no figure speaks of it
    soft_rows = [
        results.run_dir("stage 3, soft prompt", key, root=smoke / "results")
        for key in ("speech", "verses")
    ]
    evaluated = [(run / "metrics.json").stat().st_mtime_ns for run in soft_rows]
    assert "soft prompt" in caption_of(figures / "09-training-curves.png")
    alone = _run_without(
        papermill, "09_stage3_prompts.ipynb", "soft_prompt", tmp_path / "09-no-soft-prompt.ipynb"
    )
    assert "the soft prompt is left out" in alone
    assert "stage3: up to date, not trained again" in alone and "stage3_soft" not in alone
    assert [(run / "metrics.json").stat().st_mtime_ns for run in soft_rows] == evaluated
    assert "soft prompt" not in caption_of(figures / "09-training-curves.png")
