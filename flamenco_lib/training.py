"""Fine-tuning stages: one config per stage, one entry point, checkpoints and resume.

``python -m flamenco_lib train --config configs/stage1.yaml [--profile cpu|gpu|smoke] [--resume]``
calls :func:`train_stage`. The pieces, in the order a step uses them:

- :class:`StageConfig` — a YAML file in ``configs/`` (model, data sources and mixing weights,
  optimiser and schedule, steps, batch, precision, freezing, evaluation interval, seed, output),
  with per-profile overrides; a bad key or value is a :class:`ConfigError` naming it.
- **The frozen, cached lower encoder** (``cached_layers: k``). Whisper's encoder is a conv stem and
  a stack of layers. The stem and the first ``k`` layers are frozen and run once per clip
  (:func:`encoder_prefix`); their output (1500 x d_model per clip) is cached on disk, one file per
  clip and only for the clips the run's batches draw (:class:`ActivationCache`), and training runs
  only the upper layers and the decoder (:class:`UpperWhisper`). On 2 CPU cores this is
  what makes real progress in minutes (see ``configs/README.md`` for the measurements);
  ``cached_layers: 0`` is ordinary full fine-tuning on log-Mel features (the ``gpu`` profile).
- :func:`collate_labels` — Whisper's decoder layout: ``decoder_input_ids`` =
  ``<|startoftranscript|><|es|><|transcribe|><|notimestamps|> text`` and ``labels`` = the same
  shifted left, ending in ``<|endoftext|>``, padded with -100 (no loss on padding).
- **Batches** are a pure function of (seed, step): each slot draws a source by its weight and an
  item uniformly from it (with replacement). A resumed run therefore sees exactly the batches an
  uninterrupted run sees, and stage 2's replay share is just a weight.
- **Evaluation during training** calls the evaluation runner (:mod:`flamenco_lib.evaluation`) on the
  full model with the generation config that is saved with the checkpoint (language and task set
  there), so the WER logged during training is the WER ``evaluate`` reports for the checkpoint.
- **Multi-process**: the same code runs under ``torchrun``/``accelerate launch`` (DDP; gloo on CPU,
  NCCL on GPU): each process takes its share of every global batch.

Notebooks: ``07_stage1_flamenco.ipynb``, ``08_stage2_common_voice.ipynb``.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import math
import os
import re
import shutil
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .paths import PROFILES, cache_dir, project_root
PRECISIONS = ("fp32", "bf16", "fp16", "auto")


class ConfigError(ValueError):
    """A stage config that cannot be used; the message names the file and the key."""


# ----------------------------------------------------------------------------------- config


@dataclass
class Source:
    manifest: str
    split: str = "train"
    weight: float = 1.0
    max_items: int | None = None


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
    gradient_checkpointing: bool = False
    eval_every: int = 0  # steps; 0 = only at the end
    eval_batch_size: int = 8
    save_every: int = 50
    seed: int = 0
    output_dir: str = "data/checkpoints/stage"
    label_field: str = "text"  # what is sung
    language: str = "es"
    log_every: int = 10
    prompt_kinds: list = field(default_factory=list)  # stage 3: some of palo, previous, lexicon
    prompt_drop: float = 0.5  # probability that a training example gets no prompt
    lexicon_size: int = 40
    soft_prompt: int = 0  # k > 0: train only k soft-prompt vectors, the model frozen (stage 3, soft)
    soft_prompt_init: str = ""  # text whose token embeddings start the soft prompt ("": the lexicon)
    lora: dict | None = None  # LoRA adapters (peft) instead of training the weights: {r, alpha, dropout, target_modules}
    source_file: str | None = None


_SOURCE_KEYS = {f.name for f in fields(Source)}
_CONFIG_KEYS = {f.name for f in fields(StageConfig)} - {"source_file"}


def _resolve_path(p: str, base: Path) -> str:
    """Paths in a config are relative to the project root (or absolute, or a model name); those
    under ``data/`` follow the data folder (``FLAMENCO_DATA``, e.g. Google Drive on Colab)."""
    from .paths import data_dir

    q = Path(p)
    if q.is_absolute():
        return str(q)
    if q.parts and q.parts[0] == "data":
        return str(data_dir().joinpath(*q.parts[1:]))
    return str(base / q)


def _source(d, where: str, file: str) -> Source:
    if isinstance(d, str):
        d = {"manifest": d}
    if not isinstance(d, dict):
        raise ConfigError(f"{file}: {where} must be a mapping with 'manifest' (and split, weight)")
    unknown = set(d) - _SOURCE_KEYS
    if unknown:
        raise ConfigError(f"{file}: unknown key {where}.{sorted(unknown)[0]} (allowed: {sorted(_SOURCE_KEYS)})")
    if "manifest" not in d:
        raise ConfigError(f"{file}: {where}.manifest is missing")
    s = Source(**d)
    if not (isinstance(s.weight, (int, float)) and s.weight > 0):
        raise ConfigError(f"{file}: {where}.weight must be a positive number, got {s.weight!r}")
    return s


def load_config(path: str | Path, *, profile: str | None = None, overrides: dict | None = None) -> StageConfig:
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
        raise ConfigError(f"{path}: unknown key {sorted(unknown)[0]!r} (allowed: {sorted(_CONFIG_KEYS)})")
    if "name" not in raw:
        raise ConfigError(f"{path}: 'name' is missing")
    cfg = StageConfig(**{k: v for k, v in raw.items() if k not in ("train", "eval")}, source_file=str(path))
    train = raw.get("train")
    if not train:
        raise ConfigError(f"{path}: 'train' needs at least one source (manifest, split, weight)")
    cfg.train = [_source(d, f"train[{i}]", str(path)) for i, d in enumerate(train if isinstance(train, list) else [train])]
    cfg.eval = _source(raw["eval"], "eval", str(path)) if raw.get("eval") else None
    _check(cfg, str(path))
    return cfg


def _merge(a: dict, b: dict) -> dict:
    out = copy.deepcopy(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _check(cfg: StageConfig, file: str) -> None:
    ints = {"soft_prompt": 0, "lexicon_size": 1, "steps": 1, "batch_size": 1, "warmup_steps": 0, "cached_layers": 0, "eval_every": 0,
            "eval_batch_size": 1, "save_every": 1, "seed": 0, "log_every": 1}
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
    from .prompts import KINDS

    if not isinstance(cfg.prompt_kinds, list) or set(cfg.prompt_kinds) - set(KINDS):
        raise ConfigError(f"{file}: prompt_kinds must be a list of {KINDS}, got {cfg.prompt_kinds!r}")
    if not (isinstance(cfg.prompt_drop, (int, float)) and 0 <= cfg.prompt_drop <= 1):
        raise ConfigError(f"{file}: prompt_drop must be a probability in [0, 1], got {cfg.prompt_drop!r}")
    if cfg.lora is not None:
        if not isinstance(cfg.lora, dict) or set(cfg.lora) - set(LORA_DEFAULTS):
            raise ConfigError(f"{file}: lora must be a mapping with some of {sorted(LORA_DEFAULTS)}, got {cfg.lora!r}")
        cfg.lora = {**LORA_DEFAULTS, **cfg.lora}
        if isinstance(cfg.lora["r"], bool) or not isinstance(cfg.lora["r"], int) or cfg.lora["r"] < 1:
            raise ConfigError(f"{file}: lora.r must be an integer >= 1, got {cfg.lora['r']!r}")
        if cfg.soft_prompt:
            raise ConfigError(f"{file}: lora and soft_prompt both choose what trains; use one of them")
    if cfg.soft_prompt and cfg.prompt_kinds:
        raise ConfigError(f"{file}: soft_prompt and prompt_kinds both fill the prompt slot; use one of them")
    if cfg.soft_prompt > 223 - 5:
        raise ConfigError(f"{file}: soft_prompt must be at most 218 vectors (the prompt slot holds 223 tokens)")
    if not isinstance(cfg.soft_prompt_init, str):
        raise ConfigError(f"{file}: soft_prompt_init must be a text, got {cfg.soft_prompt_init!r}")
    if cfg.precision not in PRECISIONS:
        raise ConfigError(f"{file}: precision must be one of {PRECISIONS}, got {cfg.precision!r}")
    if cfg.precision == "auto":
        cfg.precision = auto_precision()
    if cfg.schedule not in ("linear", "constant"):
        raise ConfigError(f"{file}: schedule must be 'linear' or 'constant', got {cfg.schedule!r}")
    if cfg.label_field not in ("text", "text_canonical"):
        raise ConfigError(f"{file}: label_field must be 'text' or 'text_canonical', got {cfg.label_field!r}")
    root = project_root()
    for i, s in enumerate([*cfg.train, *([cfg.eval] if cfg.eval else [])]):
        s.manifest = _resolve_path(s.manifest, root)
        if not Path(s.manifest).exists():
            where = "eval" if s is cfg.eval else f"train[{i}]"
            raise ConfigError(f"{file}: {where}.manifest {s.manifest} not found; build it first "
                              "(python -m flamenco_lib data synth|speech --out DIR, see README)")
    cfg.output_dir = _resolve_path(cfg.output_dir, root)
    if Path(_resolve_path(cfg.model, root)).exists():
        cfg.model = _resolve_path(cfg.model, root)
        final = Path(cfg.model) / "final"  # a previous stage's output_dir means its final model
        if (final / "config.json").exists():
            cfg.model = str(final)


def auto_precision(cpuinfo: str | None = None) -> str:
    """``precision: auto``: bf16 autocast where the device computes bfloat16 natively (a CUDA GPU
    with bf16, a CPU with AVX512-BF16 or AMX), else fp32. The weights stay fp32 either way. On the
    2-core AVX512-BF16 machine of ``configs/README.md`` a stage-1 step costs 4.6 s in bf16, 11-12 s
    in fp32; a CPU without those instructions would emulate bf16, slower than fp32. ``cpuinfo``:
    the text of ``/proc/cpuinfo`` (read when None)."""
    if cpuinfo is None and torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    try:
        flags = cpuinfo if cpuinfo is not None else Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:  # not Linux: no cheap way to ask, so the safe choice
        return "fp32"
    return "bf16" if re.search(r"\b(avx512_bf16|amx_bf16)\b", flags) else "fp32"


# ----------------------------------------------------------------------------------- model parts


def encoder_prefix(encoder, features: torch.Tensor, k: int) -> torch.Tensor:
    """The frozen part: conv stem, positions, and the first ``k`` encoder layers.

    features : (batch, n_mels, 3000) -> (batch, 1500, d_model)
    """
    h = nn.functional.gelu(encoder.conv1(features))
    h = nn.functional.gelu(encoder.conv2(h)).permute(0, 2, 1)
    h = h + encoder.embed_positions.weight[: h.shape[1]]
    for layer in encoder.layers[:k]:
        out = layer(h, None)
        h = out[0] if isinstance(out, tuple) else out
    return h


def encoder_suffix(encoder, hidden: torch.Tensor, k: int) -> torch.Tensor:
    """The trained part: encoder layers ``k...`` and the final layer norm. (batch, 1500, d) -> same."""
    for layer in encoder.layers[k:]:
        out = layer(hidden, None)
        hidden = out[0] if isinstance(out, tuple) else out
    return encoder.layer_norm(hidden)


class UpperWhisper(nn.Module):
    """Whisper from encoder layer ``k`` up: inputs are cached activations (``k > 0``) or log-Mel
    features (``k == 0``, the whole model). ``forward`` returns the mean token loss.

    With a ``soft`` prompt (:class:`flamenco_lib.soft_prompt.SoftPrompt`) the decoder input is
    ``<|startofprev|>`` + its vectors + ``decoder_input_ids``, and the labels of those ``1 + k``
    positions are -100 (no loss on the prompt), exactly as for a text prompt."""

    def __init__(self, model, k: int, *, soft=None, tokenizer=None):
        super().__init__()
        self.model, self.k = model, int(k)
        self.soft, self.tokenizer = soft, tokenizer

    def forward(self, inputs: torch.Tensor, decoder_input_ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        from transformers.modeling_outputs import BaseModelOutput

        if self.k == 0:
            enc = self.model.model.encoder(inputs).last_hidden_state
        else:
            enc = encoder_suffix(self.model.model.encoder, inputs, self.k)
        if self.soft is None:
            out = self.model(encoder_outputs=BaseModelOutput(last_hidden_state=enc),
                             decoder_input_ids=decoder_input_ids, labels=labels)
            return out.loss
        embeds = self.soft.decoder_embeds(self.model, self.tokenizer, decoder_input_ids)
        pad = torch.full((labels.shape[0], 1 + self.soft.k), -100, dtype=labels.dtype, device=labels.device)
        out = self.model(encoder_outputs=BaseModelOutput(last_hidden_state=enc),
                         decoder_inputs_embeds=embeds, labels=torch.cat([pad, labels], dim=1))
        return out.loss


LORA_DEFAULTS = {"r": 16, "alpha": 32, "dropout": 0.05, "target_modules": ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"]}


def add_lora(model, opts: dict, k: int):
    """LoRA adapters (peft) on the projections named in ``opts["target_modules"]``; only the adapters
    of encoder layers ``k...`` and of the decoder train, every original weight is frozen.

    The adapters are injected into ``model`` in place. Returns (peft model, trainable count);
    ``peft_model.merge_and_unload()`` folds them back into plain Whisper weights for saving.
    """
    import re

    from peft import LoraConfig, get_peft_model

    opts = {**LORA_DEFAULTS, **opts}
    config = LoraConfig(r=opts["r"], lora_alpha=opts["alpha"], lora_dropout=opts["dropout"],
                        target_modules=list(opts["target_modules"]), bias="none")
    peft_model = get_peft_model(model, config)
    for name, p in model.named_parameters():
        layer = re.search(r"encoder\.layers\.(\d+)\.", name)
        p.requires_grad_("lora_" in name and not (layer and int(layer.group(1)) < k))
    return peft_model, sum(p.numel() for p in model.parameters() if p.requires_grad)


def freeze_lower(model, k: int) -> tuple[int, int]:
    """Freeze the conv stem, positions and first ``k`` encoder layers (k > 0). Returns
    (trainable, total) parameter counts."""
    for p in model.parameters():
        p.requires_grad_(True)
    if k > 0:
        enc = model.model.encoder
        for m in (enc.conv1, enc.conv2, enc.embed_positions, *enc.layers[:k]):
            for p in m.parameters():
                p.requires_grad_(False)
    model.model.encoder.embed_positions.requires_grad_(False)  # sinusoidal, never trained
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())


# ----------------------------------------------------------------------------------- labels


def prefix_ids(tokenizer, *, language: str = "es", task: str = "transcribe") -> list[int]:
    """``<|startoftranscript|><|lang|><|task|><|notimestamps|>`` as ids."""
    return tokenizer.convert_tokens_to_ids(
        ["<|startoftranscript|>", f"<|{language}|>", f"<|{task}|>", "<|notimestamps|>"]
    )


def label_ids(tokenizer, text: str) -> list[int]:
    """The text's token ids (a leading space, as Whisper writes a transcript after the prefix)."""
    return tokenizer.encode(" " + text.strip(), add_special_tokens=False)


