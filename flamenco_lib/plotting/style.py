"""The thesis style and the one way figures are written: :func:`set_style`, :func:`savefig`
(PNG + PDF under ``report/figures/``, an optional caption sidecar) and :func:`caption_of`.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import seaborn as sns

from ..paths import report_dir

THESIS_RC = {
    "figure.dpi": 110,
    "savefig.dpi": 200,
    "savefig.bbox": "tight",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "pdf.fonttype": 42,  # TrueType in PDFs: editable text, accepted by thesis templates
    "ps.fonttype": 42,
}


def set_style() -> None:
    """The thesis look: seaborn's ``whitegrid`` on the ``paper`` context plus :data:`THESIS_RC`."""
    sns.set_theme(context="paper", style="whitegrid", rc=THESIS_RC)


def savefig(
    fig,
    name: str,
    *,
    outdir: str | Path | None = None,
    formats=("png", "pdf"),
    caption: str | None = None,
) -> list[Path]:
    """Save ``fig`` as ``<outdir>/<name>.png`` and ``.pdf`` (default ``report/figures/``).

    ``name`` follows the notebook that makes the figure: ``01-mel-filterbank``. ``caption``
    goes into a sidecar ``<name>.json`` (``{"caption": ...}``) that ``report/index.html`` shows
    under the figure (:func:`caption_of`). Returns the written figure paths.
    """
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"savefig: {name!r} is not a plain figure name like '01-mel-filterbank'")
    outdir = Path(outdir) if outdir is not None else report_dir() / "figures"
    outdir.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in formats:
        path = outdir / f"{name}.{ext}"
        fig.savefig(path)
        paths.append(path)
    sidecar = outdir / f"{name}.json"
    if caption:
        sidecar.write_text(json.dumps({"caption": caption}, ensure_ascii=False), encoding="utf-8")
    else:
        sidecar.unlink(missing_ok=True)  # no stale caption from an earlier version of the figure
    return paths


def caption_of(figure: str | Path) -> str:
    """The caption :func:`savefig` stored next to a figure file, else the figure's name."""
    sidecar = Path(figure).with_suffix(".json")
    if sidecar.exists():
        return json.loads(sidecar.read_text(encoding="utf-8")).get("caption") or Path(figure).stem
    return Path(figure).stem


def _ax(ax):
    return ax if ax is not None else plt.subplots(figsize=(7, 2.6))[1]
