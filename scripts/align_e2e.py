"""The price of alignment: stage 1 trained on lines aligned by ``data align`` against stage 1
trained on the generator's true line times (README, "Your own recordings with their lyrics").

1. 40 synthetic songs (``build_song_corpus(n=40, seed=0)``: the cante corpus's split of each
   copla, so no test lyric is trained on; 10 train, 10 dev, 20 test songs), in
   ``data/e2e/songs``. The generator knows every sung line's times and words.
2. The train songs' **printed** lyrics (a line sung twice printed once, no quejíos) aligned to
   their audio with ``--model`` (:func:`flamenco_lib.data.aligned.align_to_corpus`, what ``data
   align`` runs; no true time or sung text used) into ``data/e2e/aligned[-joined|-regions]``; the
   labels' quality against the true lines (WER of each segment's label against the true lines it
   covers, start errors).
3. The alignment bar of the issue, on the **test** songs: :func:`flamenco_lib.song_eval.
   evaluate_alignment` with ``--model`` (median start error, share within 0.5 s).
4. Stage 1 (``configs/stage1.yaml``, cpu profile: 90 steps) trained on each corpus alone (the
   true lines of the train songs; with ``--segments joined`` also the true lines joined by the
   same rule, :func:`joined_true`; the aligned corpus), then each scored on the first 100 clips
   of the cante test set and 100 sung lines of the test songs (greedy; 95% intervals), and the
   difference aligned - true on the same clips (paired 95% interval).

``--segments`` writes the aligned corpus as ``data align --segments`` does (default ``joined``,
as ``data align``); each way has its own corpus, model and rows (``aligned-joined``...).
``--split dev`` scores on the cante dev set and the dev songs' lines instead: the way of writing
is chosen there, then the test measured once. Step 3 (8 minutes) runs with ``--alignment-bar``.

Usage (after ``make report`` or ``make stages`` and stage 3; paths relative to the project):
    .venv/bin/python scripts/align_e2e.py [--model data/checkpoints/stage3/final]
        [--split dev] [--segments lines|regions|joined] [--without-onsets] [--alignment-bar]
About 10 minutes a stage-1 run on 2 cores with AVX512-BF16; reruns keep what is done.
"""

from __future__ import annotations

import argparse
import json

import jiwer
import numpy as np

from flamenco_lib.align import Aligned
from flamenco_lib.analysis import paired_table
from flamenco_lib.data.aligned import SEGMENTS, align_to_corpus, corpus_segments
from flamenco_lib.data.manifest import read_manifest, write_manifest
from flamenco_lib.data.songs import build_song_corpus
from flamenco_lib.grid import config_file
from flamenco_lib.models import load_whisper
from flamenco_lib.paths import data_dir
from flamenco_lib.pipeline import run_stage
from flamenco_lib.results import evaluate_stages, results_table, to_markdown
from flamenco_lib.song_eval import evaluate_alignment, printed_lines
from flamenco_lib.text import normalize


def label_quality(aligned: list[dict], true: list[dict]) -> dict:
    """Each aligned segment's label against the true sung lines whose middle falls inside it
    (none: every word of the label is an insertion); start error of each against the first."""
    errors = ref_words = 0
    starts = []
    for a in aligned:
        inside = [
            t
            for t in true
            if t["audio"].endswith(a["recording"])
            and a["start"] <= (t["start"] + t["end"]) / 2 <= a["end"]
        ]
        hyp = normalize(a["text"])
        ref = normalize(" ".join(t["text"] for t in inside))
        if not ref:
            errors += len(hyp.split())
            continue
        out = jiwer.process_words(ref, hyp or "-")
        errors += out.substitutions + out.deletions + out.insertions
        ref_words += len(ref.split())
        starts.append(abs(a["start"] - inside[0]["start"]))
    # the same words song by song: every label in time order against every sung line (a line
    # sung twice and aligned as two segments, each labelled once, costs nothing here)
    songs = sorted({t["audio"] for t in true})
    true, aligned = (sorted(rows, key=lambda r: r["start"]) for rows in (true, aligned))
    refs = [" ".join(normalize(t["text"]) for t in true if t["audio"] == s) for s in songs]
    hyps = [
        " ".join(normalize(a["text"]) for a in aligned if s.endswith(a["recording"])) or "-"
        for s in songs
    ]
    return {
        "segments": len(aligned),
        "true_lines": len(true),
        "label_wer": 100 * errors / max(ref_words, 1),
        "song_label_wer": 100 * jiwer.wer(refs, hyps),
        "median_start_error_s": float(np.median(starts)) if starts else float("nan"),
        "within_0_5_s": float(np.mean([s <= 0.5 for s in starts])) if starts else float("nan"),
    }


