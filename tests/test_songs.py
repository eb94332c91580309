"""Synthetic songs (whole recordings with known line times and falsetas) and the song-level
scores: WER, words in the guitar, line timing, missed lines."""

from __future__ import annotations

import json

import numpy as np
import pytest

from flamenco_lib import song_eval
from flamenco_lib.audio import SAMPLE_RATE, load_audio
from flamenco_lib.cli import main
from flamenco_lib.data.manifest import validate_manifest, write_manifest
from flamenco_lib.data.songs import build_song_corpus, plan_real_songs, render_song
from flamenco_lib.data.synth import SynthError
from flamenco_lib.errors import FlamencoError

COPLAS = (
    "palo\ttext\n"
    "Soleá\tPor la calle de la Feria / va mi niña / con su pena\n"
    "Soleá\tY la luna me dijo / que no te quiere / que no\n"
)


def _energy(audio, start, end):
    seg = audio[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)]
    return float(np.mean(seg.astype(np.float64) ** 2))


def test_a_song_sings_its_lines_between_falsetas():
    coplas = [["Por la calle de la Feria", "va mi niña"], ["Y la luna me dijo", "que no"]]
    audio, meta = render_song(coplas, palo="soleá", voice="es", seed=3, snr_db_range=(60, 60))
    assert len(audio) / SAMPLE_RATE == pytest.approx(meta["duration_s"], abs=0.01)
    lines, falsetas = meta["lines"], meta["falsetas"]
    assert len(lines) >= 4 and len(falsetas) == 3  # before, between and after the two coplas
    canon = [ln["text_canonical"] for ln in lines]
    assert [c for i, c in enumerate(canon) if i == 0 or c != canon[i - 1]] == [
        "Por la calle de la Feria",
        "va mi niña",
        "Y la luna me dijo",
        "que no",
    ]  # in order; a line may be sung twice in a row
    starts = [ln["start"] for ln in lines]
    assert starts == sorted(starts) and all(ln["end"] > ln["start"] for ln in lines)
    for s, e in falsetas:  # guitar alone: no line inside, and 5-20 s long
        assert 5.0 <= e - s <= 20.0
        assert not any(ln["start"] < e and ln["end"] > s for ln in lines)
    # the voice is where the lines are: with the accompaniment 60 dB down, a sung line is far
    # louder than a falseta
    assert min(_energy(audio, ln["start"], ln["end"]) for ln in lines) > 100 * max(
        _energy(audio, s, e) for s, e in falsetas
    )


def test_the_song_corpus_has_one_valid_row_per_sung_line(tmp_path):
    lyrics = tmp_path / "coplas.tsv"
    lyrics.write_text(COPLAS, encoding="utf-8")
    man = build_song_corpus(tmp_path / "songs", lyrics=lyrics, n=1, voices=["es", "es-419"])
    assert validate_manifest(man) == []
    rows = [json.loads(x) for x in man.read_text(encoding="utf-8").splitlines()]
    songs = [json.loads(x) for x in (man.parent / "songs.jsonl").read_text().splitlines()]
    assert len(songs) == 1 and len(rows) == len(songs[0]["lines"])
    split = songs[0]["split"]
    assert song_eval.read_songs(man.parent, split) == songs
    assert song_eval.read_songs(man.parent, split, 0) == []
    assert song_eval.read_songs(man.parent, "no such split") == []
    with pytest.raises(FlamencoError, match=r"songs\.jsonl: no song corpus here.*data songs"):
        song_eval.read_songs(tmp_path, split)
    assert rows[0]["previous_text"] is None
    assert all(b["previous_text"] == a["text"] for a, b in zip(rows, rows[1:]))
    # each line names the copla it comes from (the catalogue prompt's truth)
    from flamenco_lib.data.lyrics import read_lyrics
    from flamenco_lib.text import normalize

    coplas = {c.id: [normalize(x) for x in c.lines] for c in read_lyrics(lyrics)}
    assert {r["copla_id"] for r in rows} <= set(songs[0]["copla_ids"])
    assert all(normalize(r["text_canonical"]) in coplas[r["copla_id"]] for r in rows)
    a = load_audio(man.parent / rows[1]["audio"], start=rows[1]["start"], end=rows[1]["end"])
    assert len(a) / SAMPLE_RATE == pytest.approx(rows[1]["end"] - rows[1]["start"], abs=0.01)
    before = (man.parent / songs[0]["audio"]).stat().st_mtime_ns
    build_song_corpus(tmp_path / "songs", lyrics=lyrics, n=1, voices=["es", "es-419"])
    assert (man.parent / songs[0]["audio"]).stat().st_mtime_ns == before  # not rendered again


