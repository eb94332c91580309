# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 · CTC and shallow fusion vs Whisper's deep fusion
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/cante-to-text/cante-to-text/blob/main/notebooks/03_ctc_vs_deep_fusion.ipynb)
#
# Two ways to turn acoustic frames into text. **CTC** predicts a character (or a blank) for
# every frame, independently given the audio, and a separately trained **language model** is
# added at decoding time (*shallow fusion*). An **encoder–decoder** like Whisper conditions
# every token on the audio *and* on all previous tokens: its decoder is a language model
# trained jointly with the acoustics (the language knowledge is fused *inside* the model,
# loosely called deep fusion here). We build the first from scratch and measure both on the
# same clips.
#
# **What you will learn**
# - CTC's blank, the collapse rule, alignments, and the forward algorithm (written out in
#   `flamenco_lib.ctc`, equal to `torch.nn.functional.ctc_loss`);
# - greedy and prefix beam search decoding;
# - shallow fusion: an n-gram LM added to the beam search with a weight tuned on dev;
# - a tiny CTC model trained in CPU minutes on real Spanish speech, its WER greedy and fused,
#   next to Whisper on the same test clips.

# %% [markdown]
# ## Setup
#
# On Google Colab this cell clones the project and installs it with the Debian packages it
# needs; anywhere else it does nothing. With `USE_DRIVE` (the default) it mounts Google
# Drive and keeps corpora, checkpoints, results and the report in
# `MyDrive/cante-to-text/`, so that a disconnected session picks up where it stopped: the
# corpora are not rebuilt and a stage resumes from its last checkpoint. On Colab's GPU the
# notebook's profile is `gpu` (whisper-small from the Hugging Face Hub, full fine-tuning).

# %%
import os
import subprocess
import sys

USE_DRIVE = True  # @param {type:"boolean"}
if "google.colab" in sys.modules:  # Colab only: a no-op on your machine
    REPO_URL = os.environ.get("CANTE_REPO_URL", "https://github.com/cante-to-text/cante-to-text")
    subprocess.run(["git", "clone", "-q", REPO_URL, "/content/cante-to-text"], check=False)
    sys.path.insert(0, "/content/cante-to-text")
    from flamenco_lib.colab import setup

    setup(use_drive=USE_DRIVE)  # Debian packages, pip install -e, data and report on Drive

# %% [markdown]
# ## Parameters

# %% tags=["parameters"]
profile: str = "cpu"  # "smoke": seconds (tiny model, a few clips); "cpu"/"gpu": minutes on a CPU
seed: int = 0  # initialisation and batch order of the CTC model
epochs: int = 0  # CTC training epochs; 0: the default of the profile (smoke 2, cpu 35)
hidden: int = 0  # GRU units per direction; 0: the default of the profile (smoke 32, cpu 128)
lm_order: int = 6  # n of the character n-gram LM (5 characters of context)
beam: int = 16  # prefix beam width
n_whisper: int = 0  # test clips for Whisper; 0: the default of the profile (smoke 4, cpu all)
threads: int = 0  # CPU threads for torch; 0: every core

# %% [markdown]
# Derived settings (papermill does not recompute these), imports and the results folder.

# %%
import itertools
import json
import math
import os
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from flamenco_lib import audio as A
from flamenco_lib import ctc, plotting
from flamenco_lib.data.lyrics import read_lyrics
from flamenco_lib.data.manifest import read_manifest
from flamenco_lib.metrics import cer, wer
from flamenco_lib.paths import data_dir, results_dir
from flamenco_lib.text import fold_accents

