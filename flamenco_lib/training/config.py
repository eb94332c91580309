"""A stage's settings: one YAML file per stage in ``configs/``, with overrides per profile.

:func:`load_config` reads a file into a :class:`StageConfig` (model, data sources and their mixing
weights, optimiser and schedule, steps, batch, precision, freezing, evaluation, seed, output
folder), applies the profile's overrides and checks every key: a bad key or value is a
:class:`ConfigError` naming the file and the key. ``configs/README.md`` lists the keys.

Notebook: ``07_stage1_flamenco.ipynb``.
"""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path

import torch

from ..errors import FlamencoError
from ..paths import PROFILES, project_root

PRECISIONS = ("fp32", "bf16", "fp16", "auto")
# the widest speed perturbation a config may ask for (``speed_perturb``): Kaldi's recipes use
# 0.9-1.1 (Ko et al., "Audio augmentation for speech recognition", 2015); beyond about 0.8-1.25
# a voice no longer sounds like a human one
SPEED_LIMITS = (0.8, 1.25)


LORA_DEFAULTS = {
    "r": 16,
    "alpha": 32,
    "dropout": 0.05,
    "target_modules": ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"],
}


class ConfigError(FlamencoError, ValueError):
    """A stage config that cannot be used; the message names the file and the key."""


@dataclass
class Source:
    manifest: str
    split: str = "train"
    weight: float = 1.0
    max_items: int | None = None
    balance: str | None = None  # a manifest field (singer): each of its values drawn equally often


@dataclass
class StageConfig:
    name: str
    model: str = "base"  # size, hub id, checkpoint folder, or a previous stage's output_dir
    train: list = field(default_factory=list)  # of Source
    eval: Source | None = None
    steps: int = 100
    batch_size: int = 8
    lr: float = 3e-5
    weight_decay: float = 0.0
    warmup_steps: int = 10
    schedule: str = "linear"  # linear | constant
    max_grad_norm: float = 1.0
    precision: str = "fp32"
    cached_layers: int = 2  # frozen + cached lower encoder layers (0 = full fine-tuning)
    freeze_decoder: bool = False  # train the encoder only: the decoder's language model stays
    gradient_checkpointing: bool = False
    eval_every: int = 0  # steps; 0 = only at the end
    eval_batch_size: int = 8
    save_every: int = 50
    seed: int = 0
    output_dir: str = "data/checkpoints/stage"
    label_field: str = "text"  # what is sung
    language: str = "es"
    timestamp_share: float = 0.0  # share of examples labelled with time tokens (batches.voice_span)
    log_every: int = 10
    prompt_kinds: list = field(default_factory=list)  # stage 3: palo, previous, lexicon, catalogue
    prompt_drop: float = 0.5  # probability that a training example gets no prompt
    prompt_pick: str = "all"  # all: one prompt of every kind; one: each example one kind, drawn
    lexicon_size: int = 40
    catalogue: str = ""  # lyrics file of the catalogue prompt ("": the project's coplas.tsv)
    soft_prompt: int = (
        0  # k > 0: train only k soft-prompt vectors, the model frozen (stage 3, soft)
    )
    soft_prompt_init: str = (
        ""  # text whose token embeddings start the soft prompt ("": the lexicon)
    )
    lora: dict | None = (
        None  # LoRA adapters (peft) instead of training the weights: {r, alpha, dropout, target_modules}
    )
    speed_perturb: list | None = None  # [low, high]: each clip played at a speed drawn from it
    wise_ft: dict | None = None  # {model, alpha}: the final weights moved back toward ``model``
    spec_augment: dict | None = None  # {time, freq}: the share of frames / Mel channels masked
    source_file: str | None = None


_SOURCE_KEYS = {f.name for f in fields(Source)}
_CONFIG_KEYS = {f.name for f in fields(StageConfig)} - {"source_file"}


def _resolve_path(p: str, base: Path) -> str:
    """Paths in a config are relative to the project root (or absolute, or a model name); those
    under ``data/`` follow the data folder (``FLAMENCO_DATA``, e.g. Google Drive on Colab)."""
    from ..paths import data_dir

    q = Path(p)
    if q.is_absolute():
        return str(q)
    if q.parts and q.parts[0] == "data":
        return str(data_dir().joinpath(*q.parts[1:]))
    return str(base / q)


