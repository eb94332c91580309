"""flamenco_lib.notebook: the workspace of a profile (the data-folder cell of notebooks 05-10), the
"draw it or say which command makes it" pattern of notebook 10, and the measured step costs of
notebook 07."""

from __future__ import annotations

import logging
import math
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from flamenco_lib import notebook  # noqa: E402

# The data-folder cell of notebooks 06-09 before flamenco_lib.notebook.workspace replaced it
# (data_folder_cells of scripts/make_experiment_notebooks.py, deleted since): workspace gives the same.
OLD_CELL = """
import os

from flamenco_lib import grid, models, paths

if profile == "smoke" and paths.data_dir().name != "smoke":  # (run twice, the cell changes nothing more)
    BASE = str(models.build_offline_base())  # the offline whisper-base of this machine, built once
    os.environ["FLAMENCO_DATA"] = str(paths.data_dir() / "smoke")
MODEL = BASE if profile == "smoke" else grid.zero_shot_model(profile)  # what the stages start from
FROM_BASE = {"model": MODEL} if profile == "smoke" else {}  # overrides of the stage-1 configs
N_EVAL = {"smoke": 3}.get(profile, 100)  # test clips per evaluation (the first ones of each test set)
SIZES = {"smoke": dict(n=12, n_speech=6, n_songs=2)}.get(profile, {})  # corpora sizes, as in notebook 05
"""


def _old_cell(profile: str) -> dict:
    scope = {"profile": profile}
    exec(compile(OLD_CELL, "old-data-folder-cell", "exec"), scope)  # noqa: S102 (the old cell is what is compared)
    return scope


@pytest.fixture
def data(tmp_path, monkeypatch):
    """A data folder (``FLAMENCO_DATA``) whose ``models/`` holds a stand-in for this machine's
    offline whisper-base: its ``conversion.json`` marks it built, so nothing is converted."""
    from flamenco_lib import models

    folder = tmp_path / "data"
    monkeypatch.setenv("FLAMENCO_DATA", str(folder))
    base = models.offline_base_dir()
    base.mkdir(parents=True)
    (base / "conversion.json").write_text("{}", encoding="utf-8")
    return folder


def _base(data) -> str:
    from flamenco_lib import models

    return str(data / "models" / models.offline_base_dir().name)


# ----------------------------------------------------------------------------------- workspace


def test_smoke_workspace_moves_the_data_once_and_shares_the_base(data):
    ws = notebook.workspace("smoke")
    assert os.environ["FLAMENCO_DATA"] == str(data / "smoke") and ws.data == data / "smoke"
    assert ws.model == _base(data)  # the machine's whisper-base, not a copy in <data>/smoke
    assert (
        ws.from_base == {"model": ws.model}
        and ws.n_eval == 3
        and ws.sizes == {"n": 12, "n_speech": 6, "n_songs": 2}
    )
    assert notebook.workspace("smoke") == ws  # the cell run again: the same, nothing moves further
    assert os.environ["FLAMENCO_DATA"] == str(data / "smoke")
    assert not (
        data / "smoke"
    ).exists()  # named, not created: the notebooks' calls create what they write


def test_smoke_workspace_where_the_data_was_moved_already(data, monkeypatch):
    """The old cell set BASE only when it moved the data folder, so a run that found
    ``FLAMENCO_DATA`` already ending in ``smoke`` (the cell again in a fresh kernel, or in a second
    notebook of the same kernel) raised NameError. workspace gives what the first run gave."""
    first = notebook.workspace("smoke")
    monkeypatch.setenv("FLAMENCO_DATA", str(data / "smoke"))
    assert notebook.workspace("smoke") == first
    assert not (
        data / "smoke" / "models"
    ).exists()  # the base was not built again in the smoke folder


def test_the_old_cell_failed_where_the_data_was_moved_already(data, monkeypatch):
    monkeypatch.setenv("FLAMENCO_DATA", str(data / "smoke"))
    with pytest.raises(NameError, match="BASE"):
        _old_cell("smoke")
    assert notebook.workspace("smoke").model == _base(data)


@pytest.mark.parametrize("profile", ["smoke", "cpu", "gpu"])
def test_workspace_gives_what_the_old_cell_gave(data, monkeypatch, profile):
    old = _old_cell(profile)
    moved = os.environ["FLAMENCO_DATA"]
    monkeypatch.setenv("FLAMENCO_DATA", str(data))
    ws = notebook.workspace(profile)
    assert os.environ["FLAMENCO_DATA"] == moved
    assert (ws.model, ws.from_base, ws.n_eval, ws.sizes) == (
        old["MODEL"],
        old["FROM_BASE"],
        old["N_EVAL"],
        old["SIZES"],
    )
    if profile != "smoke":
        assert moved == str(data) and ws.data == data  # cpu and gpu leave the data folder alone


def test_workspace_without_building_the_model_names_it_only(tmp_path, monkeypatch):
    """Notebook 10 only reads results: in smoke it moves the data folder and builds nothing."""
    monkeypatch.setenv("FLAMENCO_DATA", str(tmp_path / "data"))
    ws = notebook.workspace("smoke", build_model=False)
    assert ws.data == tmp_path / "data" / "smoke" and ws.model == _base(tmp_path / "data")
    assert not (tmp_path / "data").exists()


