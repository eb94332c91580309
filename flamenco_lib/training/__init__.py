"""Fine-tuning stages: one config per stage, one entry point, checkpoints and resume.

``python -m flamenco_lib train --config configs/stage1.yaml [--profile cpu|gpu|smoke] [--resume]``
calls :func:`train_stage`. The package, in the order a run uses it:

- :mod:`.config` — :class:`StageConfig` from a YAML file in ``configs/`` with per-profile
  overrides; a bad key or value is a :class:`ConfigError` naming it.
- :mod:`.model_parts` — the frozen, cached lower encoder (``cached_layers: k``) and the trained
  upper part (:class:`UpperWhisper`), LoRA adapters. On 2 CPU cores this is what makes real
  progress in minutes (see ``configs/README.md``); ``cached_layers: 0`` is ordinary full
  fine-tuning on log-Mel features (the ``gpu`` profile).
- :mod:`.batches` — labels in Whisper's decoder layout (:func:`collate_labels`), the activation
  cache (:class:`ActivationCache`), batches as a pure function of (seed, step).
- :mod:`.loop` — :func:`train_stage`: the steps, evaluation with the evaluation runner,
  checkpoints, resume, the final model; the same code under ``torchrun``/``accelerate launch``.

Notebooks: ``07_stage1_flamenco.ipynb``, ``08_stage2_common_voice.ipynb``, ``09_stage3_prompts.ipynb``.
"""

from ..tokens import label_ids, prefix_ids
from .batches import (
    ActivationCache,
    batch_indices,
    collate_labels,
    drawn_items,
    grouped,
    read_sources,
)
from .config import (
    LORA_DEFAULTS,
    PRECISIONS,
    ConfigError,
    Source,
    StageConfig,
    auto_precision,
    load_config,
)
from .loop import deterministic_kernels, train_stage
from .model_parts import UpperWhisper, add_lora, encoder_prefix, encoder_suffix, freeze_lower

__all__ = [
    "LORA_DEFAULTS",
    "PRECISIONS",
    "ActivationCache",
    "ConfigError",
    "Source",
    "StageConfig",
    "UpperWhisper",
    "add_lora",
    "auto_precision",
    "batch_indices",
    "collate_labels",
    "deterministic_kernels",
    "drawn_items",
    "grouped",
    "read_sources",
    "encoder_prefix",
    "encoder_suffix",
    "freeze_lower",
    "label_ids",
    "load_config",
    "prefix_ids",
    "train_stage",
]