def _speech_manifest(folder, prompts, speakers):
    """A speech manifest of real prompts: ``speakers`` maps a name to (split, utterances)."""
    import soundfile as sf

    (folder / "audio").mkdir(parents=True)
    rows, k = [], 0
    for name, (split, count) in speakers.items():
        for _ in range(count):
            p = prompts[k]
            k += 1
            sf.write(folder / "audio" / f"{p['id']}.flac", load_audio(p["path"]), SAMPLE_RATE)
            rows.append(
                {
                    "id": p["id"],
                    "audio": f"audio/{p['id']}.flac",
                    "text": p["text"],
                    "text_canonical": p["text"],
                    "split": split,
                    "singer": name,
                    "source": "test",
                }
            )
    write_manifest(rows, folder / "manifest.jsonl")
    return folder / "manifest.jsonl", rows


def test_real_voices_sing_whole_songs_one_speaker_each_keeping_their_splits(
    tmp_path, speech_prompts, capsys
):
    prompts = [p for p in speech_prompts if 1 <= len(p["text"].split()) <= 6][:9]
    man, rows = _speech_manifest(
        tmp_path / "speech", prompts, {"ana": ("test", 4), "bea": ("train", 4), "eva": ("test", 1)}
    )
    assert (
        main(["data", "songs", "--speech", str(man), "--out", str(tmp_path / "s"), "--n", "4"]) == 0
    )
    out = tmp_path / "s" / "manifest.jsonl"
    assert capsys.readouterr().out.strip().endswith(str(out))
    assert validate_manifest(out) == []
    songs = [json.loads(x) for x in (out.parent / "songs.jsonl").read_text().splitlines()]
    # splits in turn (test, dev, test, train): dev has no speaker, so the next split sings
    assert [(s["split"], s["voice"]) for s in songs] == [
        ("test", "ana"),
        ("test", "ana"),
        ("test", "ana"),
        ("train", "bea"),
    ]  # "eva" has too few utterances for a song
    by_id = {r["id"]: r for r in rows}
    for s in songs:
        ids = [i for copla in s["copla_ids"] for i in copla]
        assert len(ids) == len(set(ids)) == 4  # each utterance once per song (4 is all ana has)
        assert all(by_id[i]["singer"] == s["voice"] for i in ids)
        sung = [ln["text"] for ln in s["lines"]]
        assert [t for i, t in enumerate(sung) if i == 0 or t != sung[i - 1]] == [
            by_id[i]["text"] for i in ids
        ]  # the recordings' own words, in order; a line may be sung twice
        assert (
            all(len(c) >= 2 for c in s["copla_ids"])
            and len(s["falsetas"]) == len(s["copla_ids"]) + 1
        )
        for a, b in s["falsetas"]:
            assert not any(ln["start"] < b and ln["end"] > a for ln in s["lines"])
    got = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert {r["source"] for r in got} == {"songs-real"}
    assert {(r["singer"], r["split"]) for r in got} == {("ana", "test"), ("bea", "train")}
    # a sung line lasts longer than its recording spoken
    first = songs[0]["lines"][0]
    spoken = load_audio(man.parent / by_id[songs[0]["copla_ids"][0][0]]["audio"])
    assert first["end"] - first["start"] > 1.2 * len(spoken) / SAMPLE_RATE
    with pytest.raises(SynthError, match=r"manifest\.jsonl: no speaker has 5 utterances"):
        plan_real_songs(man, n=1, lines=(5, 6))


def test_song_scores_count_words_in_the_guitar_timing_and_missed_lines():
    sung = [
        {"text": "por la calle de la feria", "start": 10.0, "end": 14.0},
        {"text": "va mi niña", "start": 15.0, "end": 17.0},
        {"text": "con su pena", "start": 30.0, "end": 32.0},
    ]
    falsetas = [[0.0, 10.0], [20.0, 30.0]]
    got = [
        {"text": "por la calle de la feria va mi niña", "start": 10.5, "end": 17.0},
        {"text": "gracias por ver el video", "start": 22.0, "end": 24.0},  # in the guitar
    ]
    r = song_eval.score_song(sung, got, falsetas)
    # "gracias por ver el video" stands where "con su pena" was sung: 3 substituted, 2 inserted
    assert r["ref_words"] == 12 and r["errors"] == 5
    assert r["words_in_guitar"] == pytest.approx(5.0)
    assert r["guitar_minutes"] == pytest.approx(20 / 60, abs=1e-4)
    assert r["hallucinated_per_min"] == pytest.approx(15.0, rel=1e-3)
    assert r["timing_errors"] == [0.5, 4.5, 8.0]  # the second line has no start of its own
    assert r["missed"] == 1  # "con su pena": nothing transcribed while it was sung
    total = song_eval.song_table([r, {**r, "errors": 0, "words_in_guitar": 0.0}])
    assert total["wer"] == pytest.approx(5 / 24)
    assert total["hallucinated_per_min"] == pytest.approx(7.5, rel=1e-3)
    assert total["missed_share"] == pytest.approx(2 / 6)


