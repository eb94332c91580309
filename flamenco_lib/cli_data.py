"""``python -m flamenco_lib data ...``: build and check corpora (the command line's ``data``)."""

from __future__ import annotations

import sys

from .data.aligned import SEGMENTS
from .data.synth import FORMANT_RATIO, SNR_DB_RANGE


def _data(args) -> int:
    if args.data_command == "speech":
        from .data.corpus import build_speech_corpus

        print(build_speech_corpus(args.out, source=args.source, seed=args.seed))
        return 0
    if args.data_command == "validate":
        from .data.manifest import validate_manifest

        problems = validate_manifest(args.manifest, check_audio=not args.no_audio)
        for p in problems:
            print(p)
        if problems:
            print(f"{args.manifest}: {len(problems)} problem(s)", file=sys.stderr)
            return 2
        print(f"{args.manifest}: valid")
        return 0
    if args.data_command == "synth":
        from .data.cante import build_synth_corpus

        voices = args.voices.split(",") if args.voices else None
        res = build_synth_corpus(
            args.out,
            lyrics=args.lyrics,
            speech_manifest=args.speech,
            n=args.n,
            seed=args.seed,
            jobs=args.jobs,
            style=args.style,
            voices=voices,
            heldout=args.heldout_voice,
            snr_db_range=(args.snr_min, args.snr_max),
            formant_ratio=(args.formant_min, args.formant_max),
            splits=tuple(args.splits.split(",")) if args.splits else None,
        )
        print(
            f"{res['manifest']}: {res['clips']} clips ({res['rendered']} rendered, "
            f"{res['skipped']} already there, {len(res['failed'])} failed)"
        )
        for cid, msg in sorted(res["failed"].items()):
            print(f"  failed {cid}: {msg}", file=sys.stderr)
        return 0
    if args.data_command == "import":
        from .data.importers import import_annotations

        man, problems = import_annotations(
            args.annotations,
            audio_dir=args.audio_dir,
            out=args.out,
            tier=args.tier,
            palo=args.palo,
            singer=args.singer,
        )
        for p in problems:
            print(p, file=sys.stderr)
        if man is None:
            print("error: nothing imported", file=sys.stderr)
            return 2
        print(man)
        return 1 if problems else 0
    if args.data_command == "align":
        from .data.aligned import align_to_corpus

        man, problems = align_to_corpus(
            [(args.recording, args.lyrics)],
            out=args.out,
            model=args.model,
            palo=args.palo,
            singer=args.singer,
            segments=args.segments,
        )
        for p in problems:
            print(p, file=sys.stderr)
        if man is None:
            print("error: nothing aligned", file=sys.stderr)
            return 2
        print(man)
        return 0
    if args.data_command == "songs":
        from .data.songs import DEFAULT_REAL_SONGS, DEFAULT_SONGS, build_song_corpus

        voices = args.voices.split(",") if args.voices else None
        print(
            build_song_corpus(
                args.out,
                lyrics=args.lyrics,
                n=args.n or (DEFAULT_REAL_SONGS if args.speech else DEFAULT_SONGS),
                seed=args.seed,
                voices=voices,
                speech_manifest=args.speech,
            )
        )
        return 0
    raise AssertionError(args.data_command)


