"""Figures are written by savefig (PNG + PDF), and the CLI's figure job works on real audio."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from flamenco_lib import plotting  # noqa: E402
from flamenco_lib.cli import main  # noqa: E402


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
    for stem in ["01-waveform", "01-mel-filterbank", "01-log-mel", "02-cepstrum", "02-mfcc"]:
        assert {f"{stem}.png", f"{stem}.pdf"} <= names


def test_cli_bad_audio_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    assert main(["figures", "--audio", str(bad), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "Traceback" not in err