def _resolve_model(name: str, root: Path) -> str:
    """A model as a config names it: a folder (resolved as :func:`_resolve_path`; a previous
    stage's ``output_dir`` means its final model), else a size or hub id, unchanged."""
    path = _resolve_path(name, root)
    if not Path(path).exists():
        return name
    final = Path(path) / "final"
    return str(final) if (final / "config.json").exists() else path


def _source(d, where: str, file: str) -> Source:
    if isinstance(d, str):
        d = {"manifest": d}
    if not isinstance(d, dict):
        raise ConfigError(f"{file}: {where} must be a mapping with 'manifest' (and split, weight)")
    unknown = set(d) - _SOURCE_KEYS
    if unknown:
        raise ConfigError(
            f"{file}: unknown key {where}.{sorted(unknown)[0]} (allowed: {sorted(_SOURCE_KEYS)})"
        )
    if "manifest" not in d:
        raise ConfigError(f"{file}: {where}.manifest is missing")
    s = Source(**d)
    if not (isinstance(s.weight, (int, float)) and s.weight > 0):
        raise ConfigError(f"{file}: {where}.weight must be a positive number, got {s.weight!r}")
    if s.balance is not None and not (isinstance(s.balance, str) and s.balance):
        raise ConfigError(
            f"{file}: {where}.balance must name a manifest field (e.g. singer), got {s.balance!r}"
        )
    return s


def load_config(
    path: str | Path, *, profile: str | None = None, overrides: dict | None = None
) -> StageConfig:
    """Read a stage config YAML, apply ``profiles: {<profile>: {...}}`` and ``overrides``, validate.

    Raises :class:`ConfigError` naming the file and the key for an unknown key, a wrong type, a
    value out of range or a missing manifest.
    """
    import yaml

    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: config not found (the stage configs are in configs/)")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values")
    profiles = raw.pop("profiles", {}) or {}
    if profile is not None:
        if profile not in PROFILES:
            raise ConfigError(f"{path}: unknown profile {profile!r} (choose one of {PROFILES})")
        raw = _merge(raw, profiles.get(profile, {}) or {})
    raw = _merge(raw, overrides or {})
    unknown = set(raw) - _CONFIG_KEYS
    if unknown:
        raise ConfigError(
            f"{path}: unknown key {sorted(unknown)[0]!r} (allowed: {sorted(_CONFIG_KEYS)})"
        )
    if "name" not in raw:
        raise ConfigError(f"{path}: 'name' is missing")
    cfg = StageConfig(
        **{k: v for k, v in raw.items() if k not in ("train", "eval")}, source_file=str(path)
    )
    train = raw.get("train")
    if not train:
        raise ConfigError(f"{path}: 'train' needs at least one source (manifest, split, weight)")
    cfg.train = [
        _source(d, f"train[{i}]", str(path))
        for i, d in enumerate(train if isinstance(train, list) else [train])
    ]
    cfg.eval = _source(raw["eval"], "eval", str(path)) if raw.get("eval") else None
    _check(cfg, str(path))
    return cfg