def collate_labels(tokenizer, texts: list[str], *, language: str = "es", max_len: int = 448,
                   prompts: list[str | None] | None = None) -> dict:
    """Decoder inputs and labels for a batch of transcripts, optionally after a text prompt.

    For each text: ``decoder_input_ids`` = [prompt] + prefix + text tokens, ``labels`` = the same
    shifted left by one + ``<|endoftext|>``, so position ``t`` predicts token ``t + 1``. With a
    prompt (:func:`flamenco_lib.prompts.prompt_token_ids`: ``<|startofprev|>`` + its tokens) the
    labels of every prompt position, and of the position that predicts
    ``<|startoftranscript|>``, are -100: no loss on the prompt, the model is never taught to
    produce it. Padding: decoder inputs with ``<|endoftext|>``, labels with -100.

    The layout equals what ``generate(prompt_ids=...)`` feeds the decoder (tests/test_prompts.py).

    Returns ``{"decoder_input_ids": (B, L) long, "labels": (B, L) long}``.
    """
    from .prompts import prompt_token_ids

    eot = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    pre = prefix_ids(tokenizer, language=language)
    prompts = prompts or [None] * len(texts)
    if len(prompts) != len(texts):
        raise ValueError(f"{len(prompts)} prompts for {len(texts)} texts")
    seqs, masked = [], []
    for t, pr in zip(texts, prompts):
        pids = prompt_token_ids(tokenizer, pr)
        ids = pids + pre + label_ids(tokenizer, t) + [eot]
        if len(ids) > max_len:
            raise ValueError(f"label of {len(ids)} tokens > {max_len} (Whisper's context): {t[:60]!r}...")
        seqs.append(ids)
        masked.append(len(pids))
    width = max(len(s) for s in seqs) - 1
    dec = torch.full((len(seqs), width), eot, dtype=torch.long)
    lab = torch.full((len(seqs), width), -100, dtype=torch.long)
    for i, (s, m) in enumerate(zip(seqs, masked)):
        dec[i, : len(s) - 1] = torch.tensor(s[:-1])
        lab[i, : len(s) - 1] = torch.tensor(s[1:])
        lab[i, :m] = -100  # positions 0..m-1 predict prompt tokens and <|startoftranscript|>
    return {"decoder_input_ids": dec, "labels": lab}


