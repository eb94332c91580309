"""Figures are written by savefig (PNG + PDF), and the CLI's figure job works on real audio."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from flamenco_lib import plotting, report  # noqa: E402
from flamenco_lib.cli import main  # noqa: E402
from flamenco_lib.paths import project_root  # noqa: E402


def test_savefig_writes_png_and_pdf(tmp_path):
    fig, ax = plt.subplots()
    plotting.plot_waveform([0.0, 0.5, -0.5, 0.0], ax=ax)
    paths = plotting.savefig(fig, "00-test", outdir=tmp_path)
    assert [p.name for p in paths] == ["00-test.png", "00-test.pdf"]
    assert paths[0].read_bytes()[:4] == b"\x89PNG" and paths[1].read_bytes()[:4] == b"%PDF"


@pytest.mark.parametrize("name", ["", "../escape", ".hidden"])
def test_savefig_rejects_bad_names(tmp_path, name):
    fig, _ = plt.subplots()
    with pytest.raises(ValueError, match="figure name"):
        plotting.savefig(fig, name, outdir=tmp_path)


def test_cli_figures(tmp_path, capsys):
    assert main(["figures", "--out", str(tmp_path)]) == 0
    names = {p.name for p in tmp_path.iterdir()}
    for stem in report.FEATURE_FIGURES:
        assert {f"{stem}.png", f"{stem}.pdf"} <= names


def test_cli_bad_audio_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    assert main(["figures", "--audio", str(bad), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "Traceback" not in err


def _savefig_names(text: str) -> list[str]:
    import re

    return re.findall(r"savefig\(\s*\w+(?:\.figure)?,\s*f?[\"']([^\"'{]+)", text)


def test_every_figure_has_one_name_and_one_writer():
    """The report's figures come from the notebooks; the ``figures`` command's names are its own.
    (Names compared with '-' and '_' folded: ``01-waveform`` and ``01_waveform`` are one figure.)"""
    fold = lambda n: n.replace("-", "_")  # noqa: E731
    notebook_names = [
        n
        for nb in sorted((project_root() / "notebooks").glob("[0-9][0-9]_*.py"))
        for n in _savefig_names(nb.read_text(encoding="utf-8"))
    ]
    assert len(notebook_names) > 40
    assert len({fold(n) for n in notebook_names}) == len(notebook_names), (
        "a figure name written twice"
    )
    src = (project_root() / "flamenco_lib" / "report.py").read_text(encoding="utf-8")
    assert set(_savefig_names(src)) == set(report.FEATURE_FIGURES)
    clash = {fold(n) for n in report.FEATURE_FIGURES} & {fold(n) for n in notebook_names}
    assert not clash, f"written by the notebooks and by report.feature_figures: {clash}"
