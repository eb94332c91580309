"""Stage-1 ablations: what makes a fine-tuned model help real voices it never heard.

Each ablation is ``configs/stage1.yaml`` with one change (:data:`ABLATIONS`: keys that replace the
config's), trained into ``data/checkpoints/ablations/<name>`` and scored on the **dev** sets
(:data:`DEV_SETS`: the synthetic cante dev lyrics, and the Drascula dev speakers sung and spoken,
voices no model trains on). The choice of the stage-1 recipe is made here, on dev; the test sets
of :data:`flamenco_lib.grid.TEST_SETS` are only read once the recipe is fixed.

``python -m flamenco_lib ablate [NAME...]`` trains what is missing (an ablation whose settings and
inputs are unchanged is not trained again, as in :mod:`flamenco_lib.pipeline`), evaluates it and
prints :func:`ablation_table`. About 10 minutes per ablation on 2 cores with native bf16.

Notebook: ``07_stage1_flamenco.ipynb`` (the ablation table).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from .data.corpus import TRAINING_VOICES_FORMANT_RATIO, WIDE_SUNG_CORPORA
from .grid import config_file
from .paths import results_dir

logger = logging.getLogger(__name__)

_CANTE = "data/corpora/cante/manifest.jsonl"
_REAL_SUNG = (
    "data/corpora/cante-drascula/manifest.jsonl",
    "data/corpora/cante-real/manifest.jsonl",
)
_REAL_SPOKEN = (
    "data/corpora/speech-drascula/manifest.jsonl",
    "data/corpora/speech/manifest.jsonl",
)


# The training speakers sung with a wider formant shift than the generator's (0.80-1.25 against
# 0.88-1.15: more vocal tracts from the same few voices, e.g. a man's voice shifted towards a
# woman's): sung manifest -> (the speech it sings, the formant range). The same clips, seeds and
# melodies as cante-drascula and cante-real, only the ratio differs; `make corpora` builds them
# (chosen: configs/stage1.yaml trains on them), run_ablations renders them when missing.
WIDE_FORMANTS = TRAINING_VOICES_FORMANT_RATIO
SUNG_CORPORA: dict[str, tuple[str, tuple[float, float]]] = {
    f"data/corpora/{name}/manifest.jsonl": (f"data/corpora/{speech}/manifest.jsonl", WIDE_FORMANTS)
    for name, speech in sorted(WIDE_SUNG_CORPORA.items())  # cante-drascula-wide, cante-real-wide
}


def _sources(
    synthetic: float, sung: float = 0.0, spoken: float = 0.0, sung_from=_REAL_SUNG
) -> list[dict]:
    """Training sources: the synthetic cante, the training speakers' real voices sung (the
    Drascula training characters and the asterisk speaker, half each; ``sung_from``) and the
    same voices spoken (replay of real speech), with these shares of the batch slots."""
    out = [{"manifest": _CANTE, "split": "train", "weight": synthetic}]
    for share, manifests in ((sung, sung_from), (spoken, _REAL_SPOKEN)):
        if share > 0:
            out += [{"manifest": m, "split": "train", "weight": share / 2} for m in manifests]
    return out


_K2 = {"cached_layers": 2}  # the conv stem and encoder layers 0-1 frozen and cached (before)
_R3015 = _sources(0.55, sung=0.3, spoken=0.15)  # real voices sung 30%, spoken 15%

# configs/stage1.yaml's recipe since 2026-12-06 (the wider-formants row below): real voices sung
# 30% from the -wide corpora, real speech 15%, every layer trained; the rows after it build on it
_RECIPE = {
    "train": _sources(0.55, sung=0.3, spoken=0.15, sung_from=tuple(SUNG_CORPORA)),
    "cached_layers": 0,
}


def _balance(train: list[dict]) -> list[dict]:
    """``train`` with each Drascula source drawn by character (``balance: singer``)."""
    return [{**s, "balance": "singer"} if "drascula" in s["manifest"] else s for s in train]


# name -> keys replacing configs/stage1.yaml's (its cpu profile); one change at a time from the
# recipes: synthetic only (the old stage 1), real sung 30%, real sung 30% + real speech 15%, each
# with layers 0-1 frozen, and the last with every layer trained (configs/stage1.yaml today)
ABLATIONS: dict[str, dict] = {
    "synthetic only": {"train": _sources(1.0), **_K2},
    "real sung 30%": {"train": _sources(0.7, sung=0.3), **_K2},
    "real sung 30% + real speech 15%": {"train": _R3015, **_K2},
    "real sung 30%, decoder frozen": {
        "train": _sources(0.7, sung=0.3),
        "freeze_decoder": True,
        **_K2,
    },
    # the recipe of configs/stage1.yaml with encoder layers 0-3 frozen and cached (not 0-1): is
    # the cheaper step (about 0.6x the time) as good on the dev speakers?
    "real sung 30% + real speech 15%, layers 0-3 frozen": {"train": _R3015, "cached_layers": 4},
    # the recipe with every encoder layer trained (nothing cached; a step about 1.5x as long):
    # freezing layers 0-3 instead of 0-1 cost the most, does training layers 0-1 too help? (yes:
    # configs/stage1.yaml since 2026-12-05)
    "real sung 30% + real speech 15%, all layers trained": {"train": _R3015, "cached_layers": 0},
    # half as many real voices sung again (45%; at 30% the 90 steps draw about 216 of the 920
    # lines): does seeing more of them help the dev speakers? (No: all within noise.)
    "real sung 45% + real speech 15%, all layers trained": {
        "train": _sources(0.40, sung=0.45, spoken=0.15),
        "cached_layers": 0,
    },
    # two thirds of the steps (the report's budget): what do the last 30 steps buy on dev?
    "real sung 30% + real speech 15%, 60 steps": {"train": _R3015, "steps": 60, **_K2},
    # the same 60 steps at twice the learning rate: does a larger step buy back the last 30?
    "real sung 30% + real speech 15%, 60 steps, lr 1e-4": {
        "train": _R3015,
        "steps": 60,
        "lr": 1.0e-4,
        **_K2,
    },
    # how far the model moves: rank-32 LoRA adapters on every projection of every layer at
    # LoRA's usual rate (1e-3): does a model that moves less keep real speech? (No: it moves
    # further, cante dev -5.5, real speech +7.0; README "Real voices".)
    "real sung 30% + real speech 15%, LoRA r 32, lr 1e-3": {
        "train": _R3015,
        "cached_layers": 0,
        "lora": {"r": 32, "alpha": 64},
        "lr": 1.0e-3,
    },
    # a broader voice perturbation: the recipe with the training speakers sung with a wider
    # formant shift (SUNG_CORPORA), one generator setting changed: do more vocal tracts from the
    # same few voices carry the gain over to speakers no model trains on? (Every dev set a little
    # better, none beyond noise, real speech back at zero-shot's level: configs/stage1.yaml since
    # 2026-12-06, README "Real voices".)
    "real sung 30% (formants 0.80-1.25) + real speech 15%, all layers trained": _RECIPE,
    # LoRA as above on configs/stage1.yaml's recipe at a fifth of the rate, to move less (No: cante
    # -0.1, real voices sung +2.6, real speech +1.1, within noise; 787 s of training against 610.)
    "formants 0.80-1.25, LoRA r 32, lr 2e-4": {
        **_RECIPE,
        "lora": {"r": 32, "alpha": 64},
        "lr": 2e-4,
    },
    # speaking rate, the other broader perturbation the real-voices issue names: configs/stage1.yaml
    # (the row above) with every clip played at a speed drawn from 0.9-1.1 (Kaldi's range), its
    # rate, pitch and formants moved together: pseudo-speakers from the few real ones (No: real
    # voices sung +3.7, real speech +1.1, cante -1.2, none beyond noise; README "Real voices".)
    "formants 0.80-1.25, speed 0.9-1.1": {**_RECIPE, "speed_perturb": [0.9, 1.1]},
    # SpecAugment: bands of frames and of Mel channels masked, the usual regulariser; channel masks
    # hide formants, a voice's marks (No: real voices sung +7.0 [+1.3, +13.3]; frames only: cante
    # -2.2, real voices sung -0.7, real speech +2.4, none beyond noise; README "Real voices".)
    "formants 0.80-1.25, SpecAugment": {**_RECIPE, "spec_augment": {"time": 0.05, "freq": 0.1}},
    "formants 0.80-1.25, SpecAugment, frames only": {**_RECIPE, "spec_augment": {"time": 0.05}},
    # which voices the real share teaches: 74% of the Drascula training lines are the
    # protagonist's; with `balance: singer` each training character is drawn equally often
    # (sung and spoken), so the real share is four Castilian voices, not mostly one (No: real
    # voices sung +2.4, real speech +2.4, cante -2.2, none beyond noise; stages 2-3 do balance.)
    "formants 0.80-1.25, Drascula characters balanced": {
        **_RECIPE,
        "train": _balance(_RECIPE["train"]),
    },
}


_WISE_08 = {"model": "base", "alpha": 0.8}  # a fifth of the way back to whisper-base
START = "<the stage's starting model>"  # a wise_ft model: the chain's stage 1 for stage 2
_HALF_TO_START = {"model": START, "alpha": 0.5}


def _config_train(stage: str) -> list[dict]:
    """The training sources of ``configs/<stage>.yaml`` as the chain ablations were measured
    against them: without ``balance`` (the configs draw the Drascula characters equally often
    since 2026-12-06, the row "stages 2-3, Drascula characters balanced")."""
    import yaml

    train = yaml.safe_load(config_file(stage).read_text(encoding="utf-8"))["train"]
    return [{k: v for k, v in s.items() if k != "balance"} for s in train]


def _stage2_train(asterisk: float, drascula: float, cante: float, sung: float) -> list[dict]:
    """Stage 2's sources with these weights: the asterisk speaker's and the Drascula training
    characters' speech, the replay of synthetic cante and of each real-voices sung corpus
    (``sung`` each); a source of weight 0 left out."""
    weights = {
        _REAL_SPOKEN[1]: asterisk,
        _REAL_SPOKEN[0]: drascula,
        _CANTE: cante,
        **{m: sung for m in SUNG_CORPORA},
    }
    return [{"manifest": m, "weight": w} for m, w in weights.items() if w > 0]


def _swap_speech(stage: str) -> list[dict]:
    """The training sources of ``configs/<stage>.yaml`` with the Drascula characters' speech
    replaced by the asterisk speaker's (its weight added to hers)."""
    train = _config_train(stage)
    drascula = [s for s in train if s["manifest"] == _REAL_SPOKEN[0]]
    out = [dict(s) for s in train if s["manifest"] != _REAL_SPOKEN[0]]
    for s in out:
        if s["manifest"] == _REAL_SPOKEN[1]:
            s["weight"] += sum(d["weight"] for d in drascula)
    return out


