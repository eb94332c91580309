"""Calibration of the real-voice sets: how much of their difficulty is the singing, how much the guitar.

The synthetic corpus was calibrated on the same clips spoken, sung a cappella and sung with guitar
(scripts/calibrate_synth.sh). This does the same for real voices, on the **dev** speakers of the
Drascula corpus (never the test speakers: a level chosen here shapes the test set), at several
voice-over-accompaniment levels, zero-shot whisper-base, greedy. The question: is the real-voice
test hard because of the singing, or because the guitar buries a poor 8-bit recording? The
guitar costs the synthetic voices +7 points over a cappella; a level at which it costs the real
voices far more would be unfair to them. Measured (README, "Real voices"): +9.5 to +11.5 points
at every level from 5-10 to 15-20 dB, within noise of each other, so the real voices are sung at
the synthetic corpus' level (``flamenco_lib.data.synth.SNR_DB_RANGE``).

Usage: .venv/bin/python scripts/calibrate_real_voices.py [--levels 5:10,10:15,15:20]
Writes data/calibration/real-voices/ (corpora and runs) and prints a markdown table.
About 15 minutes on 2 cores.
"""

from __future__ import annotations

import argparse

from flamenco_lib import results
from flamenco_lib.data.cante import build_synth_corpus
from flamenco_lib.data.manifest import read_manifest, write_manifest
from flamenco_lib.paths import data_dir


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--levels", default="5:10,10:15,15:20", help="SNR ranges in dB, lo:hi,...")
    ap.add_argument("--split", default="dev")
    args = ap.parse_args()
    root = data_dir() / "calibration" / "real-voices"
    source = data_dir() / "corpora" / "speech-drascula" / "manifest.jsonl"
    rows = [r for r in read_manifest(source) if r["split"] == args.split]
    for r in rows:
        r["audio"] = r["audio_path"]  # absolute: the subset lives in another folder
    spoken = write_manifest(rows, root / "spoken" / "manifest.jsonl")
    sets = [("spoken", spoken.relative_to(data_dir()).as_posix(), args.split)]
    variants = [("a cappella", "acapella", "a-capella", (5.0, 10.0))]
    for level in args.levels.split(","):
        lo, hi = (float(x) for x in level.split(":"))
        variants.append(
            (f"sung + guitar, {lo:g}-{hi:g} dB", f"sung-{lo:g}-{hi:g}", "sung", (lo, hi))
        )
    for _, folder, style, snr in variants:
        res = build_synth_corpus(
            root / folder, speech_manifest=spoken, style=style, snr_db_range=snr
        )
        sets.append((folder, res["manifest"].relative_to(data_dir()).as_posix(), args.split))
    stage = (("zero-shot", "base"),)
    runs = root / "results"
    results.evaluate_stages(stage, sets, root=runs)
    table = results.results_table(stage, sets, root=runs).iloc[0]
    names = ["spoken"] + [name for name, *_ in variants]
    print(f"Drascula {args.split} speakers, zero-shot whisper-base, greedy")
    print("| rendering | WER % [95% CI] | CER % | clips |\n|---|---|---|---|")
    for name, (key, *_) in zip(names, sets):
        print(
            f"| {name} | {table[key + '_wer']:.1f} [{table[key + '_wer_lo']:.1f}, "
            f"{table[key + '_wer_hi']:.1f}] | {table[key + '_cer']:.1f} | {table[key + '_n']} |"
        )


if __name__ == "__main__":
    main()
