"""The synthetic cante corpus driver (`data synth`): plan, splits, held-out voice, determinism,
resume, failures, real voices, CLI."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import soundfile as sf

from flamenco_lib.cli import main
from flamenco_lib.data import cante, lyrics, manifest, synth


@pytest.fixture
def my_lyrics(tmp_path):
    """A user's own lyrics file (TSV, ids absent, accents in the palo)."""
    path = tmp_path / "mine.tsv"
    path.write_text(
        "palo\ttext\n"
        "soleá\tLa luna de Triana / se asoma por la ventana / y me deja sin calor\n"
        "tangos\tPor la calle del Pozo / va mi gitana cantando\n"
        "bulería\tQue me lleven a Cádiz / que allí me quiero morir\n"
        "martinete\tEn la fragua de mi pare / suena el yunque noche y día\n",
        encoding="utf-8",
    )
    return path


def test_plan_splits_by_lyric_and_holds_out_a_base_voice():
    coplas = lyrics.read_lyrics()
    clips = cante.plan_clips(coplas, n=3 * len(coplas), seed=0)
    assert len(clips) == 3 * len(coplas) and len({c.id for c in clips}) == len(clips)
    split_of = {}
    for c in clips:
        assert split_of.setdefault(c.copla_id, c.split) == c.split, f"{c.copla_id} in two splits"
    counts = {s: sum(c.split == s for c in clips) for s in ("train", "dev", "test")}
    assert counts["train"] > counts["test"] > counts["dev"] > 0
    # every copla rendered three times before any is rendered a fourth time
    per_copla = {}
    for c in clips:
        per_copla[c.copla_id] = per_copla.get(c.copla_id, 0) + 1
    assert set(per_copla.values()) == {3}
    for c in clips:
        base = synth.base_voice(c.voice)
        if c.split != "test":
            assert base != cante.HELDOUT_BASE_VOICE and not c.voice_heldout
        assert c.voice_heldout == (base == cante.HELDOUT_BASE_VOICE)
    test = [c for c in clips if c.split == "test"]
    share = np.mean([c.voice_heldout for c in test])
    assert 0.3 < share < 0.7, share  # both held-out and seen voices in the test split
    # and the test split hears (nearly) every voice of both pools, not a subset tied to the coin
    train_pool, held_pool = cante.voice_pools(None)
    assert len({c.voice for c in test if c.voice_heldout}) >= 0.8 * len(held_pool)
    assert len({c.voice for c in test if not c.voice_heldout}) >= 0.8 * len(train_pool)
    # a variant of a training voice is a training voice, never held out
    assert any("+" in c.voice for c in clips if not c.voice_heldout)


def test_plan_is_a_function_of_the_seed():
    coplas = lyrics.read_lyrics()
    a, b = cante.plan_clips(coplas, n=50, seed=1), cante.plan_clips(coplas, n=50, seed=1)
    c = cante.plan_clips(coplas, n=50, seed=2)
    assert a == b
    assert [x.id for x in a] != [x.id for x in c]


def test_voice_pools_need_two_base_voices():
    train, held = cante.voice_pools(["es", "es+f2", "es-419+m3"])
    assert train == ["es", "es+f2"] and held == ["es-419+m3"]
    with pytest.raises(synth.SynthError, match="held out for test"):
        cante.voice_pools(["es", "es+f2"])  # a variant is not another base voice


def _audio_of(out):
    rows = manifest.read_manifest(out / "manifest.jsonl")
    return {r["id"]: sf.read(r["audio_path"])[0] for r in rows}, rows


