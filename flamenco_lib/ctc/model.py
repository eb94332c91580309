"""A tiny character CTC acoustic model: features, the model, training, transcription and the
tuning of shallow fusion weights.

Explained in ``notebooks/03_ctc_vs_deep_fusion.ipynb`` (the foil to Whisper's deep fusion).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from .decoding import greedy_decode, prefix_beam_search
from .lm import NGramLM
from .vocab import BLANK, VOCAB, decode, encode


def log_mel_features(audio) -> torch.Tensor:
    """Whisper's log-Mel of one unpadded clip, each band standardised over the clip.

    Returns
    -------
    torch.Tensor, shape = (n_frames, 80), float32, with ``n_frames = n_samples // 160``.
    """
    from ..audio import log_mel_spectrogram

    mel = log_mel_spectrogram(audio).T  # (T, 80)
    return (mel - mel.mean(0)) / (mel.std(0) + 1e-5)


class TinyCTC(nn.Module):
    """Log-Mel frames -> character log-probabilities: a strided convolution (``stride`` 3 turns
    100 frames per second into 33, still above the ~15 characters per second of fast Spanish
    speech) and a bidirectional GRU, then a linear layer to the classes.

    Parameters
    ----------
    n_mels : int
        Input features per frame.
    hidden : int
        Convolution channels and GRU units per direction.
    n_layers : int
        GRU layers.
    n_classes : int
        Output classes, blank included (default: ``len(VOCAB)``).
    dropout : float
    stride : int
        Input frames (10 ms) per output frame.
    """

    def __init__(
        self,
        *,
        n_mels: int = 80,
        hidden: int = 128,
        n_layers: int = 2,
        n_classes: int = len(VOCAB),
        dropout: float = 0.15,
        stride: int = 3,
    ):
        super().__init__()
        self.stride = stride
        self.conv = nn.Sequential(
            nn.Conv1d(n_mels, hidden, kernel_size=5, stride=self.stride, padding=2),
            nn.GELU(),
            nn.Conv1d(hidden, hidden, kernel_size=3, padding=1),
            nn.GELU(),
        )
        self.gru = nn.GRU(
            hidden,
            hidden,
            num_layers=n_layers,
            bidirectional=True,
            batch_first=True,
            dropout=dropout if n_layers > 1 else 0.0,
        )
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(2 * hidden, n_classes)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return (lengths + 2 * 2 - 5) // self.stride + 1

    def forward(
        self, feats: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``feats`` (N, T, n_mels) padded, ``lengths`` (N,) -> log-probs (T', N, C), lengths (N,)."""
        x = self.conv(feats.transpose(1, 2)).transpose(1, 2)  # (N, T', hidden)
        out_len = self.output_lengths(lengths).clamp(min=1, max=x.shape[1])
        packed = nn.utils.rnn.pack_padded_sequence(
            x, out_len.cpu(), batch_first=True, enforce_sorted=False
        )
        y, _ = self.gru(packed)
        y, _ = nn.utils.rnn.pad_packed_sequence(y, batch_first=True, total_length=x.shape[1])
        return self.out(self.drop(y)).log_softmax(-1).transpose(0, 1), out_len


def _batch(feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(f) for f in feats])
    return nn.utils.rnn.pad_sequence(feats, batch_first=True), lengths


