"""Could Debian's Colombian Spanish prompts be one more real speaker? Their words, checked.

``asterisk-prompt-es-co`` (one female Colombian speaker, 285 GSM prompts, GPL-2) ships no
transcripts. Most of its files share a name with the es-MX prompts of
``asterisk-core-sounds-es``, whose transcripts the speech corpus uses (``flamenco_lib.data.speech``);
whether she reads the same words is what this script measures: zero-shot whisper-base on each
prompt, scored (CER, normalised text) against the es-MX transcript of the same name.

The package is not installed (apt would remove ``asterisk-core-sounds-es``, which provides the
same virtual package): ``apt-get download`` fetches the ``.deb`` into
``data/cache/asterisk-prompt-es-co/`` and ``dpkg-deb -x`` unpacks it there.

Measured (README, "Real voices"): 265 of 285 names shared, median CER 47%, 33 prompts (32 s)
within 10%: another wording, not a corpus.

Usage: .venv/bin/python scripts/es_co_prompts.py    (about 2 minutes on 2 cores)
"""

from __future__ import annotations

import statistics
import subprocess
from pathlib import Path

import jiwer

from flamenco_lib.audio import load_audio
from flamenco_lib.data import speech
from flamenco_lib.models import load_whisper
from flamenco_lib.paths import cache_dir
from flamenco_lib.text import normalize
from flamenco_lib.transcription import transcribe

PACKAGE = "asterisk-prompt-es-co"


def unpacked() -> Path:
    """The package's sounds folder, downloaded and unpacked once under the cache."""
    folder = cache_dir() / PACKAGE
    sounds = folder / "root" / "usr" / "share" / "asterisk" / "sounds" / "es"
    if not sounds.is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        have = any(folder.glob(f"{PACKAGE}_*.deb"))
        if not have and subprocess.run(["apt-get", "download", PACKAGE], cwd=folder).returncode:
            raise SystemExit(
                f"could not download {PACKAGE} with apt-get (a Debian machine with its mirror is "
                f"needed); or put its .deb in {folder} and run again"
            )
        deb = min(folder.glob(f"{PACKAGE}_*.deb"), default=None)
        if deb is None:
            raise SystemExit(f"{folder}: no {PACKAGE}_*.deb after apt-get download")
        subprocess.run(["dpkg-deb", "-x", str(deb), str(folder / "root")], check=True)
    return sounds


def main() -> None:
    sounds = unpacked()
    es_mx = speech.read_transcripts()
    names = [str(p.relative_to(sounds))[: -len(".gsm")] for p in sorted(sounds.rglob("*.gsm"))]
    shared = [n for n in names if n in es_mx and normalize(es_mx[n])]
    audio = [load_audio(sounds / f"{n}.gsm") for n in shared]
    model, processor = load_whisper("base")
    heard = transcribe(model, processor, audio, batch_size=16)
    cer = [jiwer.cer(normalize(es_mx[n]), normalize(h)) for n, h in zip(shared, heard)]
    minutes = sum(len(a) for a in audio) / 16000 / 60
    print(f"{len(names)} prompts, {len(shared)} named as an es-MX prompt ({minutes:.1f} min)")
    print(f"CER against the es-MX transcript: median {100 * statistics.median(cer):.0f}%")
    close = [i for i, c in enumerate(cer) if c <= 0.1]
    seconds = sum(len(audio[i]) for i in close) / 16000
    print(f"within 10% CER: {len(close)} prompts, {seconds:.0f} s")
    for i in sorted(range(len(shared)), key=cer.__getitem__)[:: max(1, len(shared) // 12)]:
        print(f"  {100 * cer[i]:5.1f}%  {shared[i]}: {es_mx[shared[i]]!r} | heard {heard[i]!r}")


if __name__ == "__main__":
    main()
