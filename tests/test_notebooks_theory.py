"""The theory notebooks 01-04 run end to end (smoke profile) and draw their figures; every
notebook in git is clean (no outputs)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
REPO = "cante-to-text/cante-to-text"
COLAB_MARK = 'if "google.colab" in sys.modules:'

EXPECTED_FIGURES = {
    "01_speech_and_log_mel.ipynb": [
        "01_source_filter",
        "01_voiced_unvoiced",
        "01_spoken_vs_sung",
        "01_waveform",
        "01_framing",
        "01_window",
        "01_power_spectrogram",
        "01_mel_filterbank",
        "01_clamp",
        "01_log_mel_steps",
        "01_log_mel",
    ],
    "02_cepstrum.ipynb": [
        "02_log_spectrum",
        "02_cepstrum",
        "02_liftering",
        "02_pitch_spoken_vs_sung",
        "02_mfcc",
        "02_mfcc_reconstruction",
    ],
    "03_ctc_vs_deep_fusion.ipynb": [
        "03_ctc_trellis",
        "03_ctc_training",
        "03_ctc_posteriors",
        "03_wer",
    ],
    "04_whisper_anatomy.ipynb": [
        "04_pipeline",
        "04_model_sizes",
        "04_padding",
        "04_cross_attention",
    ],
}


@pytest.mark.notebook
@pytest.mark.parametrize("name", sorted(EXPECTED_FIGURES))
def test_theory_notebook_runs_and_draws_its_figures(name, tmp_path, monkeypatch):
    papermill = pytest.importorskip("papermill")
    report = tmp_path / "report"
    monkeypatch.setenv("FLAMENCO_REPORT", str(report))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / name
    papermill.execute_notebook(
        str(NOTEBOOKS / name),
        str(out),
        parameters={"profile": "smoke"},
        kernel_name="python3",
        cwd=str(ROOT),
        progress_bar=False,
    )
    figures = report / "figures"
    missing = [
        f
        for f in EXPECTED_FIGURES[name]
        for ext in ("png", "pdf")
        if not (figures / f"{f}.{ext}").exists()
    ]
    assert not missing, f"{name} did not write {missing}"
    from flamenco_lib.plotting import caption_of

    # the report page shows a caption under every figure, not just its file name
    uncaptioned = [f for f in EXPECTED_FIGURES[name] if caption_of(figures / f"{f}.png") in ("", f)]
    assert not uncaptioned, f"{name} saved {uncaptioned} without a caption"
    if name.startswith("03"):
        executed = nbformat.read(out, as_version=4)
        text = "".join(
            o.get("text", "")
            for c in executed.cells
            if c.cell_type == "code"
            for o in c.get("outputs", [])
        )
        assert "CTC greedy" in text and "Whisper" in text
    if name.startswith("04"):
        executed = nbformat.read(out, as_version=4)
        text = "".join(
            o.get("text", "")
            for c in executed.cells
            if c.cell_type == "code"
            for o in c.get("outputs", [])
        )
        assert (
            "the loaded model: 72,593,920" in text
        )  # base's row of the size table = the real model
        assert "loop == generate, token for token: True" in text
        assert "transcripts identical: True" in text  # the clip moved inside the 30 s window


def test_every_notebook_is_committed_clean():
    notebooks = sorted(NOTEBOOKS.glob("*.ipynb"))
    assert notebooks, "no notebooks found"
    for path in notebooks:
        nb = json.loads(path.read_text(encoding="utf-8"))
        for i, cell in enumerate(nb["cells"]):
            if cell["cell_type"] != "code":
                continue
            assert cell.get("outputs") == [], f"{path.name}: cell {i} has outputs; strip them"
            assert cell.get("execution_count") is None, (
                f"{path.name}: cell {i} has an execution count"
            )


def test_every_notebook_follows_the_conventions():
    """Title "# NN · ...", one cell tagged 'parameters' (profile, seed), prose before every code
    cell, a summary at the end."""
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        name = path.name
        nb = nbformat.read(path, as_version=4)
        params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(params) == 1, f"{name}: needs exactly one cell tagged 'parameters'"
        src = params[0].source
        assert (
            'profile: str = "cpu"' in src or 'profile: str = "auto"' in src
        ) and "seed: int = 0" in src
        for stmt in ast.parse(src).body:  # literals only: papermill replaces them, derives nothing
            assert isinstance(stmt, ast.AnnAssign), f"{name}: not a parameter: {ast.unparse(stmt)}"
            ast.literal_eval(stmt.value)
        assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith(
            f"# {name[:2]} "
        )
        badge = f"(https://colab.research.google.com/github/{REPO}/blob/main/notebooks/{name})"
        assert badge in nb.cells[0].source, (
            f"{name}: no Open in Colab badge to itself under the title"
        )
        assert sum(COLAB_MARK in c.source for c in nb.cells if c.cell_type == "code") == 1, (
            f"{name}: one Colab setup cell"
        )
        for prev, cell in zip(nb.cells, nb.cells[1:]):
            if cell.cell_type == "code" and cell is not params[0]:
                assert prev.cell_type == "markdown", (
                    f"{name}: code cell without prose before it:\n{cell.source[:80]}"
                )
        last = nb.cells[-1]
        assert last.cell_type == "markdown" and "## Summary" in last.source, (
            f"{name}: no summary at the end"
        )


def _colab_cell(name: str) -> str:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    return next(c.source for c in nb.cells if c.cell_type == "code" and COLAB_MARK in c.source)


@pytest.mark.parametrize("use_drive", [True, False])
def test_colab_cell_installs_mounts_drive_and_points_the_data_there(monkeypatch, use_drive):
    """The first cell of every notebook, run as Colab would (a fake ``google.colab`` module, the
    commands recorded instead of run): it clones and installs the project with the Debian
    packages of scripts/setup.sh, mounts Drive when asked and moves data and report there."""
    import os
    import subprocess
    import sys
    import types

    ran, mounted = [], []
    colab = types.ModuleType("google.colab")
    colab.drive = types.SimpleNamespace(mount=mounted.append)
    monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: ran.append(cmd))
    monkeypatch.setattr(os, "chdir", lambda path: None)
    monkeypatch.setattr(os, "makedirs", lambda path, **kw: None)
    monkeypatch.setattr(sys, "path", list(sys.path))
    # the cell sets variables: give it a copy of the environment, so nothing leaks into later tests
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("FLAMENCO_DATA", "FLAMENCO_REPORT", "CANTE_REPO_URL")
    }
    monkeypatch.setattr(os, "environ", env)
    source = _colab_cell("07_stage1_flamenco.ipynb").replace(
        "USE_DRIVE = True", f"USE_DRIVE = {use_drive}"
    )
    exec(compile(source, "colab-cell", "exec"), {})  # noqa: S102 (the cell is what is tested)

    assert ran[0][:3] == ["git", "clone", "-q"] and ran[0][3] == f"https://github.com/{REPO}"
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    apt = next(c for c in ran if c[:2] == ["apt-get", "install"])
    for package in apt[4:]:
        assert package in setup
    assert (
        len(apt[4:]) == setup.split("APT_PACKAGES=(")[1].split(")")[0].count(" ") + 1
    )  # all of them
    assert ran[-1][1:] == ["-m", "pip", "install", "-q", "-e", "/content/cante-to-text"]
    if use_drive:
        assert mounted == ["/content/drive"]
        assert os.environ["FLAMENCO_DATA"] == "/content/drive/MyDrive/cante-to-text/data"
        assert os.environ["FLAMENCO_REPORT"] == "/content/drive/MyDrive/cante-to-text/report"
    else:
        assert mounted == [] and "FLAMENCO_DATA" not in os.environ


def test_every_notebook_has_the_same_colab_cell():
    """What the cell does lives in flamenco_lib.colab; the cell itself is one bootstrap, the same in
    every notebook (so the tests of the cell of 05 and 07 speak for all of them)."""
    cells = {nb.name: _colab_cell(nb.name) for nb in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))}
    assert len(cells) == 11 and len(set(cells.values())) == 1, sorted(cells)
    assert "from flamenco_lib.colab import setup" in cells["01_speech_and_log_mel.ipynb"]


def test_colab_cell_does_nothing_elsewhere(monkeypatch):
    import os
    import subprocess
    import sys

    ran = []
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: ran.append(cmd))
    before = dict(os.environ)
    exec(compile(_colab_cell("05_data.ipynb"), "colab-cell", "exec"), {})  # noqa: S102
    assert ran == [] and dict(os.environ) == before