# ----------------------------------------------------------------------------------- data


def _features(processor, audios: list[np.ndarray]) -> torch.Tensor:
    return processor.feature_extractor(audios, sampling_rate=16000, return_tensors="pt").input_features


def _prefix_hash(enc, k: int) -> str:
    """A key for the frozen part (conv stem, positions, layers ``0..k-1``): a slice of each weight."""
    h = hashlib.sha1(f"{k}".encode())
    for name, p in enc.named_parameters():
        if name.startswith(("conv", "embed_positions")) or any(name.startswith(f"layers.{i}.") for i in range(k)):
            h.update(name.encode())
            h.update(p.detach().float().cpu().numpy()[..., :4].tobytes())
    return h.hexdigest()[:16]


def _row_key(r: dict) -> str:
    s = f"{r['audio_path']}|{r.get('start')}|{r.get('end')}|{os.path.getsize(r['audio_path'])}"
    return hashlib.sha1(s.encode()).hexdigest()[:20]


_AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


class ActivationCache:
    """Encoder-prefix activations, one ``(1500, d_model)`` float16 file per clip:
    ``<cache>/<hash of the frozen weights and k>[-<precision>]/<hash of the clip>.npy``. The prefix
    runs in the stage's ``precision`` (bf16/fp16 autocast), as it would without the cache.

    One file per clip, so a run computes only the clips its batches will draw (:meth:`fill`), and
    a later stage with the same frozen layers reuses whatever an earlier one computed (stage 2's
    replay of stage-1 clips, stage 3); an interrupted fill keeps every file already written.
    """

    def __init__(self, model, k: int, cache: Path | None = None, *, precision: str = "fp32"):
        self.model, self.k, self.precision = model, int(k), precision
        key = _prefix_hash(model.model.encoder, k) + ("" if precision == "fp32" else f"-{precision}")
        self.folder = Path(cache or cache_dir() / "activations") / key

    def path(self, row: dict) -> Path:
        return self.folder / f"{_row_key(row)}.npy"

    @torch.no_grad()
    def fill(self, processor, rows: list[dict], *, batch_size: int = 8, progress: bool = True) -> int:
        """Compute and write the clips of ``rows`` that are not cached yet; returns how many."""
        from tqdm.auto import tqdm

        from .audio import load_audio

        todo = list({str(self.path(r)): r for r in rows if not self.path(r).exists()}.values())
        if not todo:
            return 0
        self.folder.mkdir(parents=True, exist_ok=True)
        enc, dtype = self.model.model.encoder, next(self.model.parameters()).dtype
        for b in tqdm(range(0, len(todo), batch_size), desc=f"cache encoder layers <{self.k}", unit="batch",
                      disable=not progress):
            chunk = todo[b : b + batch_size]
            audios = [load_audio(r["audio_path"], start=r.get("start"), end=r.get("end")) for r in chunk]
            x = _features(processor, audios).to(self.model.device, dtype)
            with torch.autocast(self.model.device.type, dtype=_AUTOCAST.get(self.precision, torch.bfloat16),
                                enabled=self.precision in _AUTOCAST):
                acts = encoder_prefix(enc, x, self.k).float().cpu().numpy().astype(np.float16)
            for r, a in zip(chunk, acts):
                dest = self.path(r)
                tmp = dest.with_name(f".{dest.stem}.{os.getpid()}.tmp.npy")
                np.save(tmp, a)
                os.replace(tmp, dest)  # a file is there whole or not at all
        return len(todo)

    def get(self, row: dict) -> np.ndarray:
        return np.load(self.path(row))


