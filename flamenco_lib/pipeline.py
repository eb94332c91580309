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
- inputs or settings changed since the last run: it trains from the start (resuming would continue
  with the old data); its checkpoints are removed, but a trained model is never deleted: the
  previous ``final/`` is kept as ``final-<fingerprint>/`` with its log, and a message says where;
- never trained: it trains.

The fingerprint names files by where they lie relative to the data folder (``$DATA/...``,
``FLAMENCO_DATA``) or the project (``$ROOT/...``), never by absolute path: a project or data folder
moved elsewhere (another disk, Google Drive) is still up to date.

A stage trained before fingerprints were saved (no ``run_stage.json``) falls back to modification
times: it is up to date when its final model is newer than its config, manifests and starting model.
``python -m flamenco_lib train`` saves the fingerprint too.

Notebooks: ``07_stage1_flamenco.ipynb``, ``08_stage2_common_voice.ipynb``, ``09_stage3_prompts.ipynb``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from dataclasses import asdict
from pathlib import Path

from . import training
from .errors import FlamencoError
from .hashing import sha256_of
from .paths import data_dir, project_root

__all__ = [
    "CACHES",
    "StageNotTrained",
    "clean_cache",
    "cleanable",
    "fingerprint",
    "inputs_of",
    "keep_previous",
    "portable",
    "run_stage",
    "save_fingerprint",
    "why_train",
]
logger = logging.getLogger(__name__)

SETTINGS = "run_stage.json"  # next to train_log.json: the fingerprint of the last run
# config keys added after runs were fingerprinted, with the value those runs had (their default)
ADDED_KEYS = {
    "freeze_decoder": False,
    "speed_perturb": None,
    "wise_ft": None,
    "spec_augment": None,
}
ADDED_SOURCE_KEYS = {"balance": None}  # keys a training or eval source gained since


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


def portable(path: str | Path) -> str:
    """``path`` as the fingerprint stores it: ``$DATA/<relative>`` under the data folder,
    ``$ROOT/<relative>`` under the project, else as given (a hub id, a size, a folder elsewhere)."""
    p = Path(path)
    if not p.is_absolute():
        return str(path)
    for tag, base in (("$DATA", data_dir()), ("$ROOT", project_root())):
        try:
            return f"{tag}/{p.resolve().relative_to(Path(base).resolve()).as_posix()}"
        except ValueError:
            continue
    return str(path)


def _settings(cfg: training.StageConfig) -> dict:
    """The resolved config (profile and overrides applied) as JSON, its paths :func:`portable`;
    the file's own path left out."""
    return _portable_settings({k: v for k, v in asdict(cfg).items() if k != "source_file"})


def fingerprint(cfg: training.StageConfig) -> dict:
    """What a stage's result depends on: its resolved settings and the sha256 of every input
    (manifests, starting model folder) except the config file, whose content is the settings."""
    return {
        "settings": _settings(cfg),
        "inputs": {portable(p): sha256_of(p) for p in inputs_of(cfg)[1:] if p.exists()},
    }


def save_fingerprint(cfg: training.StageConfig) -> Path:
    """Write the stage's :func:`fingerprint` to ``<output_dir>/run_stage.json`` (before training)."""
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f"{SETTINGS}.{os.getpid()}.tmp"  # each process of a multi-process run its own
    tmp.write_text(json.dumps(fingerprint(cfg), indent=1), encoding="utf-8")
    tmp.replace(out / SETTINGS)
    return out / SETTINGS


class StageNotTrained(FlamencoError, FileNotFoundError):
    """A stage starts from a previous stage's model that is not trained yet."""


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
        before = {
            portable(p): digest for p, digest in old["inputs"].items()
        }  # older files: absolute paths
        changed = [p for p, digest in now["inputs"].items() if before.get(p) != digest]
        if changed:
            return f"{changed[0]} changed since the last run"
        if _portable_settings(old["settings"]) != now["settings"]:
            return "the settings (config, profile or overrides) differ from the last run"
        return None if done else INTERRUPTED
    # trained before fingerprints were saved: modification times decide
    since = min(_mtime(final), _mtime(log)) if done else max(map(_mtime, checkpoints))
    changed = [p for p in inputs_of(cfg) if _mtime(p) >= since]
    if changed:
        return f"{changed[0]} changed since the last run"
    if old is not None and _portable_settings(old) != _settings(cfg):
        return "the settings (config, profile or overrides) differ from the last run"
    return None if done else INTERRUPTED


