"""One fine-tuning stage, start to end: :func:`train_stage`.

The run, as a sequence of named steps (:func:`_train_stage`):

1. an ``Accelerator`` for the stage's precision and processes (:func:`_accelerator`);
2. the starting model, with what does not train frozen (:func:`_load_model`);
3. the training rows of every source (:func:`read_sources`) and the prompts of a batch
   (:class:`_Prompts`), or a soft prompt in the prompt slot (:func:`_soft_prompt`);
4. the optimiser, restored from the newest checkpoint when resuming (:func:`_resume`);
5. the cached activations of the clips the remaining steps draw, and no others;
6. the steps (:func:`_step`), logged, evaluated and checkpointed as the config says;
7. the final model, processor and generation config in ``<output_dir>/final`` (:func:`_save_final`),
   its weights moved back toward whisper-base's first where ``wise_ft`` says so.

**Evaluation during training** calls the evaluation runner (:mod:`flamenco_lib.evaluation`) on the
full model with the generation config saved with the checkpoint (language and task set there), so
the WER logged during training is the WER ``evaluate`` reports for the checkpoint.

**Multi-process**: the same code runs under ``torchrun``/``accelerate launch`` (DDP; gloo on CPU,
NCCL on GPU): each process takes its share of every global batch.

Notebooks: ``07_stage1_flamenco.ipynb``, ``08_stage2_common_voice.ipynb``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import room_to_write
from .batches import (
    ActivationCache,
    batch_indices,
    collate_labels,
    drawn_items,
    played_features,
    read_sources,
    spec_augment,
    speed_factors,
    timestamp_slots,
    voice_span,
)
from .config import ConfigError, StageConfig
from .model_parts import UpperWhisper, add_lora, freeze_lower, move_back

logger = logging.getLogger(__name__)


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
    with room_to_write(out, f"the checkpoint of step {step}", cleanup=tmp):
        torch.save(state, tmp / "trainable.pt")
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        (tmp / "state.json").write_text(json.dumps({"step": step, "log": log}, indent=1))
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
    for old in _checkpoints(out)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return dest


def _eval_dataset(cfg: StageConfig):
    from ..data.corpus import load_corpus

    ds = load_corpus(cfg.eval.manifest, splits=(cfg.eval.split,))[cfg.eval.split]
    if cfg.eval.max_items is not None:
        ds = ds.select(range(min(cfg.eval.max_items, len(ds))))
    return ds


def train_stage(
    cfg: StageConfig, *, resume: bool = False, stop_after: int | None = None, progress: bool = True
) -> dict:
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
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])


# ------------------------------------------------------------------------------- the named steps


def _accelerator(cfg: StageConfig):
    """An ``Accelerator`` for the stage's precision, seeded; checks the batch splits over processes."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from accelerate.utils import set_seed

    mp = {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}[cfg.precision]
    # accelerate keeps one mixed-precision setting per process; a later stage in the same process
    # (a notebook running stage 3 in bf16, then the soft prompt in fp32) may need another one.
    # The process-group state (PartialState) is kept, so multi-process runs are unaffected.
    AcceleratorState._reset_state()
    acc = Accelerator(mixed_precision=mp, cpu=not torch.cuda.is_available())
    set_seed(cfg.seed)
    if cfg.batch_size % acc.num_processes:
        raise ConfigError(
            f"{cfg.source_file}: batch_size {cfg.batch_size} is not divisible by {acc.num_processes} processes"
        )
    return acc