def drawn_items(seed: int, steps: range, weights: list[float], sizes: list[int], batch_size: int) -> list[set[int]]:
    """For each source, the items that the batches of ``steps`` draw (:func:`batch_indices`):
    the only clips a run needs, so the only ones whose activations it computes."""
    out: list[set[int]] = [set() for _ in sizes]
    for step in steps:
        for s, i in batch_indices(seed, step, weights, sizes, batch_size):
            out[s].add(i)
    return out


def batch_indices(seed: int, step: int, weights: list[float], sizes: list[int], batch_size: int) -> list[tuple[int, int]]:
    """The global batch of one step: ``batch_size`` (source, item) pairs, a pure function of
    (seed, step) — each slot draws a source with probability proportional to its weight, then an
    item uniformly. Resuming at any step reproduces the batches exactly."""
    rng = np.random.default_rng([int(seed), int(step), 7])
    p = np.asarray(weights, dtype=float) / np.sum(weights)
    src = rng.choice(len(sizes), size=batch_size, p=p)
    return [(int(s), int(rng.integers(sizes[s]))) for s in src]


# ----------------------------------------------------------------------------------- training


def _lr_at(cfg: StageConfig, step: int) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return cfg.lr
    rest = max(cfg.steps - cfg.warmup_steps, 1)
    return cfg.lr * max(0.0, 1.0 - (step - cfg.warmup_steps) / rest)


