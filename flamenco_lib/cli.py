"""``python -m flamenco_lib <command>``: every job of the project without a notebook."""

from __future__ import annotations

import argparse
import sys

from .audio import AudioError


def _figures(args) -> int:
    from .report import feature_figures

    for path in feature_figures(args.audio, outdir=args.out):
        print(path)
    return 0


def _report(args) -> int:
    from .report import build

    profile = args.profile
    if profile == "auto":
        import torch

        profile = "gpu" if torch.cuda.is_available() else "cpu"
    build(profile=profile)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m flamenco_lib", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("figures", help="log-Mel / cepstrum figures of one recording")
    p.add_argument("--audio", help="audio file (default: a real Spanish prompt from the asterisk corpus)")
    p.add_argument("--out", help="output folder (default: report/figures)")
    p.set_defaults(func=_figures)

    p = sub.add_parser("report", help="regenerate the report's figures and tables")
    p.add_argument("--profile", default="auto", choices=["auto", "smoke", "cpu", "gpu"])
    p.set_defaults(func=_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (AudioError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; files already written are kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