def test_alignment_scores_find_each_sung_occurrence():
    from flamenco_lib.align import Aligned

    song = {
        "lines": [
            {"text_canonical": "va mi niña", "start": 10.0, "end": 12.0},
            {"text_canonical": "va mi niña", "start": 13.0, "end": 15.0},  # sung twice
            {"text_canonical": "con su pena", "start": 16.0, "end": 18.0},
            {"text_canonical": "y la luna", "start": 30.0, "end": 32.0},
        ]
    }
    assert song_eval.printed_lines(song) == ["va mi niña", "con su pena", "y la luna"]
    aligned = [
        Aligned(0, "va mi niña", 10.2, 12.0, 0.9, ""),
        Aligned(0, "va mi niña", 13.1, 15.5, 0.9, ""),
        Aligned(1, "con su pena", 16.9, 18.0, 0.8, ""),
    ]  # "y la luna" not found
    r = song_eval.score_alignment(song, aligned)
    assert r["found"] == 3 and r["sung"] == 4 and r["printed"] == 3
    assert r["start_errors"] == pytest.approx([0.2, 0.1, 0.9])
    assert r["start_offsets"] == pytest.approx([0.2, 0.1, 0.9])  # all three aligned late
    assert r["end_errors"] == pytest.approx([0.0, 0.5, 0.0])
    assert r["repeated"] == 1 and r["repeated_found_twice"] == 1


def test_a_song_run_is_redone_when_the_way_recordings_are_cut_changes(tmp_path, monkeypatch):
    from flamenco_lib import recording

    (tmp_path / "songs.jsonl").write_text('{"song": "s"}\n', encoding="utf-8")
    _, before = song_eval._run_inputs(tmp_path, "base", "test", None)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "song_metrics.json").write_text("{}", encoding="utf-8")
    (tmp_path / "run" / "inputs.json").write_text(json.dumps(before), encoding="utf-8")
    assert song_eval._kept(tmp_path / "run", before, "song_metrics.json")
    for name, value in (
        ("VAD_THRESHOLD", 0.5),
        ("VAD_CHUNK_S", 60.0),
        ("VAD_HOP_S", 10.0),
        ("LINE_GAP_S", 0.3),
        ("JOIN_S", 2.0),
        ("GUARD", "window"),
    ):
        with monkeypatch.context() as m:
            m.setattr(recording, name, value)
            _, after = song_eval._run_inputs(tmp_path, "base", "test", None)
        assert not song_eval._kept(tmp_path / "run", after, "song_metrics.json"), name


def test_evaluate_alignment_hands_the_detector_settings_to_the_transcription(tmp_path, monkeypatch):
    import soundfile as sf

    from flamenco_lib import recording

    song = {
        "song": "s",
        "audio": "audio/s.flac",
        "split": "dev",
        "falsetas": [[0.0, 5.0]],
        "lines": [
            {"text": "va mi niña", "text_canonical": "va mi niña", "start": 5.0, "end": 7.0},
            {"text": "con su pena", "text_canonical": "con su pena", "start": 8.0, "end": 10.0},
        ],
    }
    (tmp_path / "audio").mkdir()
    sf.write(tmp_path / "audio" / "s.flac", np.zeros(11 * SAMPLE_RATE, np.float32), SAMPLE_RATE)
    (tmp_path / "songs.jsonl").write_text(json.dumps(song) + "\n", encoding="utf-8")
    seen = []

    def fake(model, processor, audio, **kw):
        seen.append(kw.get("vad_threshold"))
        return [
            recording.Line(5.2, 7.0, "va mi niña"),
            recording.Line(9.0, 10.0, "con su pena"),  # found 1 s late
        ]

    monkeypatch.setattr(recording, "transcribe_recording", fake)
    m = song_eval.evaluate_alignment(None, None, tmp_path, split="dev", vad_threshold=0.2)
    assert seen == [0.2]
    assert m["found"] == 1.0 and m["within_0_5_s"] == 0.5
    assert m["median_start_error_s"] == pytest.approx(0.6)