def test_auto_is_the_machines_profile(data, monkeypatch):
    """The notebooks' parameter is the literal "auto" (papermill parameters are literals); the
    workspace resolves it as make report does."""
    import torch

    monkeypatch.delenv("FLAMENCO_PROFILE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    ws = notebook.workspace("auto")
    assert ws.profile == "cpu" and ws.data == data and ws.from_base == {}
    monkeypatch.setenv("FLAMENCO_PROFILE", "gpu")
    assert notebook.workspace("auto").model == "small"  # configs/stage1.yaml's gpu model


def test_workspace_refuses_an_unknown_profile(data):
    with pytest.raises(ValueError, match="smoke, cpu, gpu"):
        notebook.workspace("laptop")
    assert os.environ["FLAMENCO_DATA"] == str(data)


# ----------------------------------------------------------------------------------- show_or_explain


@pytest.fixture
def figures(tmp_path, monkeypatch):
    monkeypatch.setenv("FLAMENCO_REPORT", str(tmp_path / "report"))
    yield tmp_path / "report" / "figures"
    plt.close("all")


TABLE = pd.DataFrame({"model": ["zero-shot", "stage 1"], "wer": [80.0, 40.0]})


def _bars(table):
    fig, ax = plt.subplots()
    ax.bar(table["model"], table["wer"])
    return ax


def test_show_or_explain_draws_and_saves_with_the_caption(figures):
    from flamenco_lib.plotting import caption_of

    assert notebook.show_or_explain(TABLE, _bars, name="10-test", caption="WER per model.") is True
    assert all((figures / f"10-test.{ext}").exists() for ext in ("png", "pdf"))
    assert caption_of(figures / "10-test.png") == "WER per model."
    figure = notebook.show_or_explain(TABLE, lambda t: _bars(t).figure, name="10-fig")
    assert figure and (figures / "10-fig.png").exists()  # a Figure is saved as an Axes is


@pytest.fixture
def told():
    """The messages flamenco_lib.notebook logs (whether or not ``log.show_messages`` stopped them
    propagating to the root logger, where caplog listens)."""
    messages = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = logging.getLogger("flamenco_lib.notebook")
    logger.addHandler(handler)
    yield messages
    logger.removeHandler(handler)


@pytest.mark.parametrize("table", [TABLE.iloc[:0], None])
def test_show_or_explain_says_which_command_makes_the_results(figures, told, table):
    from flamenco_lib.analysis import NO_RESULTS

    drawn = []
    assert notebook.show_or_explain(table, drawn.append, name="10-empty") is False
    assert drawn == [] and not figures.exists()
    assert told == [NO_RESULTS] and "python -m flamenco_lib results --evaluate" in NO_RESULTS


def test_show_or_explain_with_a_further_test_and_its_own_message(figures, told):
    high, low = (lambda t: (t["wer"] > 90).all()), (lambda t: (t["wer"] < 90).all())
    assert notebook.show_or_explain(
        TABLE, _bars, name="10-high", empty=high, message="none above 90%"
    )
    assert (figures / "10-high.png").exists() and told == []
    assert not notebook.show_or_explain(
        TABLE, _bars, name="10-low", empty=low, message="none above 90%"
    )
    assert not (figures / "10-low.png").exists() and told == ["none above 90%"]


def test_show_or_explain_of_text_saves_nothing(figures, capsys):
    assert notebook.show_or_explain(TABLE, lambda t: print(len(t), "rows"), name="10-text")
    assert capsys.readouterr().out == "2 rows\n" and not figures.exists()


# ----------------------------------------------------------------------------------- step costs


@pytest.mark.model
def test_step_costs_measure_every_cached_layers_value():
    from flamenco_lib import models

    base = str(models.build_offline_base())
    cost = notebook.step_costs(
        base, cached_layers=(0, 6), batch_size=1, steps=1, warmup=0, precision="fp32"
    )
    assert list(cost["cached_layers"]) == [0, 6] and list(cost["trains"]) == [
        "everything",
        "decoder",
    ]
    assert (cost["seconds per step"] > 0).all()
    full, decoder = cost["trainable (M)"]
    assert (
        0 < decoder < full < 72.6
    )  # whisper-base has 72.59 M parameters; its sinusoidal positions never train
    assert (
        cost.attrs["batch_size"] == 1
        and cost.attrs["precision"] == "fp32"
        and cost.attrs["device"] == "cpu"
    )
    with pytest.raises(ValueError, match="encoder layers"):
        notebook.step_costs(base, cached_layers=(2, 7), batch_size=1, steps=1, warmup=0)


@pytest.mark.model
def test_timed_steps_train_and_count_only_after_the_warm_up(base):
    _, model, processor = base
    import copy

    model = copy.deepcopy(model).float()
    before = model.model.decoder.layers[0].fc1.weight.detach().clone()
    times, loss = notebook.time_train_steps(
        model, processor, cached_layers=4, batch_size=2, steps=2, warmup=1
    )
    assert len(times) == 2 and all(t > 0 for t in times)
    assert (
        math.isfinite(loss) and 0 < loss < 20
    )  # cross-entropy of real lyrics, not of noise labels
    assert (
        not model.model.decoder.layers[0].fc1.weight.detach().equal(before)
    )  # AdamW updated the decoder
    assert not model.training
    with pytest.raises(ValueError, match="steps"):
        notebook.time_train_steps(model, processor, cached_layers=4, steps=0)
