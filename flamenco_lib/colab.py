"""Google Colab: install the project in a fresh session and keep its data on Google Drive.

The first code cell of every notebook clones the repository and calls :func:`setup`, in Colab
only (a no-op on any other machine): the Debian packages of ``scripts/setup.sh``, the project
installed editable, and with ``use_drive`` the data and report folders on Drive
(``FLAMENCO_DATA``, ``FLAMENCO_REPORT``), so that a disconnected session picks up where it stopped:
corpora are not rebuilt and a stage resumes from its last checkpoint.
"""

from __future__ import annotations

import os
import subprocess
import sys

CHECKOUT = "/content/cante-to-text"  # where the notebook's first cell clones the project
DRIVE = "/content/drive/MyDrive/cante-to-text"  # data/ and report/ on Google Drive
# the Debian packages of scripts/setup.sh: speech synthesis, audio decoding, real Spanish speech
APT_PACKAGES = (
    "espeak-ng", "ffmpeg", "asterisk-core-sounds-es-g722", "asterisk-core-sounds-es",
    "drascula", "drascula-spanish",
)  # fmt: skip


def setup(*, use_drive: bool = True, checkout: str = CHECKOUT) -> str:
    """Install what the notebooks need in a Colab session; returns the data folder.

    Parameters
    ----------
    use_drive : bool
        Mount Google Drive and keep corpora, models, checkpoints, results (``FLAMENCO_DATA``) and
        figures, tables, executed notebooks (``FLAMENCO_REPORT``) in ``MyDrive/cante-to-text/``.
        False: they stay in the checkout and are lost when the session ends.
    checkout : str
        The clone of the project.
    """
    subprocess.run(["apt-get", "update", "-qq"], check=False)
    subprocess.run(["apt-get", "install", "-y", "-qq", *APT_PACKAGES], check=False)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", checkout], check=True)
    os.chdir(checkout)
    if use_drive:
        from google.colab import drive

        drive.mount("/content/drive")
        os.environ["FLAMENCO_DATA"] = f"{DRIVE}/data"
        os.environ["FLAMENCO_REPORT"] = f"{DRIVE}/report"
        os.makedirs(os.environ["FLAMENCO_DATA"], exist_ok=True)
    data = os.environ.get("FLAMENCO_DATA", f"{checkout}/data (lost when the session ends)")
    print("data:", data)
    return data
