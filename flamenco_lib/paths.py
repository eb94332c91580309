"""Where things live: the project root and its build-output folders.

Every folder can be moved with an environment variable (Colab points them at Drive):

===================  =========================  ===============================
variable             default                    holds
===================  =========================  ===============================
``FLAMENCO_ROOT``    the repository checkout    everything below
``FLAMENCO_DATA``    ``<root>/data``            corpora, models, caches, results
``FLAMENCO_REPORT``  ``<root>/report``          figures, tables, executed notebooks
===================  =========================  ===============================

``FLAMENCO_PROFILE`` (``smoke``, ``cpu`` or ``gpu``) picks the default profile
(:func:`default_profile`).
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import FlamencoError

_PACKAGE_DIR = Path(__file__).resolve().parent
PROFILES = ("smoke", "cpu", "gpu")


class ProfileError(FlamencoError, ValueError):
    """``FLAMENCO_PROFILE`` or a ``profile`` argument names no profile."""


def project_root() -> Path:
    """The checkout (the folder holding ``pyproject.toml`` next to this package), else the cwd."""
    if os.environ.get("FLAMENCO_ROOT"):
        return Path(os.environ["FLAMENCO_ROOT"]).expanduser().resolve()
    candidate = _PACKAGE_DIR.parent
    if (candidate / "pyproject.toml").exists():
        return candidate
    return Path.cwd()


def data_dir() -> Path:
    return Path(os.environ.get("FLAMENCO_DATA") or project_root() / "data").expanduser()


def profile_data_dir(profile: str) -> Path:
    """Where a profile's corpora, checkpoints and results live: ``<data>/smoke`` for ``smoke``
    (tiny corpora and models that must never overwrite the real ones; the experiment notebooks
    move ``FLAMENCO_DATA`` there), the data folder itself otherwise."""
    d = data_dir()
    return d / "smoke" if profile == "smoke" and d.name != "smoke" else d


def report_dir() -> Path:
    return Path(os.environ.get("FLAMENCO_REPORT") or project_root() / "report").expanduser()


def models_dir() -> Path:
    return data_dir() / "models"


def cache_dir() -> Path:
    return data_dir() / "cache"


def results_dir() -> Path:
    return data_dir() / "results"


def default_profile() -> str:
    """The profile that fits this machine: ``FLAMENCO_PROFILE`` when set, else ``gpu`` with CUDA
    (Colab), else ``cpu``. What ``make report`` and the experiment notebooks use by default."""
    chosen = os.environ.get("FLAMENCO_PROFILE")
    if chosen:
        if chosen not in PROFILES:
            raise ProfileError(
                f"FLAMENCO_PROFILE={chosen!r}: use one of {', '.join(PROFILES)} (or unset it)"
            )
        return chosen
    import torch

    return "gpu" if torch.cuda.is_available() else "cpu"
