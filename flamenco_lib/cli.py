"""``python -m flamenco_lib <command>``: every job of the project without a notebook."""

from __future__ import annotations

import argparse
import sys

from .cli_data import add_data_parser
from .errors import FlamencoError
from .log import show_messages


def _figures(args) -> int:
    from .report import feature_figures

    for path in feature_figures(args.audio, outdir=args.out):
        print(path)
    return 0


def _report(args) -> int:
    from .paths import default_profile
    from .report import NotebookFailed, build

    # default_profile() raises on a bad FLAMENCO_PROFILE: main() reports it
    profile = default_profile() if args.profile == "auto" else args.profile
    try:
        chosen = {"spoken_control": args.spoken_control, "soft_prompt": args.soft_prompt}
        build(profile=profile, parameters={k: True for k, v in chosen.items() if v} or None)
    except NotebookFailed as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def _models(args) -> int:
    from . import models

    if args.models_command == "install":
        if args.name != "base":
            print(models.resolve(args.name))
        else:
            print(models.build_offline_base(force=args.force))
    elif args.models_command == "list":
        base = models.offline_base_dir()
        state = (
            "built"
            if (base / "conversion.json").exists()
            else "not built (python -m flamenco_lib models install base)"
        )
        print(f"base\t{base}\t{state}")
        for m in models.list_models():
            if m["path"] != str(base):
                print(f"{m['name']}\t{m['path']}\tlocal checkpoint")
        print(
            f"hub\t{'reachable' if models.hub_reachable() else 'unreachable'}\topenai/whisper-<size> loads from the hub when reachable"
        )
    elif args.models_command == "export-ct2":
        print(models.export_ct2(args.checkpoint, args.out, quantization=args.quantization))
    return 0


