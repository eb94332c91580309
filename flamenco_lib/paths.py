"""Where things live: the project root and its build-output folders.

Every folder can be moved with an environment variable (Colab points them at Drive):

===================  =========================  ===============================
variable             default                    holds
===================  =========================  ===============================
``FLAMENCO_ROOT``    the repository checkout    everything below
``FLAMENCO_DATA``    ``<root>/data``            corpora, models, caches, results
``FLAMENCO_REPORT``  ``<root>/report``          figures, tables, executed notebooks
===================  =========================  ===============================
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


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


def report_dir() -> Path:
    return Path(os.environ.get("FLAMENCO_REPORT") or project_root() / "report").expanduser()


def models_dir() -> Path:
    return data_dir() / "models"


def cache_dir() -> Path:
    return data_dir() / "cache"


def results_dir() -> Path:
    return data_dir() / "results"
