"""What a training step reads: labels in Whisper's decoder layout, cached encoder activations,
and batches that are a pure function of (seed, step).

- :func:`collate_labels` — ``decoder_input_ids`` = ``<|startoftranscript|><|es|><|transcribe|>
  <|notimestamps|> text`` and ``labels`` = the same shifted left, ending in ``<|endoftext|>``,
  padded with -100 (no loss on padding or on a prompt); with a time span, ``<|0.00|> text
  <|2.40|>`` in place of ``<|notimestamps|> text`` (Whisper's timestamped layout).
- :func:`voice_span`, :func:`timestamp_slots` — where a clip's voice is, and which slots of a
  step's batch are labelled with timestamps (``timestamp_share`` of a stage config), so that a
  fine-tuned model still predicts timestamps (long-form decoding needs them).
- :func:`speed_factors`, :func:`perturb_speed` — speed perturbation (``speed_perturb`` of a stage
  config): each slot's clip played faster or slower, its voice a little higher or lower, a
  factor drawn per slot as a pure function of (seed, step).
- :func:`spec_augment` — SpecAugment masks (``spec_augment`` of a stage config): bands of
  log-Mel frames and of Mel channels set to zero within each clip, drawn per slot as well.
- :class:`ActivationCache` — the frozen lower encoder's output, one file per clip, computed only
  for the clips the run's batches draw.
- :func:`read_sources` — the training rows of a stage's sources.
- :func:`batch_indices` — each slot draws a source by its weight and an item uniformly from it
  (with replacement): a resumed run sees exactly the batches an uninterrupted run sees, and stage
  2's replay share is just a weight. A source with ``balance: singer`` (:func:`grouped`) draws a
  singer first, each equally often, then one of that singer's rows: a corpus where one voice has
  most of the lines still trains on every voice.

Notebooks: ``07_stage1_flamenco.ipynb``, ``09_stage3_prompts.ipynb`` (labels with a prompt).
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from ..paths import cache_dir
from ..tokens import MAX_TIME_S, label_ids, prefix_ids, timestamp_id
from .config import ConfigError, StageConfig
from .model_parts import encoder_prefix, prefix_key


def collate_labels(
    tokenizer,
    texts: list[str],
    *,
    language: str = "es",
    max_len: int = 448,
    prompts: list[str | None] | None = None,
    times: list[tuple[float, float] | None] | None = None,
) -> dict:
    """Decoder inputs and labels for a batch of transcripts, optionally after a text prompt.

    For each text: ``decoder_input_ids`` = [prompt] + prefix + text tokens, ``labels`` = the same
    shifted left by one + ``<|endoftext|>``, so position ``t`` predicts token ``t + 1``. With a
    prompt (:func:`flamenco_lib.prompts.prompt_token_ids`: ``<|startofprev|>`` + its tokens) the
    labels of every prompt position, and of the position that predicts
    ``<|startoftranscript|>``, are -100: no loss on the prompt, the model is never taught to
    produce it. Padding: decoder inputs with ``<|endoftext|>``, labels with -100.

    With a time span ``(start, end)`` in ``times`` (seconds within the clip), the text is
    timestamped as Whisper writes one segment: ``<|startoftranscript|><|es|><|transcribe|>
    <|start|> text <|end|><|endoftext|>``, without ``<|notimestamps|>``; the loss then also
    teaches the time tokens. ``None`` (the default, and any ``None`` item): ``<|notimestamps|>``.

    The layout equals what ``generate(prompt_ids=...)`` feeds the decoder (tests/test_prompts.py).

    Returns ``{"decoder_input_ids": (B, L) long, "labels": (B, L) long}``.
    """
    from ..prompts import prompt_token_ids

    eot = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    pre = prefix_ids(tokenizer, language=language)
    prompts = prompts or [None] * len(texts)
    times = times or [None] * len(texts)
    if len(prompts) != len(texts) or len(times) != len(texts):
        raise ValueError(f"{len(prompts)} prompts and {len(times)} times for {len(texts)} texts")
    seqs, masked = [], []
    for t, pr, span in zip(texts, prompts, times):
        pids = prompt_token_ids(tokenizer, pr)
        if span is None:
            ids = pids + pre + label_ids(tokenizer, t) + [eot]
        else:
            t0, t1 = span
            if not t0 < t1:
                raise ValueError(f"a time span must end after it starts, got {span!r} for {t!r}")
            first, last = timestamp_id(tokenizer, t0), timestamp_id(tokenizer, t1)
            ids = pids + pre[:3] + [first] + label_ids(tokenizer, t) + [last, eot]
        if len(ids) > max_len:
            raise ValueError(
                f"label of {len(ids)} tokens > {max_len} (Whisper's context): {t[:60]!r}..."
            )
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


def voice_span(row: dict, speed: float = 1.0) -> tuple[float, float] | None:
    """Where the voice is in a manifest row's clip, in seconds from the clip's start, when the
    manifest says so: a segment cut from a longer recording at a sung line's start and end
    (``start``/``end``: the line fills the segment), or a synthetic clip, which the voice fills
    from its first to its last sample (``duration_s``). None for whole real recordings, whose
    silences nobody measured. ``speed``: the clip was played that many times as fast
    (:func:`perturb_speed`), so the span is that many times shorter. Spans end at 30 s at the
    latest."""
    if row.get("start") is not None and row.get("end") is not None:
        span = float(row["end"]) - float(row["start"])
    elif str(row.get("source") or "").startswith("synth") and row.get("duration_s"):
        span = float(row["duration_s"])
    else:
        return None
    return (0.0, min(span / speed, MAX_TIME_S)) if span > 0 else None


def timestamp_slots(seed: int, step: int, batch_size: int, share: float) -> list[bool]:
    """Which slots of a step's global batch are labelled with timestamps: each with probability
    ``share``, a pure function of (seed, step) like :func:`batch_indices` (a resumed run labels
    its batches exactly as an uninterrupted one)."""
    if share <= 0:
        return [False] * batch_size
    rng = np.random.default_rng([int(seed), int(step), 13])  # 7: batches, 11: prompt drops
    return (rng.random(batch_size) < share).tolist()


def speed_factors(
    seed: int, step: int, batch_size: int, speed: tuple[float, float] | None
) -> list[float]:
    """The speed factor of each slot of a step's global batch, drawn uniformly from ``speed`` =
    (low, high); all 1.0 when ``speed`` is None. A pure function of (seed, step), like
    :func:`batch_indices`: a resumed run perturbs its batches exactly as an uninterrupted one."""
    if not speed:
        return [1.0] * batch_size
    rng = np.random.default_rng([int(seed), int(step), 17])  # 7, 11, 13: batches, prompts, times
    return rng.uniform(float(speed[0]), float(speed[1]), batch_size).tolist()


def perturb_speed(audio: np.ndarray, factor: float, sr: int = 16000) -> tuple[np.ndarray, float]:
    """Speed perturbation: the clip played ``factor`` times as fast (resampled as if it had been
    recorded at ``factor * sr``): shorter and higher for a factor above 1, its rate, pitch and
    formants moved together, as a tape played at another speed. A slowed clip is kept within
    Whisper's 30 s window (the factor raised as far as needed, never above 1), so that its label
    still covers all of it. Returns (audio, the factor used)."""
    if factor < 1.0:
        factor = min(1.0, max(factor, len(audio) / (MAX_TIME_S * sr)))
    if factor == 1.0:
        return audio, 1.0
    import librosa

    orig = round(sr * factor)  # whole hertz: the factor used is orig / sr
    out = librosa.resample(audio, orig_sr=orig, target_sr=sr, res_type="soxr_hq")
    return out.astype(np.float32, copy=False), orig / sr


def played_features(
    processor, rows: list[dict], speeds: list[float]
) -> tuple[torch.Tensor, list[float], list[int]]:
    """The log-Mel features of the clips of ``rows`` (each its segment ``start``-``end``), each
    played at its speed (:func:`perturb_speed`); returns them, the speeds used and each clip's
    number of frames before the padding to 30 s."""
    from ..audio import HOP_LENGTH, N_FRAMES, load_audio

    audios = [load_audio(r["audio_path"], start=r.get("start"), end=r.get("end")) for r in rows]
    played = [perturb_speed(a, f) for a, f in zip(audios, speeds)]
    frames = [min(len(a) // HOP_LENGTH, N_FRAMES) for a, _ in played]
    return _features(processor, [a for a, _ in played]), [f for _, f in played], frames


SPEC_WIDTH = {"time": 10, "freq": 10}  # the width of one mask, frames / Mel channels (as HF's)


def spec_augment(
    x: torch.Tensor, frames: list[int], spec: dict | None, seed: int, step: int, first: int = 0
) -> torch.Tensor:
    """SpecAugment (Park et al., 2019) on a batch of log-Mel features ``x`` (batch, n_mels, 3000):
    masks of :data:`SPEC_WIDTH` set to zero, in each clip's first ``frames`` frames only (not its
    padding), so that ``spec["time"]`` of the frames and ``spec["freq"]`` of the Mel channels are
    masked on average. A clip of n frames gets ``floor(p * n / width + u)`` masks, u uniform in
    [0, 1) (as ``transformers``' ``_compute_mask_indices``), each at a uniform position; masks may
    overlap. A pure function of (seed, step, slot): slot ``first + i`` of the step's global batch
    is row i of ``x``. Returns a new tensor; ``x`` unchanged (the same tensor when ``spec`` is None)."""
    if not spec:
        return x
    x = x.clone()
    for i, n in enumerate(frames):
        rng = np.random.default_rng([int(seed), int(step), first + i, 19])  # 17: speeds
        for axis, size in (("time", n), ("freq", x.shape[1])):
            w, p = SPEC_WIDTH[axis], float(spec.get(axis, 0.0))
            if p <= 0 or size <= w:
                continue
            for start in rng.integers(0, size - w + 1, int(p * size / w + rng.random())):
                if axis == "time":
                    x[i, :, start : start + w] = 0.0
                else:
                    x[i, start : start + w, :n] = 0.0
    return x


def _features(processor, audios: list[np.ndarray]) -> torch.Tensor:
    return processor.feature_extractor(
        audios, sampling_rate=16000, return_tensors="pt"
    ).input_features


def _row_key(r: dict) -> str:
    s = f"{r['audio_path']}|{r.get('start')}|{r.get('end')}|{os.path.getsize(r['audio_path'])}"
    return hashlib.sha1(s.encode()).hexdigest()[:20]


_AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


class ActivationCache:
    """Encoder-prefix activations, one ``(1500, d_model)`` float16 file per clip:
    ``<cache>/<hash of the frozen weights and k>[-<precision>]/<hash of the clip>.npy``. The prefix
    runs in the stage's ``precision`` (bf16/fp16 autocast), as it would without the cache.

    One file per clip, so a run computes only the clips its batches will draw (:meth:`fill`), and
    a later stage with the same frozen layers reuses whatever an earlier one computed (stage 3
    reads stage 2's files: both freeze stage 1's layers 0-1); an interrupted fill keeps every file
    already written.
    """

    def __init__(self, model, k: int, cache: Path | None = None, *, precision: str = "fp32"):
        self.model, self.k, self.precision = model, int(k), precision
        key = prefix_key(model.model.encoder, k) + ("" if precision == "fp32" else f"-{precision}")
        self.folder = Path(cache or cache_dir() / "activations") / key

    def path(self, row: dict) -> Path:
        return self.folder / f"{_row_key(row)}.npy"

    @torch.no_grad()
    def fill(
        self, processor, rows: list[dict], *, batch_size: int = 8, progress: bool = True
    ) -> int:
        """Compute and write the clips of ``rows`` that are not cached yet; returns how many."""
        from tqdm.auto import tqdm

        from ..audio import load_audio

        todo = list({str(self.path(r)): r for r in rows if not self.path(r).exists()}.values())
        if not todo:
            return 0
        self.folder.mkdir(parents=True, exist_ok=True)
        enc, dtype = self.model.model.encoder, next(self.model.parameters()).dtype
        for b in tqdm(
            range(0, len(todo), batch_size),
            desc=f"cache encoder layers <{self.k}",
            unit="batch",
            disable=not progress,
        ):
            chunk = todo[b : b + batch_size]
            audios = [
                load_audio(r["audio_path"], start=r.get("start"), end=r.get("end")) for r in chunk
            ]
            x = _features(processor, audios).to(self.model.device, dtype)
            with torch.autocast(
                self.model.device.type,
                dtype=_AUTOCAST.get(self.precision, torch.bfloat16),
                enabled=self.precision in _AUTOCAST,
            ):
                acts = encoder_prefix(enc, x, self.k).float().cpu().numpy().astype(np.float16)
            for r, a in zip(chunk, acts):
                dest = self.path(r)
                tmp = dest.with_name(f".{dest.stem}.{os.getpid()}.tmp.npy")
                np.save(tmp, a)
                os.replace(tmp, dest)  # a file is there whole or not at all
        return len(todo)

    def get(self, row: dict) -> np.ndarray:
        return np.load(self.path(row))


def read_sources(cfg: StageConfig) -> tuple[list[list[dict]], list]:
    """The rows of each training source (its split, at most ``max_items``) in the order batches
    draw them from, and each source's size for :func:`batch_indices` (:func:`grouped`).
    ``ConfigError`` naming the config and the manifest for an empty source or a row without the
    source's ``balance`` field."""
    from ..data.manifest import read_manifest

    sources, sizes = [], []
    for s in cfg.train:
        rows = [r for r in read_manifest(s.manifest) if r["split"] == s.split]
        if s.max_items is not None:
            rows = rows[: s.max_items]
        if not rows:
            raise ConfigError(f"{cfg.source_file}: {s.manifest} has no rows in split {s.split!r}")
        try:
            rows, size = grouped(rows, s.balance)
        except KeyError as e:
            raise ConfigError(f"{cfg.source_file}: balance: {s.manifest}: {e.args[0]}") from None
        sources.append(rows)
        sizes.append(size)
    return sources, sizes


def grouped(rows: list[dict], key: str | None) -> tuple[list[dict], int | tuple[int, ...]]:
    """A source's rows in the order :func:`batch_indices` draws them from, and its size there:
    ``len(rows)`` (``key`` None: every row equally often), or, with ``key`` a manifest field
    (``singer``), the rows sorted by its value (stable) and the number of rows of each value, so
    that each value is drawn equally often whatever its share of the rows. ``KeyError`` naming the
    first row without the field."""
    if key is None:
        return rows, len(rows)
    for r in rows:
        if key not in r:
            raise KeyError(f"row {r.get('id', '?')!r} has no field {key!r}")
    ordered = sorted(rows, key=lambda r: str(r[key]))
    return ordered, tuple(Counter(str(r[key]) for r in ordered).values())  # in sorted order


def drawn_items(
    seed: int, steps: range, weights: list[float], sizes: list, batch_size: int
) -> list[set[int]]:
    """For each source, the items that the batches of ``steps`` draw (:func:`batch_indices`):
    the only clips a run needs, so the only ones whose activations it computes."""
    out: list[set[int]] = [set() for _ in sizes]
    for step in steps:
        for s, i in batch_indices(seed, step, weights, sizes, batch_size):
            out[s].add(i)
    return out


def batch_indices(
    seed: int, step: int, weights: list[float], sizes: list, batch_size: int
) -> list[tuple[int, int]]:
    """The global batch of one step: ``batch_size`` (source, item) pairs, a pure function of
    (seed, step) — each slot draws a source with probability proportional to its weight, then an
    item uniformly; where a source's size is a tuple of group sizes (:func:`grouped`), a group
    uniformly, then an item of it. Resuming at any step reproduces the batches exactly."""
    rng = np.random.default_rng([int(seed), int(step), 7])
    p = np.asarray(weights, dtype=float) / np.sum(weights)
    src = rng.choice(len(sizes), size=batch_size, p=p)
    out = []
    for s in src:
        size = sizes[s]
        if isinstance(size, tuple):
            g = int(rng.integers(len(size)))
            out.append((int(s), sum(size[:g]) + int(rng.integers(size[g]))))
        else:
            out.append((int(s), int(rng.integers(size))))
    return out
