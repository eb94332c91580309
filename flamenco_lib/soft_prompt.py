"""Soft prompts: ``k`` learned embedding vectors in Whisper's previous-text slot (stage 3).

The decoder's input becomes ``<|startofprev|>`` + ``k`` free vectors + ``<|startoftranscript|>
<|es|><|transcribe|><|notimestamps|>`` + text: the same slot a text prompt uses, but the vectors
need not be embeddings of any token. Only the ``k x d_model`` vectors train (whisper-base, k=16:
8,192 parameters, 0.01% of the model); the model stays frozen. Initialised from a text prompt's
token embeddings, a soft prompt decodes exactly as that text prompt does (tested), which is the
natural starting point for training.

Saved as ``soft_prompt.pt`` next to (or apart from) the model;
:func:`flamenco_lib.tokens.greedy_decode` transcribes with it, since ``generate`` only accepts
token ids in the prompt slot.

Notebook: ``09_stage3_prompts.ipynb``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .errors import FlamencoError
from .tokens import greedy_decode

__all__ = ["FILENAME", "SoftPrompt", "SoftPromptMissing", "greedy_decode"]

FILENAME = "soft_prompt.pt"


class SoftPromptMissing(FlamencoError, FileNotFoundError):
    """No ``soft_prompt.pt`` where one was asked for."""


class SoftPrompt(nn.Module):
    """``k`` trainable vectors of the decoder's width, placed after ``<|startofprev|>``."""

    def __init__(
        self,
        k: int,
        d_model: int,
        *,
        init: torch.Tensor | None = None,
        init_text: str | None = None,
    ):
        super().__init__()
        if init is not None and tuple(init.shape) != (k, d_model):
            raise ValueError(f"init has shape {tuple(init.shape)}, expected ({k}, {d_model})")
        self.embeddings = nn.Parameter(
            init.clone().float() if init is not None else torch.randn(k, d_model) * 0.02
        )
        self.init_text = init_text

    @classmethod
    def from_text(cls, model, tokenizer, text: str, *, k: int | None = None) -> SoftPrompt:
        """A soft prompt equal to the token embeddings of ``text`` (k = its number of tokens).

        With ``k``, the text's last ``k`` tokens (the text is repeated if it is shorter)."""
        ids = tokenizer.encode(" " + text.strip(), add_special_tokens=False)
        if not ids:
            raise ValueError("from_text: the text has no tokens")
        if k is not None:
            ids = (ids * (k // len(ids) + 1))[-k:]
        with torch.no_grad():
            emb = model.get_decoder().embed_tokens.weight[ids].detach().cpu()
        return cls(len(ids), emb.shape[1], init=emb, init_text=text)

    @property
    def k(self) -> int:
        return self.embeddings.shape[0]

    def decoder_embeds(self, model, tokenizer, ids_after: torch.Tensor) -> torch.Tensor:
        """Decoder input embeddings: ``<|startofprev|>``, the soft vectors, then ``ids_after``
        (batch, n) embedded -> (batch, 1 + k + n, d_model)."""
        embed = model.get_decoder().embed_tokens
        b = ids_after.shape[0]
        sop = torch.full(
            (b, 1), tokenizer.convert_tokens_to_ids("<|startofprev|>"), device=ids_after.device
        )
        soft = (
            self.embeddings.to(embed.weight.dtype)
            .to(ids_after.device)
            .unsqueeze(0)
            .expand(b, -1, -1)
        )
        return torch.cat([embed(sop), soft, embed(ids_after)], dim=1)

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / FILENAME
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(
            {"embeddings": self.embeddings.detach().cpu(), "init_text": self.init_text}, path
        )
        return path

    @classmethod
    def load(cls, folder_or_file: str | Path) -> SoftPrompt:
        path = Path(folder_or_file)
        path = path / FILENAME if path.is_dir() else path
        if not path.exists():
            raise SoftPromptMissing(
                f"{path}: no soft prompt here (train one with configs/stage3_soft.yaml)"
            )
        state = torch.load(path, map_location="cpu")
        emb = state["embeddings"]
        return cls(emb.shape[0], emb.shape[1], init=emb, init_text=state.get("init_text"))