def _checkpoints(out: Path) -> list[Path]:
    return sorted(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))


def _save_checkpoint(out: Path, step: int, model, optimizer, log: list, *, keep: int = 1) -> Path:
    """Trainable weights, optimiser state, step and log; written to a temporary folder, then renamed."""
    dest = out / f"checkpoint-{step:06d}"
    tmp = out / f".tmp-checkpoint-{step:06d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    state = {n: p.detach().cpu() for n, p in model.named_parameters() if p.requires_grad}
    torch.save(state, tmp / "trainable.pt")
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    (tmp / "state.json").write_text(json.dumps({"step": step, "log": log}, indent=1))
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
    for old in _checkpoints(out)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return dest


def _eval_dataset(cfg: StageConfig):
    from .data.corpus import load_corpus

    ds = load_corpus(cfg.eval.manifest, splits=(cfg.eval.split,))[cfg.eval.split]
    if cfg.eval.max_items is not None:
        ds = ds.select(range(min(cfg.eval.max_items, len(ds))))
    return ds


def train_stage(cfg: StageConfig, *, resume: bool = False, stop_after: int | None = None, progress: bool = True) -> dict:
    """Run one fine-tuning stage; returns its summary (also ``<output_dir>/train_log.json``).

    ``resume`` continues from the newest checkpoint in ``output_dir`` (the same final weights and
    metrics as an uninterrupted run with the same seed). ``stop_after`` ends the run after that
    many steps, as an interruption would (tests). The final model, processor and generation
    config go to ``<output_dir>/final`` (a folder ``load_whisper`` and ``evaluate`` accept).
    """
    with deterministic_kernels():
        return _train_stage(cfg, resume=resume, stop_after=stop_after, progress=progress)


