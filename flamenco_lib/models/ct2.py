"""CTranslate2 -> Hugging Face: read faster-whisper's ``model.bin`` and rebuild
``WhisperForConditionalGeneration`` with its tokenizer and generation config.

Known pitfalls, each handled here: the shipped ``tokenizer.json`` lacks the GPT-2 merge ``Ġ t``
and has no pad token; CTranslate2 fuses Q/K/V in self-attention and K/V in cross-attention;
Whisper's key projection has no bias. Tests compare the result with CTranslate2 running the
original file.

Notebook: ``04_whisper_anatomy.ipynb``.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

N_VOCAB = 51865  # multilingual vocabulary incl. 1501 timestamp tokens
TIMESTAMP_BEGIN = 50364  # <|0.00|>
MISSING_MERGE = "Ġ t"  # the GPT-2 merge absent from the shipped tokenizer.json (it ranks first)

# CTranslate2 DataType ids (ctranslate2/types.h) -> numpy
_CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


@dataclass
class CT2Model:
    spec: str
    revision: int
    variables: dict  # name -> np.ndarray
    aliases: dict  # alias -> name


def read_ct2_model(path: str | Path) -> CT2Model:
    """Read a CTranslate2 ``model.bin`` (binary version 4-6): the spec name, every variable
    and the aliases. Layout: ``u32 version, str spec, u32 revision, u32 n, n x (str name,
    u8 rank, rank x u32 dims, u8 dtype, u32 nbytes, bytes), u32 n_alias, n_alias x (str, str)``,
    strings as ``u16 length`` + bytes (NUL-terminated)."""
    data = Path(path).read_bytes()
    off = 0

    def take(fmt):
        nonlocal off
        vals = struct.unpack_from(fmt, data, off)
        off += struct.calcsize(fmt)
        return vals[0] if len(vals) == 1 else vals

    def string():
        nonlocal off
        n = take("<H")
        s = data[off : off + n].rstrip(b"\0").decode("utf-8")
        off += n
        return s

    version = take("<I")
    if not 4 <= version <= 6:
        raise ValueError(f"{path}: CTranslate2 binary version {version} is not supported (4-6)")
    spec, revision, n = string(), take("<I"), take("<I")
    variables = {}
    for _ in range(n):
        name = string()
        rank = take("<B")
        dims = [take("<I") for _ in range(rank)]
        dtype = _CT2_DTYPES[take("<B")]
        nbytes = take("<I")
        arr = np.frombuffer(data, dtype=dtype, count=nbytes // np.dtype(dtype).itemsize, offset=off)
        variables[name] = arr.reshape(dims) if dims else arr[0]
        off += nbytes
    aliases = {}
    for _ in range(take("<I")):
        alias = string()
        aliases[alias] = string()
    if off != len(data):
        raise ValueError(f"{path}: {len(data) - off} unexpected trailing bytes")
    return CT2Model(spec, revision, variables, aliases)


def ct2_to_hf_state_dict(ct2: CT2Model) -> tuple[dict, dict]:
    """Map faster-whisper variable names onto ``WhisperForConditionalGeneration``'s.

    Returns ``(state_dict of float32 torch tensors, config kwargs)``. Self-attention Q/K/V are
    fused in one ``linear_0`` (split in three), cross-attention K/V in ``linear_1`` (split in
    two); Whisper's key projection has no bias, so the K slice of each fused bias is dropped.
    """
    import torch

    v = {k: np.asarray(a) for k, a in ct2.variables.items()}
    d = v["encoder/conv1/weight"].shape[0]
    sd = {}

    def put(hf, arr):
        sd[hf] = torch.from_numpy(np.array(arr, dtype=np.float32))

    def norm(hf, ct):
        put(f"{hf}.weight", v[f"{ct}/gamma"])
        put(f"{hf}.bias", v[f"{ct}/beta"])

    def linear(hf, ct, bias=True):
        put(f"{hf}.weight", v[f"{ct}/weight"])
        if bias:
            put(f"{hf}.bias", v[f"{ct}/bias"])

    def fused(hf_names, ct):
        w, b = v[f"{ct}/weight"], v[f"{ct}/bias"]
        for i, hf in enumerate(hf_names):
            put(f"{hf}.weight", w[i * d : (i + 1) * d])
            if not hf.endswith("k_proj"):
                put(f"{hf}.bias", b[i * d : (i + 1) * d])

    def self_attention(hf, ct):
        norm(f"{hf}.self_attn_layer_norm", f"{ct}/self_attention/layer_norm")
        fused([f"{hf}.self_attn.{p}_proj" for p in "qkv"], f"{ct}/self_attention/linear_0")
        linear(f"{hf}.self_attn.out_proj", f"{ct}/self_attention/linear_1")

    def ffn(hf, ct):
        norm(f"{hf}.final_layer_norm", f"{ct}/ffn/layer_norm")
        linear(f"{hf}.fc1", f"{ct}/ffn/linear_0")
        linear(f"{hf}.fc2", f"{ct}/ffn/linear_1")

    for i in (1, 2):
        linear(f"model.encoder.conv{i}", f"encoder/conv{i}")
    put("model.encoder.embed_positions.weight", v["encoder/position_encodings/encodings"])
    n_enc = _count_layers(v, "encoder")
    for i in range(n_enc):
        hf, ct = f"model.encoder.layers.{i}", f"encoder/layer_{i}"
        self_attention(hf, ct)
        ffn(hf, ct)
    norm("model.encoder.layer_norm", "encoder/layer_norm")

    put("model.decoder.embed_tokens.weight", v["decoder/embeddings/weight"])
    put("model.decoder.embed_positions.weight", v["decoder/position_encodings/encodings"])
    n_dec = _count_layers(v, "decoder")
    for i in range(n_dec):
        hf, ct = f"model.decoder.layers.{i}", f"decoder/layer_{i}"
        self_attention(hf, ct)
        norm(f"{hf}.encoder_attn_layer_norm", f"{ct}/attention/layer_norm")
        linear(f"{hf}.encoder_attn.q_proj", f"{ct}/attention/linear_0")
        fused([f"{hf}.encoder_attn.{p}_proj" for p in "kv"], f"{ct}/attention/linear_1")
        linear(f"{hf}.encoder_attn.out_proj", f"{ct}/attention/linear_2")
        ffn(hf, ct)
    norm("model.decoder.layer_norm", "decoder/layer_norm")
    # proj_out is tied to embed_tokens (faster-whisper stores it as an alias)
    if (
        ct2.aliases.get("decoder/projection/weight", "decoder/embeddings/weight")
        != "decoder/embeddings/weight"
    ):
        raise ValueError("the output projection is not tied to the token embeddings")

    config = dict(
        vocab_size=v["decoder/embeddings/weight"].shape[0],
        num_mel_bins=v["encoder/conv1/weight"].shape[1],
        d_model=d,
        encoder_layers=n_enc,
        decoder_layers=n_dec,
        encoder_attention_heads=int(v["encoder/num_heads"]),
        decoder_attention_heads=int(v["decoder/num_heads"]),
        encoder_ffn_dim=v["encoder/layer_0/ffn/linear_0/weight"].shape[0],
        decoder_ffn_dim=v["decoder/layer_0/ffn/linear_0/weight"].shape[0],
        max_source_positions=v["encoder/position_encodings/encodings"].shape[0],
        max_target_positions=v["decoder/position_encodings/encodings"].shape[0],
    )
    return sd, config


def _count_layers(v: dict, side: str) -> int:
    pattern = re.compile(rf"^{side}/layer_(\d+)/")
    return len({m.group(1) for k in v if (m := pattern.match(k))})


def build_tokenizer(tokenizer_json: str | Path):
    """Whisper's multilingual tokenizer from faster-whisper's ``tokenizer.json``, repaired:
    the merge ``Ġ t`` restored at rank 0, the 1501 timestamp tokens added, pad = ``<|endoftext|>``,
    and the control tokens ``<|endoftext|>`` ... ``<|notimestamps|>`` declared special in
    vocabulary order, as the hub's tokenizer declares them (its ``decode(...,
    output_offsets=True)`` counts time tokens from the last special one)."""
    from tokenizers import AddedToken, Tokenizer
    from transformers import WhisperTokenizer

    spec = json.loads(Path(tokenizer_json).read_text(encoding="utf-8"))
    merges = spec["model"]["merges"]
    as_pairs = bool(merges) and isinstance(merges[0], list)
    missing = MISSING_MERGE.split(" ") if as_pairs else MISSING_MERGE
    if missing not in merges:
        merges.insert(0, missing)
    spec["post_processor"] = None  # prefix tokens are added by WhisperTokenizer itself
    tok = Tokenizer.from_str(json.dumps(spec))
    have = tok.get_vocab_size(with_added_tokens=True)
    if have < N_VOCAB:
        n_stamps = N_VOCAB - TIMESTAMP_BEGIN
        if have != TIMESTAMP_BEGIN:
            raise ValueError(
                f"{tokenizer_json}: {have} tokens, expected {TIMESTAMP_BEGIN} before the timestamps"
            )
        tok.add_tokens(
            [
                AddedToken(f"<|{i * 0.02:.2f}|>", special=False, normalized=False)
                for i in range(n_stamps)
            ]
        )
    eot = tok.token_to_id("<|endoftext|>")
    control = [tok.id_to_token(i) for i in range(eot, TIMESTAMP_BEGIN)]
    tokenizer = WhisperTokenizer(
        tokenizer_object=tok,
        extra_special_tokens=control,
        unk_token="<|endoftext|>",
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        model_max_length=448,
    )
    if len(tokenizer) != N_VOCAB:
        raise ValueError(f"tokenizer has {len(tokenizer)} tokens, expected {N_VOCAB}")
    if tokenizer.all_special_ids[-1] != TIMESTAMP_BEGIN - 1:
        raise ValueError(f"{tokenizer_json}: the last control token is not <|notimestamps|>")
    return tokenizer


def build_generation_config(ct2_config: dict, tokenizer, model_config):
    """The generation config that ``generate(language="es", task="transcribe")`` needs."""
    from transformers import GenerationConfig

    special = {
        t: tokenizer.convert_tokens_to_ids(t) for t in tokenizer.get_vocab() if t.startswith("<|")
    }
    lang_ids = set(ct2_config["lang_ids"])
    return GenerationConfig(
        alignment_heads=[list(h) for h in ct2_config["alignment_heads"]],
        begin_suppress_tokens=list(ct2_config["suppress_ids_begin"]),
        suppress_tokens=list(ct2_config["suppress_ids"]),
        bos_token_id=special["<|endoftext|>"],
        eos_token_id=special["<|endoftext|>"],
        pad_token_id=special["<|endoftext|>"],
        decoder_start_token_id=special["<|startoftranscript|>"],
        no_timestamps_token_id=special["<|notimestamps|>"],
        prev_sot_token_id=special["<|startofprev|>"],
        is_multilingual=True,
        lang_to_id={t: i for t, i in special.items() if i in lang_ids},
        task_to_id={"transcribe": special["<|transcribe|>"], "translate": special["<|translate|>"]},
        max_initial_timestamp_index=50,
        max_length=model_config.max_target_positions,
        return_timestamps=False,
    )


def convert_ct2_whisper(src: str | Path, out: str | Path) -> Path:
    """Convert a faster-whisper folder (``model.bin``, ``config.json``, ``tokenizer.json``) into a
    Hugging Face checkpoint (safetensors, processor, generation config) in ``out``."""
    import torch
    from transformers import (
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
    )

    src, out = Path(src), Path(out)
    ct2 = read_ct2_model(src / "model.bin")
    if ct2.spec != "WhisperSpec":
        raise ValueError(f"{src / 'model.bin'}: a {ct2.spec}, not a WhisperSpec")
    state, cfg = ct2_to_hf_state_dict(ct2)
    ct2_config = json.loads((src / "config.json").read_text())
    tokenizer = build_tokenizer(src / "tokenizer.json")
    eot = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    config = WhisperConfig(
        **cfg,
        pad_token_id=eot,
        bos_token_id=eot,
        eos_token_id=eot,
        decoder_start_token_id=tokenizer.convert_tokens_to_ids("<|startoftranscript|>"),
        tie_word_embeddings=True,
    )
    with torch.device("meta"):
        model = WhisperForConditionalGeneration(config)
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    missing = [k for k in missing if k != "proj_out.weight"]
    if missing or unexpected:
        raise ValueError(
            f"conversion incomplete: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    model.tie_weights()
    model.generation_config = build_generation_config(ct2_config, tokenizer, config)
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    processor = WhisperProcessor(
        feature_extractor=WhisperFeatureExtractor(feature_size=cfg["num_mel_bins"]),
        tokenizer=tokenizer,
    )
    processor.save_pretrained(out)
    return out