# Changes to stages 2 and 3. On the dev speakers stage 2 undid what stage 1 gained on real voices
# (real voices sung +5.1, real speech +4.6 points, both intervals above 0; stage 3 kept the loss on
# real speech: README "Real voices"): name -> {stage config: keys replacing that config's}. Both
# stages are trained from the project's stage 1 (data/checkpoints/stage1), each with its change,
# and the final model (stage 3) is scored on DEV_SETS beside stages 1, 2 and 3 of the configs.
CHAIN_ABLATIONS: dict[str, dict[str, dict]] = {
    # how far the later stages move: half the learning rate in both (No: real speech 40.3
    # against 39.9, real voices sung 84.4 against 86.3, within noise; README "Real voices".)
    "stages 2-3 at half the learning rate": {"stage2": {"lr": 1.0e-5}, "stage3": {"lr": 1.0e-5}},
    # which layers move: every encoder layer trained in both, as stage 1 (chosen on dev there)
    # (No: every real-voice set a little worse, within noise.)
    "stages 2-3, all layers trained": {
        "stage2": {"cached_layers": 0},
        "stage3": {"cached_layers": 0},
    },
    # which speech stage 2 learns: the Drascula training characters only (70%), without the
    # asterisk speaker (es-MX, telephone band), whose test prompts stage 2 mostly adapts to
    # (No: real speech of the dev speakers worse beyond noise, +4.4 [+1.2, +8.0].)
    "stage 2 without the asterisk speaker's speech": {
        "stage2": {"train": _stage2_train(asterisk=0, drascula=0.7, cante=0.2, sung=0.05)}
    },
    # the other way round: the asterisk speaker's speech only (70%), none of the Drascula
    # training characters (the more of their speech stage 2 learnt, the worse the held-out
    # characters' speech read: 7.5% in stage 1, 35% in stage 2, 70% above) (No: real speech
    # 41.0 and 39.4 against 39.9: their speech is not what costs the held-out speakers theirs.)
    "stage 2 without the Drascula characters' speech": {
        "stage2": {"train": _swap_speech("stage2")},
    },
    "stages 2-3 without the Drascula characters' speech": {
        "stage2": {"train": _swap_speech("stage2")},
        "stage3": {"train": _swap_speech("stage3")},
    },
    # which voices stage 2 learns: its Drascula speech (35%) is 74% the protagonist's; each
    # training character drawn equally often in stages 2 and 3, as `balance: singer` does
    # (Chosen, 2026-12-06: cante -0.1, real voices sung -2.6, real speech -1.1 against the
    # configs' stage 3, every set the right way, none beyond noise; the configs do so since.)
    "stages 2-3, Drascula characters balanced": {
        stage: {"train": _balance(_config_train(stage))} for stage in ("stage2", "stage3")
    },
    # stage 2 moved back a fifth of the way to whisper-base (wise_ft), stage 3 learning from there
    # (No: real speech -2.4, real voices sung +3.5, cante +1.6, none beyond noise.)
    "stage 2 moved back toward whisper-base (WiSE-FT 0.8)": {
        "stage2": {"train": _balance(_config_train("stage2")), "wise_ft": _WISE_08},
        "stage3": {"train": _balance(_config_train("stage3"))},
    },
    # stage 2 moved back halfway toward stage 1, which read the dev speakers better (No: cante
    # -0.9, real voices sung -0.4, real speech -0.9, within noise, but stage 3 learnt less: its own
    # previous line -2.2 [-7.4, +2.9] against stage 2 on the 71 dev verses, the configs' -5.1.)
    "stage 2 moved back toward stage 1 (WiSE-FT 0.5)": {"stage2": {"wise_ft": _HALF_TO_START}},
    # how much of stage 2 is the narrow offline speech: half of it (35% instead of 70%), the
    # replay of stage 1's sung mix in its proportions for the rest (No: real speech worse beyond
    # noise, +5.7 [+1.1, +10.1]; less of the offline speech does not keep general Spanish.)
    "stage 2 with half the speech (35%)": {
        "stage2": {"train": _stage2_train(asterisk=0.175, drascula=0.175, cante=0.43, sung=0.11)}
    },
    # the other way: more of it (85%), the Drascula characters balanced as the configs draw them
    # (No: against the balanced configs cante +1.0, real voices sung +1.5, real speech +0.4,
    # every set a little worse, none beyond noise.)
    "stage 2 with more speech (85%)": {
        "stage2": {
            "train": _balance(_stage2_train(asterisk=0.425, drascula=0.425, cante=0.1, sung=0.025))
        },
        "stage3": {"train": _balance(_config_train("stage3"))},
    },
}
# the models a chain ablation is read against, as evaluate_stages names them
CHAIN_REFERENCES = (
    ("stage 1 (configs)", "checkpoints/stage1"),
    ("stage 2 (configs)", "checkpoints/stage2"),
    ("stage 3 (configs)", "checkpoints/stage3"),
)
# (column key, manifest relative to the data folder, split): choose on these, never on test
DEV_SETS = (
    ("cante", "corpora/cante/manifest.jsonl", "dev"),
    ("real_sung", "corpora/cante-drascula/manifest.jsonl", "dev"),
    ("real_speech", "corpora/speech-drascula/manifest.jsonl", "dev"),
)
DEV_ITEMS = 50  # utterances per dev set (the Drascula dev speakers have 50 lines)


