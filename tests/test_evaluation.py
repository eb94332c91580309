"""The evaluation runner: scores against sung and written text, results files, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from flamenco_lib import decoding, evaluation, metrics
from flamenco_lib.cli import main
from flamenco_lib.data import manifest


def test_score_predictions_sung_vs_written_and_groups():
    rows = [
        {
            "text": "Ay, la luna sale, la luna sale",
            "text_canonical": "la luna sale",
            "palo": "soleá",
            "voice": "es",
        },
        {
            "text": "por la sierra",
            "text_canonical": "por la sierra",
            "palo": "tangos",
            "voice": "es",
        },
    ]
    hyps = ["ay la luna sale la luna sale", "por la tierra"]
    m = evaluation.score_predictions(rows, hyps)
    assert m["wer"] == pytest.approx(1 / 10)  # one substitution in 10 sung words
    assert m["canonical"]["wer"] == pytest.approx(
        (1 + 4) / 6
    )  # plus 4 insertions against the written lyric
    groups = {(g["field"], g["group"]): g for g in m["per_group"]}
    assert set(groups) == {
        ("palo", "soleá"),
        ("palo", "tangos"),
    }  # a field with one value is no group
    assert groups[("palo", "soleá")]["wer"] == 0 and groups[("palo", "tangos")][
        "wer"
    ] == pytest.approx(1 / 3)


@pytest.fixture(scope="module")
def tiny_manifest(tmp_path_factory, speech_prompts):
    from flamenco_lib.audio import load_audio

    d = tmp_path_factory.mktemp("tiny")
    (d / "audio").mkdir()
    items = sorted((p for p in speech_prompts if p["split"] == "test"), key=lambda p: p["id"])[:4]
    rows = []
    for p in items:
        sf.write(d / "audio" / f"{p['id']}.flac", load_audio(p["path"]), 16000)
        rows.append(
            {
                "id": p["id"],
                "audio": f"audio/{p['id']}.flac",
                "text": p["text"],
                "text_canonical": p["text"],
                "split": "test",
                "singer": "asterisk",
                "source": "asterisk",
            }
        )
    return manifest.write_manifest(rows, d / "manifest.jsonl")


@pytest.mark.model
def test_evaluate_writes_predictions_and_metrics(base, tiny_manifest, tmp_path):
    path, model, processor = base
    m = evaluation.evaluate_manifest(
        str(path),
        tiny_manifest,
        split="test",
        out=tmp_path / "run",
        model=model,
        processor=processor,
        progress=False,
    )
    preds = [
        json.loads(x) for x in (tmp_path / "run" / "predictions.jsonl").read_text().splitlines()
    ]
    assert [p["id"] for p in preds] == [r["id"] for r in manifest.read_manifest(tiny_manifest)]
    assert all(p["hypothesis"] for p in preds)
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["wer"] == pytest.approx(
        metrics.wer([p["reference"] for p in preds], [p["hypothesis"] for p in preds])
    )
    assert saved["wer"] == m["wer"] and saved["n_utterances"] == 4
    assert saved["wer"] < 0.5  # real read speech: whisper-base does well
    assert saved["decoding"]["num_beams"] == 1 and saved["decoding"]["language"] == "es"
    assert saved["split"] == "test" and saved["model"] == str(path) and "git" in saved


@pytest.mark.model
def test_cli_evaluate(tiny_manifest, tmp_path, capsys):
    assert (
        main(
            [
                "evaluate",
                "--manifest",
                str(tiny_manifest),
                "--split",
                "test",
                "--max-items",
                "2",
                "--out",
                str(tmp_path / "cli"),
                "--precision",
                "bf16",
            ]
        )
        == 0
    )
    assert "n=2 WER" in capsys.readouterr().out
    m = json.loads((tmp_path / "cli" / "metrics.json").read_text())
    assert m["n_utterances"] == 2 and m["decoding"]["precision"] == "bf16"
    assert (
        main(
            [
                "evaluate",
                "--manifest",
                str(tiny_manifest),
                "--split",
                "dev",
                "--out",
                str(tmp_path / "x"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert str(tiny_manifest) in err and "split 'dev'" in err


@pytest.mark.model
def test_prompted_rows_are_grouped_and_returned_in_order(base, tiny_manifest):
    """Rows with different prompts interleaved: decoded grouped by prompt (full batches), yet each
    transcript comes back in its row's place, equal to decoding that clip alone with its prompt."""
    from flamenco_lib.data.corpus import load_corpus
    from flamenco_lib.transcription import transcribe

    _, model, processor = base
    ds = load_corpus(tiny_manifest)["test"]
    prompts = ["Soleá. pena, fragua.", None, "Soleá. pena, fragua.", "Tangos. Triana."]
    got = evaluation.transcribe_dataset(
        model, processor, ds, prompts=prompts, batch_size=2, progress=False
    )
    alone = [
        transcribe(
            model, processor, [np.asarray(r["audio"]["array"], dtype=np.float32)], prompts=[p]
        )[0]
        for r, p in zip(ds, prompts)
    ]
    assert got == alone
    assert len(set(got)) == 4  # four different clips: a shuffled order could not pass


