"""Run the fine-tuning stages once: a stage whose inputs did not change is not trained again.

The experiment notebooks (07-09) and ``make report`` are rerun after a failure, and notebook 09
needs stages 1 and 2 before it can start. :func:`run_stage` trains a stage only when it must:

- its final model and ``train_log.json`` exist, and the stage's **fingerprint** is the one saved
  when it was trained: the resolved settings (the config with profile and overrides applied) and
  the sha256 of every input (each train and eval manifest, the files of the model it starts from:
  the previous stage's final model): nothing is trained, the saved summary is returned. Contents,
  not modification times, decide: a ``git pull`` that rewrites a config's comments or a corpus
  rebuilt identically retrains nothing;
- an interrupted run (checkpoints, no ``train_log.json``): it resumes from its newest checkpoint;
- inputs or settings changed since the last run: its checkpoints and final model are removed and it
  trains from the start (resuming from them would continue with the old data);
- never trained: it trains.

A stage trained before fingerprints were saved (no ``run_stage.json``) falls back to modification
times: it is up to date when its final model is newer than its config, manifests and starting model.
``python -m flamenco_lib train`` saves the fingerprint too.

:func:`stage_rows` gives the rows of :data:`flamenco_lib.results.STAGES` with each model where its
config saves it in a profile (the ``smoke`` models live in ``checkpoints/smoke/``), for
:func:`flamenco_lib.results.evaluate_stages`.

Notebooks: ``07_stage1_flamenco.ipynb``, ``08_stage2_common_voice.ipynb``, ``09_stage3_prompts.ipynb``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path

from . import training
from .paths import project_root

SETTINGS = "run_stage.json"  # next to train_log.json: the fingerprint of the last run


def _mtime(path: Path) -> float:
    """Modification time of a file, or of the newest file in a folder (a model folder)."""
    files = [p for p in path.iterdir() if p.is_file()] if path.is_dir() else []
    return max([path.stat().st_mtime, *(p.stat().st_mtime for p in files)])


def inputs_of(cfg: training.StageConfig) -> list[Path]:
    """What a stage's model depends on: its config file, its manifests, and the model it starts
    from when that is a folder (a previous stage's final model, a checkpoint)."""
    sources = [*cfg.train, *([cfg.eval] if cfg.eval else [])]
    paths = [Path(cfg.source_file), *(Path(s.manifest) for s in sources)]
    return paths + ([Path(cfg.model)] if Path(cfg.model).is_dir() else [])


def _settings(cfg: training.StageConfig) -> dict:
    """The resolved config (profile and overrides applied) as JSON; the file's own path left out."""
    return json.loads(json.dumps({k: v for k, v in asdict(cfg).items() if k != "source_file"}))


def sha256_of(path: Path) -> str:
    """sha256 of a file, or of a folder's files (names and contents, sorted): a model folder."""
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        h.update(str(f.relative_to(path)).encode() if path.is_dir() else b"")
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def fingerprint(cfg: training.StageConfig) -> dict:
    """What a stage's result depends on: its resolved settings and the sha256 of every input
    (manifests, starting model folder) except the config file, whose content is the settings."""
    return {"settings": _settings(cfg),
            "inputs": {str(p): sha256_of(p) for p in inputs_of(cfg)[1:] if p.exists()}}


def save_fingerprint(cfg: training.StageConfig) -> Path:
    """Write the stage's :func:`fingerprint` to ``<output_dir>/run_stage.json`` (before training)."""
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f"{SETTINGS}.{os.getpid()}.tmp"  # each process of a multi-process run its own
    tmp.write_text(json.dumps(fingerprint(cfg), indent=1), encoding="utf-8")
    tmp.replace(out / SETTINGS)
    return out / SETTINGS


NOT_TRAINED, INTERRUPTED = "not trained yet", "an interrupted run: resuming it"


def why_train(cfg: training.StageConfig) -> str | None:
    """Why the stage must be trained (a sentence), or None when its saved run is up to date."""
    out = Path(cfg.output_dir)
    final, log, saved = out / "final" / "config.json", out / "train_log.json", out / SETTINGS
    checkpoints = list(out.glob("checkpoint-*"))
    done = final.exists() and log.exists()
    if not (done or checkpoints):
        return NOT_TRAINED
    old = json.loads(saved.read_text(encoding="utf-8")) if saved.exists() else None
    if old is not None and "inputs" in old:  # contents decide
        now = fingerprint(cfg)
        changed = [p for p, digest in now["inputs"].items() if old["inputs"].get(p) != digest]
        if changed:
            return f"{changed[0]} changed since the last run"
        if old["settings"] != now["settings"]:
            return "the settings (config, profile or overrides) differ from the last run"
        return None if done else INTERRUPTED
    # trained before fingerprints were saved: modification times decide
    since = min(_mtime(final), _mtime(log)) if done else max(map(_mtime, checkpoints))
    changed = [p for p in inputs_of(cfg) if _mtime(p) >= since]
    if changed:
        return f"{changed[0]} changed since the last run"
    if old is not None and old != _settings(cfg):
        return "the settings (config, profile or overrides) differ from the last run"
    return None if done else INTERRUPTED


def run_stage(config: str | Path, *, profile: str, overrides: dict | None = None, progress: bool = True) -> dict:
    """Train the stage of ``config`` (``configs/stage1.yaml``...) with ``profile`` unless its saved
    run is up to date (:func:`why_train`); print one line saying which and why.

    Parameters
    ----------
    config : path
        A stage config (:func:`flamenco_lib.training.load_config`).
    profile : {"smoke", "cpu", "gpu"}
        The config's profile.
    overrides : dict, optional
        Keys that replace the config's (e.g. ``{"model": folder}``: a local whisper-base).

    Returns
    -------
    dict
        The stage's summary, as ``<output_dir>/train_log.json`` holds it.
    """
    cfg = training.load_config(config, profile=profile, overrides=overrides)
    out = Path(cfg.output_dir)
    if Path(cfg.model).parts[:1] == ("data",):  # load_config resolves the paths that exist
        raise FileNotFoundError(f"{config}: the model it starts from, {cfg.model}, is not trained yet; "
                                "run the previous stage first")
    reason = why_train(cfg)
    if reason is None:
        print(f"{cfg.name}: up to date, not trained again ({out / 'train_log.json'} is newer than its config, "
              "manifests and starting model)", flush=True)
        return json.loads((out / "train_log.json").read_text(encoding="utf-8"))
    print(f"{cfg.name}: training, {reason} ({out})", flush=True)
    if reason not in (NOT_TRAINED, INTERRUPTED):  # a fresh start: never resume a checkpoint of other inputs
        for old in [*out.glob("checkpoint-*"), out / "final"]:
            shutil.rmtree(old, ignore_errors=True)
        (out / "train_log.json").unlink(missing_ok=True)
    save_fingerprint(cfg)
    return training.train_stage(cfg, resume=True, progress=progress)


def config_file(name: str) -> Path:
    """The project's stage config ``configs/<name>.yaml`` (``stage1``, ``stage1_spoken``, ``stage2``...)."""
    return project_root() / "configs" / f"{name}.yaml"


def zero_shot_model(profile: str) -> str:
    """The Whisper the stages start from in ``profile`` (``configs/stage1.yaml``'s ``model``):
    ``base`` on ``cpu``, ``small`` on ``gpu``. The zero-shot row compares with this model.
    Read from the YAML alone: the notebooks ask before any corpus is built."""
    import yaml

    raw = yaml.safe_load(config_file("stage1").read_text(encoding="utf-8")) or {}
    chosen = (raw.get("profiles") or {}).get(profile) or {}
    return str(chosen.get("model", raw.get("model", "base")))


def stage_rows(*labels: str, profile: str, base: str = "base") -> list[tuple]:
    """The rows of :data:`flamenco_lib.results.STAGES` named by ``labels`` (in STAGES order), each
    model replaced by the ``output_dir`` its config (``checkpoints/stage2`` -> ``configs/stage2.yaml``)
    has in ``profile``, and ``"base"`` by ``base`` (e.g. a local whisper-base folder)."""
    from .results import STAGES

    unknown = set(labels) - {label for label, *_ in STAGES}
    if unknown:
        raise ValueError(f"no row {min(unknown)!r} in flamenco_lib.results.STAGES")
    rows = []
    for label, model, *opts in STAGES:
        if label in labels:
            if model != "base":
                model = training.load_config(config_file(Path(model).name), profile=profile).output_dir
            rows.append((label, base if model == "base" else model, *opts))
    return rows
