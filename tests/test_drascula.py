"""flamenco_lib.data.drascula: Drascula's Spanish voice-over as a real-voice corpus split by speaker.

The format tests write their own small files; the corpus tests read Debian's packages
(``drascula``, ``drascula-spanish``: make setup installs them; absent, they skip with the reason).
"""

from __future__ import annotations

import struct

import numpy as np
import pytest

from flamenco_lib.data import drascula as D
from flamenco_lib.data.corpus import _subset, build_speech_corpus
from flamenco_lib.data.manifest import read_manifest, validate_manifest
from flamenco_lib.text import normalize


def _dat(path, arrays_by_language):
    """A drascula.dat in the documented layout: header, 13 empty tables, the text arrays."""
    out = bytearray(b"DRASCULA\x06")
    for _ in D._RECORD_BYTES:
        out += struct.pack(">H", 0)
    out += struct.pack(">H", len(arrays_by_language))
    for a in range(len(arrays_by_language[0])):
        out += struct.pack(">H", len(arrays_by_language[0][a]))
        for lang in arrays_by_language:
            block = bytearray()
            for text in lang[a]:
                raw = text.encode("cp850") + b"\0"
                raw += b"\0" * (-(len(raw) + 2) % 4)  # padded, as the real file is
                block += struct.pack(">H", len(raw) + 2) + raw
            out += struct.pack(">H", len(block) + 2) + b"\0\0" + block
    path.write_bytes(bytes(out))
    return path


def _als(path, samples):
    path.write_bytes(b"H" * D.HEADER_BYTES + bytes(samples) + b"T" * D.TRAILER_BYTES)
    return path


def test_read_texts_takes_the_spanish_column(tmp_path):
    english = [["", "HELLO"], ["", "YES", "NO"]]
    spanish = [["", "¿QUÉ TAL?"], ["", "SÍ", "NO"]]
    dat = _dat(tmp_path / "drascula.dat", [english, spanish])
    assert D.read_texts(dat) == spanish
    assert D.read_texts(dat, language=0) == english
    with pytest.raises(ValueError, match="language 2"):
        D.read_texts(dat, language=2)
    (tmp_path / "bad.dat").write_bytes(b"NOTDRASCULA")
    with pytest.raises(D.FlamencoError, match="bad.dat: not a drascula.dat"):
        D.read_texts(tmp_path / "bad.dat")


def test_read_als_drops_header_and_trailer_and_centres_8_bit_samples(tmp_path):
    y = D.read_als(_als(tmp_path / "1.ALS", [0, 128, 255, 64]))
    np.testing.assert_array_equal(y, np.array([-1.0, 0.0, 127 / 128, -0.5], dtype=np.float32))


def test_lines_skip_effects_english_links_and_implausible_rates_and_split_by_speaker(tmp_path):
    arrays = [[""] * 4 for _ in range(10)]
    arrays[0][1] = "UNA PUERTA MUY GRANDE"  # the protagonist, 21 characters
    arrays[0][2] = "HOLA"
    arrays[0][3] = "AY"
    arrays[3][1] = "HOLA"  # Billie Jean (test) says it too
    dat = _dat(tmp_path / "drascula.dat", [arrays, arrays])
    sounds = tmp_path / "es"
    sounds.mkdir()
    second = [128] * D.FILE_RATE  # one second of silence
    _als(sounds / "1.ALS", second * 2)  # 10.5 characters per second: kept
    half = second[: D.FILE_RATE // 2]
    _als(sounds / "2.ALS", half)  # 8 characters per second, but a test character says it too
    _als(sounds / "3.ALS", second * 3)  # 0.7 characters per second: an ad-lib
    _als(sounds / "BJ1.ALS", half)
    _als(sounds / "S1.ALS", second)  # a sound effect
    (tmp_path / "en").mkdir()
    _als(tmp_path / "en" / "D1.ALS", second)
    (sounds / "D1.ALS").symlink_to(tmp_path / "en" / "D1.ALS")  # an English stand-in
    items, dropped = D.lines(sounds, dat)
    assert [(r["id"], r["split"]) for r in items] == [
        ("drascula-billie-jean-001", "test"),
        ("drascula-john-hacker-001", "train"),
    ]
    assert dropped == {
        "english": 1,
        "no text": 0,
        "speech rate": 1,
        "said by a held-out character too": 1,
    }
    with pytest.raises(D.DrasculaMissing, match="apt-get install"):
        D.lines(tmp_path / "nowhere", dat)


def test_the_real_corpus_holds_out_three_characters_and_the_female_voice():
    items, dropped = D.lines()
    by_split = {}
    for r in items:
        by_split.setdefault(r["split"], set()).add(r["singer"])
    assert len(by_split["test"]) >= 3 and "drascula-billie-jean" in by_split["test"]
    assert len(by_split["dev"]) >= 3  # speakers enough to choose on
    assert not (by_split["train"] & (by_split["test"] | by_split["dev"]))
    assert len(items) > 650 and sum(dropped.values()) < 100
    igor = next(r for r in items if r["id"] == "drascula-igor-008")
    assert igor["text"].startswith("Mal maestro, debe haber problemas")  # written in capitals


def test_data_speech_source_drascula_builds_a_valid_manifest(tmp_path):
    manifest = build_speech_corpus(tmp_path / "drascula", source="drascula", n=12, progress=False)
    rows = read_manifest(manifest)
    assert len(rows) == 12 and {r["source"] for r in rows} == {"drascula-spanish"}
    assert validate_manifest(manifest) == []
    assert {"train", "test"} <= {r["split"] for r in rows}


@pytest.mark.parametrize("n", [3, 4, 7, 20])
def test_a_small_speech_corpus_keeps_every_split(n):
    items = [{"id": f"u{i:03d}", "split": "train"} for i in range(90)]
    items[5:5] = [{"id": f"d{i}", "split": "dev"} for i in range(4)]
    items += [{"id": f"t{i}", "split": "test"} for i in range(6)]
    sub = _subset(items, n)
    assert len(sub) == n and {r["split"] for r in sub} == {"train", "dev", "test"}
    assert [r for r in items if r in sub] == sub  # the corpus' own order
    assert _subset(items, 500) == items


@pytest.mark.parametrize(
    "written, kept",
    [
        ("¡QUE MUERTO NI OCHO CUARTOS!", "¡Que muerto ni ocho cuartos!"),
        ("MUERTOS TODOS. GRACIAS. BURRP", "Muertos todos. Gracias. Burrp"),
        ("¿Y NO LES DA VERGÜENZA? ¡NO!", "¿Y no les da vergüenza? ¡No!"),
        ("Hola ciego. ¿Que tal?", "Hola ciego. ¿Que tal?"),  # written in lower case: as is
    ],
)
def test_lines_in_capitals_become_sentence_case(written, kept):
    assert D.sentence_case(written) == kept
    assert normalize(D.sentence_case(written)) == normalize(written)  # the same words