def slug(name: str) -> str:
    """A folder name for an ablation (``real sung 30% + real speech 15%`` -> ``real-sung-30pc-plus-real-speech-15pc``)."""
    s = name.replace("%", "pc").replace(",", "").replace("+", "plus").replace("=", "")
    return "-".join(s.split())


def ablation_dir() -> Path:
    """Where the ablations' dev runs live: ``data/results/ablations``."""
    return results_dir() / "ablations"


def run_ablations(
    names: list[str] | None = None,
    *,
    profile: str = "cpu",
    max_items: int | None = DEV_ITEMS,
    base: str = "base",
    progress: bool = True,
) -> pd.DataFrame:
    """Train (where needed) and evaluate the ablations ``names`` (default all) and zero-shot
    ``base`` on :data:`DEV_SETS`; return :func:`ablation_table`. Every ablation starts from
    ``base`` (``"base"``: the offline whisper-base, or a folder).

    Raises ``ValueError`` for a name not in :data:`ABLATIONS`."""
    from .pipeline import run_stage

    names = _known(names, ABLATIONS, "ablation")
    rows = [("zero-shot", base)]
    for name in names:
        _build_sung_corpora(ABLATIONS[name], progress=progress)
        out = f"data/checkpoints/ablations/{profile}/{slug(name)}"
        overrides = {**ABLATIONS[name], "output_dir": out, "eval": None}
        if base != "base":  # a local whisper-base folder (the notebooks' FROM_BASE)
            overrides["model"] = base
        if profile == "smoke":  # seconds: a few clips of each source, the profile's steps
            overrides["train"] = [{**s, "max_items": 8} for s in overrides.get("train", [])]
            overrides.pop("steps", None)
        logger.info("ablation %s: %s", name, json.dumps(ABLATIONS[name]))
        run_stage(config_file("stage1"), profile=profile, overrides=overrides, progress=progress)
        rows.append((name, out.removeprefix("data/")))
    return _score_on_dev(rows, profile=profile, max_items=max_items, progress=progress)


