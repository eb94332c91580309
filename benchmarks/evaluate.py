"""Benchmark: evaluation throughput of this project's decoding against its peers, on the CPU.

The same test clips (by default 32 synthetic cante clips and 32 clips of the held-out speakers'
real speech, the first of each test split), the same model, greedy decoding, no timestamps:

- ``project (to budget)``: :func:`flamenco_lib.transcription.transcribe` without early stopping,
  every clip of a batch decoded to the batch's token budget (the evaluation before loop stopping);
- ``project``: the same with :class:`flamenco_lib.transcription.LoopStop` (a looping clip stops,
  each clip at its own budget) and batches of similar durations (what ``evaluate`` does now);
- ``project bf16``: ``project`` under bf16 autocast (fast only where the CPU has native bf16);
- ``project, shared prefix`` (and ``bf16``): ``project`` with the encoder's conv stem and first two
  layers read from :mod:`flamenco_lib.prefix_cache`, filled beforehand (untimed) as the first model
  of a report fills it for the others: the cost of each later model's evaluation;
- ``transformers pipeline``: ``pipeline("automatic-speech-recognition")`` with its defaults
  (language and task set, one clip at a time);
- ``faster-whisper fp32`` / ``int8``: faster-whisper on this model converted with
  ``python -m flamenco_lib models export-ct2`` (``compute_type``), one clip at a time (its
  ``transcribe``), beam 1, temperature 0, no VAD, with the project's token budget per clip and
  repetition guard (without them a looping clip runs to 448 tokens and its WER is not comparable).

Each variant runs in its own process (so its peak memory is its own) and prints audio seconds per
wall second (decoding only: loading and one warm-up clip excluded), the speed relative to
``project (to budget)`` and to ``faster-whisper int8``, the peak resident memory and the WER of its
transcripts (the project's normaliser; accents folded where the references have none). Decodings
that are the same algorithm should agree in WER within noise.

Run: ``.venv/bin/python benchmarks/evaluate.py [--model base|data/checkpoints/stage1/final]
[--clips 32] [--variants ...] [--batch-sizes 8 16 ...]`` (``--batch-sizes``: the project's
variants once per size, a row each). faster-whisper is an optional extra: ``pip install
'.[bench]'`` (its rows are skipped with a message without it).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = (
    "project (to budget)",
    "project",
    "project bf16",
    "project, shared prefix",
    "project bf16, shared prefix",
    "transformers pipeline",
    "faster-whisper fp32",
    "faster-whisper int8",
)
SETS = ("cante", "real_speech")


def clips(n: int, sets=SETS) -> tuple[list[np.ndarray], list[str]]:
    """The first ``n`` test clips of each test set of ``sets`` (:data:`flamenco_lib.grid.TEST_SETS`)."""
    from flamenco_lib.data.corpus import load_corpus
    from flamenco_lib.grid import TEST_SETS
    from flamenco_lib.paths import data_dir

    audios, refs = [], []
    for key, manifest, split in TEST_SETS:
        if key not in sets:
            continue
        path = data_dir() / manifest
        if not path.exists():
            sys.exit(f"{path} is not built: run `make corpora` first")
        ds = load_corpus(path, splits=(split,))[split]
        ds = ds.select(range(min(n, len(ds))))
        audios += [np.asarray(r["audio"]["array"], dtype=np.float32) for r in ds]
        refs += list(ds.with_format(None)["text"])
    return audios, refs


def ct2_folder(model: str, compute_type: str) -> Path:
    """The model converted for CTranslate2 (once; kept under ``data/cache/bench-ct2``)."""
    from flamenco_lib.models import export_ct2, resolve
    from flamenco_lib.paths import data_dir

    src = Path(resolve(model))
    out = data_dir() / "cache" / "bench-ct2" / f"{src.parent.name}-{src.name}-fp32"
    if not (out / "model.bin").exists():
        export_ct2(src, out, quantization=None)  # int8 is chosen at load time (compute_type)
    return out


def decoder(variant: str, model: str, batch_size: int | None = None):
    """A function from a list of waveforms to their transcripts (the project's variants decode
    ``batch_size`` clips per ``generate``; None: the evaluation's default)."""
    import torch

    threads = os.cpu_count() or 1
    if variant.startswith("faster-whisper"):
        from faster_whisper import WhisperModel

        fw = WhisperModel(
            str(ct2_folder(model, "")),
            device="cpu",
            compute_type=variant.split()[-1].replace("fp32", "float32"),
            cpu_threads=threads,
        )

        from flamenco_lib.transcription import token_budget, trim_repetition

        def run(audios):
            out = []
            for a in audios:
                segments, _ = fw.transcribe(
                    a,
                    language="es",
                    beam_size=1,
                    temperature=0.0,
                    without_timestamps=True,
                    condition_on_previous_text=False,
                    vad_filter=False,
                    max_new_tokens=token_budget(len(a)),  # the project's budget per clip
                )
                # and its repetition guard: the same decoding rules, another engine
                out.append(trim_repetition(" ".join(s.text.strip() for s in segments)))
            return out

        return run
    from flamenco_lib.models import load_whisper

    torch.set_num_threads(threads)
    m, processor = load_whisper(model, device="cpu", dtype=torch.float32)
    if variant == "transformers pipeline":
        from transformers import pipeline

        asr = pipeline(
            "automatic-speech-recognition",
            model=m,
            tokenizer=processor.tokenizer,
            feature_extractor=processor.feature_extractor,
            device="cpu",
        )

        def run(audios):
            kw = {"language": "es", "task": "transcribe"}
            return [
                asr({"raw": a, "sampling_rate": 16000}, generate_kwargs=kw)["text"].strip()
                for a in audios
            ]

        return run
    from flamenco_lib.evaluation import DEFAULT_BATCH_SIZE
    from flamenco_lib.transcription import transcribe

    batch_size = batch_size or DEFAULT_BATCH_SIZE

    early = variant != "project (to budget)"
    bf16 = variant.startswith("project bf16")

    def run(audios):
        return transcribe(m, processor, audios, batch_size=batch_size, early_stop=early, bf16=bf16)

    if not variant.endswith("shared prefix"):
        return run
    import tempfile

    from flamenco_lib.prefix_cache import shared_prefix

    folder = tempfile.mkdtemp(prefix="bench-prefix-")

    def shared(audios):
        with shared_prefix(m, 2, folder):
            return run(audios)

    def fill(audios):  # the first model of a report: computes and writes every clip's prefix
        with shared_prefix(m, 2, folder), torch.inference_mode():
            for b in range(0, len(audios), batch_size):
                x = processor.feature_extractor(
                    audios[b : b + batch_size], sampling_rate=16000, return_tensors="pt"
                ).input_features
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    m.model.encoder(x)

    shared.prepare = fill
    return shared


def one(variant: str, model: str, n: int, batch_size: int | None = None) -> dict:
    """Run one variant in this process: throughput, peak memory, WER."""
    from flamenco_lib import metrics

    audios, refs = clips(n)
    run = decoder(variant, model, batch_size)
    if hasattr(run, "prepare"):
        run.prepare(audios)  # not timed
    run(audios[:1])  # warm-up (threads, caches), not timed
    t0 = time.perf_counter()
    hyps = run(audios)
    wall = time.perf_counter() - t0
    seconds = sum(len(a) for a in audios) / 16000
    return {
        "variant": variant + (f", batch {batch_size}" if batch_size else ""),
        "clips": len(audios),
        "audio_s": seconds,
        "wall_s": wall,
        "speed": seconds / wall,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "wer": 100 * metrics.wer(refs, hyps),
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", default="base", help="'base' or a checkpoint folder")
    ap.add_argument("--clips", type=int, default=32, help="clips per test set")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    ap.add_argument(
        "--batch-sizes",
        nargs="+",
        type=int,
        default=[0],
        help="clips per generate for the project's variants, each size a row (0: the default, 8)",
    )
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one variant, print JSON
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.model, args.clips, args.batch_sizes[0] or None)))
        return
    print(f"model {args.model}, {args.clips} clips of each of {', '.join(SETS)}, greedy")
    rows = []
    runs = [
        (v, b)
        for v in args.variants
        for b in (args.batch_sizes if v.startswith("project") else [0])
    ]
    for v, b in runs:
        if v.startswith("faster-whisper"):
            try:
                import faster_whisper  # noqa: F401
            except ImportError:
                print(f"{v}: skipped (pip install '.[bench]' for faster-whisper)")
                continue
        cmd = [sys.executable, __file__, "--one", v, "--model", args.model]
        cmd += ["--clips", str(args.clips), "--batch-sizes", str(b)]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if proc.returncode:
            print(f"{v}: failed\n{proc.stderr[-2000:]}")
            continue
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        r = rows[-1]
        print(
            f"  {r['variant']}: {r['speed']:.2f} audio s / wall s, WER {r['wer']:.1f}", flush=True
        )
    ref = {r["variant"]: r["speed"] for r in rows}
    print(
        "\n| variant | audio s / wall s | x to budget | x faster-whisper int8 | peak MB | WER % |"
        "\n|---|---|---|---|---|---|"
    )
    for r in rows:
        vs = [
            f"{r['speed'] / ref[k]:.2f}" if k in ref else "-"
            for k in ("project (to budget)", "faster-whisper int8")
        ]
        print(
            f"| {r['variant']} | {r['speed']:.2f} | {vs[0]} | {vs[1]} | {r['peak_mb']:.0f} "
            f"| {r['wer']:.1f} |"
        )


if __name__ == "__main__":
    main()
