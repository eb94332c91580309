"""What the notebooks share, and the check that keeps each notebook's jupytext pair in step.

- :func:`workspace`: data folder, model and sizes of a profile (``notebooks/05_data`` to
  ``09_stage3_prompts``, first code cell; ``10_results``, its profile handling).
- :func:`show_or_explain`: draw a results table, or say which command makes the results
  (every section of ``notebooks/10_results``).
- :func:`step_costs`: seconds per training step for each ``cached_layers``, measured
  (``notebooks/07_stage1_flamenco``; :func:`time_train_steps` also serves
  ``benchmarks/train_step.py``).
- :func:`check_pairs`: every ``notebooks/NN_slug.ipynb`` and its ``NN_slug.py`` (jupytext percent
  format) hold the same cells, and the ``.ipynb`` is clean. From a shell (exit 1 and the fix
  when a pair is out of step): ``python -m flamenco_lib.notebook check-pairs``.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import paths

logger = logging.getLogger(__name__)

SMOKE_SIZES = {"n": 12, "n_speech": 6, "n_songs": 2}  # smoke: clips per style, utterances, songs
N_EVAL = {"smoke": 3, "cpu": 100, "gpu": 100}  # test clips per evaluation, per profile
# notebook 07 trains stage 1's spoken control in these profiles; on cpu it would add 15 minutes to
# a 2-core report (README, "make report, measured"): `report --spoken-control` trains it there too
SPOKEN_CONTROL = {"smoke": True, "cpu": False, "gpu": True}
# notebook 09 trains stage 3's soft prompt in these profiles; on cpu it would add 5.5 minutes to a
# 2-core report (its cache of all six encoder layers, training, two evaluations) for a row within
# noise of stage 2 (README, "make report, measured"): `report --soft-prompt` trains it there too
SOFT_PROMPT = {"smoke": True, "cpu": False, "gpu": True}
PAIR_FORMATS = "ipynb,py:percent"  # the jupytext pairing every notebook declares
NOTEBOOK_GLOB = "[0-9][0-9]_*"  # notebooks/NN_slug.ipynb and NN_slug.py
LYRICS = (  # labels of the timed training steps: real coplas of different lengths
    "Por los caminos voy dando fatigas, como una rueda que nunca se para",
    "A la orillita del mar se peina mi morena",
    "Que me lleven a Cádiz, que allí me quiero morir",
    "De noche yo me levanto con las fatigas de siempre",
)


# ----------------------------------------------------------------------------------- workspace


@dataclass(frozen=True)
class Workspace:
    """Where a notebook of profile ``profile`` works, and with what (see :func:`workspace`)."""

    profile: str  # "smoke", "cpu" or "gpu"
    data: Path  # the data folder every path follows (FLAMENCO_DATA): <data>/smoke in smoke
    model: str  # the Whisper the stages start from, and the zero-shot row's model
    from_base: dict  # overrides of the stage-1 configs: {"model": model} in smoke, {} otherwise
    n_eval: int  # test clips per evaluation (the first ones of each test set)
    sizes: dict  # keyword arguments of build_corpora: {} = the library's defaults (thesis corpora)
    spoken_control: bool  # notebook 07 trains stage 1's spoken control (SPOKEN_CONTROL)
    soft_prompt: bool  # notebook 09 trains stage 3's soft prompt (SOFT_PROMPT)


def workspace(profile: str, *, build_model: bool = True) -> Workspace:
    """The data folder, starting model and sizes of ``profile``; in ``smoke``, move the data there.

    In ``smoke`` (the tests, CI) ``FLAMENCO_DATA`` moves to ``<data>/smoke`` before anything reads a
    path, so that the tiny corpora, smoke models and their results never overwrite the real ones.
    Only the model is shared: this machine's whisper-base, converted once from its PyPI wheels
    into ``<data>/models`` (:func:`flamenco_lib.models.build_offline_base`). The other profiles
    leave the data folder alone and start from the model of ``configs/stage1.yaml``
    (:func:`flamenco_lib.grid.zero_shot_model`: whisper-base on ``cpu``, whisper-small on
    ``gpu``). Idempotent: a second call, or a first one with ``FLAMENCO_DATA`` already ending in
    ``smoke``, returns the same workspace and moves nothing further.

    Parameters
    ----------
    profile : {"auto", "smoke", "cpu", "gpu"}
        ``"auto"`` (the notebooks' default, a literal for papermill): the machine's profile,
        :func:`flamenco_lib.paths.default_profile` (``gpu`` with CUDA, else ``cpu``, or
        ``FLAMENCO_PROFILE``); :attr:`Workspace.profile` is the one resolved.
    build_model : bool
        Build the offline whisper-base when it is missing (``smoke`` only). ``False`` names it
        without building it: notebook 10 only reads results files.

    Returns
    -------
    Workspace
        In a notebook: ``ws = notebook.workspace(profile)``, then ``ws.model``, ``ws.n_eval``...
    """
    from .log import show_messages

    show_messages()  # the library's progress messages (built, trained, skipped...) under each cell
    if profile == "auto":
        profile = paths.default_profile()
    if profile not in paths.PROFILES:
        raise ValueError(f"profile {profile!r}: use one of {', '.join(paths.PROFILES)}")
    if profile == "smoke":
        from . import models

        here = paths.data_dir()
        home = here.parent if here.name == "smoke" else here  # the real data, and <home>/models
        os.environ["FLAMENCO_DATA"] = str(home)
        try:
            model = str(models.build_offline_base() if build_model else models.offline_base_dir())
        finally:
            os.environ["FLAMENCO_DATA"] = str(here if here.name == "smoke" else home / "smoke")
    else:
        from .grid import zero_shot_model

        model = zero_shot_model(profile)
    ws = Workspace(
        profile=profile,
        data=paths.data_dir(),
        model=model,
        from_base={"model": model} if profile == "smoke" else {},
        n_eval=N_EVAL[profile],
        sizes=dict(SMOKE_SIZES) if profile == "smoke" else {},
        spoken_control=SPOKEN_CONTROL[profile],
        soft_prompt=SOFT_PROMPT[profile],
    )
    logger.info(
        "data folder: %s | model: %s | test clips evaluated: %d", ws.data, ws.model, ws.n_eval
    )
    return ws


def build_missing_corpora(sizes: dict) -> list[str]:
    """Build the offline corpora that are missing under ``<data>/corpora``
    (:func:`flamenco_lib.data.corpus.build_corpora` with ``sizes``, e.g. :attr:`Workspace.sizes`),
    so that a notebook also runs on its own; corpora that exist are left as they are. Returns the
    names built now."""
    from .data.corpus import OFFLINE_CORPORA, build_corpora

    corpora = paths.data_dir() / "corpora"
    missing = [n for n in OFFLINE_CORPORA if not (corpora / n / "manifest.jsonl").exists()]
    if missing:
        build_corpora(corpora, **sizes)
    logger.info("corpora: %s | built now: %s", corpora, ", ".join(missing) or "none")
    return missing


# ----------------------------------------------------------------------------------- figures


def show_or_explain(
    table: Any,
    draw: Callable[[Any], Any],
    *,
    name: str | None = None,
    caption: str | None = None,
    empty: Callable[[Any], bool] | None = None,
    message: str | None = None,
) -> bool:
    """Draw ``table`` (and save the figure), or, when there is nothing to draw, say why.

    The pattern of every section of ``notebooks/10_results``: on a fresh clone the results files
    are missing, the section's table is empty, and the reader is told which command makes them.

    Parameters
    ----------
    table : pandas.DataFrame
        What to draw; nothing is drawn when it is empty (or None).
    draw : callable
        ``draw(table)`` draws it and returns a matplotlib ``Axes`` or ``Figure`` (saved when
        ``name`` is given), or ``None`` (it printed text: nothing to save).
    name, caption : str, optional
        The figure's name and caption for :func:`flamenco_lib.plotting.savefig`.
    empty : callable, optional
        ``empty(table) -> bool``: a further reason to draw nothing (e.g. no prompted rows).
    message : str, optional
        What the reader is told instead, as a logged warning (stderr, or the notebook's output);
        default :data:`flamenco_lib.analysis.NO_RESULTS`.

    Returns
    -------
    bool
        Whether the table was drawn.
    """
    if table is None or len(table) == 0 or (empty is not None and empty(table)):
        if message is None:
            from .analysis import NO_RESULTS

            message = NO_RESULTS
        logger.warning(message)
        return False
    drawn = draw(table)
    if name is not None and drawn is not None:
        from matplotlib.figure import FigureBase

        from . import plotting

        figure = drawn if isinstance(drawn, FigureBase) else drawn.figure
        plotting.savefig(figure, name, caption=caption)
    return True


# ----------------------------------------------------------------------------------- step costs


def time_train_steps(
    model: Any,
    processor: Any,
    *,
    cached_layers: int,
    batch_size: int = 8,
    steps: int = 2,
    warmup: int = 1,
    precision: str = "fp32",
) -> tuple[list[float], float]:
    """Time training steps of ``model`` as a stage with ``cached_layers`` trains it.

    A step: :class:`flamenco_lib.training.UpperWhisper` forward under ``precision`` autocast
    (random log-Mel features, ``(batch, n_mels, 3000)``, for ``cached_layers == 0``; random
    layer-``k`` activations, ``(batch, 1500, d_model)``, otherwise; the labels of real lyrics),
    backward, and an AdamW update of what :func:`flamenco_lib.training.freeze_lower` leaves
    trainable. The updates are real: time a copy of the model you do not need.

    Parameters
    ----------
    model : transformers.WhisperForConditionalGeneration
        In float32 (the weights a stage trains), on any device.
    processor : transformers.WhisperProcessor
    cached_layers : int >= 0
    batch_size, steps : int > 0
    warmup : int >= 0
        Steps run first and not counted (allocations, kernel choices).
    precision : {"fp32", "bf16", "fp16"}

    Returns
    -------
    (list of float, float)
        Seconds of each counted step, and the loss of the first step run.
    """
    import torch

    from . import training

    if batch_size < 1 or steps < 1 or warmup < 0:
        raise ValueError(f"batch_size {batch_size}, steps {steps}, warmup {warmup}: 1+, 1+, 0+")
    amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)  # None: fp32
    device, config = model.device, model.config
    training.freeze_lower(model, cached_layers)
    model.train()
    upper = training.UpperWhisper(model, cached_layers)
    optimizer = torch.optim.AdamW([p for p in upper.parameters() if p.requires_grad], lr=1e-5)
    texts = [LYRICS[i % len(LYRICS)] for i in range(batch_size)]
    labels = training.collate_labels(processor.tokenizer, texts)
    n = config.max_source_positions  # 1500 encoder frames: 3000 log-Mel frames, 30 s
    shape = (n, config.d_model) if cached_layers else (config.num_mel_bins, 2 * n)
    x = torch.randn((batch_size, *shape), generator=torch.Generator().manual_seed(0)).to(device)
    dec, lab = labels["decoder_input_ids"].to(device), labels["labels"].to(device)
    times, first = [], None
    for _ in range(warmup + steps):
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=amp or torch.bfloat16, enabled=amp is not None):
            loss = upper(x, dec, lab)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
        first = loss.item() if first is None else first
    model.eval()
    return times[warmup:], float(first)


def step_costs(
    model: str,
    *,
    cached_layers: Sequence[int] = (0, 2, 4),
    batch_size: int = 4,
    steps: int = 2,
    warmup: int = 1,
    precision: str = "auto",
    device: str | None = None,
) -> Any:
    """Seconds per training step of ``model`` for each value of ``cached_layers``, measured now.

    One copy of the model is loaded (float32, as a stage trains it) and timed with
    :func:`time_train_steps` for each value in turn: ``warmup`` steps, then the median of
    ``steps`` counted ones. Explained in ``notebooks/07_stage1_flamenco`` (why the lower encoder
    layers are frozen and cached on a CPU).

    Parameters
    ----------
    model : str
        A checkpoint folder, hub id or size (:func:`flamenco_lib.models.load_whisper`).
    cached_layers : sequence of int in [0, encoder layers]
        Frozen, cached encoder layers (0: everything trains).
    batch_size, steps : int > 0
    warmup : int >= 0
    precision : {"auto", "fp32", "bf16", "fp16"}
        ``auto``: :func:`flamenco_lib.training.auto_precision`, as the ``cpu`` profile trains.
    device : str, optional
        Default: CUDA when available, else CPU.

    Returns
    -------
    pandas.DataFrame
        One row per value: ``cached_layers``, ``trains`` (in words), ``trainable (M)`` parameters,
        ``seconds per step``. ``attrs``: ``model``, ``device``, ``threads`` (torch's CPU
        threads), ``batch_size``, ``steps``, ``warmup``, ``precision``.
    """
    import pandas as pd
    import torch

    from . import models, training

    if precision == "auto":
        precision = training.auto_precision()
    net, processor = models.load_whisper(model, device=device, dtype=torch.float32)
    n_layers = net.config.encoder_layers
    wrong = [k for k in cached_layers if not 0 <= k <= n_layers]
    if wrong:
        raise ValueError(f"cached_layers {wrong}: {model} has {n_layers} encoder layers")
    setting = dict(batch_size=batch_size, steps=steps, warmup=warmup, precision=precision)
    rows = []
    for k in cached_layers:
        times, _ = time_train_steps(net, processor, cached_layers=k, **setting)
        seconds = statistics.median(times)
        trainable = sum(p.numel() for p in net.parameters() if p.requires_grad) / 1e6
        trains = f"top {n_layers - k} encoder layers + decoder" if 0 < k < n_layers else None
        rows.append((k, trains or ("everything" if k == 0 else "decoder"), trainable, seconds))
        logger.info("cached_layers %d: %.2f s per step (batch %d)", k, seconds, batch_size)
    columns = ["cached_layers", "trains", "trainable (M)", "seconds per step"]
    table = pd.DataFrame(rows, columns=columns)
    threads = torch.get_num_threads()
    table.attrs.update(model=model, device=str(net.device), threads=threads, **setting)
    return table


# ----------------------------------------------------------------------------------- jupytext pairs


def pair_problems(ipynb: Path, py: Path) -> list[str]:
    """What differs between a notebook and its jupytext twin, or is unclean in the ``.ipynb``.

    Parameters
    ----------
    ipynb, py : Path
        ``notebooks/NN_slug.ipynb`` and ``notebooks/NN_slug.py`` (percent format).

    Returns
    -------
    list of str
        One line per problem; empty when the pair is in step: the same cells (type, source,
        tags) in the same order, the pairing metadata, no outputs and no execution counts.
    """
    import jupytext

    nb, text = jupytext.read(ipynb), jupytext.read(py, fmt="py:percent")
    problems = []
    formats = nb.metadata.get("jupytext", {}).get("formats")
    if formats != PAIR_FORMATS:
        problems.append(f"{ipynb.name}: jupytext.formats is {formats!r}, not {PAIR_FORMATS!r}")
    for i, cell in enumerate(nb.cells):
        unclean = cell.get("outputs") or cell.get("execution_count") is not None
        if cell.cell_type == "code" and unclean:
            problems.append(f"{ipynb.name}: cell {i} has outputs or an execution count")
    if len(nb.cells) != len(text.cells):
        problems.append(f"{len(nb.cells)} cells in {ipynb.name}, {len(text.cells)} in {py.name}")
    for i, (a, b) in enumerate(zip(nb.cells, text.cells, strict=False)):  # (lengths: see above)
        for what, key in (("type", "cell_type"), ("source", "source"), ("tags", "tags")):
            mine, theirs = (c.metadata.get("tags", []) if key == "tags" else c[key] for c in (a, b))
            if mine != theirs:
                line = str(theirs).strip().splitlines()[:1] or [""]
                problems.append(f"cell {i}: the {what} differs ({py.name}: {line[0]!r})")
    return problems


def check_pairs(folder: Path | None = None) -> dict[str, list[str]]:
    """Check every jupytext pair of ``folder`` (default ``<project>/notebooks``).

    Returns
    -------
    dict
        ``{notebook stem: [problems]}`` for the notebooks out of step (a twin missing, cells that
        differ, an unclean ``.ipynb``); empty when all are in step. See :func:`pair_problems`.
    """
    folder = Path(folder) if folder is not None else paths.project_root() / "notebooks"
    stems = sorted({p.stem for e in ("ipynb", "py") for p in folder.glob(f"{NOTEBOOK_GLOB}.{e}")})
    out = {}
    for stem in stems:
        ipynb, py = folder / f"{stem}.ipynb", folder / f"{stem}.py"
        missing = [f"{p.name} is missing" for p in (ipynb, py) if not p.exists()]
        problems = missing or pair_problems(ipynb, py)
        if problems:
            out[stem] = problems
    return out


def fix_command(folder: Path, stem: str, problems: list[str]) -> str:
    """The shell command that brings the pair ``stem`` of ``folder`` back in step."""
    where = os.path.relpath(folder / stem)  # as typed from here: notebooks/NN_x
    if f"{stem}.py is missing" in problems:
        return f"jupytext --set-formats {PAIR_FORMATS} {where}.ipynb"
    if f"{stem}.ipynb is missing" in problems:
        return f"jupytext --set-formats {PAIR_FORMATS} {where}.py"
    fix = f"jupytext --sync {where}.py"
    if any("outputs" in p for p in problems):
        fix += f" && jupyter nbconvert --clear-output --inplace {where}.ipynb"
    return fix


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m flamenco_lib.notebook check-pairs [--dir notebooks]``: exit 0 when every pair
    is in step, else 1 with the notebooks out of step and the command that fixes each."""
    parser = argparse.ArgumentParser(prog="python -m flamenco_lib.notebook")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check-pairs", help="every NN_*.ipynb in step with its .py twin")
    check.add_argument("--dir", type=Path, help="default: <project>/notebooks")
    args = parser.parse_args(argv)
    folder = args.dir if args.dir is not None else paths.project_root() / "notebooks"
    bad = check_pairs(folder)
    if not bad:
        print(f"{folder}: every notebook is in step with its .py twin")
        return 0
    print(f"notebooks out of step with their .py twin ({len(bad)}):", file=sys.stderr)
    for stem, problems in bad.items():
        print(f"  {stem}", file=sys.stderr)
        for p in problems:
            print(f"    {p}", file=sys.stderr)
        print(f"    fix: {fix_command(folder, stem, problems)}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