@contextlib.contextmanager
def deterministic_kernels():
    """Ask torch for deterministic kernels while training, and restore the caller's setting after.

    CPU kernels that accumulate with atomic adds across threads (the backward of an indexed
    gather, e.g. the decoder's position embeddings) sum in a varying order: the deterministic
    ones make the same seed give the same weights in every process. ``warn_only``: an operation
    without a deterministic kernel warns instead of failing the run.
    """
    before = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])


def _train_stage(cfg: StageConfig, *, resume: bool, stop_after: int | None, progress: bool) -> dict:
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm
    from transformers.utils import logging as hf_logging

    from . import evaluation
    from .data.manifest import read_manifest
    from .models import load_whisper

    hf_logging.set_verbosity_error()
    mp = {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}[cfg.precision]
    # accelerate keeps one mixed-precision setting per process; a later stage in the same process
    # (a notebook running stage 3 in bf16, then the soft prompt in fp32) may need another one.
    # The process-group state (PartialState) is kept, so multi-process runs are unaffected.
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state()
    acc = Accelerator(mixed_precision=mp, cpu=not torch.cuda.is_available())
    set_seed(cfg.seed)
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    world, rank = acc.num_processes, acc.process_index
    if cfg.batch_size % world:
        raise ConfigError(f"{cfg.source_file}: batch_size {cfg.batch_size} is not divisible by {world} processes")

    model, processor = load_whisper(cfg.model, device=acc.device, dtype=torch.float32)
    gc = model.generation_config
    gc.language, gc.task = cfg.language, "transcribe"  # saved with the model: evaluate decodes the same way
    gc.forced_decoder_ids = None
    tok = processor.tokenizer
    k = cfg.cached_layers
    if k > model.config.encoder_layers:
        raise ConfigError(f"{cfg.source_file}: cached_layers {k} > the model's {model.config.encoder_layers} encoder layers")
    trainable, total = freeze_lower(model, k)
    peft_model = None
    if cfg.lora:
        peft_model, trainable = add_lora(model, cfg.lora, k)
    if cfg.gradient_checkpointing:  # (renamed activation checkpointing in recent transformers)
        (getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable)()
    model.train()

    # data: rows of every source; inputs are cached activations (k > 0) or features on the fly
    sources = []
    for s in cfg.train:
        rows = [r for r in read_manifest(s.manifest) if r["split"] == s.split]
        if s.max_items is not None:
            rows = rows[: s.max_items]
        if not rows:
            raise ConfigError(f"{cfg.source_file}: {s.manifest} has no rows in split {s.split!r}")
        sources.append(rows)
    sizes, weights = [len(r) for r in sources], [s.weight for s in cfg.train]
    store = ActivationCache(model, k, precision=cfg.precision) if k > 0 else None
    from . import prompts as P

    # the lexicon: flamenco training text only (rows with a palo), never dev or test
    words = P.lexicon([r["text"] for rows in sources for r in rows if r.get("palo")], size=cfg.lexicon_size)

    def prompts_of(rows, *, step=None):
        """Prompts of a batch; during training each is dropped with probability prompt_drop."""
        if not cfg.prompt_kinds:
            return None
        out = P.prompts_for(rows, kinds=cfg.prompt_kinds, words=words)
        if step is not None:
            keep = np.random.default_rng([int(cfg.seed), int(step), 11]).random(len(out)) >= cfg.prompt_drop
            out = [p if k else None for p, k in zip(out, keep)]
        return out

    soft = None
    if cfg.soft_prompt:
        from .soft_prompt import SoftPrompt

        for p in model.parameters():  # only the soft prompt trains
            p.requires_grad_(False)
        soft = SoftPrompt.from_text(model, tok, cfg.soft_prompt_init or " ".join(words), k=cfg.soft_prompt)
        trainable = soft.k * soft.embeddings.shape[1]

    def inputs_of(pairs):
        rows = [sources[s][i] for s, i in pairs]
        if store is not None:
            return torch.from_numpy(np.stack([store.get(r) for r in rows]).astype(np.float32))
        from .audio import load_audio

        return _features(processor, [load_audio(r["audio_path"], start=r.get("start"), end=r.get("end")) for r in rows])

    upper = UpperWhisper(model, k, soft=soft, tokenizer=tok)
    params = [p for p in upper.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    start, log = 0, []
    if resume and _checkpoints(out):
        ck = _checkpoints(out)[-1]
        state = torch.load(ck / "trainable.pt", map_location="cpu")
        named = dict(upper.named_parameters())
        with torch.no_grad():
            for n, v in state.items():
                named[n].copy_(v)
        optimizer.load_state_dict(torch.load(ck / "optimizer.pt", map_location="cpu"))
        st = json.loads((ck / "state.json").read_text())
        start, log = st["step"], st["log"]
        if acc.is_main_process:
            print(f"resuming {cfg.name} from {ck} (step {start})", flush=True)
    if store is not None:  # the activations of the clips that the remaining steps draw, and no others
        need = drawn_items(cfg.seed, range(start, cfg.steps), weights, sizes, cfg.batch_size)
        with acc.main_process_first():
            store.fill(processor, [sources[s][i] for s, items in enumerate(need) for i in sorted(items)],
                       progress=progress and acc.is_main_process)
    wrapped, optimizer = acc.prepare(upper, optimizer)

    eval_ds = _eval_dataset(cfg) if cfg.eval else None

    def run_eval(step):
        if eval_ds is None or not acc.is_main_process:
            return None
        model.eval()
        m = evaluation.evaluate(model, processor, eval_ds, out=out / "eval" / f"step-{step:06d}",
                                model_id=f"{cfg.name}@{step}", batch_size=cfg.eval_batch_size,
                                language=None, progress=False, prompts=prompts_of(evaluation._rows(eval_ds)),
                                soft_prompt=soft)
        model.train()
        return {"step": step, "eval_wer": m["wer"], "eval_cer": m["cer"]}

    t0 = time.perf_counter()
    per_rank = cfg.batch_size // world
    bar = tqdm(total=cfg.steps, initial=start, desc=cfg.name, unit="step", disable=not (progress and acc.is_main_process))
    losses = []
    for step in range(start, cfg.steps):
        pairs = batch_indices(cfg.seed, step, weights, sizes, cfg.batch_size)[rank * per_rank : (rank + 1) * per_rank]
        rows_b = [sources[s][i] for s, i in pairs]
        texts = [r[cfg.label_field] or r["text"] for r in rows_b]
        lab = collate_labels(tok, texts, language=cfg.language, prompts=prompts_of(rows_b, step=step))
        x = inputs_of(pairs).to(acc.device)
        for g in optimizer.param_groups:
            g["lr"] = _lr_at(cfg, step)
        with acc.autocast():
            loss = wrapped(x, lab["decoder_input_ids"].to(acc.device), lab["labels"].to(acc.device))
        acc.backward(loss)
        if cfg.max_grad_norm:
            acc.clip_grad_norm_(params, cfg.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss_all = acc.gather(loss.detach().reshape(1)).mean().item()
        losses.append(loss_all)
        done = step + 1
        bar.update()
        bar.set_postfix(loss=f"{loss_all:.3f}")
        if done % cfg.log_every == 0 or done == cfg.steps:
            log.append({"step": done, "loss": float(np.mean(losses)), "lr": _lr_at(cfg, step),
                        "seconds": time.perf_counter() - t0})
            losses = []
        if cfg.eval_every and done % cfg.eval_every == 0 and done < cfg.steps:
            e = run_eval(done)
            if e:
                log.append(e)
        if (done % cfg.save_every == 0 or done == cfg.steps) and acc.is_main_process:
            _save_checkpoint(out, done, upper, optimizer.optimizer if hasattr(optimizer, "optimizer") else optimizer, log)
        acc.wait_for_everyone()
        if stop_after is not None and done >= stop_after and done < cfg.steps:
            bar.close()
            return {"stopped_at": done, "log": log}
    bar.close()
    summary = {"name": cfg.name, "steps": cfg.steps, "prompt_kinds": cfg.prompt_kinds, "lexicon": words,
               "soft_prompt": cfg.soft_prompt, "lora": cfg.lora, "trainable_params": trainable, "total_params": total,
               "world_size": world, "train_seconds": time.perf_counter() - t0, "log": log}
    if acc.is_main_process:
        final = out / "final"
        tmp = out / ".tmp-final"
        shutil.rmtree(tmp, ignore_errors=True)
        if peft_model is not None:  # fold the adapters into the weights: a plain Whisper folder
            model = peft_model.merge_and_unload()
        model.eval()
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        if soft is not None:
            soft.save(tmp)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        e = run_eval(cfg.steps)
        if e:
            log.append(e)
            summary["eval_wer"], summary["eval_cer"] = e["eval_wer"], e["eval_cer"]
        summary["final"] = str(final)
        (out / "train_log.json").write_text(json.dumps(summary, indent=1))
    acc.wait_for_everyone()
    return summary