def run_chain_ablations(
    names: list[str] | None = None,
    *,
    profile: str = "cpu",
    max_items: int | None = DEV_ITEMS,
    base: str = "base",
    progress: bool = True,
) -> pd.DataFrame:
    """Train (where needed) stages 2 and 3 with each change of :data:`CHAIN_ABLATIONS` (``names``,
    default all) from the project's stage 1, into ``data/checkpoints/ablations/<profile>/<name>/``;
    score the final models, zero-shot and :data:`CHAIN_REFERENCES` (those trained) on
    :data:`DEV_SETS` (zero-shot: ``base``, as in :func:`run_ablations`); return
    :func:`ablation_table`. Raises ``ValueError`` for an unknown name
    and :class:`flamenco_lib.pipeline.StageNotTrained` when stage 1 is not trained yet."""
    from .paths import data_dir
    from .pipeline import run_stage

    names = _known(names, CHAIN_ABLATIONS, "chain ablation")
    smoke = profile == "smoke"
    refs = [
        (name, f"checkpoints/{'smoke/' if smoke else ''}{Path(folder).name}")
        for name, folder in CHAIN_REFERENCES
    ]
    rows = [("zero-shot", base), *(r for r in refs if (data_dir() / r[1] / "final").exists())]
    for name in names:
        out, model = f"data/checkpoints/ablations/{profile}/{slug(name)}", f"data/{refs[0][1]}"
        for stage in ("stage2", "stage3"):
            overrides = {**CHAIN_ABLATIONS[name].get(stage, {}), "eval": None}
            overrides |= {"model": model, "output_dir": f"{out}/{stage}"}
            if (overrides.get("wise_ft") or {}).get("model") == START:  # this profile's stage 1
                overrides["wise_ft"] = {**overrides["wise_ft"], "model": model}
            logger.info("chain ablation %s, %s: %s", name, stage, json.dumps(overrides))
            run_stage(config_file(stage), profile=profile, overrides=overrides, progress=progress)
            model = f"{out}/{stage}"
        rows.append((name, model.removeprefix("data/")))
    return _score_on_dev(rows, profile=profile, max_items=max_items, progress=progress)


