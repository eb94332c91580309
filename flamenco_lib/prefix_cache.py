"""The encoder prefix that every model of a CPU report shares, computed once per clip.

The ``cpu`` stages freeze whisper-base's conv stem and its first encoder layers (``cached_layers``
in ``configs/``), so zero-shot whisper-base, stage 1, its control, stage 2 and the stage-3 variants
compute the same activations there on the same test clip. :func:`shared_prefix` makes a model's
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
"""

from __future__ import annotations

import hashlib
import os
from contextlib import contextmanager
from pathlib import Path

import torch

from .paths import cache_dir
from .training.model_parts import encoder_prefix, encoder_suffix, prefix_key

SHARED_LAYERS = 2  # the encoder layers every cpu-profile stage freezes (cached_layers >= 2)


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
        plain = any(kwargs.get(f) for f in ("output_attentions", "output_hidden_states"))
        window = enc.config.max_source_positions * enc.conv1.stride[0] * enc.conv2.stride[0]
        if plain or input_features.ndim != 3 or input_features.shape[-1] != window:
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