def _load_model(cfg: StageConfig, device):
    """The starting model in fp32 with its generation config set for the stage, the lower ``k``
    encoder layers frozen (and LoRA adapters when configured). Returns
    (model, processor, peft model or None, trainable count, total count)."""
    from ..models import load_whisper

    model, processor = load_whisper(cfg.model, device=device, dtype=torch.float32)
    gc = model.generation_config
    gc.language, gc.task = (
        cfg.language,
        "transcribe",
    )  # saved with the model: evaluate decodes the same way
    gc.forced_decoder_ids = None
    k = cfg.cached_layers
    if k > model.config.encoder_layers:
        raise ConfigError(
            f"{cfg.source_file}: cached_layers {k} > the model's {model.config.encoder_layers} encoder layers"
        )
    trainable, total = freeze_lower(model, k, decoder=cfg.freeze_decoder)
    peft_model = None
    if cfg.lora:
        peft_model, trainable = add_lora(model, cfg.lora, k)
    if cfg.gradient_checkpointing:  # (renamed activation checkpointing in recent transformers)
        (
            getattr(model, "activation_checkpointing_enable", None)
            or model.gradient_checkpointing_enable
        )()
    model.train()
    return model, processor, peft_model, trainable, total


@dataclass
class _Prompts:
    """The text prompts of a batch (stage 3); during training each is dropped with probability
    ``prompt_drop``, by a draw that is a pure function of (seed, step)."""

    cfg: StageConfig
    words: list[str]  # the lexicon: flamenco training lyrics (rows with a palo), never dev or test
    coplas: dict = field(default_factory=dict)  # catalogue prompt: training coplas by palo
    copla_texts: dict = field(default_factory=dict)  # every copla's text by id

    def __call__(self, rows: list[dict], *, step: int | None = None) -> list[str | None] | None:
        from .. import prompts as P

        if not self.cfg.prompt_kinds:
            return None
        found = None
        if "catalogue" in self.cfg.prompt_kinds and step is None:  # evaluation: the true copla
            found = [self.copla_texts.get(r.get("copla_id")) for r in rows]
        elif "catalogue" in self.cfg.prompt_kinds:  # training: the true copla, or a near miss
            rng = np.random.default_rng([int(self.cfg.seed), int(step), 17])
            found = [P.catalogue_choice(r, self.coplas, rng) for r in rows]
        kinds, words = self.cfg.prompt_kinds, self.words
        if self.cfg.prompt_pick == "one" and step is not None:  # each example one kind
            rng = np.random.default_rng([int(self.cfg.seed), int(step), 23])
            out = P.one_kind_each(rows, kinds=kinds, rng=rng, words=words, found=found)
        else:
            out = P.prompts_for(rows, kinds=kinds, words=words, found=found)
        if step is not None:
            draw = np.random.default_rng([int(self.cfg.seed), int(step), 11]).random(len(out))
            out = [p if keep else None for p, keep in zip(out, draw >= self.cfg.prompt_drop)]
        return out


def _soft_prompt(cfg: StageConfig, model, tokenizer, words: list[str]):
    """A soft prompt initialised from text, everything else frozen. Returns (soft, trainable count)."""
    from ..soft_prompt import SoftPrompt

    for p in model.parameters():  # only the soft prompt trains
        p.requires_grad_(False)
    soft = SoftPrompt.from_text(
        model, tokenizer, cfg.soft_prompt_init or " ".join(words), k=cfg.soft_prompt
    )
    return soft, soft.k * soft.embeddings.shape[1]


def _resume(out: Path, upper, optimizer) -> tuple[int, list]:
    """Load the newest checkpoint's trainable weights and optimiser state; returns (step, log)."""
    ck = _checkpoints(out)[-1]
    state = torch.load(ck / "trainable.pt", map_location="cpu")
    named = dict(upper.named_parameters())
    with torch.no_grad():
        for n, v in state.items():
            named[n].copy_(v)
    optimizer.load_state_dict(torch.load(ck / "optimizer.pt", map_location="cpu"))
    st = json.loads((ck / "state.json").read_text())
    logger.info("resuming from %s (step %d)", ck, st["step"])
    return st["step"], st["log"]


