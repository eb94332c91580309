"""The encoder prefix that the models of a CPU report share, computed once per clip.

Stages 2 and 3 of the ``cpu`` profile freeze the conv stem and the first encoder layers of the
model they start from (``cached_layers`` in ``configs/``; stage 1 trains every layer), so stage 1,
stage 2 and the stage-3 variants compute the same activations there on the same test clip, and
zero-shot whisper-base its own. :func:`shared_prefix` makes a model's
encoder look each clip up in a disk cache before it runs those layers: the first model to see a
clip writes its prefix, every later model with the same frozen weights reads it and runs only its
own upper layers. The key of a clip is a hash of its log-Mel features, so the cache needs no
knowledge of where a clip comes from (a test set, a window of a song); the folder's key is the
frozen weights' (:func:`flamenco_lib.training.model_parts.prefix_key`) and the precision, so a model
whose lower layers differ (a fully fine-tuned one) never reads another's activations.

The prefix is about a fifth of a fine-tuned model's evaluation time on the CPU
(``benchmarks/evaluate.py --variants project "project, shared prefix"``); the activations are
stored as computed (fp32, 3 MB per 30 s clip for whisper-base), so a cached evaluation decodes the
same transcripts as an uncached one. ``make clean-cache`` deletes the folder.

Training has its own cache of the same layers (:class:`flamenco_lib.training.batches.ActivationCache`,
float16, keyed by the training clip's file).

Above the prefix, :class:`EncoderMemo` keeps whole encoder outputs in memory for the rows of a grid
that decode the same clips with the same encoder: a model with and without prompts, the prompt
grid's eight ways of decoding stage 3, the catalogue's first pass, a soft prompt on its base model
(:func:`remembered_encoder`). An encoder's output for a clip does not depend on the other clips
of its batch (a test checks it), so a remembered output is the one the row would compute.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path

import torch

from .paths import cache_dir
from .training.model_parts import encoder_prefix, encoder_suffix, prefix_key

SHARED_LAYERS = (
    2  # layers 0-1: frozen by stages 2 and 3 (cached_layers: 2), so they share stage 1's prefix
)


def feature_key(features: torch.Tensor) -> str:
    """A key for one clip's log-Mel features (``(n_mels, 3000)``): a hash of their bytes."""
    data = features.detach().to("cpu", torch.float32).contiguous().numpy().tobytes()
    return hashlib.blake2b(data, digest_size=16).hexdigest()


class PrefixStats:
    """What a :func:`shared_prefix` block did: clips read from the cache and clips computed."""

    def __init__(self):
        self.read = self.computed = 0

    def __repr__(self) -> str:
        return f"PrefixStats(read={self.read}, computed={self.computed})"


@contextmanager
def shared_prefix(model, k: int = SHARED_LAYERS, folder: str | Path | None = None):
    """Within the block, ``model``'s encoder takes its conv stem and first ``k`` layers from the
    cache (``<folder>/<frozen weights' key>-<weights' dtype>-<autocast dtype>/<feature hash>.pt``;
    default folder ``data/cache/encoder-prefix``), computing and writing the clips it lacks. Yields a
    :class:`PrefixStats`. Calls that ask for hidden states or attentions, or with inputs that are
    not 30 s windows, run the encoder as usual. ``k = 0`` turns the cache off."""
    stats = PrefixStats()
    if k <= 0:
        yield stats
        return
    enc = model.model.encoder
    root = Path(folder or cache_dir() / "encoder-prefix") / prefix_key(enc, k)
    original = enc.forward

    def forward(input_features, attention_mask=None, **kwargs):
        if _as_usual(enc, input_features, kwargs):
            return original(input_features, attention_mask, **kwargs)
        from transformers.modeling_outputs import BaseModelOutput

        device = input_features.device
        weights = str(next(enc.parameters()).dtype).removeprefix("torch.")
        autocast = torch.is_autocast_enabled(device.type)
        computed_in = str(torch.get_autocast_dtype(device.type)) if autocast else weights
        folder = Path(f"{root}-{weights}-{computed_in.removeprefix('torch.')}")
        paths = [folder / f"{feature_key(f)}.pt" for f in input_features]
        hidden: list[torch.Tensor | None] = [
            torch.load(p, map_location=device) if p.exists() else None for p in paths
        ]
        missing = [i for i, h in enumerate(hidden) if h is None]
        stats.read += len(paths) - len(missing)
        if missing:
            computed = encoder_prefix(enc, input_features[missing], k)
            folder.mkdir(parents=True, exist_ok=True)
            for i, h in zip(missing, computed):
                hidden[i] = h
                tmp = paths[i].with_name(f".{paths[i].stem}.{os.getpid()}.tmp")
                torch.save(h.detach().clone().cpu(), tmp)
                os.replace(tmp, paths[i])  # a file is there whole or not at all
            stats.computed += len(missing)
        return BaseModelOutput(last_hidden_state=encoder_suffix(enc, torch.stack(hidden), k))

    enc.forward = forward
    try:
        yield stats
    finally:
        del enc.forward  # the class's forward again