def joined_true(songs_man, how: str):
    """The generator's true train lines written as ``data align --segments how`` writes aligned
    ones (each true line its own region), so that the two corpora differ only in times and
    labels: ``<songs>/manifest-<how>.jsonl``."""
    rows = [r for r in read_manifest(songs_man) if r["split"] == "train"]
    out = []
    for audio in sorted({r["audio"] for r in rows}):
        song = sorted((r for r in rows if r["audio"] == audio), key=lambda r: r["start"])
        lines = [
            Aligned(k, r["text_canonical"], r["start"], r["end"], 1.0, r["text"], r["text"], 1.0, k)
            for k, r in enumerate(song)
        ]
        previous = None
        for interval, fields in corpus_segments(lines, how):
            first = song[fields["lyric_line"] - 1]
            out.append(
                {
                    **first,
                    "id": f"{first['id']}-{how}",
                    "start": interval.start,
                    "end": interval.end,
                    "text": interval.text,
                    "text_canonical": fields["text_canonical"],
                    "previous_text": previous,
                }
            )
            previous = interval.text
    return write_manifest(out, songs_man.parent / f"manifest-{how}.jsonl")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="data/checkpoints/stage3/final", help="the aligner")
    ap.add_argument("--items", type=int, default=100, help="test clips (and lines) scored")
    ap.add_argument("--split", choices=("dev", "test"), default="test", help="the sets scored")
    ap.add_argument("--segments", choices=SEGMENTS, default="joined", help="as data align")
    ap.add_argument("--without-onsets", action="store_true", help="starts not dated again")
    ap.add_argument("--alignment-bar", action="store_true", help="step 3 on the test songs")
    args = ap.parse_args()
    variant = "".join(
        [
            f"-{args.segments}" if args.segments != "lines" else "",
            "-no-onsets" * args.without_onsets,
        ]
    )
    name = f"aligned{variant}"
    root = data_dir() / "e2e"
    songs_man = build_song_corpus(root / "songs", n=40, seed=0)
    songs = [json.loads(x) for x in (root / "songs" / "songs.jsonl").read_text().splitlines()]

    lyrics = root / "lyrics"
    lyrics.mkdir(parents=True, exist_ok=True)
    pairs = []
    for s in (s for s in songs if s["split"] == "train"):
        (lyrics / f"{s['song']}.txt").write_text("\n".join(printed_lines(s)) + "\n")
        pairs.append((root / "songs" / s["audio"], lyrics / f"{s['song']}.txt"))
    man = root / name / "manifest.jsonl"
    if not man.exists():
        options = {"onset_pieces": None} if args.without_onsets else {}
        man, problems = align_to_corpus(
            pairs, out=root / name, model=args.model, segments=args.segments, **options
        )
        print("\n".join(problems))
    aligned = read_manifest(man)
    for r in aligned:
        r["split"] = "train"  # every aligned song is a train song (corpus_rows hashes a split)
    write_manifest(aligned, man)
    true = [r for r in read_manifest(songs_man) if r["split"] == "train"]
    print("labels:", json.dumps(label_quality(aligned, true)))

    bar = root / "alignment-test.json"
    if args.alignment_bar and not bar.exists():
        result = evaluate_alignment(*load_whisper(args.model), root / "songs", split="test")
        bar.write_text(json.dumps(result, ensure_ascii=False))
    if bar.exists():
        result = json.loads(bar.read_text())
        print("test songs:", {k: v for k, v in result.items() if k != "per_song"})

    corpora = [("true times", songs_man)]
    if args.segments == "joined":  # the true lines joined by the same rule
        corpora.append(("true times-joined", joined_true(songs_man, "joined")))
    rows = []
    for model, manifest in (*corpora, (name, man)):
        out = f"data/checkpoints/e2e/{model.replace(' ', '-')}"
        train = [{"manifest": str(manifest), "split": "train", "weight": 1.0}]
        run_stage(
            config_file("stage1"),
            profile="cpu",
            overrides={"train": train, "eval": None, "output_dir": out},
        )
        rows.append((model, out.removeprefix("data/")))
    sets = (
        ("cante", "corpora/cante/manifest.jsonl", args.split),
        ("song_lines", "e2e/songs/manifest.jsonl", args.split),
    )
    results = root / ("results" if args.split == "test" else f"results-{args.split}")
    evaluate_stages(rows, sets, max_items=args.items, root=results)
    table = results_table(rows, sets, root=results)
    cols = ["model"] + [f"{k}_{s}" for k, *_ in sets for s in ("wer", "wer_lo", "wer_hi")]
    print(to_markdown(table[[c for c in cols if c in table]].round(1)))
    # the price of alignment on the same clips: aligned - true times, paired 95% interval
    pairs = [(truth, name, key) for truth, _ in corpora for key, *_ in sets]
    print(to_markdown(paired_table(pairs, root=results).round(1)))


if __name__ == "__main__":
    main()
