"""Importing timed annotations: each format from a small file written by the test, each with a
broken file or line (named with its line, the good intervals still imported), and the corpus
that comes out (valid manifest, segments joined up to 30 s, previous_text, recordings linked)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from flamenco_lib.cli import main
from flamenco_lib.data import importers
from flamenco_lib.data.manifest import validate_manifest

LINES = [(1.0, 3.5, "Por la calle de la Feria"), (4.0, 6.0, "va mi niña"), (40.0, 43.0, "que no")]


def _recording(folder, stem, seconds=50.0):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.wav"
    sf.write(path, np.zeros(int(seconds * 16000), dtype=np.float32), 16000)
    return path


def _texts(intervals):
    return [(iv.start, iv.end, iv.text) for iv in intervals if iv.text]


def test_textgrid_the_lyrics_tier(tmp_path):
    from pympi import Praat

    grid = Praat.TextGrid(xmax=50.0)
    lyrics, other = grid.add_tier("letra"), grid.add_tier("palmas")
    for s, e, t in LINES:
        lyrics.add_interval(s, e, t)
    other.add_interval(0.0, 1.0, "x")
    path = tmp_path / "song.TextGrid"
    grid.to_file(str(path))
    got, problems = importers.read_annotations(path)  # two tiers: the one named like lyrics
    assert _texts(got) == LINES and problems == []
    with pytest.raises(importers.AnnotationError, match="no tier 'lyrics'.*letra, palmas"):
        importers.read_annotations(path, tier="lyrics")
    broken = tmp_path / "broken.TextGrid"
    broken.write_text('File type = "ooTextFile"\nObject class = "TextGrid"\nxmin = nonsense\n')
    with pytest.raises(importers.AnnotationError, match="broken.TextGrid: not a readable TextGrid"):
        importers.read_annotations(broken)


def test_elan_tier_in_milliseconds(tmp_path):
    from pympi import Elan

    eaf = Elan.Eaf()
    eaf.add_tier("transcription")
    for s, e, t in LINES:
        eaf.add_annotation("transcription", int(s * 1000), int(e * 1000), t)
    path = tmp_path / "song.eaf"
    Elan.to_eaf(str(path), eaf)
    got, _ = importers.read_annotations(path, tier="transcription")
    assert _texts(got) == LINES
    (tmp_path / "broken.eaf").write_text("<ANNOTATION_DOCUMENT><unclosed>")
    with pytest.raises(importers.AnnotationError, match="broken.eaf: not a readable ELAN"):
        importers.read_annotations(tmp_path / "broken.eaf")


def test_srt_a_broken_block_is_named_by_its_line(tmp_path):
    path = tmp_path / "song.srt"
    path.write_text(
        "1\n00:00:01,000 --> 00:00:03,500\nPor la calle de la Feria\n\n"
        "2\n00:00:04,000 -> oops\nva mi niña\n\n"
        "3\n00:00:40,000 --> 00:00:43,000\nque no\n",
        encoding="utf-8",
    )
    got, problems = importers.read_annotations(path)
    assert _texts(got) == [LINES[0], LINES[2]]
    assert len(problems) == 1 and problems[0].startswith(f"{path}:5: not an SRT block")


def test_lrc_lines_last_until_the_next_and_bad_lines_are_named(tmp_path):
    path = tmp_path / "song.lrc"
    path.write_text(
        "[ar:Anónimo]\n[00:01.00]Por la calle de la Feria\n[00:04.00]va mi niña\n"
        "no timestamp here\n[00:40.00]que no\n",
        encoding="utf-8",
    )
    got, problems = importers.read_annotations(path)
    assert _texts(got) == [
        (1.0, 4.0, LINES[0][2]),
        (4.0, 40.0, LINES[1][2]),
        (40.0, None, "que no"),
    ]
    assert problems == [f"{path}:4: expected [mm:ss.xx]text, got 'no timestamp here'"]


def test_audacity_labels_and_a_bad_line(tmp_path):
    path = tmp_path / "song.txt"
    path.write_text(
        "1.0\t3.5\tPor la calle de la Feria\n\\\t200.0\t3000.0\n4.0\t6.0\tva mi niña\n"
        "7.0\tseven\tbroken\n40.0\t43.0\tque no\n",
        encoding="utf-8",
    )
    got, problems = importers.read_annotations(path)
    assert _texts(got) == LINES
    assert problems == [f"{path}:4: expected start<TAB>end<TAB>text, got '7.0\\tseven\\tbroken'"]


def test_neighbouring_lines_join_up_to_30_s_and_gaps_split():
    ivs = [importers.Interval(s, e, t) for s, e, t in LINES] + [importers.Interval(44.0, None, "")]
    segs = importers.segments_from(ivs, duration=50.0)
    assert segs == [
        {"start": 1.0, "end": 6.0, "text": "Por la calle de la Feria va mi niña"},
        {"start": 40.0, "end": 43.0, "text": "que no"},
    ]
    long = [importers.Interval(float(t), t + 4.0, f"verso {t}") for t in range(0, 40, 5)]
    assert all(s["end"] - s["start"] <= 30.0 for s in importers.segments_from(long, duration=50))


def test_data_import_writes_a_valid_corpus_and_reports_the_bad_files(tmp_path, capsys):
    audio = tmp_path / "recordings"
    _recording(audio, "soleá-1")
    _recording(audio, "soleá-2")
    ann = tmp_path / "ann"
    ann.mkdir()
    (ann / "soleá-1.txt").write_text(
        "".join(f"{s}\t{e}\t{t}\n" for s, e, t in LINES) + "oops\n", encoding="utf-8"
    )
    (ann / "soleá-2.lrc").write_text("[00:02.00]y la luna\n[00:05.00]me dijo\n", encoding="utf-8")
    (ann / "missing.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\nhola\n", encoding="utf-8")
    out = tmp_path / "corpus"
    argv = ["data", "import", *map(str, sorted(ann.iterdir())), "--audio-dir", str(audio)]
    assert main([*argv, "--out", str(out), "--palo", "soleá"]) == 1  # imported, with problems
    err = capsys.readouterr().err
    assert "soleá-1.txt:4:" in err and "missing.srt: no recording missing.*" in err
    man = out / "manifest.jsonl"
    assert validate_manifest(man) == []
    rows = [json.loads(x) for x in man.read_text(encoding="utf-8").splitlines()]
    assert [(r["id"], r["start"], r["end"]) for r in rows] == [
        ("soleá-1-000", 1.0, 6.0),
        ("soleá-1-001", 40.0, 43.0),
        ("soleá-2-000", 2.0, 5.0),
        ("soleá-2-001", 5.0, 35.0),  # the last LRC line lasts to the end: cut to 30 s
    ]
    assert rows[1]["previous_text"] == rows[0]["text"] and rows[0]["previous_text"] is None
    assert {r["palo"] for r in rows} == {"soleá"} and len({r["split"] for r in rows[:2]}) == 1
    assert (out / "audio" / "soleá-1.wav").stat().st_ino == (audio / "soleá-1.wav").stat().st_ino