def test_build_is_deterministic_parallel_and_resumable(tmp_path, my_lyrics):
    one = cante.build_synth_corpus(
        tmp_path / "one", lyrics=my_lyrics, n=6, seed=3, jobs=1, progress=False
    )
    two = cante.build_synth_corpus(
        tmp_path / "two", lyrics=my_lyrics, n=6, seed=3, jobs=2, progress=False
    )
    assert one["rendered"] == two["rendered"] == 6 and not one["failed"]
    audio1, rows1 = _audio_of(tmp_path / "one")
    audio2, rows2 = _audio_of(tmp_path / "two")
    assert [r["id"] for r in rows1] == [r["id"] for r in rows2]
    for k in audio1:
        np.testing.assert_array_equal(audio1[k], audio2[k])

    def strip(rs):
        return [{k: v for k, v in r.items() if k not in ("audio_path", "_line")} for r in rs]

    assert strip(rows1) == strip(rows2)
    assert manifest.validate_manifest(tmp_path / "one" / "manifest.jsonl") == []

    # the manifest records what each clip is: sung text vs written lyric, voice, palo, SNR ...
    for r in rows1:
        assert r["source"] == "synth-sung" and r["style"] == "sung"
        assert r["text_canonical"].lower().replace(",", "") in r["text"].lower().replace(",", "")
        assert r["singer"] == r["voice"] and r["base_voice"] == synth.base_voice(r["voice"])
        assert r["accompaniment"] and synth.SNR_DB_RANGE[0] <= r["snr_db"] <= synth.SNR_DB_RANGE[1]

    # resume: nothing to do, and the unchanged manifest is not rewritten (evaluations stay valid)
    man = tmp_path / "one" / "manifest.jsonl"
    os.utime(man, (1.0e9, 1.0e9))
    again = cante.build_synth_corpus(
        tmp_path / "one", lyrics=my_lyrics, n=6, seed=3, jobs=1, progress=False
    )
    assert again["rendered"] == 0 and again["skipped"] == 6
    assert man.stat().st_mtime == 1.0e9
    lost = rows1[2]["id"]
    (tmp_path / "one" / "audio" / f"{lost}.json").unlink()
    again = cante.build_synth_corpus(
        tmp_path / "one", lyrics=my_lyrics, n=6, seed=3, jobs=1, progress=False
    )
    assert again["rendered"] == 1 and again["skipped"] == 5
    audio3, rows3 = _audio_of(tmp_path / "one")
    assert strip(rows3) == strip(rows1)
    np.testing.assert_array_equal(audio3[lost], audio1[lost])

    # a clip whose files no longer match the plan (another voice) is rendered again
    side = tmp_path / "one" / "audio" / f"{lost}.json"
    side.write_text(side.read_text().replace(f'"voice": "{rows1[2]["voice"]}"', '"voice": "es+m9"'))
    again = cante.build_synth_corpus(
        tmp_path / "one", lyrics=my_lyrics, n=6, seed=3, jobs=1, progress=False
    )
    assert again["rendered"] == 1 and strip(_audio_of(tmp_path / "one")[1]) == strip(rows1)

    # another generator setting (here the SNR range) renders every clip again
    again = cante.build_synth_corpus(
        tmp_path / "one",
        lyrics=my_lyrics,
        n=6,
        seed=3,
        jobs=1,
        snr_db_range=(30.0, 31.0),
        progress=False,
    )
    assert again["rendered"] == 6 and again["skipped"] == 0
    rows5 = _audio_of(tmp_path / "one")[1]
    assert all(30.0 <= r["snr_db"] <= 31.0 for r in rows5)
    assert {r["synth_settings"] for r in rows5} == {synth.settings_id("sung", (30.0, 31.0))}
    assert synth.settings_id("sung", (30.0, 31.0)) != synth.settings_id("sung")
    assert synth.settings_id("spoken", (30.0, 31.0)) == synth.settings_id("spoken")

    # another seed, other samples
    cante.build_synth_corpus(
        tmp_path / "three", lyrics=my_lyrics, n=2, seed=4, jobs=1, progress=False
    )
    audio4, _ = _audio_of(tmp_path / "three")
    assert any(
        k not in audio1
        or len(audio4[k]) != len(audio1[k])
        or not np.array_equal(audio4[k], audio1[k])
        for k in audio4
    )