def _spec_augment(
    x: torch.Tensor,
    rng: np.random.Generator,
    *,
    n_freq: int = 2,
    f_width: int = 10,
    n_time: int = 2,
    t_width: int = 20,
) -> torch.Tensor:
    """SpecAugment-style masks (zeros) on (T, F) standardised features."""
    x = x.clone()
    T, F = x.shape
    for _ in range(n_freq):
        w = int(rng.integers(0, f_width + 1))
        f0 = int(rng.integers(0, max(F - w, 1)))
        x[:, f0 : f0 + w] = 0.0
    for _ in range(n_time):
        w = int(rng.integers(0, min(t_width, T // 8) + 1))
        t0 = int(rng.integers(0, max(T - w, 1)))
        x[t0 : t0 + w] = 0.0
    return x


def train_ctc(
    feats: Sequence[torch.Tensor],
    texts: Sequence[str],
    *,
    epochs: int = 30,
    batch_size: int = 8,
    lr: float = 3e-3,
    hidden: int = 128,
    n_layers: int = 2,
    dropout: float = 0.15,
    stride: int = 3,
    augment: bool = True,
    seed: int = 0,
    max_seconds: float | None = None,
    threads: int | None = 1,
    loss_fn: Callable | None = None,
    log: Callable[[dict], None] | None = None,
) -> tuple[TinyCTC, list[dict]]:
    """Train a :class:`TinyCTC` with the CTC loss, AdamW and a one-cycle learning rate.

    Batches hold clips of similar length (sorted, then shuffled in groups); SpecAugment masks
    regularise the ~20 minutes of one voice this is meant for.

    Parameters
    ----------
    feats : sequence of torch.Tensor, shape = (T_i, 80)
        :func:`log_mel_features` of each clip.
    texts : sequence of str
        Transcripts (cleaned and encoded with :func:`encode`).
    epochs, batch_size, lr : training schedule
    hidden, n_layers, dropout, stride : :class:`TinyCTC` size
    augment : bool
        SpecAugment time and frequency masks.
    seed : int
        Initialisation, batch order and masks.
    max_seconds : float, optional
        Stop after this much wall time (a safety net; the schedule assumes ``epochs``).
    threads : int, optional
        ``torch.set_num_threads`` while training (restored after); None leaves it.
    loss_fn : callable, optional
        ``(log_probs, targets, input_lengths, target_lengths) -> mean loss``; default
        ``torch.nn.functional.ctc_loss`` (the fast C++ twin of :func:`ctc_loss`).
    log : callable, optional
        Called with each epoch's history row.

    Returns
    -------
    model : TinyCTC
        In eval mode.
    history : list of dict
        One row per epoch: ``epoch``, ``step``, ``loss`` (mean training loss), ``lr``, ``seconds``.
    """
    if len(feats) != len(texts) or not feats:
        raise ValueError(f"train_ctc: {len(feats)} feature matrices for {len(texts)} texts")
    targets = [torch.tensor(encode(t), dtype=torch.long) for t in texts]
    keep = [
        i
        for i, (f, y) in enumerate(zip(feats, targets, strict=True))
        if len(y) and len(f) // stride > len(y)
    ]
    if not keep:
        raise ValueError("train_ctc: no clip is long enough for its transcript")
    old_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = TinyCTC(
        n_mels=feats[0].shape[1], hidden=hidden, n_layers=n_layers, dropout=dropout, stride=stride
    )
    order = sorted(keep, key=lambda i: len(feats[i]))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-2)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr, total_steps=max(epochs * len(batches), 1), pct_start=0.15
    )
    loss_fn = loss_fn or (
        lambda lp, y, il, tl: nn.functional.ctc_loss(lp, y, il, tl, blank=BLANK, zero_infinity=True)
    )
    history, step, t0 = [], 0, time.perf_counter()
    try:
        for epoch in range(1, epochs + 1):
            model.train()
            total, count = 0.0, 0
            for b in rng.permutation(len(batches)):
                idx = batches[b]
                xs = [_spec_augment(feats[i], rng) if augment else feats[i] for i in idx]
                x, lengths = _batch(xs)
                lp, out_len = model(x, lengths)
                y = torch.cat([targets[i] for i in idx])
                tl = torch.tensor([len(targets[i]) for i in idx])
                loss = loss_fn(lp, y, out_len, tl)
                opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                opt.step()
                sched.step()
                step += 1
                total += loss.item() * len(idx)
                count += len(idx)
            row = {
                "epoch": epoch,
                "step": step,
                "loss": total / count,
                "lr": sched.get_last_lr()[0],
                "seconds": time.perf_counter() - t0,
            }
            history.append(row)
            if log:
                log(row)
            if max_seconds is not None and row["seconds"] > max_seconds:
                break
    finally:
        if threads:
            torch.set_num_threads(old_threads)
    return model.eval(), history


@torch.no_grad()
def ctc_log_probs(
    model: TinyCTC, feats: Sequence[torch.Tensor], *, batch_size: int = 16
) -> list[torch.Tensor]:
    """The model's log-probabilities of each clip, shape = (T'_i, C), unpadded."""
    model.eval()
    out = []
    for i in range(0, len(feats), batch_size):
        x, lengths = _batch(list(feats[i : i + batch_size]))
        lp, out_len = model(x, lengths)
        out += [lp[: int(n), j] for j, n in enumerate(out_len)]
    return out


def transcribe_ctc(
    log_probs: Sequence[torch.Tensor],
    *,
    decoder: str = "greedy",
    beam: int = 16,
    lm: NGramLM | None = None,
    lm_weight: float = 0.0,
    word_bonus: float = 0.0,
) -> list[str]:
    """Texts of CTC outputs: ``"greedy"`` (best path) or ``"beam"`` (:func:`prefix_beam_search`,
    with shallow fusion when ``lm`` and a weight are given)."""
    if decoder == "greedy":
        return [decode(greedy_decode(lp)) for lp in log_probs]
    if decoder != "beam":
        raise ValueError(f"transcribe_ctc: decoder must be 'greedy' or 'beam', got {decoder!r}")
    return [
        decode(
            prefix_beam_search(lp, beam=beam, lm=lm, lm_weight=lm_weight, word_bonus=word_bonus)[0][
                0
            ]
        )
        for lp in log_probs
    ]


def tune_fusion(
    log_probs: Sequence[torch.Tensor],
    refs: Sequence[str],
    *,
    lm: NGramLM,
    lm_weights: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0),
    word_bonuses: Sequence[float] = (0.0, 1.0, 2.0),
    beam: int = 16,
    score: Callable[[list[str], list[str]], float] | None = None,
) -> list[dict]:
    """WER of beam search on a (dev) split for every ``(lm_weight, word_bonus)`` of the grid.

    ``score(refs, hyps)`` gives the error rate (default :func:`flamenco_lib.metrics.wer`).

    Returns
    -------
    list of dict
        ``lm_weight``, ``word_bonus``, ``wer`` per grid point; pick the lowest WER (on dev,
        never on test).
    """
    from ..metrics import wer

    score = score or wer
    rows = []
    for a in lm_weights:
        for b in word_bonuses:
            hyps = transcribe_ctc(
                log_probs, decoder="beam", beam=beam, lm=lm, lm_weight=a, word_bonus=b
            )
            rows.append(
                {"lm_weight": float(a), "word_bonus": float(b), "wer": score(list(refs), hyps)}
            )
    return rows
