"""Connectionist Temporal Classification (CTC), written out by hand, and shallow fusion.

Explained in ``notebooks/03_ctc_vs_deep_fusion.ipynb``: the blank and the collapse rule, the
forward algorithm (:func:`ctc_loss`, equal to ``torch.nn.functional.ctc_loss`` in value and
gradient, tests/test_ctc.py), greedy and prefix beam search decoding, shallow fusion with an
n-gram language model (:class:`NGramLM`) and a tiny character CTC acoustic model
(:class:`TinyCTC`, :func:`train_ctc`) trained in CPU minutes, as the foil to Whisper's
encoder-decoder ("deep fusion": the decoder is a language model trained end to end).

Shapes: ``T`` frames, ``N`` utterances, ``C`` classes (blank included), ``S`` target length.

Submodules: :mod:`.vocab` (the vocabulary, text <-> ids), :mod:`.loss` (the forward algorithm),
:mod:`.decoding` (collapse, greedy, prefix beam search), :mod:`.lm` (:class:`NGramLM`) and
:mod:`.model` (:class:`TinyCTC`, training, transcription, :func:`tune_fusion`).
"""

from .decoding import collapse, greedy_decode, prefix_beam_search
from .lm import BOS, EOS, UNK, NGramLM
from .loss import NEG_INF, ctc_forward, ctc_loss
from .model import (
    TinyCTC,
    ctc_log_probs,
    log_mel_features,
    train_ctc,
    transcribe_ctc,
    tune_fusion,
)
from .vocab import BLANK, VOCAB, clean_text, decode, encode

__all__ = [
    "BLANK",
    "BOS",
    "EOS",
    "NEG_INF",
    "UNK",
    "VOCAB",
    "NGramLM",
    "TinyCTC",
    "clean_text",
    "collapse",
    "ctc_forward",
    "ctc_log_probs",
    "ctc_loss",
    "decode",
    "encode",
    "greedy_decode",
    "log_mel_features",
    "prefix_beam_search",
    "train_ctc",
    "transcribe_ctc",
    "tune_fusion",
]