def test_styles_render_the_same_words_with_the_same_voice(tmp_path, my_lyrics):
    rows = {}
    for style in ("spoken", "a-capella"):
        cante.build_synth_corpus(
            tmp_path / style, lyrics=my_lyrics, n=3, seed=0, jobs=1, style=style, progress=False
        )
        rows[style] = manifest.read_manifest(tmp_path / style / "manifest.jsonl")
    for a, b in zip(rows["spoken"], rows["a-capella"], strict=True):
        assert (a["id"], a["text"], a["voice"], a["split"]) == (
            b["id"],
            b["text"],
            b["voice"],
            b["split"],
        )
        assert a["source"] == "synth-spoken" and b["source"] == "synth-a-capella"
        assert not b["accompaniment"] and b["snr_db"] is None
        # singing lengthens the vowels: the sung clip is longer than the spoken one
        assert b["duration_s"] > 1.3 * a["duration_s"]


def test_a_subset_of_splits_renders_the_same_clips_as_the_whole_corpus(tmp_path, my_lyrics, capsys):
    kw = dict(n=12, seed=0, jobs=1, style="spoken", progress=False)  # the project's coplas
    cante.build_synth_corpus(tmp_path / "all", **kw)
    audio_all, rows_all = _audio_of(tmp_path / "all")
    res = cante.build_synth_corpus(tmp_path / "some", splits=("test",), **kw)
    audio, rows = _audio_of(tmp_path / "some")
    same = [r for r in rows_all if r["split"] == "test"]
    assert 0 < res["clips"] == len(same) < len(rows_all)
    assert [r["id"] for r in rows] == [r["id"] for r in same]
    for r in rows:
        np.testing.assert_array_equal(audio[r["id"]], audio_all[r["id"]])

    # a split that does not exist is an error naming the ones that do, not an empty corpus
    out = tmp_path / "typo"
    assert (
        main(["data", "synth", "--out", str(out), "--lyrics", str(my_lyrics), "--splits", "tset"])
        == 2
    )
    err = capsys.readouterr().err
    assert "'tset'" in err and "train, dev, test" in err and not (out / "manifest.jsonl").exists()


def test_a_failing_clip_is_reported_and_the_rest_kept(tmp_path, my_lyrics, monkeypatch):
    real_render = cante.render

    def render(clip, **kw):
        if clip.copla_id.startswith("tangos"):
            raise synth.SynthError("the spoken copla lasts 31.0 s > 29.5 s; split it")
        return real_render(clip, **kw)

    monkeypatch.setattr(cante, "render", render)
    res = cante.build_synth_corpus(
        tmp_path / "c", lyrics=my_lyrics, n=4, seed=0, jobs=1, progress=False
    )
    assert len(res["failed"]) == 1 and "split it" in next(iter(res["failed"].values()))
    assert res["clips"] == 3
    ids = [r["id"] for r in manifest.read_manifest(tmp_path / "c" / "manifest.jsonl")]
    assert len(ids) == 3 and not any(i.startswith("tangos") for i in ids)
    assert json.loads((tmp_path / "c" / "failed.json").read_text())