def _portable_settings(settings: dict) -> dict:
    """Settings (a config as a dict, or as an older fingerprint saved them, with absolute paths)
    as JSON values, their paths :func:`portable`; a key added to the configs since (:data:`ADDED_KEYS`)
    gets the value the older runs had."""
    d = json.loads(json.dumps(settings))
    for key, value in ADDED_KEYS.items():
        d.setdefault(key, value)
    for s in [*d.get("train", []), *([d["eval"]] if d.get("eval") else [])]:
        s["manifest"] = portable(s["manifest"])
        for key, value in ADDED_SOURCE_KEYS.items():
            s.setdefault(key, value)
    for key in ("output_dir", "model"):
        if key in d:
            d[key] = portable(d[key])
    return d


def keep_previous(out: Path) -> Path | None:
    """Move the trained model of ``out`` (``final/`` and its ``train_log.json``, ``run_stage.json``)
    to ``out/final-<fingerprint>/`` before the stage trains again on other inputs; returns that
    folder, or None when there was no trained model. Checkpoints (weights and optimiser state of
    an unfinished run) are removed: they would only resume the old run."""
    for old in out.glob("checkpoint-*"):
        shutil.rmtree(old, ignore_errors=True)
    final = out / "final"
    if not (final / "config.json").exists():
        shutil.rmtree(final, ignore_errors=True)
        (out / "train_log.json").unlink(missing_ok=True)
        return None
    saved = out / SETTINGS
    tag = hashlib.sha256(saved.read_bytes() if saved.exists() else b"").hexdigest()[:8]
    dest = out / f"final-{tag}"
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(final, dest)
    for name in ("train_log.json", SETTINGS):
        if (out / name).exists():
            os.replace(out / name, dest / name)
    return dest


def run_stage(
    config: str | Path, *, profile: str, overrides: dict | None = None, progress: bool = True
) -> dict:
    """Train the stage of ``config`` (``configs/stage1.yaml``...) with ``profile`` unless its saved
    run is up to date (:func:`why_train`); log one line saying which and why.

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
        raise StageNotTrained(
            f"{config}: the model it starts from, {cfg.model}, is not trained yet; "
            "run the previous stage first"
        )
    reason = why_train(cfg)
    if reason is None:
        logger.info(
            "%s: up to date, not trained again (%s: same settings and inputs as its last run)",
            cfg.name,
            out / "train_log.json",
        )
        return json.loads((out / "train_log.json").read_text(encoding="utf-8"))
    logger.info("%s: training, %s (%s)", cfg.name, reason, out)
    if reason not in (
        NOT_TRAINED,
        INTERRUPTED,
    ):  # a fresh start: never resume a checkpoint of other inputs
        kept = keep_previous(out)
        if kept is not None:
            logger.info(
                "%s: the model trained on the old inputs is kept in %s (delete it when you no longer "
                "need it)",
                cfg.name,
                kept,
            )
    save_fingerprint(cfg)
    return training.train_stage(cfg, resume=True, progress=progress)


CACHES = ("activations", "encoder-prefix", "bench-ct2")  # under data/cache: recomputed on demand


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def cleanable(root: Path | None = None) -> list[Path]:
    """What may be deleted without losing a result: the caches of :data:`CACHES` (computed again
    when a run needs them) and the checkpoints (weights and optimiser state, ~740 MB each for
    whisper-base) of every **finished** run under ``<data>/checkpoints``, i.e. beside a
    ``final/`` model and a ``train_log.json``. An unfinished run keeps its checkpoints (it
    resumes from them); trained models (``final/``, ``final-<fingerprint>/``) are never listed."""
    root = root or data_dir()
    found = [root / "cache" / name for name in CACHES if (root / "cache" / name).exists()]
    for log in sorted((root / "checkpoints").rglob("train_log.json")):
        run = log.parent
        if (run / "final" / "config.json").exists():
            found += sorted(p for p in run.glob("checkpoint-*") if p.is_dir())
    return found


def clean_cache(root: Path | None = None, *, dry_run: bool = False) -> list[tuple[Path, int]]:
    """Delete :func:`cleanable` (or only list it, ``dry_run``); returns each path with its size
    in bytes."""
    freed = []
    for path in cleanable(root):
        freed.append((path, _size(path)))
        if not dry_run:
            shutil.rmtree(path)
            logger.info("removed %s (%.0f MB)", path, freed[-1][1] / 1e6)
    return freed
