"""The CTC loss by the forward algorithm in log space.

Explained in ``notebooks/03_ctc_vs_deep_fusion.ipynb`` (the trellis of forward variables ``alpha``).
Shapes: ``T`` frames, ``N`` utterances, ``C`` classes (blank included), ``S`` target length.
"""

from __future__ import annotations

import math

import torch

from .vocab import BLANK

NEG_INF = -1e30  # a finite "log 0": keeps autograd free of inf - inf = NaN


def _lse(*xs: torch.Tensor) -> torch.Tensor:
    return torch.logsumexp(torch.stack(xs), dim=0)


def _targets_2d(targets, target_lengths: torch.Tensor, n: int) -> torch.Tensor:
    """(N, S_max) padded targets from padded or concatenated (1-D) ones."""
    targets = torch.as_tensor(targets, dtype=torch.long)
    if targets.ndim == 2:
        return targets
    s_max = int(target_lengths.max()) if n else 0
    out = torch.zeros(n, max(s_max, 1), dtype=torch.long)
    offset = 0
    for i, s in enumerate(target_lengths.tolist()):
        out[i, :s] = targets[offset : offset + s]
        offset += s
    return out


def ctc_forward(
    log_probs: torch.Tensor,
    targets,
    input_lengths,
    target_lengths,
    *,
    blank: int = BLANK,
    return_alpha: bool = False,
):
    """Log-likelihood ``log p(y | x)`` of each target by the CTC forward algorithm.

    The target ``y`` (length ``S``) is extended with blanks, ``y' = (-, y1, -, y2, ..., yS, -)``
    (``2S + 1`` states). ``alpha[t, s]`` is the log-probability of all alignments of the first
    ``t + 1`` frames that end in state ``s``::

        alpha[t, s] = logsumexp(alpha[t-1, s], alpha[t-1, s-1], alpha[t-1, s-2] if allowed)
                      + log_probs[t, y'_s]

    The skip ``s-2 -> s`` is allowed unless ``y'_s`` is blank or equals ``y'_{s-2}`` (a repeated
    label needs a blank between its copies). ``log p(y|x) = logsumexp(alpha[T-1, 2S], alpha[T-1, 2S-1])``.

    Parameters
    ----------
    log_probs : torch.Tensor, shape = (T, N, C)
        Log-softmax outputs.
    targets : torch.Tensor, shape = (N, S_max) padded, or (sum(target_lengths),) concatenated
    input_lengths, target_lengths : sequence of int or torch.Tensor, shape = (N,)
    blank : int
    return_alpha : bool
        Also return every ``alpha``, shape = (T, N, 2 * S_max + 1) (for figures).

    Returns
    -------
    torch.Tensor, shape = (N,)
        ``log p(y|x)``; ``<= -1e29`` when no alignment exists (input too short).
    """
    T, N, _ = log_probs.shape
    input_lengths = torch.as_tensor(input_lengths, dtype=torch.long).reshape(N)
    target_lengths = torch.as_tensor(target_lengths, dtype=torch.long).reshape(N)
    tg = _targets_2d(targets, target_lengths, N)
    L = 2 * tg.shape[1] + 1
    ext = torch.full((N, L), blank, dtype=torch.long)
    ext[:, 1::2] = tg
    # Skips s-2 -> s: only into a label state whose label differs from the one two states back.
    skip = torch.zeros(N, L, dtype=torch.bool)
    skip[:, 3::2] = tg[:, 1:] != tg[:, :-1]
    emit = log_probs.gather(2, ext.unsqueeze(0).expand(T, N, L))  # (T, N, L)
    neg = torch.full((N, L), NEG_INF, dtype=log_probs.dtype)
    neg1 = torch.full((N, 1), NEG_INF, dtype=log_probs.dtype)
    neg2 = torch.full((N, 2), NEG_INF, dtype=log_probs.dtype)

    start = torch.zeros(N, L, dtype=torch.bool)
    start[:, 0] = True
    start[:, 1] = target_lengths > 0
    alpha = torch.where(start, emit[0], neg)
    alphas = [alpha]
    for t in range(1, T):
        stay = alpha
        step = torch.cat([neg1, alpha[:, :-1]], dim=1)
        jump = torch.where(skip, torch.cat([neg2, alpha[:, :-2]], dim=1), neg)
        new = _lse(stay, step, jump) + emit[t]
        alpha = torch.where((t < input_lengths).unsqueeze(1), new, alpha)  # frozen after the end
        if return_alpha:
            alphas.append(alpha)
    last = (2 * target_lengths).unsqueeze(1)
    end_blank = alpha.gather(1, last).squeeze(1)
    end_label = alpha.gather(1, (last - 1).clamp(min=0)).squeeze(1)
    end_label = torch.where(target_lengths > 0, end_label, torch.full_like(end_label, NEG_INF))
    ll = _lse(end_blank, end_label)
    if return_alpha:
        return ll, torch.stack(alphas)
    return ll


def ctc_loss(
    log_probs: torch.Tensor,
    targets,
    input_lengths,
    target_lengths,
    *,
    blank: int = BLANK,
    reduction: str = "mean",
    zero_infinity: bool = False,
) -> torch.Tensor:
    """CTC loss ``-log p(y | x)`` by the forward algorithm (:func:`ctc_forward`), differentiable.

    Same conventions as ``torch.nn.functional.ctc_loss``, which it equals (tests/test_ctc.py).

    Parameters
    ----------
    log_probs : torch.Tensor, shape = (T, N, C) or (T, C) for one utterance
    targets : torch.Tensor, shape = (N, S_max), (sum(target_lengths),) or (S,) for one utterance
    input_lengths, target_lengths : ints, shape = (N,) or scalars for one utterance
    blank : int
    reduction : {"none", "sum", "mean"}
        ``"mean"``: each loss divided by its target length, then averaged over the batch.
    zero_infinity : bool
        Impossible targets (input shorter than needed) give 0 instead of ``inf``.

    Returns
    -------
    torch.Tensor, shape = (N,) for ``"none"`` (scalar for one utterance), else a scalar.
    """
    if reduction not in ("none", "sum", "mean"):
        raise ValueError(f"ctc_loss: reduction must be 'none', 'sum' or 'mean', got {reduction!r}")
    single = log_probs.ndim == 2
    if single:
        log_probs = log_probs.unsqueeze(1)
        targets = torch.as_tensor(targets, dtype=torch.long).reshape(1, -1)
    elif log_probs.ndim != 3:
        raise ValueError(
            f"ctc_loss: log_probs must be (T, C) or (T, N, C), got {tuple(log_probs.shape)}"
        )
    n = log_probs.shape[1]
    target_lengths = torch.as_tensor(target_lengths, dtype=torch.long).reshape(n)
    loss = -ctc_forward(log_probs, targets, input_lengths, target_lengths, blank=blank)
    impossible = loss > 1e29
    if impossible.any():
        loss = torch.where(
            impossible,
            torch.zeros_like(loss) if zero_infinity else torch.full_like(loss, math.inf),
            loss,
        )
    if reduction == "none":
        return loss[0] if single else loss
    if reduction == "sum":
        return loss.sum()
    return (loss / target_lengths.clamp(min=1).to(loss.dtype)).mean()