def _transcribe(args) -> int:
    """Clips: ``<file>\t<transcript>`` lines. Recordings (``--format``): timed lines written to
    ``<out>/<stem>.<format>``. Either way a bad file is reported and skipped, the others are
    transcribed, and the exit code is 1 when any file failed."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    if args.format:
        from .recording import transcribe_files

        failed = transcribe_files(
            args.audio,
            fmt=args.format,
            out=args.out,
            model=args.model,
            method=args.method,
            language=args.language,
            batch_size=args.batch_size,
            force=args.force,
            **({} if args.vad_threshold is None else {"vad_threshold": args.vad_threshold}),
        )
    else:
        from .audio import read_each
        from .models import load_whisper
        from .transcription import transcribe

        audios, failed = read_each(args.audio)  # a bad file is named before the model loads
        if audios:
            model, processor = load_whisper(args.model)
            texts = transcribe(
                model,
                processor,
                list(audios.values()),
                language=args.language,
                prompts=[args.prompt] * len(audios) if args.prompt else None,
                batch_size=args.batch_size,
                num_beams=args.beams,
            )
            for path, text in zip(audios, texts):
                print(f"{path}\t{text}", flush=True)
    for message in failed.values():
        print(f"error: {message} (skipped)", file=sys.stderr)
    return 1 if failed else 0


def _evaluate(args) -> int:
    from transformers.utils import logging as hf_logging

    from .evaluation import evaluate_manifest
    from .results import decode_in_bf16

    hf_logging.set_verbosity_error()
    m = evaluate_manifest(
        args.model,
        args.manifest,
        split=args.split,
        out=args.out,
        max_items=args.max_items,
        batch_size=args.batch_size,
        num_beams=args.beams,
        max_new_tokens=args.max_new_tokens,
        prompt_kinds=args.prompt_kinds.split(",") if args.prompt_kinds else None,
        catalogue=args.catalogue,
        catalogue_method=args.catalogue_method,
        leave_out_evaluated=args.leave_out_evaluated,
        previous=args.previous,
        mismatched=args.mismatched,
        bf16=decode_in_bf16(args.precision),
    )
    lo, hi = m["wer_ci"]
    print(
        f"{args.model} on {args.manifest} [{args.split}]: n={m['n_utterances']} "
        f"WER {100 * m['wer']:.1f}% (95% CI {100 * lo:.1f}-{100 * hi:.1f}), CER {100 * m['cer']:.1f}%, "
        f"WER vs written lyric {100 * m['canonical']['wer']:.1f}%"
    )
    if m.get("catalogue", {}).get("n"):
        c = m["catalogue"]
        print(
            f"catalogue ({c['method']}, {c['coplas']} coplas): the sung copla found first for "
            f"{100 * c['top1']:.0f}% of {c['n']} clips, among the first {c['k']} for {100 * c['topk']:.0f}%"
        )
    return 0


def _train(args) -> int:
    from .paths import default_profile
    from .pipeline import save_fingerprint
    from .training import load_config, train_stage

    profile = args.profile or default_profile()
    cfg = load_config(args.config, profile=profile)
    save_fingerprint(cfg)  # what run_stage (make report) compares to decide whether to train again
    summary = train_stage(cfg, resume=args.resume)
    if "final" in summary:
        wer = summary.get("eval_wer")
        print(
            f"{cfg.name}: {summary['steps']} steps in {summary['train_seconds']:.0f} s -> {summary['final']}"
            + (f"; eval WER {100 * wer:.1f}%" if wer is not None else "")
        )
    return 0


def _ablate(args) -> int:
    from transformers.utils import logging as hf_logging

    from .ablation import ABLATIONS, CHAIN_ABLATIONS, run_ablations, run_chain_ablations
    from .errors import FlamencoError
    from .paths import default_profile
    from .results import to_markdown

    if args.list:
        for name, change in (CHAIN_ABLATIONS if args.chain else ABLATIONS).items():
            print(f"{name}\t{change}")
        return 0
    hf_logging.set_verbosity_error()
    run = run_chain_ablations if args.chain else run_ablations
    try:
        table = run(args.names, profile=args.profile or default_profile())
    except (ValueError, FlamencoError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(to_markdown(table.round(1)))
    return 0


def _results(args) -> int:
    from transformers.utils import logging as hf_logging

    from .results import evaluate_stages, markdown, results_table

    hf_logging.set_verbosity_error()
    if args.evaluate:
        evaluate_stages(max_items=args.max_items, force=args.force)
    print(markdown(results_table()))
    from .analysis import paired_table
    from .results import to_markdown

    paired = paired_table()
    if not paired.empty:
        print(
            "\nPaired comparisons (WER points, model - baseline, paired 95% bootstrap interval):\n"
        )
        print(to_markdown(paired.round(1)))
    return 0


def _clean_cache(args) -> int:
    from .pipeline import clean_cache

    freed = clean_cache(dry_run=args.dry_run)
    for path, size in freed:
        print(f"{size / 1e6:8.0f} MB  {path}")
    total = sum(s for _, s in freed) / 1e9
    print(f"{'would free' if args.dry_run else 'freed'} {total:.1f} GB ({len(freed)} folders)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m flamenco_lib", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("figures", help="log-Mel / cepstrum figures of one recording")
    p.add_argument(
        "--audio", help="audio file (default: a real Spanish prompt from the asterisk corpus)"
    )
    p.add_argument("--out", help="output folder (default: report/figures)")
    p.set_defaults(func=_figures)

    p = sub.add_parser("models", help="install, list and export Whisper checkpoints")
    msub = p.add_subparsers(dest="models_command", required=True)
    q = msub.add_parser(
        "install",
        help="build the offline whisper-base checkpoint (or resolve another); prints its folder",
    )
    q.add_argument("name", nargs="?", default="base")
    q.add_argument("--force", action="store_true", help="rebuild even if present")
    msub.add_parser("list", help="checkpoints available here")
    q = msub.add_parser(
        "export-ct2",
        help="convert a Hugging Face Whisper checkpoint to CTranslate2 (faster-whisper)",
    )
    q.add_argument("checkpoint")
    q.add_argument("out")
    q.add_argument(
        "--quantization", default="float16", help="float16 (default), int8, int8_float16, float32"
    )
    p.set_defaults(func=_models)

    p = sub.add_parser(
        "transcribe",
        help="clips: print <file>\\t<transcript>; recordings of any length: --format srt|lrc|...",
    )
    p.add_argument("audio", nargs="+")
    p.add_argument(
        "--model", default="base", help="size, hub id or checkpoint folder (default: base)"
    )
    p.add_argument("--language", default="es")
    p.add_argument("--prompt", help="text prompt (previous-text slot; clips only)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--beams", type=int, default=1, help="1 = greedy (default; clips only)")
    p.add_argument(
        "--format",
        choices=["txt", "srt", "lrc", "json"],
        help="a whole recording as timed lines, written to <out>/<file stem>.<format>",
    )
    p.add_argument("--out", default=".", help="folder for --format files (default: here)")
    methods = "vad (default: where someone sings), fixed (30 s windows), longform (Whisper's)"
    p.add_argument("--method", choices=["vad", "fixed", "longform"], default="vad", help=methods)
    p.add_argument(
        "--vad-threshold",
        type=float,
        help="voice probability above which --method vad hears a voice (default: "
        "recording.VAD_THRESHOLD, chosen on the dev songs); lower it when sung lines are missing, "
        "at the price of words over the guitar",
    )
    p.add_argument("--force", action="store_true", help="redo files whose output exists")
    p.set_defaults(func=_transcribe)

    p = sub.add_parser(
        "evaluate", help="transcribe a manifest split; write predictions.jsonl and metrics.json"
    )
    p.add_argument(
        "--model", default="base", help="size, hub id or checkpoint folder (default: base)"
    )
    p.add_argument("--manifest", required=True)
    p.add_argument("--split", default="test")
    p.add_argument("--out", help="results folder (default: data/results/<model>-<corpus>-<split>)")
    p.add_argument("--max-items", type=int, help="only the first N utterances (smoke runs)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--beams", type=int, default=1, help="1 = greedy (default)")
    p.add_argument("--max-new-tokens", type=int, help="default: 8 per second of audio + 16")
    p.add_argument(
        "--prompt-kinds",
        help="prompt every utterance: comma-separated palo,previous,lexicon,catalogue (stage 3)",
    )
    p.add_argument(
        "--catalogue",
        help="lyrics file (TSV/JSONL as `data synth --lyrics`) searched by the catalogue prompt "
        "(default: data/lyrics/coplas.tsv)",
    )
    p.add_argument("--catalogue-method", default="fuzzy", choices=["fuzzy", "bm25"])
    p.add_argument(
        "--previous",
        default="true",
        choices=["true", "own"],
        help="the previous prompt: the manifest's previous_text, or the model's own transcript "
        "of the line before (each recording's lines decoded in order)",
    )
    p.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "bf16", "fp32"],
        help="auto: bf16 autocast where the CPU computes bf16 natively (as the report), else fp32",
    )
    p.add_argument(
        "--mismatched",
        action="store_true",
        help="the catalogue prompt's control: a random other copla instead of the one found",
    )
    p.add_argument(
        "--leave-out-evaluated",
        action="store_true",
        help="remove the evaluated utterances' coplas from the catalogue (new lyrics)",
    )
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("train", help="run one fine-tuning stage from its YAML config")
    p.add_argument("--config", required=True, help="e.g. configs/stage1.yaml")
    p.add_argument(
        "--profile",
        choices=["smoke", "cpu", "gpu"],
        help="apply the config's profile overrides (default: gpu with CUDA, else cpu)",
    )
    p.add_argument(
        "--resume", action="store_true", help="continue from the newest checkpoint in output_dir"
    )
    p.set_defaults(func=_train)

    p = sub.add_parser(
        "ablate", help="stage ablations: train each change, score it on the dev speakers"
    )
    p.add_argument("names", nargs="*", help="ablations to run (default all; --list names them)")
    p.add_argument("--list", action="store_true", help="print the ablations and their changes")
    p.add_argument(
        "--chain",
        action="store_true",
        help="changes to stages 2 and 3, trained from the project's stage 1 (make stage1 first)",
    )
    p.add_argument("--profile", choices=["smoke", "cpu", "gpu"], help="default: cpu without CUDA")
    p.set_defaults(func=_ablate)

    p = sub.add_parser(
        "results", help="the stage comparison table (zero-shot, stage 1, control, stage 2)"
    )
    p.add_argument(
        "--evaluate",
        action="store_true",
        help="first evaluate every trained model on every built test set",
    )
    p.add_argument(
        "--max-items", type=int, help="only the first N utterances of each test set (smoke runs)"
    )
    p.add_argument(
        "--force", action="store_true", help="re-evaluate even where results are up to date"
    )
    p.set_defaults(func=_results)

    add_data_parser(sub)

    p = sub.add_parser(
        "clean-cache",
        help="delete activation caches and the checkpoints of finished stages (no result is lost)",
    )
    p.add_argument("--dry-run", action="store_true", help="list what would be deleted")
    p.set_defaults(func=_clean_cache)

    p = sub.add_parser("report", help="regenerate the report's figures and tables")
    p.add_argument("--profile", default="auto", choices=["auto", "smoke", "cpu", "gpu"])
    p.add_argument(
        "--spoken-control",
        action="store_true",
        help="train and evaluate stage 1's spoken control in notebook 07 on every profile "
        "(the cpu profile leaves it out: 15 minutes on 2 cores)",
    )
    p.add_argument(
        "--soft-prompt",
        action="store_true",
        help="train and evaluate stage 3's soft prompt in notebook 09 on every profile "
        "(the cpu profile leaves it out: 5 minutes on 2 cores)",
    )
    p.set_defaults(func=_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    show_messages()  # the library's progress messages, one line each
    try:
        return args.func(args)
    except FlamencoError as err:  # the user's input or machine: one line, no traceback
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; files already written are kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