def add_data_parser(sub) -> None:
    """The ``data`` command and its subcommands, on the main parser's ``sub``."""
    p = sub.add_parser("data", help="build and check corpora")
    dsub = p.add_subparsers(dest="data_command", required=True)
    q = dsub.add_parser(
        "speech",
        help="real Spanish speech (Debian's asterisk prompts or Drascula voices) as FLAC + manifest",
    )
    q.add_argument("--out", required=True, help="output folder")
    q.add_argument(
        "--source",
        default="asterisk",
        choices=["asterisk", "drascula"],
        help="asterisk: one es-MX speaker (default); drascula: 10 characters, split by speaker",
    )
    q.add_argument("--seed", type=int, default=0, help="seed of the fixed train/dev/test split")
    q = dsub.add_parser(
        "synth", help="synthetic cante: lyrics (or recorded speech) sung, with guitar and palmas"
    )
    q.add_argument(
        "--out", required=True, help="output folder (a rerun resumes: finished clips are kept)"
    )
    src = q.add_mutually_exclusive_group()
    src.add_argument(
        "--lyrics",
        help="lyrics file, TSV or JSONL with palo and text (default: data/lyrics/coplas.tsv)",
    )
    src.add_argument(
        "--speech",
        metavar="MANIFEST",
        help="sing the recorded utterances of this manifest instead of TTS",
    )
    q.add_argument(
        "--n",
        type=int,
        help="number of clips (default 1200 from lyrics; every utterance from --speech)",
    )
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--jobs", type=int, help="worker processes (default: all cores)")
    q.add_argument(
        "--splits",
        help="comma-separated splits to render (default all), e.g. test: the same clips as in "
        "the whole corpus",
    )
    q.add_argument(
        "--style",
        default="sung",
        choices=["sung", "a-capella", "spoken"],
        help="sung + guitar/palmas (default), sung only, or spoken (the control)",
    )
    q.add_argument(
        "--voices", help="comma-separated espeak-ng voices (default: every Spanish voice)"
    )
    q.add_argument(
        "--heldout-voice",
        default="es-419",
        help="base voice kept for the test split (default es-419)",
    )
    q.add_argument(
        "--snr-min",
        type=float,
        default=SNR_DB_RANGE[0],
        help=f"dB, voice over accompaniment (default {SNR_DB_RANGE[0]:g})",
    )
    q.add_argument(
        "--snr-max", type=float, default=SNR_DB_RANGE[1], help=f"(default {SNR_DB_RANGE[1]:g})"
    )
    q.add_argument(
        "--formant-min",
        type=float,
        default=FORMANT_RATIO[0],
        help="lowest formant shift ratio of a sung clip's singer (vocal tract length; 1.0: the "
        f"voice's own; default {FORMANT_RATIO[0]:g})",
    )
    q.add_argument(
        "--formant-max",
        type=float,
        default=FORMANT_RATIO[1],
        help=f"(default {FORMANT_RATIO[1]:g})",
    )
    q = dsub.add_parser(
        "songs",
        help="synthetic whole songs: coplas sung between guitar falsetas, with every line's times",
    )
    q.add_argument("--out", required=True, help="output folder (a rerun keeps finished songs)")
    q.add_argument("--lyrics", help="lyrics file (default: data/lyrics/coplas.tsv)")
    q.add_argument("--n", type=int, help="number of songs (default: 24; 12 with --speech)")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument(
        "--voices", help="comma-separated espeak-ng voices (default: every Spanish voice)"
    )
    q.add_argument(
        "--speech",
        help="a speech manifest (data speech): sing its recordings instead of espeak-ng's voices, "
        "one speaker per song, keeping the speakers' splits",
    )
    q = dsub.add_parser(
        "import",
        help="timed annotations (TextGrid, ELAN, SRT, LRC, Audacity labels) as a corpus manifest",
    )
    q.add_argument(
        "annotations", nargs="+", help="annotation files (.TextGrid .eaf .srt .lrc .txt)"
    )
    q.add_argument(
        "--audio-dir", required=True, help="the recordings, named like their annotations"
    )
    q.add_argument("--out", required=True, help="corpus folder (manifest.jsonl, audio/ hard links)")
    q.add_argument(
        "--tier", help="TextGrid/ELAN tier with the lyrics (default: the only/lyric one)"
    )
    q.add_argument("--palo", help="palo of every segment (default: none)")
    q.add_argument("--singer", help="singer of every segment (default: the recording's name)")
    q = dsub.add_parser(
        "align", help="known lyrics (lines in order, no times) aligned to a recording: a corpus"
    )
    q.add_argument("recording")
    q.add_argument("lyrics", help="text file, one printed line per line")
    q.add_argument("--out", required=True, help="corpus folder (manifest.jsonl appended to)")
    q.add_argument("--model", default="base", help="Whisper that transcribes (default base)")
    q.add_argument("--palo")
    q.add_argument("--singer")
    q.add_argument(
        "--segments",
        choices=SEGMENTS,
        default="joined",
        help="what one segment holds: one sung line, the lines heard in one breath, or lines "
        "under 1.5 s apart, a copla (the default: the best stage 1 on the cante dev set)",
    )
    q = dsub.add_parser("validate", help="check a manifest; exit 2 and list every problem by line")
    q.add_argument("manifest")
    q.add_argument("--no-audio", action="store_true", help="skip decoding the audio files")
    p.set_defaults(func=_data)
