"""Known lyrics aligned to a recording: the dynamic programme on transcribed regions (repeats,
skipped lines, two lines in one region, a region that sings nothing printed), and `data align`
on a real recording of spoken lines between guitar passages."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from flamenco_lib.align import align_lines, sung_label
from flamenco_lib.text import normalize_flamenco

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
    # the shared region is cut where the transcript holds the second line (character 18 of 24)
    assert got[3].start == 30.0 and got[4].end == 35.0
    assert got[3].end == got[4].start == pytest.approx(30.0 + 5.0 * 18 / 24)
    assert got[0].confidence > 0.8 and got[1].text == "va mi niña"
    # the label is what was sung: the quejío opens the first line (its text stays the printed one)
    assert got[0].sung == "Ay, Por la calle de la Feria" and got[0].text == PRINTED[0]
    assert [a.sung for a in got[3:]] == ["Y la luna me dijo", "que no"]
    assert align_lines([(0.0, 1.0, "nada que ver")], PRINTED) == []


@pytest.mark.parametrize(
    "printed, heard, label, in_a_block",
    [  # in_a_block: the label of a line that shares its region with others (quejío only)
        ("va mi niña", "va mi ninia", "va mi niña", "va mi niña"),  # the printed words are written
        (
            "va mi niña",
            "Ay, ay, va mi niña, va mi niña",
            "Ay, ay, va mi niña, va mi niña",
            "Ay, ay, va mi niña",
        ),
        (
            "va mi niña",
            "Ayyyy va mi niña va mi niña va mi niña",
            "Ayyyy, va mi niña, va mi niña, va mi niña",
            "Ayyyy, va mi niña",
        ),
        (
            "con su pena por la calle",
            "con su pena por la calle, por la calle",
            "con su pena por la calle, por la calle",
            "con su pena por la calle",
        ),
        ("con su pena", "ay", "con su pena", "con su pena"),  # a cry alone: no words to open
    ],
)
def test_the_label_is_the_printed_line_as_it_was_sung(printed, heard, label, in_a_block):
    assert sung_label(printed, heard) == label
    assert sung_label(printed, heard, whole_line=False) == in_a_block


def test_a_line_sung_twice_in_one_breath_is_not_taken_for_two_printed_lines():
    # compared with the printed text alone, the doubled line is more like lines 1 + 2 together
    # (ratio 0.73 against 0.66), and the next region would then repeat line 2: every later
    # line off by one. Compared with the line as it is sung (twice), it is itself.
    printed = ["con el frío y la tos", "hasta que vino la noche", "Málaga, cuando te dejo"]
    heard = [
        (0.0, 6.0, "con el frío y la tos, con el frío y la tos"),
        (7.0, 10.0, "hasta que vino la noche"),
        (11.0, 14.0, "Bailaga cuando te dejo"),
    ]
    got = align_lines(heard, printed)
    assert [(a.line, a.start) for a in got] == [(0, 0.0), (1, 7.0), (2, 11.0)]
    assert got[0].confidence == 1.0 and got[0].sung == "con el frío y la tos, con el frío y la tos"


def test_a_cry_before_a_line_opens_it_and_a_line_cut_by_a_breath_is_one_line():
    printed = ["Por el río Guadalmedina", "que llora de noche sola"]
    heard = [
        (0.0, 1.0, "Por el río"),  # one line the voice detector cut in two (0.6 s apart)
        (1.6, 4.0, "Guadalmedina"),
        (10.0, 11.5, "Ay, ay,"),  # a quejío region 2 s before its line (a long breath)
        (13.5, 16.0, "que llora de noche sola"),
        (16.6, 19.0, "que llora de noche sola"),  # the line again, in a second breath
        (30.0, 31.0, "Ay"),  # a cry far from any line stays out
    ]
    got = align_lines(heard, printed)
    assert [(a.line, a.start, a.end) for a in got] == [
        (0, 0.0, 4.0),
        (1, 10.0, 16.0),
        (1, 16.6, 19.0),
    ]
    assert got[0].confidence == 1.0 and got[0].sung == "Por el río Guadalmedina"
    assert got[1].sung == "Ay, ay, que llora de noche sola" and got[1].heard.startswith(
        "Ay, ay, que"
    )
    assert got[2].sung == "que llora de noche sola"


def test_a_region_may_sing_a_repeat_and_the_next_line_or_two_lines_the_last_twice():
    printed = ["La tierra que pisa el pobre", "está más dura que el hierro", "y el rico camina"]
    heard = [
        # one breath: the first line, a quejío, the second line twice (cut where it begins)
        (
            50.0,
            64.0,
            "La tierra que pisa el pobre, Ayyy, está más dura que el hierro, "
            "está más dura que el hierro",
        ),
        # one breath: the second line again and the third
        (66.0, 76.0, "está más dura que el hierro, y el rico camina"),
    ]
    got = align_lines(heard, printed)
    assert [a.line for a in got] == [0, 1, 1, 2]
    first = normalize_flamenco(heard[0][2], keep_accents=False)
    cut = 50.0 + 14.0 * first.index("esta mas") / len(first)
    assert got[0].start == 50.0 and got[1].start == pytest.approx(cut) and got[1].end == 64.0
    # the quejío between the two lines opens the second
    assert got[1].sung == "Ayyy, está más dura que el hierro, está más dura que el hierro"
    second = normalize_flamenco(heard[1][2], keep_accents=False)
    assert got[2].start == 66.0
    assert got[3].start == pytest.approx(66.0 + 10.0 * second.index("y el") / len(second))
    assert got[3].sung == "y el rico camina"


def test_each_line_of_a_block_is_labelled_as_it_was_sung_and_how_much_was_heard():
    # heard on a train song of the end-to-end check: the first line of a block sung twice was
    # labelled once (its repeat's words missing from the label)
    printed = ["y me encontré tu sombra", "sentada en el último barco"]
    text = "y me encontré tu sombra, y me encontré tu sombra, ay, ay, sentada en el último barco"
    got = align_lines([(19.8, 27.5, text)], printed)
    assert [a.line for a in got] == [0, 1]
    assert got[0].sung == "y me encontré tu sombra, y me encontré tu sombra"
    assert got[1].sung == "Ay, ay, sentada en el último barco"  # its quejíos open it
    assert got[0].region == got[1].region == 0  # one region: one segment of a corpus by regions
    assert got[0].cover == 1.0 and got[1].cover == 1.0
    # a breath that holds the end of a line alone is labelled with the line, and says so
    got = align_lines(
        [(0.0, 4.2, "me fumé un puro despacio"), (6.0, 7.5, "despacio")],
        ["me fumé un puro despacio"],
    )
    assert [a.cover for a in got] == [1.0, 0.33]


def _aligned_as(tmp_path, monkeypatch, name, printed, found):
    """A silent 40 s recording and its lyrics file, with ``align_lyrics`` answering ``found``
    (no model is loaded): what ``data align`` writes from given aligned lines."""
    import flamenco_lib.models
    from flamenco_lib.data import aligned as aligned_mod

    rec, lyrics = tmp_path / f"{name}.wav", tmp_path / f"{name}.txt"
    sf.write(rec, np.zeros(16000 * 40, dtype=np.float32), 16000)
    lyrics.write_text("".join(f"{line}\n" for line in printed))
    monkeypatch.setattr(flamenco_lib.models, "load_whisper", lambda model: (None, None))
    monkeypatch.setattr(aligned_mod, "align_lyrics", lambda *a, **k: (found, []))
    return rec, lyrics, aligned_mod


def test_data_align_leaves_out_fragments_and_says_where(tmp_path, monkeypatch):
    from flamenco_lib.align import Aligned

    line, other = "me fumé un puro despacio", "bajo una palma en La Habana"
    found = [
        Aligned(0, line, 2.0, 6.2, 0.98, "me fue un puro despacio", line, 1.0),
        Aligned(0, line, 8.0, 9.6, 0.5, "despacio", line, 0.33),  # a fragment: left out
        Aligned(1, other, 12.0, 12.04, 0.8, "bajo una palma", other, 1.0),  # no room: left out
        Aligned(1, other, 20.0, 25.0, 0.9, "bajo una palma en la abana", other, 0.96),
    ]
    rec, lyrics, aligned_mod = _aligned_as(tmp_path, monkeypatch, "guajira", [line, other], found)
    man, problems = aligned_mod.align_to_corpus(
        [(rec, lyrics)], out=tmp_path / "corpus", segments="lines"
    )
    rows = [json.loads(x) for x in man.read_text(encoding="utf-8").splitlines()]
    assert [(r["start"], r["lyric_line"], r["cover"]) for r in rows] == [
        (2.0, 1, 1.0),
        (20.0, 2, 0.96),
    ]
    assert len(problems) == 2
    assert problems[0].startswith(f"{lyrics}:1: guajira.wav 8.0-9.6 s: 33% of the line heard")
    assert (
        problems[1].startswith(f"{lyrics}:2: guajira.wav 12.0-12.0 s") and "left out" in problems[1]
    )


def test_data_align_by_regions_writes_one_breath_as_one_segment(tmp_path, monkeypatch):
    from flamenco_lib.align import Aligned

    a, b, c = "la tierra que pisa el pobre", "está más dura que el hierro", "y el rico camina"
    found = [  # region 0 sings two lines; region 3 a line twice, its second singing a fragment
        Aligned(0, a, 2.0, 5.5, 0.9, "...", "Ay, " + a, 1.0, 0),
        Aligned(1, b, 5.9, 9.0, 0.9, "...", b, 1.0, 0),
        Aligned(2, c, 12.0, 15.0, 0.9, "y el rico camina", c, 1.0, 3),
        Aligned(2, c, 15.5, 16.0, 0.6, "camina", c, 0.3, 3),
    ]
    rec, lyrics, aligned_mod = _aligned_as(tmp_path, monkeypatch, "tangos", [a, b, c], found)
    man, problems = aligned_mod.align_to_corpus(
        [(rec, lyrics)], out=tmp_path / "regions", segments="regions"
    )
    rows = [json.loads(x) for x in man.read_text(encoding="utf-8").splitlines()]
    assert [(r["start"], r["end"], r["text"]) for r in rows] == [
        (2.0, 9.0, f"Ay, {a}, {b}"),
        (12.0, 15.0, c),  # its region lost a fragment: not joined with it, and kept alone
    ]
    assert rows[0]["lyric_lines"] == [1, 2] and len(problems) == 1
    man, _ = aligned_mod.align_to_corpus([(rec, lyrics)], out=tmp_path / "lines", segments="lines")
    assert len(man.read_text(encoding="utf-8").splitlines()) == 3  # one row per kept line
    from flamenco_lib.cli import main  # by default, lines under 1.5 s apart are one segment

    out = tmp_path / "joined"
    assert main(["data", "align", str(rec), str(lyrics), "--out", str(out)]) == 0
    rows = [
        json.loads(x) for x in (out / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert [(r["start"], r["end"]) for r in rows] == [(2.0, 9.0), (12.0, 15.0)]  # 3 s apart
    with pytest.raises(ValueError, match="segments"):
        aligned_mod.align_to_corpus([(rec, lyrics)], out=tmp_path / "x", segments="breaths")


def test_corpus_segments_join_lines_by_region_or_by_gap_never_across_a_line_left_out():
    from flamenco_lib.align import Aligned
    from flamenco_lib.data.aligned import corpus_segments

    spans = [(0.0, 4.0, 0), (4.5, 8.0, 0), (8.8, 12.0, 1), (12.4, 13.0, 2), (13.5, 16.0, 3)]
    spans += [(20.0, 24.0, 4)]
    lines = [
        Aligned(k, f"l{k}", a, b, 0.9, f"l{k}", f"L{k}", 1.0, r)
        for k, (a, b, r) in enumerate(spans)
    ]
    keep = [True, True, True, False, True, True]  # line 3 left out: nothing joins across it

    def got(how):
        return [(iv.start, iv.end, iv.text) for iv, _ in corpus_segments(lines, how, keep)]

    assert [t for *_, t in got("lines")] == ["L0", "L1", "L2", "L4", "L5"]
    assert got("regions")[0] == (0.0, 8.0, "L0, L1") and len(got("regions")) == 4
    assert got("joined") == [(0.0, 12.0, "L0, L1, L2"), (13.5, 16.0, "L4"), (20.0, 24.0, "L5")]
    _, fields = corpus_segments(lines, "joined", keep)[0]
    assert fields["lyric_lines"] == [1, 2, 3] and fields["text_canonical"] == "l0, l1, l2"
    # never beyond 30 s
    long = [Aligned(k, "x", 10.5 * k, 10.5 * k + 10, 1.0, "x", "x", 1.0, k) for k in range(3)]
    assert [(iv.start, iv.end) for iv, _ in corpus_segments(long, "joined")] == [
        (0.0, 20.5),
        (21.0, 31.0),
    ]


def test_a_line_sung_twice_in_a_block_begins_at_its_first_singing():
    # heard on a dev song: rapidfuzz's partial_ratio_alignment put the second line's start at
    # its repeat (the last of two equal matches), 5 s late
    printed = ["La tierra que pisa el pobre", "Está más dura que el hierro"]
    text = (
        "La piedra que risa el poble, Ayyy, esta más dura que el viero, esta más dura que el viero,"
    )
    got = align_lines([(51.0, 65.0, text)], printed)
    norm = normalize_flamenco(text, keep_accents=False)
    assert norm.index("esta mas") < norm.rindex("esta mas")
    assert got[1].start == pytest.approx(51.0 + 14.0 * norm.index("esta mas") / len(norm))


def test_a_block_is_cut_in_the_voice_detectors_pause_nearest_each_cut():
    printed = ["La tierra que pisa el pobre", "está más dura que el hierro", "y el rico camina"]
    text = "La tierra que pisa el pobre, está más dura que el hierro, y el rico camina"
    norm = normalize_flamenco(text, keep_accents=False)
    cut1 = 10.0 + 20.0 * norm.index("esta") / len(norm)  # where the characters cut: ~17.3 s
    cut2 = 10.0 + 20.0 * norm.index("y el") / len(norm)  # ~25.6 s
    # pauses: one 1 s after the first cut, one 6 s before the second (too far: the characters
    # keep it), one outside the region
    pauses = [(cut1 + 0.8, cut1 + 1.2), (cut2 - 6.2, cut2 - 5.8), (31.0, 32.0)]
    got = align_lines([(10.0, 30.0, text)], printed, pauses=pauses)
    assert [a.line for a in got] == [0, 1, 2]
    assert got[0].end == pytest.approx(cut1 + 0.8) and got[1].start == pytest.approx(cut1 + 1.2)
    assert got[1].end == pytest.approx(cut2) and got[2].start == pytest.approx(cut2)
    assert got[0].start == 10.0 and got[2].end == 30.0
    # two pauses near the same cut: the nearer one; each pause serves one cut
    near = [(cut1 - 1.6, cut1 - 1.4), (cut1 + 0.3, cut1 + 0.5), (cut2 + 0.1, cut2 + 0.3)]
    got = align_lines([(10.0, 30.0, text)], printed, pauses=near)
    assert got[1].start == pytest.approx(cut1 + 0.5) and got[2].start == pytest.approx(cut2 + 0.3)
    # without pauses, the characters' cuts (as before)
    got = align_lines([(10.0, 30.0, text)], printed)
    assert got[1].start == pytest.approx(cut1) and got[0].end == pytest.approx(cut1)


def test_a_line_sung_again_after_a_pause_in_one_region_is_two_occurrences():
    # heard on a dev song: the line sung twice in one breath, a 0.4 s pause, then again after a
    # cry; the transcription joined it all into one region, and the second singing (its own sung
    # line) was not found
    printed = ["A la sombra de un ciprés", "Me senté a esperar la muerte"]
    text = "Ay, A la sobra de un cilés, A la sobra de un cilés, Ayyy, A la sobra de un cilés"
    heard = [(5.54, 20.99, text), (22.2, 30.0, "Me senté a esperar la muerte")]
    got = align_lines(heard, printed, pauses=[(15.12, 15.56), (20.99, 22.2)])
    assert [(a.line, a.start, a.end) for a in got] == [
        (0, 5.54, 15.12),
        (0, 15.56, 20.99),
        (1, 22.2, 30.0),
    ]
    assert got[0].sung == "Ay, A la sombra de un ciprés, A la sombra de un ciprés"
    assert got[1].sung == "Ayyy, A la sombra de un ciprés"
    assert got[1].heard == "Ayyy, A la sobra de un cilés" and got[1].confidence > 0.8
    # no pause between the singings: one occurrence, sung three times
    (one, _) = align_lines(heard, printed)
    assert (one.start, one.end) == (5.54, 20.99) and one.sung.count("ciprés") == 3


def test_the_pause_after_a_cry_that_opens_a_line_does_not_split_its_repeat():
    # heard on a dev song: two regions of cries open a line sung twice in one breath; the pauses
    # between the cries and the words are not between two singings
    printed = ["A cuatrocientos metros"]
    heard = [
        (118.32, 123.81, "Ayyy,"),
        (124.6, 125.96, "Ay,"),
        (126.46, 132.4, "barco a loscientos metros, barco a loscientos metros,"),
    ]
    pauses = [(123.81, 124.6), (125.96, 126.46)]
    (got,) = align_lines(heard, printed, pauses=pauses)
    assert (got.start, got.end) == (118.32, 132.4)
    assert got.sung == "Ayyy, ay, A cuatrocientos metros, A cuatrocientos metros"


def test_align_lyrics_cuts_at_the_detectors_pauses_and_dates_onsets_by_its_shorter_pieces(
    monkeypatch,
):
    import flamenco_lib.recording as recording
    import flamenco_lib.voice as voice
    from flamenco_lib.align import ONSET_PIECES, align_lyrics
    from flamenco_lib.recording import Line

    calls = []
    regions = [(1.0, 4.0), (4.3, 8.0)]  # two lines 0.3 s apart: one transcribed region
    onsets = [(0.2, 3.2), (3.5, 8.0)]  # the fresher detector hears the first line's quejío

    def detector(audio, threshold, **pieces):
        calls.append((threshold, pieces))
        return onsets if pieces else regions

    def transcribe(model, processor, audio, *, regions, **kw):
        assert regions == [(1.0, 4.0), (4.3, 8.0)]  # the decoding detector's regions
        return [Line(1.0, 8.0, "va mi niña, con su pena")]

    monkeypatch.setattr(voice, "voice_regions", detector)
    monkeypatch.setattr(recording, "transcribe_recording", transcribe)
    got, missing = align_lyrics(None, None, np.zeros(16000 * 9), ["va mi niña", "con su pena"])
    chunk_s, hop_s = ONSET_PIECES
    assert calls == [
        (voice.VAD_THRESHOLD, {}),
        (voice.VAD_THRESHOLD, {"chunk_s": chunk_s, "hop_s": hop_s}),
    ]
    assert missing == []
    # the first line begins where the fresher detector hears it; the second after the pause
    # (4.0-4.3 s): an onsets region that begins before the line before ends is voice running on
    assert [(a.line, a.start, a.end) for a in got] == [(0, 0.2, 4.0), (1, 4.3, 8.0)]
    calls.clear()  # without the onsets: one detector, the starts of the regions decoded
    got, _ = align_lyrics(
        None, None, np.zeros(16000 * 9), ["va mi niña", "con su pena"], onset_pieces=None
    )
    assert calls == [(voice.VAD_THRESHOLD, {})]
    assert [(a.line, a.start, a.end) for a in got] == [(0, 1.0, 4.0), (1, 4.3, 8.0)]


def test_onsets_move_a_start_earlier_only_within_their_reach():
    from flamenco_lib.align import ONSET_BACK_S

    heard = [(10.0, 14.0, "va mi niña"), (15.0, 18.0, "con su pena")]
    printed = ["va mi niña", "con su pena"]
    plain = align_lines(heard, printed)
    assert [a.start for a in plain] == [10.0, 15.0]
    near = [(10.0 - ONSET_BACK_S + 0.1, 12.0), (14.5, 16.0)]
    assert [a.start for a in align_lines(heard, printed, onsets=near)] == [8.1, 14.5]
    far = [(10.0 - ONSET_BACK_S - 0.1, 12.0)]  # farther back than the reach: left alone
    assert [a.start for a in align_lines(heard, printed, onsets=far)] == [10.0, 15.0]
    runs_on = [(13.0, 16.0)]  # voice from inside the line before: no onset for the second
    assert [a.start for a in align_lines(heard, printed, onsets=runs_on)] == [10.0, 15.0]
    after = [(10.5, 12.0)]  # a region that begins after the start never moves it later
    assert [a.start for a in align_lines(heard, printed, onsets=after)] == [10.0, 15.0]


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
        main(
            ["data", "align", str(rec), str(lyrics), "--out", str(out), "--model", str(path)]
            + ["--segments", "lines"]
        )
        == 0
    )
    assert "soleá.txt:3: not found" in capsys.readouterr().err
    man = out / "manifest.jsonl"
    assert validate_manifest(man) == []
    rows = [json.loads(x) for x in man.read_text(encoding="utf-8").splitlines()]
    assert [r["text"] for r in rows] == texts and [r["lyric_line"] for r in rows] == [1, 2, 4]
    starts = np.array([r["start"] for r in rows])
    assert np.abs(starts - np.array([s for s, _ in spans])).max() < 0.5
    assert all(r["confidence"] >= 0.5 for r in rows)
