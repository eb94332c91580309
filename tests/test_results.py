"""The stage comparison table reads the evaluation runner's metrics files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flamenco_lib import evaluation, results


def _run(root, row, key, refs, hyps, voices=None):
    rows = [
        {"text": r, "text_canonical": r, "voice_heldout": v}
        for r, v in zip(refs, voices or [None] * len(refs))
    ]
    m = evaluation.score_predictions(rows, hyps)
    d = results.run_dir(row, key, root=root)
    d.mkdir(parents=True)
    (d / "metrics.json").write_text(json.dumps(m))
    return m


def test_table_has_a_row_per_model_and_a_column_per_test_set(tmp_path):
    refs = [
        "la luna de triana",
        "mi mare en la fragua",
        "por la calle del pozo",
        "que me lleven a cadiz",
    ]
    zs = _run(
        tmp_path,
        "zero-shot",
        "cante",
        refs,
        ["la lula de triana", "mi madre en la fragua", "por la calle", "que me lleven a cadiz"],
        voices=[True, True, False, False],
    )
    _run(tmp_path, "zero-shot", "speech", refs, refs)
    s1 = _run(tmp_path, "stage 1", "cante", refs, refs, voices=[True, True, False, False])
    table = results.results_table(root=tmp_path)
    assert list(table["model"]) == ["zero-shot", "stage 1"]  # rows without results are left out
    z = table.set_index("model").loc["zero-shot"]
    assert z["cante_wer"] == 100 * zs["wer"] and z["speech_wer"] == 0
    assert z["cante_wer_lo"] <= z["cante_wer"] <= z["cante_wer_hi"]
    assert z["cante_wer_heldout_voice"] == 100 * 2 / 9 and z["cante_wer_seen_voice"] == 100 * 2 / 10
    assert table.set_index("model").loc["stage 1", "cante_wer"] == 100 * s1["wer"] == 0
    md = results.markdown(table)
    assert md.splitlines()[0].startswith("| model | cante WER % [95% CI]")
    assert f"| zero-shot | {100 * zs['wer']:.1f} [" in md
    assert "cante_real" not in md  # no column for a test set nobody evaluated


def test_evaluate_stages_reruns_what_changed_since_it_ran(tmp_path, monkeypatch):
    import os

    from flamenco_lib import models

    monkeypatch.setenv("FLAMENCO_DATA", str(tmp_path))
    man = tmp_path / "corpora" / "cante" / "manifest.jsonl"
    man.parent.mkdir(parents=True)
    man.write_text("")
    calls = []

    def fake_evaluate(model_name, manifest, *, out, **kw):  # records which runs were (re)done
        calls.append(Path(out).name)
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "metrics.json").write_text("{}")

    monkeypatch.setattr(evaluation, "evaluate_manifest", fake_evaluate)
    monkeypatch.setattr(models, "load_whisper", lambda path: (None, None))
    sets = (
        ("cante", "corpora/cante/manifest.jsonl", "test"),
        ("speech", "corpora/speech/manifest.jsonl", "test"),
    )
    stages = (("zero-shot", "base"), ("stage 1", "checkpoints/stage1"))
    results.evaluate_stages(stages, sets, progress=False)
    assert calls == ["zero-shot__cante"]  # stage 1 is not trained, the speech set not built
    results.evaluate_stages(stages, sets, progress=False)
    assert calls == ["zero-shot__cante"]  # up to date: kept
    run = tmp_path / "results" / "zero-shot__cante"
    later = (run / "metrics.json").stat().st_mtime + 10
    os.utime(
        man, (later, later)
    )  # the corpus rebuilt identically after the evaluation: contents decide
    results.evaluate_stages(stages, sets, progress=False)
    assert calls == ["zero-shot__cante"]
    man.write_text('{"id": "a"}\n')  # the corpus changed
    results.evaluate_stages(stages, sets, progress=False)
    assert calls == ["zero-shot__cante"] * 2
    results.evaluate_stages(stages, sets, progress=False, max_items=3)  # another number of clips
    assert calls == ["zero-shot__cante"] * 3

    # a run saved before inputs.json existed: kept while newer than the manifest
    (run / results.INPUTS).unlink()
    results.evaluate_stages(stages, sets, progress=False, max_items=3)
    assert calls == ["zero-shot__cante"] * 3
    later = (run / "metrics.json").stat().st_mtime + 10
    os.utime(man, (later, later))
    results.evaluate_stages(stages, sets, progress=False, max_items=3)
    assert calls == ["zero-shot__cante"] * 4


def test_a_prompted_row_where_no_clip_has_a_palo_is_the_unprompted_run(tmp_path, monkeypatch):
    from flamenco_lib import models

    monkeypatch.setenv("FLAMENCO_DATA", str(tmp_path))
    for name, rows in (
        ("cante", [{"id": "c1", "palo": "soleá"}]),
        ("speech", [{"id": "s1", "palo": None}]),
    ):
        man = tmp_path / "corpora" / name / "manifest.jsonl"
        man.parent.mkdir(parents=True)
        man.write_text("".join(json.dumps(r) + "\n" for r in rows))
    calls = []

    def fake_evaluate(model_name, manifest, *, out, prompt_kinds, **kw):
        calls.append((Path(out).name, tuple(prompt_kinds)))
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "metrics.json").write_text(
            json.dumps(
                {
                    "wer": len(calls) / 10,
                    "row": kw["extra"]["row"],
                    "decoding": {"prompts": bool(prompt_kinds), "num_beams": 1},
                }
            )
        )
        (Path(out) / "predictions.jsonl").write_text(
            json.dumps({"id": "x", "hypothesis": str(len(calls))}) + "\n"
        )

    monkeypatch.setattr(evaluation, "evaluate_manifest", fake_evaluate)
    monkeypatch.setattr(models, "load_whisper", lambda path: (None, None))
    sets = (
        ("cante", "corpora/cante/manifest.jsonl", "test"),
        ("speech", "corpora/speech/manifest.jsonl", "test"),
    )
    stages = (
        ("zero-shot", "base"),
        ("zero-shot + prompts", "base", {"prompts": ("palo", "lexicon")}),
    )
    results.evaluate_stages(stages, sets, progress=False)
    # the cante set is decoded with prompts; on the speech set nobody has a palo: no second decoding
    assert calls == [
        ("zero-shot__cante", ()),
        ("zero-shot__speech", ()),
        ("zero-shot-+-prompts__cante", ("palo", "lexicon")),
    ]
    twin, copy = (
        results.run_dir("zero-shot", "speech"),
        results.run_dir("zero-shot + prompts", "speech"),
    )
    m = json.loads((copy / "metrics.json").read_text())
    assert m["wer"] == json.loads((twin / "metrics.json").read_text())["wer"]
    assert m["row"] == "zero-shot + prompts" and m["same_as"] == twin.name
    # the copy describes the row's decoding (prompts asked for), the rest of the settings are the twin's
    assert m["decoding"] == {"prompts": True, "num_beams": 1}
    assert m["prompt_kinds"] == ["palo", "lexicon"]
    assert (copy / "predictions.jsonl").read_text() == (twin / "predictions.jsonl").read_text()
    results.evaluate_stages(stages, sets, progress=False)
    assert len(calls) == 3  # the copy is kept like any run
    # without the unprompted row in the same call, the prompted row is decoded
    results.evaluate_stages(stages[1:], sets, progress=False, max_items=2)
    assert calls[-2:] == [
        ("zero-shot-+-prompts__cante", ("palo", "lexicon")),
        ("zero-shot-+-prompts__speech", ("palo", "lexicon")),
    ]


def test_evaluate_stages_decodes_in_the_precision_asked_and_reruns_when_it_changes(
    tmp_path, monkeypatch
):
    from flamenco_lib import models
    from flamenco_lib.training import config

    monkeypatch.setenv("FLAMENCO_DATA", str(tmp_path))
    man = tmp_path / "corpora" / "cante" / "manifest.jsonl"
    man.parent.mkdir(parents=True)
    man.write_text("")
    calls = []

    def fake_evaluate(model_name, manifest, *, out, bf16, **kw):
        calls.append(bf16)
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "metrics.json").write_text("{}")

    monkeypatch.setattr(evaluation, "evaluate_manifest", fake_evaluate)
    monkeypatch.setattr(models, "load_whisper", lambda path: (None, None))
    sets = (("cante", "corpora/cante/manifest.jsonl", "test"),)
    stages = (("zero-shot", "base"),)
    results.evaluate_stages(stages, sets, progress=False, precision="fp32")
    results.evaluate_stages(stages, sets, progress=False, precision="fp32")  # kept
    results.evaluate_stages(stages, sets, progress=False, precision="bf16")  # decoded again
    assert calls == [False, True]
    run = tmp_path / "results" / "zero-shot__cante"
    assert json.loads((run / results.INPUTS).read_text())["precision"] == "bf16"
    # auto follows the CPU: bf16 where it computes bf16 natively, as training's precision: auto
    monkeypatch.setattr(config, "auto_precision", lambda: "fp32")
    assert results.decode_in_bf16("auto") is False
    results.evaluate_stages(stages, sets, progress=False)
    assert calls == [False, True, False]
    monkeypatch.setattr(config, "auto_precision", lambda: "bf16")
    assert results.decode_in_bf16("auto") is True and results.decode_in_bf16("fp32") is False
    with pytest.raises(ValueError, match="precision='fp16'"):
        results.decode_in_bf16("fp16")


def _corpora_of_one_clip(tmp_path, monkeypatch):
    """Every corpus the stage configs name, as one clip with a palo, under a data folder here."""
    from flamenco_lib.data.corpus import OFFLINE_CORPORA

    monkeypatch.setenv("FLAMENCO_DATA", str(tmp_path))
    for name in OFFLINE_CORPORA:
        (tmp_path / "corpora" / name).mkdir(parents=True)
        (tmp_path / "corpora" / name / "manifest.jsonl").write_text(
            '{"id": "a", "palo": "soleá"}\n'
        )


def test_the_prompt_grid_hands_each_rows_options_to_the_evaluation(tmp_path, monkeypatch):
    from flamenco_lib import grid, models

    _corpora_of_one_clip(tmp_path, monkeypatch)
    for stage in ("stage2", "stage3", "stage3_soft"):
        (tmp_path / "checkpoints" / stage).mkdir(parents=True)
    calls = {}

    def fake_evaluate(model_name, manifest, *, out, prompt_kinds, **kw):
        calls[Path(out).name] = (Path(model_name).name, prompt_kinds, kw)
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "metrics.json").write_text("{}")

    monkeypatch.setattr(evaluation, "evaluate_manifest", fake_evaluate)
    monkeypatch.setattr(models, "load_whisper", lambda path: (None, None))
    rows = grid.stage_rows(profile="cpu", table=grid.PROMPT_GRID)
    assert [r[0] for r in rows] == [r[0] for r in grid.PROMPT_GRID]
    results.evaluate_stages(rows, grid.VERSES, progress=False)
    assert len(calls) == len(grid.PROMPT_GRID)
    model, kinds, kw = calls["stage-3-+-previous-own__verses"]
    assert (model, kinds, kw["previous"]) == ("stage3", ["previous"], "own")
    assert calls["stage-3-+-catalogue-copla-out__verses"][2]["leave_out_evaluated"] is True
    assert calls["stage-3-+-mismatched-copla__verses"][2]["mismatched"] is True
    assert "mismatched" not in calls["stage-3-+-catalogue-copla-in__verses"][2]
    assert calls["stage-2__verses"][:2] == ("stage2", [])
    # the catalogue's search is part of what a catalogue run was computed from
    saved = {n: json.loads((tmp_path / "results" / n / results.INPUTS).read_text()) for n in calls}
    assert saved["stage-3-+-catalogue-copla-in__verses"]["search"] == "partial_ratio"
    assert "search" not in saved["stage-3-+-previous-own__verses"]
    # the options are part of what a run was computed from: a changed option decodes again
    calls.clear()
    changed = [
        (label, m, {**o[0], "previous": "true"})
        if label == "stage 3 + previous, own"
        else (label, m, *o)
        for label, m, *o in rows
    ]
    results.evaluate_stages(changed, grid.VERSES, progress=False)
    assert list(calls) == ["stage-3-+-previous-own__verses"]


def test_the_catalogue_rows_first_pass_is_the_unprompted_rows_transcripts(tmp_path, monkeypatch):
    from flamenco_lib import grid, models

    _corpora_of_one_clip(tmp_path, monkeypatch)
    (tmp_path / "checkpoints" / "stage3").mkdir(parents=True)
    firsts = {}

    def fake_evaluate(model_name, manifest, *, out, prompt_kinds, first_pass=None, **kw):
        firsts[Path(out).name] = first_pass
        Path(out).mkdir(parents=True, exist_ok=True)
        pred = {"id": "a", "hypothesis": f"heard by {Path(out).name}", "reference": "x"}
        (Path(out) / "predictions.jsonl").write_text(json.dumps(pred) + "\n")
        (Path(out) / "metrics.json").write_text("{}")

    monkeypatch.setattr(evaluation, "evaluate_manifest", fake_evaluate)
    monkeypatch.setattr(models, "load_whisper", lambda path: (None, None))
    labels = (
        "stage 3",
        "stage 3 + palo",
        "stage 3 + catalogue, copla in",
        "stage 3 + catalogue, copla out",
        "stage 3 + mismatched copla",
    )
    rows = grid.stage_rows(*labels, profile="cpu", table=grid.PROMPT_GRID)
    results.evaluate_stages(rows, grid.VERSES, progress=False)
    unprompted = [{"id": "a", "hypothesis": "heard by stage-3__verses"}]
    assert firsts["stage-3-+-catalogue-copla-in__verses"] == unprompted
    assert firsts["stage-3-+-catalogue-copla-out__verses"] == unprompted
    # rows without a first pass, or whose first pass is no search (the control), get none
    assert firsts["stage-3-+-palo__verses"] is None
    assert firsts["stage-3-+-mismatched-copla__verses"] is None
    assert firsts["stage-3__verses"] is None
    # without the unprompted row in the call, the catalogue row decodes its own first pass
    firsts.clear()
    results.evaluate_stages(rows[2:3], grid.VERSES, progress=False, force=True)
    assert firsts == {"stage-3-+-catalogue-copla-in__verses": None}


@pytest.mark.model
def test_rows_of_one_encoder_compute_each_clips_encoder_output_once(
    base, tmp_path, monkeypatch, caplog
):
    """The prompted row of a model reads the encoder outputs its unprompted row computed."""
    import copy
    import logging

    import torch

    from flamenco_lib import models

    _, model, _ = base
    monkeypatch.setenv("FLAMENCO_DATA", str(tmp_path))
    man = tmp_path / "corpora" / "cante" / "manifest.jsonl"
    man.parent.mkdir(parents=True)
    man.write_text('{"id": "a", "palo": "soleá"}\n')
    x = torch.randn(2, 80, 3000, generator=torch.Generator().manual_seed(0))
    outputs = []

    def fake_evaluate(model_name, manifest, *, out, model, **kw):  # the encoder on two clips
        with torch.inference_mode():
            outputs.append(model.model.encoder(x).last_hidden_state)
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "metrics.json").write_text("{}")

    monkeypatch.setattr(evaluation, "evaluate_manifest", fake_evaluate)
    monkeypatch.setattr(models, "load_whisper", lambda path: (copy.deepcopy(model), None))
    stages = (("zero-shot", "base"), ("zero-shot + palo", "base", {"prompts": ("palo",)}))
    sets = (("cante", "corpora/cante/manifest.jsonl", "test"),)
    with caplog.at_level(logging.INFO, logger="flamenco_lib.results"):
        results.evaluate_stages(stages, sets, progress=False, precision="fp32", shared_layers=0)
    assert "2 clips' encoder outputs reused" in caplog.text
    assert torch.equal(outputs[0], outputs[1])
    with torch.inference_mode():
        assert torch.equal(outputs[1], model.model.encoder(x).last_hidden_state)
