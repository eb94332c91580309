"""flamenco_lib.ablation: one change at a time from the recipe, chosen on dev, run end to end."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import soundfile as sf

from flamenco_lib import ablation, grid, training
from flamenco_lib.cli import main
from flamenco_lib.data import cante, manifest
from flamenco_lib.data.corpus import build_corpora


def _diff(a: dict, b: dict) -> set[str]:
    return {k for k in set(a) | set(b) if a.get(k) != b.get(k)}


def test_each_ablation_changes_one_thing_from_a_recipe():
    # the recipes: synthetic only (the old stage 1), real sung 30%, and the chosen stage-1 recipe
    # (real sung 30% + real speech 15%); every other row changes exactly one key of one of them,
    # or of an ablation listed before it (60 steps, then 60 steps at another learning rate);
    # LoRA comes with its own learning rate (one lever: the adapters move little at the
    # full-weight rate), so a LoRA row changes `lora` and `lr` together, nothing else
    recipes = ("synthetic only", "real sung 30%", "real sung 30% + real speech 15%")
    names = list(ablation.ABLATIONS)
    for i, name in enumerate(names):
        if name not in recipes:
            change = ablation.ABLATIONS[name]
            bases = [*recipes, *(n for n in names[:i] if n not in recipes)]
            diffs = [
                len(_diff(ablation.ABLATIONS[b], change) - ({"lr"} if "lora" in change else set()))
                for b in bases
            ]
            assert min(diffs) == 1, (name, dict(zip(bases, diffs)))
    assert _diff(ablation.ABLATIONS[recipes[0]], ablation.ABLATIONS[recipes[1]]) == {"train"}
    shares = {
        name: sum(s["weight"] for s in change["train"])
        for name, change in ablation.ABLATIONS.items()
    }
    assert all(abs(total - 1.0) < 1e-9 for total in shares.values()), shares


def test_ablations_choose_on_dev_sets_never_on_test_sets():
    assert {split for _, _, split in ablation.DEV_SETS} == {"dev"}
    dev = {manifest for _, manifest, _ in ablation.DEV_SETS}
    assert dev <= {manifest for _, manifest, _ in grid.TEST_SETS}  # the same corpora, other split


def test_wider_formants_sing_the_same_clips_with_only_the_ratio_changed(
    tmp_path, monkeypatch, real_speech
):
    # the ablation's corpora are rendered on demand: the training split of each speech corpus,
    # the same clips (ids, seeds, melodies) as the default corpus, each ratio drawn from the
    # wider range by the same draw (the same fraction of the way through the range)
    monkeypatch.setenv("FLAMENCO_DATA", str(tmp_path / "data"))
    speech = {}
    for m in ablation._REAL_SPOKEN:
        src = tmp_path / m  # data/corpora/<name>/manifest.jsonl, as configured
        (src.parent / "audio").mkdir(parents=True)
        rows = []
        for i, split in enumerate(("train", "dev")):
            sf.write(
                src.parent / "audio" / f"u{i}.flac",
                real_speech[i * 32000 : i * 32000 + 40000],
                16000,
            )
            rows.append(
                {
                    "id": f"u{i}",
                    "audio": f"audio/u{i}.flac",
                    "text": "gracias por llamar",
                    "text_canonical": "gracias por llamar",
                    "split": split,
                    "singer": "real-speaker",
                    "source": "test",
                }
            )
        speech[m] = manifest.write_manifest(rows, src)
    name = "real sung 30% (formants 0.80-1.25) + real speech 15%, all layers trained"
    ablation._build_sung_corpora(ablation.ABLATIONS[name], progress=False)
    (lo, hi), (dlo, dhi) = ablation.WIDE_FORMANTS, cante.synth.FORMANT_RATIO
    assert hi - lo > dhi - dlo
    for wide, (spoken, formants) in ablation.SUNG_CORPORA.items():
        assert formants == ablation.WIDE_FORMANTS
        rows = manifest.read_manifest(tmp_path / wide)
        assert [r["split"] for r in rows] == ["train"]  # the training split only
        ref = tmp_path / "default" / Path(spoken).parent.name  # the corpus of `make corpora`
        cante.build_synth_corpus(ref, speech_manifest=speech[spoken], jobs=1, progress=False)
        default = {r["id"]: r for r in manifest.read_manifest(ref / "manifest.jsonl")}
        for r in rows:
            d = default[r["id"]]
            assert (r["clip_seed"], r["tonic_hz"], r["palo"]) == (
                d["clip_seed"],
                d["tonic_hz"],
                d["palo"],
            )
            assert lo <= r["formant_ratio"] <= hi and r["formant_ratio"] != d["formant_ratio"]
            assert (r["formant_ratio"] - lo) / (hi - lo) == pytest.approx(
                (d["formant_ratio"] - dlo) / (dhi - dlo)
            )
    again = tmp_path / "data" / "corpora" / "cante-real-wide" / "manifest.jsonl"
    before = again.stat().st_mtime_ns
    ablation._build_sung_corpora(
        ablation.ABLATIONS[name], progress=False
    )  # kept, not rendered again
    assert again.stat().st_mtime_ns == before


def test_slug_names_distinct_folders():
    slugs = {ablation.slug(name) for name in ablation.ABLATIONS}
    assert len(slugs) == len(ablation.ABLATIONS)
    assert all("/" not in s and " " not in s and "%" not in s for s in slugs)


def test_unknown_ablation_is_one_clear_error(capsys):
    assert main(["ablate", "real sung 99%"]) == 2
    assert "no ablation 'real sung 99%'" in capsys.readouterr().err


@pytest.mark.model
def test_an_ablation_trains_and_is_scored_on_the_dev_speakers(tmp_path, monkeypatch, base):
    monkeypatch.setenv("FLAMENCO_DATA", str(tmp_path / "data"))
    build_corpora(tmp_path / "data" / "corpora", n=6, n_speech=40, progress=False)
    table = ablation.run_ablations(
        ["real sung 30%"], profile="smoke", max_items=2, base=str(base[0]), progress=False
    )
    assert list(table["model"]) == ["zero-shot", "real sung 30%"]
    for key, _, _ in ablation.DEV_SETS:
        if f"{key}_n" in table:
            assert (table[f"{key}_n"] <= 2).all()
    assert {"real_sung_wer", "real_speech_wer"} <= set(table.columns)
    out = tmp_path / "data" / "checkpoints" / "ablations" / "smoke" / "real-sung-30pc"
    cfg = json.loads((out / "run_stage.json").read_text(encoding="utf-8"))
    manifests = {s["manifest"] for s in cfg["settings"]["train"]}
    assert any("cante-drascula" in m for m in manifests)  # the ablation's sources were used
    trained = training.load_config(grid.config_file("stage1"), profile="smoke")
    assert (out / "final" / "config.json").exists() and trained.output_dir != str(out)


def test_chain_ablations_change_stages_2_and_3_only(capsys):
    for name, change in ablation.CHAIN_ABLATIONS.items():
        assert change and set(change) <= {"stage2", "stage3"}, name
        for stage, keys in change.items():  # keys a stage config has, none that moves the chain
            assert keys and not set(keys) & {"model", "output_dir", "eval"}, (name, stage)
            assert set(keys) <= {f.name for f in dataclasses.fields(training.StageConfig)}
            try:  # valid values (the corpora may not be built here: the only error allowed)
                training.load_config(grid.config_file(stage), overrides=keys)
            except training.ConfigError as err:
                assert "not found; build it first" in str(err), err
    assert main(["ablate", "--chain", "stage 2 at lr 1"]) == 2
    assert "no chain ablation 'stage 2 at lr 1'" in capsys.readouterr().err


@pytest.mark.model
def test_a_chain_ablation_trains_stages_2_and_3_from_stage_1(tmp_path, monkeypatch, base, capsys):
    from flamenco_lib.pipeline import run_stage

    monkeypatch.setenv("FLAMENCO_DATA", str(tmp_path / "data"))
    build_corpora(tmp_path / "data" / "corpora", n=6, n_speech=40, progress=False)
    name = next(iter(ablation.CHAIN_ABLATIONS))
    # stage 1 first: without it, one line saying so
    assert main(["ablate", "--chain", name, "--profile", "smoke"]) == 2
    assert "is not trained yet" in capsys.readouterr().err
    model = str(base[0])
    run_stage(
        grid.config_file("stage1"), profile="smoke", overrides={"model": model}, progress=False
    )
    table = ablation.run_chain_ablations(
        [name], profile="smoke", max_items=2, base=model, progress=False
    )
    assert list(table["model"]) == ["zero-shot", "stage 1 (configs)", name]
    out = tmp_path / "data" / "checkpoints" / "ablations" / "smoke" / ablation.slug(name)
    for stage, start in (("stage2", "checkpoints/smoke/stage1"), ("stage3", f"{out}/stage2")):
        saved = json.loads((out / stage / "run_stage.json").read_text(encoding="utf-8"))
        settings = saved["settings"]
        assert settings["model"].rstrip("/").endswith(f"{Path(start).name}/final"), settings[
            "model"
        ]
        for key, value in ablation.CHAIN_ABLATIONS[name].get(stage, {}).items():
            assert settings[key] == value, (stage, key)
        assert (out / stage / "final" / "config.json").exists()
    # the configs' own stages 2 and 3 are not touched
    assert not (tmp_path / "data" / "checkpoints" / "smoke" / "stage2").exists()
    # what notebook 08 draws: the same rows, one per (model, dev set) scored
    runs = ablation.chain_runs()
    assert set(runs["model"]) == set(table["model"])
    assert len(runs) == sum(table[f"{k}_wer"].notna().sum() for k, _, _ in ablation.DEV_SETS)
    capsys.readouterr()
    kw = {"name": None, "title": "t", "caption": "c", "message": "run ablate --chain"}
    assert ablation.show_dev_runs(runs, **kw)
    assert f"| {name} |" in capsys.readouterr().out
    assert not ablation.show_dev_runs(runs.iloc[:0], **kw)


def test_a_chain_ablation_moves_stage_2_back_toward_the_stage_1_of_its_profile(
    tmp_path, monkeypatch
):
    """``wise_ft: {model: START}`` in a chain ablation means the model the stage starts from: the
    chain's stage 1 of the profile it runs on (smoke here), not the cpu profile's folder."""
    from flamenco_lib import pipeline

    monkeypatch.setenv("FLAMENCO_DATA", str(tmp_path / "data"))
    seen = {}
    monkeypatch.setattr(
        pipeline, "run_stage", lambda cfg, **kw: seen.setdefault(Path(cfg).stem, kw["overrides"])
    )
    monkeypatch.setattr(ablation, "_score_on_dev", lambda rows, **kw: rows)
    name = "stage 2 moved back toward stage 1 (WiSE-FT 0.5)"
    ablation.run_chain_ablations([name], profile="smoke", progress=False)
    assert seen["stage2"]["model"] == "data/checkpoints/smoke/stage1"
    assert seen["stage2"]["wise_ft"] == {"model": "data/checkpoints/smoke/stage1", "alpha": 0.5}
    assert "wise_ft" not in seen["stage3"]
    assert ablation.CHAIN_ABLATIONS[name]["stage2"]["wise_ft"]["model"] == ablation.START