def _as_usual(enc, input_features, kwargs: dict) -> bool:
    """Whether a call of ``enc`` bypasses the caches: it asks for hidden states or attentions,
    or its inputs are not a batch of 30 s windows (3000 frames for every Whisper)."""
    window = enc.config.max_source_positions * enc.conv1.stride[0] * enc.conv2.stride[0]
    plain = any(kwargs.get(f) for f in ("output_attentions", "output_hidden_states"))
    return plain or input_features.ndim != 3 or input_features.shape[-1] != window


def encoder_key(encoder) -> str:
    """A hash of every weight of ``encoder`` (bytes, names and shapes): two encoders with the same
    key compute the same outputs. About 0.1 s for whisper-base."""
    h = hashlib.blake2b(digest_size=16)
    for name, t in encoder.state_dict().items():
        h.update(f"{name}{tuple(t.shape)}{t.dtype}".encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


class EncoderMemo:
    """Whole encoder outputs of the clips seen last, in memory (see the module's docstring).

    Entries are keyed by the encoder's weights (:func:`encoder_key`), the autocast dtype and the
    clip's features (:func:`feature_key`); beyond ``max_bytes`` (default 2 GiB, about 680 clips of
    whisper-base) the oldest go first. ``hits`` and ``misses`` count clips."""

    def __init__(self, max_bytes: int = 2 * 2**30):
        self.max_bytes = int(max_bytes)
        self.bytes = self.hits = self.misses = 0
        self._items: OrderedDict[tuple, torch.Tensor] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"EncoderMemo(clips={len(self)}, hits={self.hits}, misses={self.misses})"

    def get(self, key: tuple) -> torch.Tensor | None:
        hidden = self._items.get(key)
        if hidden is not None:
            self._items.move_to_end(key)  # used again: the last to go
        return hidden

    def put(self, key: tuple, hidden: torch.Tensor) -> None:
        hidden = hidden.detach().clone()  # not a view that keeps its whole batch alive
        size = hidden.numel() * hidden.element_size()
        if size > self.max_bytes:
            return
        if key in self._items:
            old = self._items.pop(key)
            self.bytes -= old.numel() * old.element_size()
        self._items[key] = hidden
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, oldest = self._items.popitem(last=False)
            self.bytes -= oldest.numel() * oldest.element_size()


@contextmanager
def remembered_encoder(model, memo: EncoderMemo):
    """Within the block, ``model``'s encoder returns the output ``memo`` holds for a clip it has
    seen (the same weights, the same autocast dtype) and computes only the others, in one batch
    (through :func:`shared_prefix` when that block is open around this one). Yields ``memo``.
    Calls that ask for hidden states or attentions, or with inputs that are not 30 s windows, run
    the encoder as usual."""
    enc = model.model.encoder
    weights = encoder_key(enc)
    inner = enc.forward  # shared_prefix's forward when its block is open, else the class's
    own = "forward" in vars(enc)

    def forward(input_features, attention_mask=None, **kwargs):
        if _as_usual(enc, input_features, kwargs):
            return inner(input_features, attention_mask, **kwargs)
        from transformers.modeling_outputs import BaseModelOutput

        device = input_features.device
        autocast = torch.is_autocast_enabled(device.type)
        computed_in = str(torch.get_autocast_dtype(device.type)) if autocast else "none"
        keys = [(weights, computed_in, feature_key(f)) for f in input_features]
        hidden = [memo.get(k) for k in keys]
        missing = [i for i, h in enumerate(hidden) if h is None]
        memo.hits += len(keys) - len(missing)
        memo.misses += len(missing)
        if missing:
            mask = None if attention_mask is None else attention_mask[missing]
            computed = inner(input_features[missing], mask, **kwargs)[0]
            for i, h in zip(missing, computed):
                hidden[i] = h
                memo.put(keys[i], h)
        return BaseModelOutput(last_hidden_state=torch.stack([h.to(device) for h in hidden]))

    enc.forward = forward
    try:
        yield memo
    finally:
        if own:
            enc.forward = inner
        else:
            del enc.forward