def test_a_run_scored_before_accent_folding_is_rescored_without_decoding(tmp_path, monkeypatch):
    from flamenco_lib import results
    from flamenco_lib.hashing import sha256_of
    from flamenco_lib.transcription import DECODING

    monkeypatch.setenv("FLAMENCO_DATA", str(tmp_path))
    man = tmp_path / "corpora" / "x" / "manifest.jsonl"
    refs = ["CON LO QUE A MI ME GUSTA LA MUSICA", "QUE MUERTO NI OCHO CUARTOS"]
    rows = [
        {"id": f"u{i}", "audio": f"u{i}.flac", "text": t, "split": "test", "singer": f"s{i}"}
        for i, t in enumerate(refs)
    ]
    manifest.write_manifest(rows, man)
    run = results.run_dir("zero-shot", "x")
    run.mkdir(parents=True)
    hyps = ["con lo que a mí me gusta la música", "que muerto ni ocho"]
    with open(run / "predictions.jsonl", "w", encoding="utf-8") as f:
        for r, h in zip(rows, hyps):
            rec = {"id": r["id"], "reference": r["text"], "reference_canonical": r["text"]}
            f.write(json.dumps({**rec, "hypothesis": h, "singer": r["singer"]}) + "\n")
    old = {**evaluation.score_predictions(rows, hyps), "model": "base", "seconds": 12.5}
    old.pop("accents")
    old["wer"] = 0.5  # as scored with accents kept
    (run / "metrics.json").write_text(json.dumps(old), encoding="utf-8")
    inputs = {
        "manifest": sha256_of(man),
        "model": "base",
        "max_items": None,
        "prompts": [],
        "decoding": DECODING,
        "precision": "bf16" if results.decode_in_bf16("auto") else "fp32",
    }
    (run / results.INPUTS).write_text(json.dumps(inputs), encoding="utf-8")

    results.evaluate_stages((("zero-shot", "base"),), (("x", "corpora/x/manifest.jsonl", "test"),))
    m = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    assert m["accents"] == "folded" and m["wer"] == pytest.approx(1 / 14)  # "cuartos" missing
    assert m["seconds"] == 12.5 and m["model"] == "base"  # what decoding recorded is kept
    assert {g["group"] for g in m["per_group"]} == {"s0", "s1"}

    # decoded with other decoding rules (before loop stopping): decoded again, not kept
    decoded = []
    monkeypatch.setattr(
        evaluation, "evaluate_manifest", lambda *a, **k: decoded.append(k["out"]) or {}
    )
    for version in (DECODING, "older"):
        (run / results.INPUTS).write_text(
            json.dumps({**inputs, "decoding": version}), encoding="utf-8"
        )
        results.evaluate_stages(
            (("zero-shot", "base"),), (("x", "corpora/x/manifest.jsonl", "test"),)
        )
    assert decoded == [run]  # only the run of the older rules
    assert json.loads((run / results.INPUTS).read_text())["decoding"] == DECODING


def test_previous_own_decodes_each_recordings_lines_in_order(monkeypatch):
    rows = [
        {"audio_path": "a.flac", "start": 5.0, "text": "dos"},
        {"audio_path": "b.flac", "start": 0.0, "text": "uno b"},
        {"audio_path": "a.flac", "start": 0.0, "text": "uno"},
        {"audio_path": "a.flac", "start": 9.0, "text": "tres"},
        {"audio_path": "c.wav", "start": None, "text": "suelto"},
    ]
    assert evaluation.recording_chains(rows) == [[2, 0, 3], [1], [4]]
    calls = []

    def fake(model, processor, dataset, *, prompts, progress, **decode):
        calls.append([(r["text"], p) for r, p in zip(dataset, prompts)])
        return [f"heard {r['text']}" for r in dataset]

    monkeypatch.setattr(decoding, "transcribe_dataset", fake)
    hyps, prompts = evaluation.sequential_transcripts(
        None, None, rows, make_prompt=lambda i, prev: prev and f"({prev})", progress=False
    )
    assert hyps == [f"heard {r['text']}" for r in rows]
    # each line is prompted with the transcript of the line before it in its own recording
    assert prompts == ["(heard uno)", None, None, "(heard dos)", None]
    # one round per line position, batched across recordings
    assert calls == [
        [("uno", None), ("uno b", None), ("suelto", None)],
        [("dos", "(heard uno)")],
        [("tres", "(heard dos)")],
    ]


def test_the_catalogue_first_pass_reads_transcripts_decoded_before(tmp_path, monkeypatch):
    rows = [
        {"id": "v1", "copla_id": "solea-001", "text": "le pregunté a la luna"},
        {"id": "v2", "copla_id": "solea-002", "text": "mi mare lavaba ropa"},
    ]
    decoded = []

    def fake(model, processor, dataset, **decode):
        decoded.append(len(dataset))
        return ["mi mare lavaba ropa", "le pregunté a la luna"]

    monkeypatch.setattr(evaluation, "transcribe_dataset", fake)
    before = [{"id": r["id"], "hypothesis": r["text"]} for r in rows]
    found, summary = evaluation.catalogue_pass(None, None, rows, out=tmp_path, first=before)
    assert decoded == []  # nothing decoded: the transcripts given are the first pass
    assert summary["top1"] == 1.0
    assert found[0].startswith("Le pregunté a la luna")
    written = [json.loads(line)["hypothesis"] for line in open(tmp_path / "first_pass.jsonl")]
    assert written == [r["text"] for r in rows]
    # transcripts of other rows (another split, other clips) are not this pass: it decodes
    other = [{**b, "id": b["id"] + "x"} for b in before]
    found, summary = evaluation.catalogue_pass(None, None, rows, out=tmp_path, first=other)
    assert decoded == [2]
    assert summary["top1"] == 0.0 and found[0].startswith("Mi mare")