def _merge(a: dict, b: dict) -> dict:
    out = copy.deepcopy(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _check(cfg: StageConfig, file: str) -> None:
    ints = {
        "soft_prompt": 0,
        "lexicon_size": 1,
        "steps": 1,
        "batch_size": 1,
        "warmup_steps": 0,
        "cached_layers": 0,
        "eval_every": 0,
        "eval_batch_size": 1,
        "save_every": 1,
        "seed": 0,
        "log_every": 1,
    }
    for key, lo in ints.items():
        v = getattr(cfg, key)
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ConfigError(f"{file}: {key} must be an integer >= {lo}, got {v!r}")
    for key in ("lr", "weight_decay", "max_grad_norm"):
        v = getattr(cfg, key)
        if isinstance(v, str):
            try:
                v = float(v)  # YAML reads 3e-5 as a string
            except ValueError:
                raise ConfigError(f"{file}: {key} must be a number, got {v!r}") from None
            setattr(cfg, key, v)
        if not isinstance(v, (int, float)) or v < 0:
            raise ConfigError(f"{file}: {key} must be a non-negative number, got {v!r}")
    from ..prompts import KINDS

    if not isinstance(cfg.prompt_kinds, list) or set(cfg.prompt_kinds) - set(KINDS):
        raise ConfigError(
            f"{file}: prompt_kinds must be a list of {KINDS}, got {cfg.prompt_kinds!r}"
        )
    if cfg.prompt_pick not in ("all", "one"):
        raise ConfigError(f"{file}: prompt_pick must be 'all' or 'one', got {cfg.prompt_pick!r}")
    for key in ("prompt_drop", "timestamp_share"):
        v = getattr(cfg, key)
        if isinstance(v, bool) or not (isinstance(v, (int, float)) and 0 <= v <= 1):
            raise ConfigError(f"{file}: {key} must be a probability in [0, 1], got {v!r}")
    if cfg.lora is not None:
        if not isinstance(cfg.lora, dict) or set(cfg.lora) - set(LORA_DEFAULTS):
            raise ConfigError(
                f"{file}: lora must be a mapping with some of {sorted(LORA_DEFAULTS)}, got {cfg.lora!r}"
            )
        cfg.lora = {**LORA_DEFAULTS, **cfg.lora}
        if (
            isinstance(cfg.lora["r"], bool)
            or not isinstance(cfg.lora["r"], int)
            or cfg.lora["r"] < 1
        ):
            raise ConfigError(f"{file}: lora.r must be an integer >= 1, got {cfg.lora['r']!r}")
        if cfg.soft_prompt or cfg.freeze_decoder:
            raise ConfigError(
                f"{file}: lora and {'soft_prompt' if cfg.soft_prompt else 'freeze_decoder'} both "
                "choose what trains; use one of them"
            )
    if cfg.soft_prompt and cfg.prompt_kinds:
        raise ConfigError(
            f"{file}: soft_prompt and prompt_kinds both fill the prompt slot; use one of them"
        )
    if cfg.soft_prompt > 223 - 5:
        raise ConfigError(
            f"{file}: soft_prompt must be at most 218 vectors (the prompt slot holds 223 tokens)"
        )
    if not isinstance(cfg.soft_prompt_init, str):
        raise ConfigError(f"{file}: soft_prompt_init must be a text, got {cfg.soft_prompt_init!r}")
    if not isinstance(cfg.freeze_decoder, bool):
        raise ConfigError(
            f"{file}: freeze_decoder must be true or false, got {cfg.freeze_decoder!r}"
        )
    _check_speed(cfg, file)
    _check_spec_augment(cfg, file)
    _check_wise_ft(cfg, file)
    if cfg.precision not in PRECISIONS:
        raise ConfigError(f"{file}: precision must be one of {PRECISIONS}, got {cfg.precision!r}")
    if cfg.precision == "auto":
        cfg.precision = auto_precision()
    if cfg.schedule not in ("linear", "constant"):
        raise ConfigError(f"{file}: schedule must be 'linear' or 'constant', got {cfg.schedule!r}")
    if cfg.label_field not in ("text", "text_canonical"):
        raise ConfigError(
            f"{file}: label_field must be 'text' or 'text_canonical', got {cfg.label_field!r}"
        )
    root = project_root()
    for i, s in enumerate([*cfg.train, *([cfg.eval] if cfg.eval else [])]):
        s.manifest = _resolve_path(s.manifest, root)
        if not Path(s.manifest).exists():
            where = "eval" if s is cfg.eval else f"train[{i}]"
            raise ConfigError(
                f"{file}: {where}.manifest {s.manifest} not found; build it first "
                "(python -m flamenco_lib data synth|speech --out DIR, see README)"
            )
    cfg.output_dir = _resolve_path(cfg.output_dir, root)
    if cfg.catalogue:
        cfg.catalogue = _resolve_path(cfg.catalogue, root)
    cfg.model = _resolve_model(cfg.model, root)


def _check_speed(cfg: StageConfig, file: str) -> None:
    """``speed_perturb``: None, or [low, high] within :data:`SPEED_LIMITS`, on a stage
    that reads audio (``cached_layers: 0``: cached activations cannot be played faster)."""
    v = cfg.speed_perturb
    if v is None:
        return
    lo_lim, hi_lim = SPEED_LIMITS
    ok = (
        isinstance(v, (list, tuple))
        and len(v) == 2
        and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
        and lo_lim <= v[0] <= v[1] <= hi_lim
    )
    if not ok:
        raise ConfigError(
            f"{file}: speed_perturb must be [low, high] with {lo_lim} <= low <= high <= {hi_lim} "
            f"(e.g. [0.9, 1.1]), got {v!r}"
        )
    _needs_features(
        cfg,
        file,
        "speed_perturb",
        "changes each clip's audio, so the encoder's lower layers cannot be cached",
    )
    cfg.speed_perturb = [float(v[0]), float(v[1])]


def _check_spec_augment(cfg: StageConfig, file: str) -> None:
    """``spec_augment``: None, or ``{time, freq}`` (either may be left out), each a share in
    [0, 0.5] (:func:`flamenco_lib.training.batches.spec_augment`), on a stage that reads log-Mel
    features (``cached_layers: 0``: cached activations are past the features)."""
    v = cfg.spec_augment
    if v is None:
        return
    ok = (
        isinstance(v, dict)
        and v
        and set(v) <= {"time", "freq"}
        and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and 0 <= x <= 0.5
            for x in v.values()
        )
    )
    if not ok:
        raise ConfigError(
            f"{file}: spec_augment must be a mapping of time and/or freq to the share of frames "
            f"and of Mel channels masked, each 0-0.5 (e.g. {{time: 0.05, freq: 0.1}}), got {v!r}"
        )
    _needs_features(
        cfg, file, "spec_augment", "masks the log-Mel features, which cached layers skip"
    )
    cfg.spec_augment = {k: float(x) for k, x in v.items()}