def _step(acc, wrapped, optimizer, params, cfg: StageConfig, x, labels: dict, step: int) -> float:
    """One optimiser step on one batch; returns the loss averaged over processes."""
    for g in optimizer.param_groups:
        g["lr"] = _lr_at(cfg, step)
    with acc.autocast():
        loss = wrapped(
            x, labels["decoder_input_ids"].to(acc.device), labels["labels"].to(acc.device)
        )
    acc.backward(loss)
    if cfg.max_grad_norm:
        acc.clip_grad_norm_(params, cfg.max_grad_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return acc.gather(loss.detach().reshape(1)).mean().item()


def _save_final(out: Path, model, processor, peft_model, soft, wise=None) -> Path:
    """The final model, processor and generation config (and soft prompt) in ``out/final``,
    written to a temporary folder and renamed; with ``wise`` (``{model, alpha}``) the weights
    first moved back toward that model's (:func:`move_back`)."""
    final = out / "final"
    tmp = out / ".tmp-final"
    shutil.rmtree(tmp, ignore_errors=True)
    if peft_model is not None:  # fold the adapters into the weights: a plain Whisper folder
        model = peft_model.merge_and_unload()
    if wise:
        from ..models import load_whisper

        move_back(model, load_whisper(wise["model"], device="cpu")[0], wise["alpha"])
    model.eval()
    with room_to_write(out, "the final model", cleanup=tmp):
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        if soft is not None:
            soft.save(tmp)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return final


def _train_stage(cfg: StageConfig, *, resume: bool, stop_after: int | None, progress: bool) -> dict:
    from tqdm.auto import tqdm
    from transformers.utils import logging as hf_logging

    from .. import evaluation
    from .. import prompts as P

    hf_logging.set_verbosity_error()
    acc = _accelerator(cfg)
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    world, rank = acc.num_processes, acc.process_index
    model, processor, peft_model, trainable, total = _load_model(cfg, acc.device)
    tok, k = processor.tokenizer, cfg.cached_layers

    # data: rows of every source; inputs are cached activations (k > 0) or features on the fly
    sources, sizes = read_sources(cfg)
    weights = [s.weight for s in cfg.train]
    store = ActivationCache(model, k, precision=cfg.precision) if k > 0 else None
    words = P.lexicon(  # lyrics only: a recording sung (source "...-real") has a palo too
        [
            r["text"]
            for rows in sources
            for r in rows
            if r.get("palo") and not str(r.get("source", "")).endswith("-real")
        ],
        size=cfg.lexicon_size,
    )
    coplas, copla_texts = {}, {}
    if "catalogue" in cfg.prompt_kinds:
        from ..data.lyrics import read_lyrics

        lyrics = read_lyrics(cfg.catalogue or None)
        coplas = P.training_coplas([r for rows in sources for r in rows], lyrics)
        copla_texts = {c.id: c.text for c in lyrics}
    prompts_of = _Prompts(cfg, words, coplas, copla_texts)
    soft = None
    if cfg.soft_prompt:
        soft, trainable = _soft_prompt(cfg, model, tok, words)

    def inputs_of(pairs, speeds, step):
        """A batch's encoder inputs (SpecAugment-masked, if asked), and each clip's speed."""
        rows = [sources[s][i] for s, i in pairs]
        if store is not None:
            x = np.stack([store.get(r) for r in rows]).astype(np.float32)
            return torch.from_numpy(x), [1.0] * len(rows)
        x, speeds, frames = played_features(processor, rows, speeds)
        return spec_augment(x, frames, cfg.spec_augment, cfg.seed, step, rank * per_rank), speeds

    upper = UpperWhisper(model, k, soft=soft, tokenizer=tok)
    params = [p for p in upper.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    start, log = _resume(out, upper, optimizer) if resume and _checkpoints(out) else (0, [])
    if (
        store is not None
    ):  # the activations of the clips that the remaining steps draw, and no others
        need = drawn_items(cfg.seed, range(start, cfg.steps), weights, sizes, cfg.batch_size)
        with acc.main_process_first():
            store.fill(
                processor,
                [sources[s][i] for s, items in enumerate(need) for i in sorted(items)],
                progress=progress and acc.is_main_process,
            )
    wrapped, optimizer = acc.prepare(upper, optimizer)
    eval_ds = _eval_dataset(cfg) if cfg.eval else None

    def run_eval(step):
        if eval_ds is None or not acc.is_main_process:
            return None
        model.eval()
        m = evaluation.evaluate(
            model,
            processor,
            eval_ds,
            out=out / "eval" / f"step-{step:06d}",
            model_id=f"{cfg.name}@{step}",
            batch_size=cfg.eval_batch_size,
            language=None,
            progress=False,
            prompts=prompts_of(evaluation._rows(eval_ds)),
            soft_prompt=soft,
            bf16=cfg.precision == "bf16",  # decoded as it trains
        )
        model.train()
        return {"step": step, "eval_wer": m["wer"], "eval_cer": m["cer"]}

    t0 = time.perf_counter()
    per_rank = cfg.batch_size // world
    bar = tqdm(
        total=cfg.steps,
        initial=start,
        desc=cfg.name,
        unit="step",
        disable=not (progress and acc.is_main_process),
    )
    losses = []
    for step in range(start, cfg.steps):
        pairs = batch_indices(cfg.seed, step, weights, sizes, cfg.batch_size)[
            rank * per_rank : (rank + 1) * per_rank
        ]
        rows_b = [sources[s][i] for s, i in pairs]
        texts = [r[cfg.label_field] or r["text"] for r in rows_b]
        timed = timestamp_slots(cfg.seed, step, cfg.batch_size, cfg.timestamp_share)
        timed = timed[rank * per_rank : (rank + 1) * per_rank]
        speeds = speed_factors(cfg.seed, step, cfg.batch_size, cfg.speed_perturb)
        x, speeds = inputs_of(pairs, speeds[rank * per_rank : (rank + 1) * per_rank], step)
        lab = collate_labels(
            tok,
            texts,
            language=cfg.language,
            prompts=prompts_of(rows_b, step=step),
            times=[voice_span(r, f) if t else None for r, t, f in zip(rows_b, timed, speeds)],
        )
        loss_all = _step(acc, wrapped, optimizer, params, cfg, x.to(acc.device), lab, step)
        losses.append(loss_all)
        done = step + 1
        bar.update()
        bar.set_postfix(loss=f"{loss_all:.3f}")
        if done % cfg.log_every == 0 or done == cfg.steps:
            log.append(
                {
                    "step": done,
                    "loss": float(np.mean(losses)),
                    "lr": _lr_at(cfg, step),
                    "seconds": time.perf_counter() - t0,
                }
            )
            losses = []
        if cfg.eval_every and done % cfg.eval_every == 0 and done < cfg.steps:
            e = run_eval(done)
            if e:
                log.append(e)
        if (done % cfg.save_every == 0 or done == cfg.steps) and acc.is_main_process:
            _save_checkpoint(out, done, upper, getattr(optimizer, "optimizer", optimizer), log)
        acc.wait_for_everyone()
        if stop_after is not None and done >= stop_after and done < cfg.steps:
            bar.close()
            return {"stopped_at": done, "log": log}
    bar.close()
    summary = {
        "name": cfg.name,
        "steps": cfg.steps,
        "prompt_kinds": cfg.prompt_kinds,
        "lexicon": words,
        "soft_prompt": cfg.soft_prompt,
        "lora": cfg.lora,
        "trainable_params": trainable,
        "total_params": total,
        "world_size": world,
        "train_seconds": time.perf_counter() - t0,
        "log": log,
    }
    if acc.is_main_process:
        final = _save_final(out, model, processor, peft_model, soft, cfg.wise_ft)
        e = run_eval(cfg.steps)
        if e:
            log.append(e)
            summary["eval_wer"], summary["eval_cer"] = e["eval_wer"], e["eval_cer"]
        summary["final"] = str(final)
        (out / "train_log.json").write_text(json.dumps(summary, indent=1))
    acc.wait_for_everyone()
    return summary
