"""Every figure of the thesis: one function per figure kind (``ax=`` in, ``ax`` out), one thesis
style, and one :func:`savefig` that writes PNG + PDF under ``report/figures/``.

Figures are build outputs: regenerate them (``make report``), never edit them by hand.

Submodules: :mod:`.style` (the thesis style, :func:`savefig`, :func:`caption_of`),
:mod:`.features` (signals and features, notebooks 01-02), :mod:`.internals` (CTC and Whisper
inside, notebooks 03-04), :mod:`.results` (training curves, WER and the stages compared,
notebooks 03 and 06-10), :mod:`.data` (the corpora, notebook 05) and :mod:`.songs` (a whole song
on its time axis, notebook 11).
"""

from .data import SPLIT_COLORS, plot_feature_hist, plot_paired, plot_split_counts
from .features import (
    plot_cepstrum,
    plot_filterbank,
    plot_frames,
    plot_histogram,
    plot_mel_scale,
    plot_pitch_track,
    plot_spectrogram,
    plot_spectrum,
    plot_waveform,
)
from .internals import (
    plot_cross_attention,
    plot_ctc_posteriors,
    plot_ctc_trellis,
    plot_model_sizes,
    plot_state_difference,
)
from .results import (
    VERDICT_COLORS,
    plot_differences,
    plot_forgetting,
    plot_sdi_bars,
    plot_stage_comparison,
    plot_training_curve,
    plot_training_losses,
    plot_wer_bars,
    plot_wer_heatmap,
)
from .songs import plot_song_lines
from .style import THESIS_RC, caption_of, savefig, set_style

__all__ = [
    "SPLIT_COLORS",
    "THESIS_RC",
    "VERDICT_COLORS",
    "caption_of",
    "plot_cepstrum",
    "plot_cross_attention",
    "plot_ctc_posteriors",
    "plot_ctc_trellis",
    "plot_differences",
    "plot_feature_hist",
    "plot_filterbank",
    "plot_forgetting",
    "plot_frames",
    "plot_histogram",
    "plot_mel_scale",
    "plot_model_sizes",
    "plot_paired",
    "plot_pitch_track",
    "plot_sdi_bars",
    "plot_song_lines",
    "plot_spectrogram",
    "plot_spectrum",
    "plot_split_counts",
    "plot_stage_comparison",
    "plot_state_difference",
    "plot_training_curve",
    "plot_training_losses",
    "plot_waveform",
    "plot_wer_bars",
    "plot_wer_heatmap",
    "savefig",
    "set_style",
]
