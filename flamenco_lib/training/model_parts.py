"""What trains: the frozen lower encoder and the trained upper part, LoRA adapters.

Whisper's encoder is a conv stem and a stack of layers. With ``cached_layers: k`` the stem and the
first ``k`` layers are frozen and run once per clip (:func:`encoder_prefix`; their output is
cached, :class:`flamenco_lib.training.batches.ActivationCache`), and training runs only the upper
layers and the decoder (:class:`UpperWhisper`). ``k = 0`` is full fine-tuning.

Notebook: ``07_stage1_flamenco.ipynb`` (why the lower encoder is frozen, what it costs).
"""

from __future__ import annotations

import hashlib
import re

import torch
from torch import nn

from .config import LORA_DEFAULTS


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


def prefix_key(encoder, k: int) -> str:
    """A key for the frozen part (conv stem, positions, layers ``0..k-1``): the layer count and a
    slice of each of those weights. Two encoders with the same key compute the same prefix."""
    h = hashlib.sha1(f"{k}".encode())
    for name, p in encoder.named_parameters():
        if name.startswith(("conv", "embed_positions")) or any(
            name.startswith(f"layers.{i}.") for i in range(k)
        ):
            h.update(name.encode())
            h.update(p.detach().float().cpu().numpy()[..., :4].tobytes())
    return h.hexdigest()[:16]


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

    def forward(
        self, inputs: torch.Tensor, decoder_input_ids: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        from transformers.modeling_outputs import BaseModelOutput

        if self.k == 0:
            enc = self.model.model.encoder(inputs).last_hidden_state
        else:
            enc = encoder_suffix(self.model.model.encoder, inputs, self.k)
        if self.soft is None:
            out = self.model(
                encoder_outputs=BaseModelOutput(last_hidden_state=enc),
                decoder_input_ids=decoder_input_ids,
                labels=labels,
            )
            return out.loss
        embeds = self.soft.decoder_embeds(self.model, self.tokenizer, decoder_input_ids)
        pad = torch.full(
            (labels.shape[0], 1 + self.soft.k), -100, dtype=labels.dtype, device=labels.device
        )
        out = self.model(
            encoder_outputs=BaseModelOutput(last_hidden_state=enc),
            decoder_inputs_embeds=embeds,
            labels=torch.cat([pad, labels], dim=1),
        )
        return out.loss


def add_lora(model, opts: dict, k: int):
    """LoRA adapters (peft) on the projections named in ``opts["target_modules"]``; only the adapters
    of encoder layers ``k...`` and of the decoder train, every original weight is frozen.

    The adapters are injected into ``model`` in place. Returns (peft model, trainable count);
    ``peft_model.merge_and_unload()`` folds them back into plain Whisper weights for saving.
    """
    from peft import LoraConfig, get_peft_model

    opts = {**LORA_DEFAULTS, **opts}
    config = LoraConfig(
        r=opts["r"],
        lora_alpha=opts["alpha"],
        lora_dropout=opts["dropout"],
        target_modules=list(opts["target_modules"]),
        bias="none",
    )
    peft_model = get_peft_model(model, config)
    for name, p in model.named_parameters():
        layer = re.search(r"encoder\.layers\.(\d+)\.", name)
        p.requires_grad_("lora_" in name and not (layer and int(layer.group(1)) < k))
    return peft_model, sum(p.numel() for p in model.parameters() if p.requires_grad)


def freeze_lower(model, k: int, *, decoder: bool = False) -> tuple[int, int]:
    """Freeze the conv stem, positions and first ``k`` encoder layers (k > 0), and with
    ``decoder`` the whole decoder (its language model stays Whisper's: only the hearing adapts).
    Returns (trainable, total) parameter counts."""
    for p in model.parameters():
        p.requires_grad_(True)
    if k > 0:
        enc = model.model.encoder
        for m in (enc.conv1, enc.conv2, enc.embed_positions, *enc.layers[:k]):
            for p in m.parameters():
                p.requires_grad_(False)
    if decoder:  # (proj_out shares the token embeddings: frozen with them)
        model.model.decoder.requires_grad_(False)
    model.model.encoder.embed_positions.requires_grad_(False)  # sinusoidal, never trained
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())


def wise_ft(tuned: dict, base: dict, alpha: float) -> dict:
    """A weight-space ensemble (WiSE-FT; Wortsman et al., "Robust fine-tuning of zero-shot
    models", CVPR 2022): ``base + alpha * (tuned - base)``, weight by weight, in ``tuned``'s dtypes.
    ``alpha`` is the share of the fine-tuning kept: 1 the fine-tuned model, 0 the model it started
    from. ``ValueError`` when the two are not the same architecture."""
    if set(tuned) != set(base) or any(tuned[k].shape != base[k].shape for k in tuned):
        raise ValueError("wise_ft: the fine-tuned and the base weights differ in names or shapes")
    return {
        k: (b.float() + alpha * (tuned[k].float() - b.float())).to(tuned[k].dtype)
        for k, b in base.items()
    }


def move_back(model, base_model, alpha: float) -> None:
    """``model``'s weights replaced, in place, by :func:`wise_ft` of them and ``base_model``'s
    (each tied weight once: Whisper's output projection is its token embedding)."""
    base = dict(base_model.named_parameters())
    with torch.no_grad():
        for name, p in model.named_parameters():  # tied weights are listed once
            p.copy_(wise_ft({name: p}, {name: base[name].to(p.device)}, alpha)[name])