def _known(names: list[str] | None, table: dict, what: str) -> list[str]:
    """``names`` (all of ``table`` when empty); ``ValueError`` naming the first unknown one."""
    names = list(table) if not names else names
    unknown = [n for n in names if n not in table]
    if unknown:
        raise ValueError(f"no {what} {unknown[0]!r}; choose from {', '.join(table)}")
    return names


def _score_on_dev(rows: list, *, profile: str, max_items: int | None, progress: bool):
    """Evaluate ``rows`` ((name, model folder) pairs) on :data:`DEV_SETS`; their table."""
    from .results import evaluate_stages

    sets = DEV_SETS
    if profile == "smoke":  # the tiny smoke corpora have no dev split (as in the smoke configs)
        sets = tuple((key, manifest, "train") for key, manifest, _ in DEV_SETS)
    evaluate_stages(rows, sets, max_items=max_items, root=ablation_dir(), progress=progress)
    return ablation_table([r[0] for r in rows])


def _build_sung_corpora(change: dict, *, progress: bool) -> None:
    """Render (or finish) the :data:`SUNG_CORPORA` an ablation trains on, as ``make corpora``
    does (:func:`flamenco_lib.data.corpus.build_wide_sung_corpus`), in the data folder."""
    from .data.corpus import build_wide_sung_corpus
    from .paths import data_dir

    for source in change.get("train", []):
        if source["manifest"] in SUNG_CORPORA:
            name = Path(source["manifest"]).parent.name
            build_wide_sung_corpus(data_dir() / "corpora", name, progress=progress)


