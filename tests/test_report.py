"""make report's notebook runner: order, injected profile, and a failure that names the notebook and cell."""

from __future__ import annotations

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from flamenco_lib import report


def _nb(path, *cells, parameters='profile = "cpu"'):
    nb = new_notebook(
        cells=[
            new_code_cell(parameters, metadata={"tags": ["parameters"]}),
            *(new_code_cell(c) for c in cells),
        ]
    )
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)
    return path


@pytest.mark.notebook
def test_notebooks_run_in_order_with_the_profile_and_failures_name_the_cell(tmp_path):
    log = tmp_path / "order.txt"
    a = _nb(tmp_path / "01_a.ipynb", f"open({str(log)!r}, 'a').write('a:' + profile + ' ')")
    b = _nb(tmp_path / "02_b.ipynb", f"open({str(log)!r}, 'a').write('b:' + profile + ' ')")
    out = tmp_path / "executed"
    done = report.run_notebooks([a, b], profile="smoke", outdir=out, progress=False)
    assert done == [out / "01_a.ipynb", out / "02_b.ipynb"]
    assert log.read_text() == "a:smoke b:smoke "

    bad = _nb(tmp_path / "03_bad.ipynb", "x = 1", "raise ValueError('no such palo')")
    with pytest.raises(
        report.NotebookFailed,
        match=r"03_bad.ipynb: cell In \[4\] .* failed with ValueError: no such palo",
    ) as info:
        report.run_notebooks([bad, a], profile="smoke", outdir=out, progress=False)
    assert (
        str(out / "03_bad.ipynb") in str(info.value) and (out / "03_bad.ipynb").exists()
    )  # kept for inspection
    assert log.read_text() == "a:smoke b:smoke "  # the run stopped at the failure


@pytest.mark.notebook
def test_a_parameter_beyond_the_profile_reaches_only_the_notebooks_that_declare_it(tmp_path):
    log = tmp_path / "seen.txt"
    write = f"open({str(log)!r}, 'a').write"
    a = _nb(
        tmp_path / "07_a.ipynb",
        f"{write}(f'a:{{spoken_control}} ')",
        parameters='profile = "cpu"\nspoken_control = None',
    )
    b = _nb(tmp_path / "08_b.ipynb", f"{write}(f'b:{{\"spoken_control\" in globals()}} ')")
    out = tmp_path / "executed"
    report.run_notebooks(
        [a, b], profile="cpu", outdir=out, progress=False, parameters={"spoken_control": True}
    )
    assert log.read_text() == "a:True b:False "
    report.run_notebooks([a], profile="cpu", outdir=out, progress=False)
    assert log.read_text() == "a:True b:False a:None "  # without it, the notebook's default


@pytest.mark.parametrize(
    "argv, parameters",
    [
        ([], None),
        (["--spoken-control"], {"spoken_control": True}),
        (["--soft-prompt"], {"soft_prompt": True}),
        (["--soft-prompt", "--spoken-control"], {"spoken_control": True, "soft_prompt": True}),
    ],
)
def test_report_command_passes_the_opt_in_runs_on(monkeypatch, argv, parameters):
    from flamenco_lib import cli

    calls = []
    monkeypatch.setattr(report, "build", lambda **kw: calls.append(kw) or [])
    assert cli.main(["report", "--profile", "cpu", *argv]) == 0
    assert calls == [{"profile": "cpu", "parameters": parameters}]


def test_the_index_page_names_the_parameters_given_beyond_the_profile(tmp_path, monkeypatch):
    monkeypatch.setenv("FLAMENCO_DATA", str(tmp_path / "data"))
    page = report.build_index(
        profile="cpu", timings={}, outdir=tmp_path, parameters={"spoken_control": True}
    ).read_text(encoding="utf-8")
    assert "<th>parameters</th><td>spoken_control=True</td>" in page
    page = report.build_index(profile="cpu", timings={}, outdir=tmp_path).read_text(
        encoding="utf-8"
    )
    assert "<th>parameters</th><td>the profile&#x27;s defaults</td>" in page
