"""Corpora: lyrics files, manifest validation, the real speech corpus, load_corpus, Common Voice."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from flamenco_lib.cli import main
from flamenco_lib.data import corpus, lyrics, manifest

# ---------------------------------------------------------------- lyrics


def test_project_lyrics_are_many_distinct_coplas():
    coplas = lyrics.read_lyrics()
    assert len(coplas) >= 300
    assert len({c.id for c in coplas}) == len(coplas)
    assert len({c.text.lower() for c in coplas}) == len(coplas)
    palos = {c.palo for c in coplas}
    assert {
        "soleá",
        "seguiriya",
        "bulería",
        "fandango",
        "tangos",
        "alegrías",
        "malagueña",
        "granaína",
        "martinete",
        "tientos",
    } <= palos
    assert all(2 <= len(c.lines) <= 6 for c in coplas)
    soleares = [c for c in coplas if c.palo == "soleá"]
    assert sum(len(c.lines) == 3 for c in soleares) > len(soleares) / 2  # the soleá is a tercet


def test_tsv_and_jsonl_read_the_same(tmp_path):
    tsv = tmp_path / "mine.tsv"
    tsv.write_text(
        "palo\ttext\nsoleá\tLa luna / sobre Triana / llora\ntangos\tDe Cádiz, vengo, cantando\n"
    )
    jsonl = tmp_path / "mine.jsonl"
    jsonl.write_text(
        "\n".join(
            json.dumps({"palo": c.palo, "text": " / ".join(c.lines)}, ensure_ascii=False)
            for c in lyrics.read_lyrics(tsv)
        )
        + "\n"
    )
    a, b = lyrics.read_lyrics(tsv), lyrics.read_lyrics(jsonl)
    assert a == b
    assert a[0].lines == ("La luna", "sobre Triana", "llora") and a[1].lines == (
        "De Cádiz",
        "vengo",
        "cantando",
    )


@pytest.mark.parametrize(
    "content,needle",
    [
        ("text\nhola\n", "lacks \\['palo'\\]"),
        ("palo\ttext\nsoleá\t\n", ":2: a copla needs"),
        ("id\tpalo\ttext\na\tsoleá\tuno\na\tsoleá\tdos\n", ":3: duplicate id"),
        ('{"palo": "soleá", \n', ":1: not valid JSON"),
    ],
)
def test_lyrics_errors_name_file_and_line(tmp_path, content, needle):
    path = tmp_path / "bad.tsv"
    path.write_text(content)
    with pytest.raises(lyrics.LyricsError, match=needle) as info:
        lyrics.read_lyrics(path)
    assert str(path) in str(info.value)


# ---------------------------------------------------------------- manifest validation


@pytest.fixture
def corpus_dir(tmp_path, real_speech):
    (tmp_path / "audio").mkdir()
    sf.write(tmp_path / "audio" / "long.flac", real_speech, 16000)  # ~32 s
    sf.write(tmp_path / "audio" / "short.wav", real_speech[: 16000 * 4], 16000)
    (tmp_path / "audio" / "broken.wav").write_text("not audio")
    return tmp_path


def _write(dir_, rows):
    path = dir_ / "manifest.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def _row(i, **kw):
    row = {
        "id": f"seg{i}",
        "audio": "audio/short.wav",
        "start": None,
        "end": None,
        "text": f"copla número {i}",
        "text_canonical": f"copla número {i}",
        "palo": "soleá",
        "singer": "a",
        "split": "train",
        "source": "test",
    }
    row.update(kw)
    return row


def test_valid_manifest(corpus_dir):
    path = _write(
        corpus_dir, [_row(1), _row(2, audio="audio/long.flac", start=0.0, end=20.0, split="test")]
    )
    assert manifest.validate_manifest(path) == []
    assert main(["data", "validate", str(path)]) == 0


def test_every_problem_is_listed_with_its_line(corpus_dir, capsys):
    rows = [
        _row(1),
        _row(2, audio="audio/missing.wav"),
        _row(3, audio="audio/broken.wav"),
        _row(4, audio="audio/long.flac"),  # 32 s: over the window
        _row(5, start=3.0, end=9.0),  # outside the 4 s file
        _row(6, text="  "),
        _row(1, text="otra"),  # duplicate id
        _row(
            8, text="copla número 1", text_canonical="copla número 1", split="test"
        ),  # lyric in two splits
        _row(9, text="la " * 500),  # > 448 tokens
        _row(10, audio="../outside.wav"),
        _row(11, start=2.0, end=1.0),
    ]
    path = _write(corpus_dir, rows)
    problems = manifest.validate_manifest(path)
    expect = {
        2: "missing|not found",
        3: "not audio",
        4: "longer than",
        5: "outside",
        6: "empty text",
        7: "duplicate id",
        8: "same lyric",
        9: "tokens exceeds",
        10: "escapes",
        11: "empty segment",
    }
    import re

    for line, pattern in expect.items():
        assert any(p.startswith(f"{path}:{line}:") and re.search(pattern, p) for p in problems), (
            line,
            problems,
        )
    assert not any(p.startswith(f"{path}:1:") for p in problems)
    assert main(["data", "validate", str(path)]) == 2
    out = capsys.readouterr().out
    assert out.count(str(path)) >= len(expect)


# ---------------------------------------------------------------- real speech corpus and load_corpus


@pytest.fixture(scope="session")
def speech_corpus(tmp_path_factory):
    return corpus.build_speech_corpus(tmp_path_factory.mktemp("speech"), progress=False)


def test_speech_corpus(speech_corpus):
    rows = manifest.read_manifest(speech_corpus)
    assert len(rows) >= 450
    assert not any(r["text"].startswith("[") for r in rows)  # tones are not speech
    splits = {r["split"] for r in rows}
    assert splits == {"train", "dev", "test"}
    assert manifest.validate_manifest(speech_corpus) == []
    # the split of an item does not depend on the others: fixed by its words and the seed
    from flamenco_lib.data.speech import split_of
    from flamenco_lib.text import normalize

    assert all(r["split"] == split_of(normalize(r["text"])) for r in rows)
    assert sum(split_of(normalize(r["text"]), seed=1) != r["split"] for r in rows) > 50


def test_load_corpus_decodes_lazily_and_cuts_segments(corpus_dir, real_speech):
    path = _write(
        corpus_dir, [_row(1), _row(2, audio="audio/long.flac", start=1.0, end=3.5, split="test")]
    )
    dd = corpus.load_corpus(path)
    assert set(dd) == {"train", "test"}
    ex = dd["test"][0]
    assert ex["audio"]["sampling_rate"] == 16000
    np.testing.assert_allclose(ex["audio"]["array"], real_speech[16000:56000], atol=1e-6)
    assert ex["text"] == "copla número 2" and ex["palo"] == "soleá"


# ---------------------------------------------------------------- Common Voice


CV_COLUMNS = [
    "client_id",
    "path",
    "sentence_id",
    "sentence",
    "sentence_domain",
    "up_votes",
    "down_votes",
    "age",
    "gender",
    "accents",
    "variant",
    "locale",
    "segment",
]


@pytest.fixture
def common_voice_dir(tmp_path, speech_prompts):
    from flamenco_lib.audio import load_audio

    root = tmp_path / "cv-corpus-es"
    (root / "clips").mkdir(parents=True)
    items = speech_prompts[:6]
    for split, chunk in {"train": items[:4], "dev": items[4:5], "test": items[5:6]}.items():
        lines = ["\t".join(CV_COLUMNS)]
        for i, p in enumerate(chunk):
            name = f"common_voice_es_{1000 + i}_{split}.mp3"
            sf.write(root / "clips" / name, load_audio(p["path"], sr=48000), 48000, format="MP3")
            lines.append(
                "\t".join(
                    [f"client{i}", name, f"s{i}", p["text"], "", "2", "0", "", "", "", "", "es", ""]
                )
            )
        (root / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    (root / "validated.tsv").write_text((root / "train.tsv").read_text())
    return root, items


def test_common_voice_official_layout(common_voice_dir):
    root, items = common_voice_dir
    ds = corpus.load_common_voice(root, split="train")
    assert len(ds) == 4
    ex = ds[1]
    assert ex["text"] == items[1]["text"] and ex["singer"] == "client1"
    assert ex["audio"]["sampling_rate"] == 16000 and len(ex["audio"]["array"]) > 8000
    assert len(corpus.load_common_voice(root, split="train", max_items=2)) == 2
    assert len(corpus.load_common_voice(root, split="dev")) == 1
    with pytest.raises(manifest.ManifestError, match="no other.tsv"):
        corpus.load_common_voice(root, split="other")