def test_sings_recorded_speech_keeping_its_splits(tmp_path, real_speech):
    src = tmp_path / "speech"
    (src / "audio").mkdir(parents=True)
    texts = ["para salir pulse cero", "introduzca su contraseña", "gracias por llamar"]
    rows = []
    for i, (text, split) in enumerate(zip(texts, ("train", "dev", "test"), strict=True)):
        sf.write(src / "audio" / f"u{i}.flac", real_speech[i * 32000 : i * 32000 + 40000], 16000)
        rows.append(
            {
                "id": f"u{i}",
                "audio": f"audio/u{i}.flac",
                "text": text,
                "text_canonical": text,
                "split": split,
                "singer": "real-speaker",
                "source": "test",
            }
        )
    manifest.write_manifest(rows, src / "manifest.jsonl")
    res = cante.build_synth_corpus(
        tmp_path / "sung", speech_manifest=src / "manifest.jsonl", seed=0, jobs=1, progress=False
    )
    assert res["clips"] == 3 and not res["failed"]
    out = {r["id"]: r for r in manifest.read_manifest(tmp_path / "sung" / "manifest.jsonl")}
    for i, (text, split) in enumerate(zip(texts, ("train", "dev", "test"), strict=True)):
        r = out[f"real-u{i}"]
        assert (r["text"], r["text_canonical"], r["split"], r["singer"]) == (
            text,
            text,
            split,
            "real-speaker",
        )
        assert r["source"] == "synth-sung-real" and r["palo"] in synth.COMPAS
        assert r["duration_s"] > 2.5 * 1.3  # sung: longer than the 2.5 s spoken
    # a transcript corrected in the speech corpus reaches the sung corpus without rendering again
    rows[0]["text"] = rows[0]["text_canonical"] = "para salir pulse uno"
    manifest.write_manifest(rows, src / "manifest.jsonl")
    again = cante.build_synth_corpus(
        tmp_path / "sung", speech_manifest=src / "manifest.jsonl", seed=0, jobs=1, progress=False
    )
    assert again["rendered"] == 0 and again["skipped"] == 3
    out = {r["id"]: r for r in manifest.read_manifest(tmp_path / "sung" / "manifest.jsonl")}
    assert out["real-u0"]["text"] == out["real-u0"]["text_canonical"] == "para salir pulse uno"


def test_cli_synth_on_own_lyrics_then_validate(tmp_path, my_lyrics, capsys):
    out = tmp_path / "corpus"
    assert (
        main(
            [
                "data",
                "synth",
                "--lyrics",
                str(my_lyrics),
                "--out",
                str(out),
                "--n",
                "2",
                "--jobs",
                "1",
            ]
        )
        == 0
    )
    assert "2 clips (2 rendered" in capsys.readouterr().out
    assert main(["data", "validate", str(out / "manifest.jsonl")]) == 0
    bad = tmp_path / "bad.tsv"
    bad.write_text("text\nsin palo\n")
    assert main(["data", "synth", "--lyrics", str(bad), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "header" in err
    assert (
        main(
            [
                "data",
                "synth",
                "--lyrics",
                str(my_lyrics),
                "--out",
                str(tmp_path / "y"),
                "--voices",
                "es,es+f1",
            ]
        )
        == 2
    )
    assert "held out for test" in capsys.readouterr().err


def test_the_formant_range_is_drawn_from_recorded_and_checked(tmp_path, my_lyrics, capsys):
    # a wider (here a single) formant shift reaches every clip and its settings, so a corpus
    # rendered with the default range is rendered again, not mixed with the new one
    out = tmp_path / "wide"
    argv = ["data", "synth", "--lyrics", str(my_lyrics), "--out", str(out), "--n", "2"]
    assert main([*argv, "--jobs", "1", "--formant-min", "1.3", "--formant-max", "1.3"]) == 0
    rows = manifest.read_manifest(out / "manifest.jsonl")
    assert len(rows) == 2 and all(r["formant_ratio"] == pytest.approx(1.3) for r in rows)
    assert {r["synth_settings"] for r in rows} == {
        synth.settings_id("sung", formant_ratio=(1.3, 1.3))
    }
    assert synth.settings_id("sung", formant_ratio=(1.3, 1.3)) != synth.settings_id("sung")
    assert synth.settings_id("spoken", formant_ratio=(1.3, 1.3)) == synth.settings_id("spoken")
    capsys.readouterr()

    # a range upside down or beyond a human vocal tract: one line naming it, nothing written
    for lo, hi in (("1.2", "1.0"), ("0.5", "1.1")):
        bad = tmp_path / f"bad-{lo}"
        assert main([*argv[:5], str(bad), "--formant-min", lo, "--formant-max", hi]) == 2
        err = capsys.readouterr().err
        assert f"{float(lo):g}-{float(hi):g}" in err and "0.7-1.4" in err
        assert not bad.exists()