DEFAULTS = {
    "smoke": dict(
        epochs=2,
        hidden=32,
        n_train=24,
        n_dev=6,
        n_test=6,
        n_whisper=4,
        grid=((0.0, 0.5), (0.0, 1.0)),
    ),
    "cpu": dict(
        epochs=35,
        hidden=128,
        n_train=None,
        n_dev=None,
        n_test=None,
        n_whisper=None,
        grid=((0.0, 0.2, 0.4, 0.6, 0.8, 1.0), (0.0, 1.0, 2.0, 3.0)),
    ),
}
cfg = dict(DEFAULTS["smoke" if profile == "smoke" else "cpu"])
cfg.update({k: v for k, v in dict(epochs=epochs, hidden=hidden, n_whisper=n_whisper).items() if v})
threads = threads or os.cpu_count() or 1
torch.set_num_threads(threads)
torch.manual_seed(seed)
plotting.set_style()
OUT = results_dir() / ("03_ctc" if profile != "smoke" else "03_ctc-smoke")
OUT.mkdir(parents=True, exist_ok=True)
print(profile, cfg, "->", OUT)


def score(refs, hyps):
    """(WER, CER), normalised, accents folded on both sides: these transcripts are written
    without accents ("numero"), and Whisper should not pay for writing "número"."""
    fold = lambda xs: [fold_accents(x) for x in xs]  # noqa: E731
    return wer(fold(refs), fold(hyps)), cer(fold(refs), fold(hyps))


# %% [markdown]
# ## 1. CTC in four ideas
#
# **Frames outnumber characters.** A model emits one distribution over characters per frame
# (here 33 per second) while the text has ~10 characters per second. CTC adds a **blank** (∅)
# class and lets the model spell the text over the frames in any way that **collapses** to it:
# merge repeated symbols, then delete blanks. `B(l l ∅ a a) = la`; a blank between two copies
# keeps both: `B(l ∅ l) = ll`. Every frame sequence that collapses to the text is an
# **alignment**, and `p(text | audio)` is the sum of the probabilities of all of them.

# %%
V = {c: ctc.VOCAB.index(c) for c in "la"}


def show(ids):
    return "".join("∅" if i == ctc.BLANK else ctc.VOCAB[i] for i in ids)


for path in ([V["l"], V["l"], 0, V["a"], V["a"]], [V["l"], 0, V["l"], V["a"]], [0, 0, 0]):
    print(f"B({show(path)}) = {show(ctc.collapse(path))!r}")

T = 5
alignments = [
    p
    for p in itertools.product([0, V["l"], V["a"]], repeat=T)
    if ctc.collapse(p) == [V["l"], V["a"]]
]
print(
    f"{len(alignments)} alignments of 'la' over {T} frames, e.g.",
    ", ".join(show(p) for p in alignments[:6]),
)

# %% [markdown]
# **The forward algorithm** sums over all alignments without listing them (their number grows
# exponentially). Extend the target with blanks, `y' = ∅ l ∅ a ∅`; `α[t, s]` is the
# probability of all partial alignments of frames `0..t` that end in state `s`. Each state is
# reached from itself, from the state before, or — skipping a blank — from two before, unless
# that would merge two equal letters. In log space, with `logsumexp`, this is
# `flamenco_lib.ctc.ctc_forward`; its negative is the loss. Below: α on posteriors that spell
# "olé", and the check against PyTorch's C++ implementation, value and gradient.

# %%
target = torch.tensor(ctc.encode("olé"))
g = torch.Generator().manual_seed(seed)
pattern = [i for c in target.tolist() for i in (c, c, ctc.BLANK)] + [ctc.BLANK]
logits = torch.randn(len(pattern), len(ctc.VOCAB), generator=g, dtype=torch.float64)
logits[torch.arange(len(pattern)), torch.tensor(pattern)] += 4.0
logits.requires_grad_(True)
lp = logits.log_softmax(-1)
T, S = len(pattern), len(target)

ll, alpha = ctc.ctc_forward(lp.unsqueeze(1), target.unsqueeze(0), [T], [S], return_alpha=True)
ours = ctc.ctc_loss(lp, target, T, S, reduction="sum")
(grad_ours,) = torch.autograd.grad(ours, logits, retain_graph=True)
theirs = torch.nn.functional.ctc_loss(
    lp.unsqueeze(1), target.unsqueeze(0), [T], [S], reduction="sum"
)
(grad_theirs,) = torch.autograd.grad(theirs, logits)
print(f"-log p(olé | x): ours {ours.item():.10f}, torch {theirs.item():.10f}")
print(f"max |gradient difference| = {(grad_ours - grad_theirs).abs().max().item():.1e}")
assert abs(ours.item() - theirs.item()) < 1e-9 and (grad_ours - grad_theirs).abs().max() < 1e-9

