"""Every notebook is a jupytext pair: ``notebooks/NN_slug.py`` (percent format, the source) and
``notebooks/NN_slug.ipynb`` (clean, for Colab and papermill) hold the same cells; and the check
(``python -m flamenco_lib.notebook check-pairs``) fails when a pair is out of step."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import pytest

from flamenco_lib import notebook

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
PAIR = "10_results"  # the pair the failure tests copy and break


def test_every_notebook_has_its_py_twin_and_the_pairs_are_in_step():
    ipynb = {p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")}
    py = {p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.py")}
    assert len(ipynb) == 11 and ipynb == py
    assert notebook.check_pairs(NOTEBOOKS) == {}


def test_the_check_runs_from_the_command_line(tmp_path):
    def check(cwd, *args):
        command = [sys.executable, "-m", "flamenco_lib.notebook", "check-pairs", *args]
        return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)

    done = check(ROOT)
    assert done.returncode == 0, done.stderr
    assert "every notebook is in step" in done.stdout
    (tmp_path / "notebooks").mkdir()
    shutil.copy(NOTEBOOKS / f"{PAIR}.ipynb", tmp_path / "notebooks")  # and no .py twin
    done = check(tmp_path, "--dir", "notebooks")
    assert done.returncode == 1
    assert f"fix: jupytext --set-formats ipynb,py:percent notebooks/{PAIR}.ipynb" in done.stderr


@pytest.mark.parametrize("py", sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py")), ids=lambda p: p.stem)
def test_the_py_twin_reads_as_python(py):
    """Plain code cells, the prose as Markdown comments, the parameters tag on its marker."""
    text = py.read_text(encoding="utf-8")
    ast.parse(text)  # the whole file is Python: ruff checks it, an editor runs it cell by cell
    nb = jupytext.read(py)
    markers = [line for line in text.splitlines() if line.startswith("# %%")]
    assert len(markers) == len(nb.cells)
    assert sum(m == "# %% [markdown]" for m in markers) == sum(
        c.cell_type == "markdown" for c in nb.cells
    )
    assert markers.count('# %% tags=["parameters"]') == 1
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            assert f"# {cell.source.splitlines()[0]}" in text  # each prose line is a comment
    assert nb.metadata["kernelspec"]["name"] == "python3"


# ----------------------------------------------------------------------------------- the check can fail


@pytest.fixture
def pair(tmp_path) -> Path:
    """A copy of one pair in ``tmp_path/notebooks``, in step to begin with."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    for ext in ("ipynb", "py"):
        shutil.copy(NOTEBOOKS / f"{PAIR}.{ext}", folder / f"{PAIR}.{ext}")
    assert notebook.check_pairs(folder) == {}
    return folder


def _edit_py(folder: Path, old: str, new: str) -> None:
    path = folder / f"{PAIR}.py"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    later = path.stat().st_mtime + 10  # the newer file: what `jupytext --sync` takes as the source
    os.utime(path, (later, later))


def _edit_ipynb(folder: Path, change) -> None:
    path = folder / f"{PAIR}.ipynb"
    nb = json.loads(path.read_text(encoding="utf-8"))
    change(nb)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _first_code(nb: dict) -> dict:
    return next(c for c in nb["cells"] if c["cell_type"] == "code")


def _add_output(nb: dict) -> None:
    cell = _first_code(nb)
    cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["hello\n"]}]
    cell["execution_count"] = 1


BREAKS = {  # name: (how the pair is broken, what the report says)
    "code edited in the .py": (
        lambda f: _edit_py(f, "n_examples: int = 3", "n_examples: int = 4"),
        "source differs",
    ),
    "prose edited in the .ipynb": (
        lambda f: _edit_ipynb(f, lambda nb: nb["cells"][0]["source"].append("\nAn extra line.")),
        "source differs",
    ),
    "parameters tag dropped": (
        lambda f: _edit_py(f, '# %% tags=["parameters"]', "# %%"),
        "tags differs",
    ),
    "cell added to the .py": (
        lambda f: _edit_py(
            f, "# %% [markdown]\n# ## Summary", "# %%\nx = 1\n\n# %% [markdown]\n# ## Summary"
        ),
        "cells in",
    ),
    "a prose cell turned raw": (
        lambda f: _edit_py(f, "# %% [markdown]\n# ## Summary", "# %% [raw]\n# ## Summary"),
        "type differs",
    ),
    "outputs kept in the .ipynb": (lambda f: _edit_ipynb(f, _add_output), "outputs"),
    "pairing metadata missing": (
        lambda f: _edit_ipynb(f, lambda nb: nb["metadata"].pop("jupytext")),
        "jupytext.formats",
    ),
    ".py twin missing": (lambda f: (f / f"{PAIR}.py").unlink(), f"{PAIR}.py is missing"),
    ".ipynb twin missing": (lambda f: (f / f"{PAIR}.ipynb").unlink(), f"{PAIR}.ipynb is missing"),
}


@pytest.mark.parametrize("name", list(BREAKS))
def test_the_check_reports_a_pair_out_of_step_and_how_to_fix_it(pair, name, capsys):
    breaks, says = BREAKS[name]
    breaks(pair)
    bad = notebook.check_pairs(pair)
    assert list(bad) == [PAIR] and any(says in p for p in bad[PAIR]), bad
    assert notebook.main(["check-pairs", "--dir", str(pair)]) == 1
    err = capsys.readouterr().err
    assert PAIR in err and "fix: jupytext --" in err and says in err
    if name.endswith("in the .py") or name == "parameters tag dropped":
        assert f"fix: jupytext --sync {os.path.relpath(pair / PAIR)}.py" in err


def test_the_printed_fix_brings_the_pair_back_in_step(pair):
    """`jupytext --sync notebooks/NN_x.py` after editing the .py: the .ipynb follows, cell ids
    (Colab links to cells) and the kernelspec stay, and no output appears."""
    from jupytext.cli import jupytext as jupytext_cli

    before = json.loads((pair / f"{PAIR}.ipynb").read_text(encoding="utf-8"))
    _edit_py(pair, "n_examples: int = 3", "n_examples: int = 4")
    assert notebook.check_pairs(pair)
    jupytext_cli(["--sync", str(pair / f"{PAIR}.py")])
    assert notebook.check_pairs(pair) == {}
    after = json.loads((pair / f"{PAIR}.ipynb").read_text(encoding="utf-8"))
    assert [c["id"] for c in after["cells"]] == [c["id"] for c in before["cells"]]
    assert after["metadata"]["kernelspec"] == before["metadata"]["kernelspec"]
    changed = [
        i
        for i, (a, b) in enumerate(zip(before["cells"], after["cells"], strict=True))
        if a["source"] != b["source"]
    ]
    assert len(changed) == 1 and "n_examples: int = 4" in "".join(
        after["cells"][changed[0]]["source"]
    )