def _needs_features(cfg: StageConfig, file: str, key: str, why: str) -> None:
    """A ``ConfigError`` when ``key`` (which works on each clip's audio or features: ``why``) is
    asked of a stage whose lower layers are cached."""
    if cfg.cached_layers:
        raise ConfigError(
            f"{file}: {key} {why}; set cached_layers: 0 (got {cfg.cached_layers}) or drop {key}"
        )


def _check_wise_ft(cfg: StageConfig, file: str) -> None:
    """``wise_ft``: None, or ``{model, alpha}`` with 0 < alpha <= 1 (the share of the fine-tuning
    kept: :func:`flamenco_lib.training.model_parts.wise_ft`) on a stage whose weights train."""
    v = cfg.wise_ft
    if v is None:
        return
    alpha = v.get("alpha") if isinstance(v, dict) else None
    if (
        not isinstance(v, dict)
        or set(v) != {"model", "alpha"}
        or not (isinstance(v["model"], str) and v["model"])
        or isinstance(alpha, bool)
        or not (isinstance(alpha, (int, float)) and 0 < alpha <= 1)
    ):
        raise ConfigError(
            f"{file}: wise_ft must be a mapping {{model: base, alpha: 0.8}} with 0 < alpha <= 1 "
            f"(the share of the fine-tuning kept), got {v!r}"
        )
    if cfg.soft_prompt:
        raise ConfigError(
            f"{file}: wise_ft moves trained weights back, but a soft_prompt stage trains none; "
            "drop wise_ft"
        )
    cfg.wise_ft = {"model": _resolve_model(v["model"], project_root()), "alpha": float(alpha)}


def auto_precision(cpuinfo: str | None = None) -> str:
    """``precision: auto``: bf16 autocast where the device computes bfloat16 natively (a CUDA GPU
    with bf16, a CPU with AVX512-BF16 or AMX), else fp32. The weights stay fp32 either way. On the
    2-core AVX512-BF16 machine of ``configs/README.md`` a stage-1 step costs 4.6 s in bf16, 11-12 s
    in fp32; a CPU without those instructions would emulate bf16, slower than fp32. ``cpuinfo``:
    the text of ``/proc/cpuinfo`` (read when None). Without ``cpuinfo``, the environment variable
    ``FLAMENCO_PRECISION`` (``fp32`` or ``bf16``) decides instead of the machine: e.g. a report run
    as a CPU without bf16 would run it (README, "make report, measured")."""
    forced = os.environ.get("FLAMENCO_PRECISION", "").strip().lower()
    if cpuinfo is None and forced:
        if forced not in ("fp32", "bf16"):
            raise ConfigError(
                f"FLAMENCO_PRECISION={forced!r}: use fp32 or bf16, or unset it to let the machine decide"
            )
        return forced
    if cpuinfo is None and torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    try:
        flags = (
            cpuinfo
            if cpuinfo is not None
            else Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        )
    except OSError:  # not Linux: no cheap way to ask, so the safe choice
        return "fp32"
    return "bf16" if re.search(r"\b(avx512_bf16|amx_bf16)\b", flags) else "fp32"
