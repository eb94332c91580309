"""Known lyrics aligned to a recording: the dynamic programme on transcribed regions (repeats,
skipped lines, two lines in one region, a region that sings nothing printed), and `data align`
on a real recording of spoken lines between guitar passages."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from flamenco_lib.align import align_lines

PRINTED = ["Por la calle de la Feria", "va mi niña", "con su pena", "Y la luna me dijo", "que no"]


def test_repeats_skips_and_two_lines_in_one_region():
    heard = [
        (10.0, 14.0, "Ay, por la calle de la feria"),
        (15.0, 17.0, "va mi niña"),
        (18.0, 20.0, "va mi niña"),  # sung again
        (25.0, 27.0, "gracias por ver el vídeo"),  # text over the guitar: no printed line
        (30.0, 35.0, "y la luna me dijo que no"),  # two printed lines in one region
    ]
    got = align_lines(heard, PRINTED)
    assert [a.line for a in got] == [0, 1, 1, 3, 4]  # "con su pena" is not sung
    assert [(a.start, a.end) for a in got[:3]] == [(10.0, 14.0), (15.0, 17.0), (18.0, 20.0)]
    # the shared region is split by the printed lines' lengths (17 and 6 characters)
    assert got[3].start == 30.0 and got[4].end == 35.0
    assert got[3].end == pytest.approx(30.0 + 5.0 * 17 / 23)
    assert got[0].confidence > 0.8 and got[1].text == "va mi niña"
    assert align_lines([(0.0, 1.0, "nada que ver")], PRINTED) == []


def test_order_is_kept_when_a_later_line_sounds_like_an_earlier_one():
    heard = [(0.0, 2.0, "va mi niña"), (3.0, 5.0, "con su pena"), (6.0, 8.0, "va mi niña")]
    got = align_lines(heard, ["va mi niña", "con su pena", "va mi niña"])
    assert [a.line for a in got] == [0, 1, 2]  # the third region is the third printed line


@pytest.mark.model
def test_data_align_writes_one_timed_segment_per_sung_line(base, speech_prompts, tmp_path, capsys):
    from test_recording import _song

    from flamenco_lib.cli import main
    from flamenco_lib.data.manifest import validate_manifest

    path, _, _ = base
    audio, texts, spans, _ = _song(speech_prompts, n_lines=3)
    rec = tmp_path / "soleá.wav"
    sf.write(rec, audio, 16000)
    lyrics = tmp_path / "soleá.txt"
    lyrics.write_text("\n".join(texts[:2] + ["Esta línea no se canta"] + texts[2:]) + "\n")
    out = tmp_path / "corpus"
    assert (
        main(["data", "align", str(rec), str(lyrics), "--out", str(out), "--model", str(path)]) == 0
    )
    assert "soleá.txt:3: not found" in capsys.readouterr().err
    man = out / "manifest.jsonl"
    assert validate_manifest(man) == []
    rows = [json.loads(x) for x in man.read_text(encoding="utf-8").splitlines()]
    assert [r["text"] for r in rows] == texts and [r["lyric_line"] for r in rows] == [1, 2, 4]
    starts = np.array([r["start"] for r in rows])
    assert np.abs(starts - np.array([s for s, _ in spans])).max() < 0.5
    assert all(r["confidence"] >= 0.5 for r in rows)