states = ["" if i % 2 == 0 else ctc.VOCAB[target[i // 2]] for i in range(2 * S + 1)]
best_path = alpha[:, 0].argmax(dim=1).numpy()  # the likeliest state per frame, for the eye
fig, ax = plt.subplots(figsize=(8, 3))
plotting.plot_ctc_trellis(
    alpha[:, 0].detach().numpy(),
    states=states,
    ax=ax,
    path=best_path,
    title="CTC forward variables log α[t, s] for 'olé'",
)
plotting.savefig(
    fig,
    "03_ctc_trellis",
    caption=(
        "CTC forward variables log alpha[t, s] for the target 'olé' over the frames; the "
        "likeliest state per frame marked."
    ),
)

# %% [markdown]
# **Decoding.** *Greedy* (best path) takes the likeliest class per frame and collapses. But the
# likeliest *text* sums many paths: **prefix beam search** keeps the `beam` best prefixes and,
# for each, the probability of all alignments ending in a blank and in its last letter. Here
# blank wins every frame (0.55 > 0.45), yet "a" wins summed: 0.45·0.45 + 0.45·0.55 + 0.55·0.45
# = 0.70 against 0.55² = 0.30. (tests/test_ctc.py checks the beam search against brute force.)

# %%
toy = torch.log(torch.tensor([[0.55, 0.45], [0.55, 0.45]]))
print(
    "greedy:",
    ctc.greedy_decode(toy),
    "| prefix beam search:",
    [(ids, round(math.exp(s), 4)) for ids, s in ctc.prefix_beam_search(toy, beam=4)],
)

# %% [markdown]
# ## 2. Data: real Spanish speech
#
# The real speech corpus (Debian's asterisk prompts: one Mexican Spanish speaker, ~25 minutes)
# split by prompt into train / dev / test. Features are Whisper's log-Mel (notebook 01),
# unpadded and standardised per band.

# %%
manifest = data_dir() / "corpora" / "speech" / "manifest.jsonl"
if not manifest.exists():
    from flamenco_lib.data.corpus import build_speech_corpus

    print(f"{manifest} missing: building it from the asterisk prompts (needs the Debian package)")
    build_speech_corpus(manifest.parent)
rows = read_manifest(manifest)
split = {s: [r for r in rows if r["split"] == s] for s in ("train", "dev", "test")}
for s, n in (("train", cfg["n_train"]), ("dev", cfg["n_dev"]), ("test", cfg["n_test"])):
    split[s] = split[s][:n] if n else split[s]


def load(r):
    return A.load_audio(manifest.parent / r["audio"], start=r.get("start"), end=r.get("end"))


audio = {s: [load(r) for r in split[s]] for s in split}
feats = {s: [ctc.log_mel_features(a) for a in audio[s]] for s in split}
texts = {s: [r["text"] for r in split[s]] for s in split}
for s in split:
    print(
        f"{s:5s}: {len(split[s]):3d} clips, {sum(len(a) for a in audio[s]) / A.SAMPLE_RATE / 60:5.1f} min"
    )

# %% [markdown]
# ## 3. A tiny CTC model, trained on the CPU
#
# `ctc.TinyCTC`: a strided convolution (100 → 33 frames per second) and a two-layer
# bidirectional GRU, then a linear layer to 46 classes (blank, space, apostrophe, Spanish
# letters with accents, digits). `ctc.train_ctc` trains it with the CTC loss (PyTorch's C++
# twin of ours, for speed), AdamW, a one-cycle schedule and SpecAugment masks.

# %%
t0 = time.perf_counter()
model, history = ctc.train_ctc(
    feats["train"],
    texts["train"],
    epochs=cfg["epochs"],
    hidden=cfg["hidden"],
    seed=seed,
    threads=threads,
    log=lambda row: (
        print(f"epoch {row['epoch']:3d}  loss {row['loss']:.3f}  {row['seconds']:.0f} s")
        if row["epoch"] % 5 == 0 or row["epoch"] == cfg["epochs"]
        else None
    ),
)
train_seconds = time.perf_counter() - t0
n_params = sum(p.numel() for p in model.parameters())
print(f"{n_params / 1e6:.2f} M parameters, {train_seconds / 60:.1f} min")

fig, ax = plt.subplots(figsize=(6, 2.6))
plotting.plot_training_curve(history, ax=ax, title="CTC loss per target character (train)")
plotting.savefig(
    fig,
    "03_ctc_training",
    caption=(
        "Training loss (CTC, per target character) of the small recurrent model on real Spanish "
        "speech."
    ),
)

# %% [markdown]
# What the model emits on a test clip: mostly blank, with sharp **spikes** of letters — CTC's
# signature (it has no reason to hold a letter longer than one frame).

# %%
log_probs = {s: ctc.ctc_log_probs(model, feats[s]) for s in split}
k = int(np.argmin([abs(len(a) / A.SAMPLE_RATE - 3.0) for a in audio["test"]]))  # a ~3 s clip
print("reference:", ctc.clean_text(texts["test"][k]))
print("greedy:   ", ctc.transcribe_ctc(log_probs["test"][k : k + 1])[0])
fig, ax = plt.subplots(figsize=(9, 3.2))
plotting.plot_ctc_posteriors(
    log_probs["test"][k].numpy(),
    vocab=ctc.VOCAB,
    frame_s=model.stride / 100,
    ax=ax,
    title="CTC posteriors on a test clip (the 12 classes that peak highest)",
)
plotting.savefig(
    fig,
    "03_ctc_posteriors",
    caption=(
        "Per-frame CTC posteriors on a test clip: mostly blank, with sharp peaks of the characters."
    ),
)

# %% [markdown]
# ## 4. Shallow fusion with an n-gram language model
#
# A character n-gram LM (`ctc.NGramLM`, interpolated Kneser–Ney) trained on the **train
# transcripts** only. The beam search then ranks prefixes by
# `log p_ctc + λ · log p_LM + β · words`: λ weighs the LM, β offsets its bias towards short
# outputs. For cante one would train it on lyrics; the perplexities show why the domain
# matters: an LM of the coplas knows Spanish letters, not these prompts.

# %%
lm = ctc.NGramLM.from_texts(texts["train"], order=lm_order, unit="char")
lyrics_lm = ctc.NGramLM.from_texts([c.text for c in read_lyrics()], order=lm_order, unit="char")
ppl = {
    "train transcripts": lm.perplexity(texts["dev"]),
    "flamenco lyrics": lyrics_lm.perplexity(texts["dev"]),
}
print(
    {k: round(v, 2) for k, v in ppl.items()}, "(character perplexity on dev; 46 classes = uniform)"
)

# %% [markdown]
# Tune λ and β on **dev** (never on test), then decode test once with the chosen pair.

# %%
weights, bonuses = cfg["grid"]
t0 = time.perf_counter()
grid = pd.DataFrame(
    ctc.tune_fusion(
        log_probs["dev"],
        texts["dev"],
        lm=lm,
        lm_weights=weights,
        word_bonuses=bonuses,
        beam=beam,
        score=lambda r, h: score(r, h)[0],
    )
)
best = grid.loc[grid["wer"].idxmin()]
lm_weight, word_bonus = float(best["lm_weight"]), float(best["word_bonus"])
print(grid.pivot(index="lm_weight", columns="word_bonus", values="wer").round(3))
print(f"chosen on dev: λ = {lm_weight}, β = {word_bonus} ({time.perf_counter() - t0:.0f} s)")

# %% [markdown]
# Greedy, beam without LM, and beam with the fused LM on the test split.

# %%
hyps = {
    "CTC greedy": ctc.transcribe_ctc(log_probs["test"]),
    "CTC beam": ctc.transcribe_ctc(log_probs["test"], decoder="beam", beam=beam),
    "CTC beam + LM": ctc.transcribe_ctc(
        log_probs["test"],
        decoder="beam",
        beam=beam,
        lm=lm,
        lm_weight=lm_weight,
        word_bonus=word_bonus,
    ),
}
for name, h in hyps.items():
    w, c = score(texts["test"], h)
    print(f"{name:14s} WER {w:6.1%}   CER {c:6.1%}")
for i in range(min(3, len(texts["test"]))):
    print("\nref:  ", ctc.clean_text(texts["test"][i]))
    for name, h in hyps.items():
        print(f"{name[4:] or 'greedy':9s}", h[i])

# %% [markdown]
# ## 5. Whisper on the same clips
#
# Zero-shot whisper-base (74 M parameters, 680 000 hours of training audio; the offline
# checkpoint of `flamenco_lib.models`), greedy decoding in Spanish, on the same test clips.
# Its decoder is a language model conditioned on the audio through cross-attention at every
# step: it needs no external LM and no weight to tune. All systems are scored with the same
# normaliser (`flamenco_lib.metrics`), with accents folded on both sides because these
# transcripts are written without them.
#
#
# The run is the zero-shot row's run on the `speech` test set of the results table
# (`flamenco_lib.results.evaluate_stages`, `data/results/zero-shot__speech/`): made here once,
# read again by notebooks 06 and 10 instead of decoding the same clips twice. (The smoke
# profile keeps its run in its own folder.)

# %%
from flamenco_lib import results
from flamenco_lib.grid import TEST_SETS
from flamenco_lib.notebook import N_EVAL

n_w = min(cfg["n_whisper"] or N_EVAL[profile], len(audio["test"]))
speech_set = [t for t in TEST_SETS if t[0] == "speech"]
t0 = time.perf_counter()
(run,) = results.evaluate_stages(
    [("zero-shot", "base")],
    speech_set,
    max_items=cfg["n_whisper"] or N_EVAL[profile],
    root=OUT if profile == "smoke" else None,
)
with open(run / "predictions.jsonl", encoding="utf-8") as f:
    hyps_whisper = [json.loads(line)["hypothesis"] for line in f]
assert len(hyps_whisper) == n_w, (run, len(hyps_whisper), n_w)
whisper_seconds = time.perf_counter() - t0
print(f"whisper-base on {n_w} clips: {whisper_seconds:.0f} s ({run})")
for i in range(min(3, n_w)):
    print("ref:", texts["test"][i], "\nhyp:", hyps_whisper[i])

# %% [markdown]
# ## 6. Results
#
# Every system on the clips Whisper transcribed (all of test in the cpu profile), written to
# `data/results/03_ctc/metrics.json` and `wer.csv`; the figure reads the table.

# %%
refs = texts["test"][:n_w]
systems = {name: h[:n_w] for name, h in hyps.items()} | {"Whisper base (zero-shot)": hyps_whisper}
table = pd.DataFrame(
    [
        {"system": name, "wer": score(refs, h)[0], "cer": score(refs, h)[1], "clips": n_w}
        for name, h in systems.items()
    ]
)
metrics = {
    "profile": profile,
    "seed": seed,
    "n_train": len(split["train"]),
    "n_dev": len(split["dev"]),
    "n_test": len(split["test"]),
    "train_minutes_audio": sum(len(a) for a in audio["train"]) / A.SAMPLE_RATE / 60,
    "ctc": {
        "epochs": cfg["epochs"],
        "hidden": cfg["hidden"],
        "parameters": n_params,
        "train_seconds": train_seconds,
        "final_loss": history[-1]["loss"],
    },
    "lm": {"order": lm_order, "unit": "char", "dev_perplexity": ppl},
    "fusion": {
        "beam": beam,
        "lm_weight": lm_weight,
        "word_bonus": word_bonus,
        "dev_grid": grid.to_dict(orient="records"),
    },
    "scoring": "flamenco_lib.metrics (normalised), accents folded on both sides",
    "test_full": {
        name: dict(zip(("wer", "cer"), score(texts["test"], h), strict=True))
        for name, h in hyps.items()
    },
    "test_same_clips": table.to_dict(orient="records"),
    "whisper_seconds": whisper_seconds,
}
(OUT / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False))
table.to_csv(OUT / "wer.csv", index=False)
with open(OUT / "predictions.jsonl", "w", encoding="utf-8") as f:
    for i, r in enumerate(split["test"][:n_w]):
        f.write(
            json.dumps(
                {"id": r["id"], "text": r["text"]} | {k: v[i] for k, v in systems.items()},
                ensure_ascii=False,
            )
            + "\n"
        )
print(
    table.assign(wer=table.wer.map("{:.1%}".format), cer=table.cer.map("{:.1%}".format)).to_string(
        index=False
    )
)

# %% [markdown]
# The same table as a figure.

# %%
fig, ax = plt.subplots(figsize=(7, 3))
plotting.plot_wer_bars(table, ax=ax, title=f"Real Spanish speech, {n_w} test clips")
plotting.savefig(
    fig,
    "03_wer",
    caption=(
        "WER and CER on the real-speech test clips: CTC greedy, beam, beam + character LM, and "
        "zero-shot Whisper base."
    ),
)

# %% [markdown]
# ## Discussion: shallow fusion and deep fusion
#
# - **CTC** assumes the frame outputs are independent given the audio: it has no memory of the
#   letters it already wrote, so spelling, word boundaries and grammar must come from the
#   acoustics alone. With ~20 minutes of one voice it learns letters, not Spanish.
# - **Shallow fusion** adds the missing knowledge at decoding time: an LM trained on text only
#   (cheap: text is plentiful, e.g. lyrics for cante) rescoring the beam. It helps most where the
#   acoustics hesitate, and needs its weight tuned on held-out data.
# - **Whisper's decoder** is itself a conditional language model, `p(token | previous tokens,
#   audio)`, trained jointly with the encoder on 680k hours: the LM is *inside* the model and
#   learned end to end (an "internal LM"). That is why it needs no external LM — and why it
#   can **hallucinate** fluent text the audio does not support, and why its text prior (read
#   speech and subtitles) fights against cante's repetitions, quejíos and Andalusian spellings.
#   Strictly, *deep fusion* (Gulcehre et al., 2015) combines the hidden states of a separately
#   trained LM with a decoder's; here the term stands for the language model fused into the
#   recogniser by joint training. Fine-tuning (stages 1–3) adapts both halves at once; the
#   prompt of stage 3 steers the internal LM without changing any weight.
#
# ## Summary
#
# - CTC = blank + collapse rule + a sum over all alignments, computed by the forward algorithm;
#   ours equals PyTorch's in value and gradient.
# - Greedy decoding takes the best path; prefix beam search the best text, and lets an
#   n-gram LM join in (shallow fusion), weighted by λ and β tuned on dev.
# - The numbers above: a CTC model trained in minutes on one voice, greedy vs fused, and
#   zero-shot Whisper on the same clips (`data/results/03_ctc/metrics.json`).
#
# ## Exercises
#
# 1. Train the LM on words (`unit="word"`, order 3) instead of characters. Which fuses better
#    on dev, and why might a word LM be brittle on unseen test prompts?
# 2. Set `beam=1`. Is beam search without an LM any better than greedy on this model?
# 3. Train the CTC model on sung renderings (`flamenco_lib.data.synth.sing` on the train clips)
#    and test on sung test clips: how much worse is it, and does the lyrics LM help there?
# 4. Add Whisper's beam search (`num_beams=5`) or a text prompt: how far does the gap move?