def ablation_table(names: list[str] | None = None, *, root: Path | None = None) -> pd.DataFrame:
    """The dev WERs (percent, 95% intervals) of zero-shot and of each ablation evaluated so far:
    one row per model, columns ``<set>_wer``, ``<set>_wer_lo``, ``<set>_wer_hi``, ``<set>_n`` for
    each of :data:`DEV_SETS`. Reads results files only; empty when nothing was run."""
    from .results import results_table

    names = names or ["zero-shot", *ABLATIONS]
    table = results_table([(n,) for n in names], DEV_SETS, root=root or ablation_dir())
    keep = ["model"] + [
        c for c in table.columns if c.endswith(("_wer", "_wer_lo", "_wer_hi", "_n"))
    ]
    return table[keep] if not table.empty else table


def ablation_runs(names: list[str] | None = None, *, root: Path | None = None) -> pd.DataFrame:
    """:func:`ablation_table` in long form, one row per (model, dev set): ``model, test_set, n,
    wer, wer_lo, wer_hi``, what :func:`flamenco_lib.plotting.plot_stage_comparison` draws."""
    wide = ablation_table(names, root=root)
    rows = [
        {
            "model": r["model"],
            "test_set": key,
            "n": r[f"{key}_n"],
            **{s: r[f"{key}_{s}"] for s in ("wer", "wer_lo", "wer_hi")},
        }
        for r in wide.to_dict("records")
        for key, _, _ in DEV_SETS
        if pd.notna(r.get(f"{key}_wer"))
    ]
    return pd.DataFrame(rows, columns=["model", "test_set", "n", "wer", "wer_lo", "wer_hi"])


def chain_runs(root: Path | None = None) -> pd.DataFrame:
    """:func:`ablation_runs` of zero-shot, the configs' stages 1-3 (:data:`CHAIN_REFERENCES`) and
    every chain ablation evaluated so far (notebook 08)."""
    names = ["zero-shot", *(name for name, _ in CHAIN_REFERENCES), *CHAIN_ABLATIONS]
    return ablation_runs(names, root=root)


def show_dev_runs(
    runs: pd.DataFrame, *, name: str | None, title: str, caption: str, message: str
) -> bool:
    """Draw dev runs (:func:`ablation_runs`, :func:`chain_runs`) beside each other with their
    intervals, save the figure ``name`` (None: not saved) and print their table; or, when none was run, log
    ``message`` (which command makes them). Notebooks 07 and 08. Returns whether it drew."""
    import matplotlib.pyplot as plt

    from . import plotting
    from .notebook import show_or_explain
    from .results import to_markdown

    def draw(table):
        _, ax = plt.subplots(figsize=(10, 3.6))
        return plotting.plot_stage_comparison(table, ax=ax, title=title)

    drawn = show_or_explain(runs, draw, name=name, caption=caption, message=message)
    if drawn:
        print(to_markdown(ablation_table(list(runs["model"].unique())).round(1)))
    return drawn
