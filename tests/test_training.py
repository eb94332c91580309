"""Training: label layout, config validation, batches, the cached encoder split, resume, the WER
equality with the evaluation runner, and a 2-process (gloo) run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from flamenco_lib import evaluation, paths, training
from flamenco_lib.data import cante
from flamenco_lib.paths import project_root
from flamenco_lib.training import batches, model_parts


@pytest.fixture(scope="module")
def tokenizer(base):
    return base[2].tokenizer


@pytest.mark.model
def test_collate_labels_layout(tokenizer):
    texts = ["Ay, la luna de Triana", "fragua"]
    b = training.collate_labels(tokenizer, texts)
    dec, lab = b["decoder_input_ids"], b["labels"]
    assert dec.shape == lab.shape and dec.dtype == lab.dtype == torch.long
    sot, es, tr, nots, eot = tokenizer.convert_tokens_to_ids(
        ["<|startoftranscript|>", "<|es|>", "<|transcribe|>", "<|notimestamps|>", "<|endoftext|>"]
    )
    for i, text in enumerate(texts):
        n = int((lab[i] != -100).sum())
        assert dec[i, :4].tolist() == [sot, es, tr, nots]
        # labels are the decoder inputs shifted left by one, ending with <|endoftext|>
        assert lab[i, : n - 1].tolist() == dec[i, 1:n].tolist() and lab[i, n - 1] == eot
        assert (lab[i, n:] == -100).all()
        assert tokenizer.decode(lab[i, 3 : n - 1]).strip() == text
    assert (lab[1] == -100).sum() > 0  # the shorter one is padded, without loss
    with pytest.raises(ValueError, match="448"):
        training.collate_labels(tokenizer, ["la " * 500])


@pytest.mark.model
def test_timestamped_labels_are_whispers_segment_layout(tokenizer, base):
    from flamenco_lib.tokens import timestamp_id

    # the time tokens follow <|notimestamps|>: the generation config agrees, so does decode
    assert timestamp_id(tokenizer, 0.0) == base[1].generation_config.no_timestamps_token_id + 1
    for t, written in (
        (0.0, "<|0.00|>"),
        (2.4, "<|2.40|>"),
        (2.419, "<|2.42|>"),
        (30, "<|30.00|>"),
    ):
        ids = [timestamp_id(tokenizer, t)]
        assert tokenizer.decode(ids, decode_with_timestamps=True) == written
    with pytest.raises(ValueError, match="30"):
        timestamp_id(tokenizer, 31.0)

    texts = ["Ay, la luna de Triana", "fragua"]
    b = training.collate_labels(tokenizer, texts, times=[(0.0, 2.4), None])
    dec, lab = b["decoder_input_ids"], b["labels"]
    sot, es, tr, nots, eot = tokenizer.convert_tokens_to_ids(
        ["<|startoftranscript|>", "<|es|>", "<|transcribe|>", "<|notimestamps|>", "<|endoftext|>"]
    )
    n = int((lab[0] != -100).sum())
    assert dec[0, :4].tolist() == [sot, es, tr, timestamp_id(tokenizer, 0.0)]
    assert lab[0, : n - 1].tolist() == dec[0, 1:n].tolist()
    assert lab[0, n - 2 : n].tolist() == [timestamp_id(tokenizer, 2.4), eot]
    assert (
        tokenizer.decode(lab[0, 2:n], decode_with_timestamps=True)
        == "<|0.00|> Ay, la luna de Triana<|2.40|><|endoftext|>"
    )
    assert dec[1, 3] == nots  # an item without a span keeps <|notimestamps|>
    with pytest.raises(ValueError, match="end after it starts"):
        training.collate_labels(tokenizer, ["x"], times=[(2.0, 1.0)])


def test_voice_span_and_timestamp_slots():
    assert batches.voice_span({"start": 3.0, "end": 5.5}) == (0.0, 2.5)  # a cut line
    assert batches.voice_span({"source": "synth-sung", "duration_s": 12.25}) == (0.0, 12.25)
    assert batches.voice_span({"source": "synth-sung", "duration_s": 31.0}) == (0.0, 30.0)
    # a whole real recording: nobody measured where its voice starts
    assert batches.voice_span({"source": "asterisk", "duration_s": 4.0, "start": None}) is None
    assert batches.voice_span({"source": "synth-sung"}) is None
    a = batches.timestamp_slots(0, 5, 8, 0.2)
    assert a == batches.timestamp_slots(0, 5, 8, 0.2) and len(a) == 8
    assert batches.timestamp_slots(0, 5, 8, 0.0) == [False] * 8
    many = batches.timestamp_slots(1, 0, 20000, 0.2)
    assert abs(np.mean(many) - 0.2) < 0.01


def _peak_hz(x: np.ndarray, sr: int = 16000) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x)), n=8 * len(x)))
    return float(np.argmax(spec) * sr / (8 * len(x)))


@pytest.mark.parametrize("factor", [0.9, 1.1, 1.2])
def test_speed_perturbation_moves_rate_and_pitch_together(factor):
    sr, f0 = 16000, 300.0
    t = np.arange(2 * sr) / sr
    tone = (0.5 * np.sin(2 * np.pi * f0 * t)).astype(np.float32)
    out, used = batches.perturb_speed(tone, factor)
    assert used == pytest.approx(factor, abs=1 / sr) and out.dtype == np.float32
    assert abs(len(out) - len(tone) / factor) <= 2  # played faster: shorter...
    assert _peak_hz(out) == pytest.approx(f0 * factor, rel=2e-3)  # ...and higher


def test_speed_perturbation_keeps_a_slowed_clip_within_30_s():
    sr = 16000
    clip = np.zeros(29 * sr, dtype=np.float32)
    clip[::97] = 0.1
    out, used = batches.perturb_speed(clip, 0.9)
    assert used == pytest.approx(29 / 30, abs=1e-4) and len(out) <= 30 * sr + 1
    same, one = batches.perturb_speed(clip, 1.0)
    assert one == 1.0 and same is clip
    # a clip already over 30 s is not sped up to fit: only slowing is limited
    long = np.zeros(31 * sr, dtype=np.float32)
    assert batches.perturb_speed(long, 0.9)[1] == 1.0


def test_speed_factors_are_a_function_of_seed_and_step():
    a = batches.speed_factors(0, 5, 8, (0.9, 1.1))
    assert a == batches.speed_factors(0, 5, 8, [0.9, 1.1]) and len(a) == 8
    assert a != batches.speed_factors(0, 6, 8, (0.9, 1.1))
    assert all(0.9 <= f <= 1.1 for f in a)
    assert batches.speed_factors(0, 5, 8, None) == [1.0] * 8
    many = batches.speed_factors(3, 0, 20000, (0.9, 1.1))
    assert abs(np.mean(many) - 1.0) < 0.002 and min(many) < 0.901 and max(many) > 1.099
    assert batches.voice_span({"start": 3.0, "end": 5.5}, 1.25) == (0.0, 2.0)
    assert batches.voice_span({"source": "synth-sung", "duration_s": 28.5}, 0.9) == (0.0, 30.0)


def test_batches_are_a_function_of_seed_and_step():
    a = training.batch_indices(0, 17, [1.0, 1.0], [10, 20], 8)
    assert a == training.batch_indices(0, 17, [1.0, 1.0], [10, 20], 8)
    assert a != training.batch_indices(0, 18, [1.0, 1.0], [10, 20], 8)
    assert all(0 <= i < (10, 20)[s] for s, i in a)
    many = training.batch_indices(1, 0, [3.0, 1.0], [5, 5], 4000)
    share = np.mean([s == 0 for s, _ in many])
    assert abs(share - 0.75) < 0.03  # weights are mixing proportions (the replay share of stage 2)


# ----------------------------------------------------------------------------- configs


def _write_config(path, **kw):
    path.write_text(yaml.safe_dump(kw, allow_unicode=True))
    return path


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("cante")
    coplas = out / "coplas.tsv"  # beside the manifest: the catalogue of the catalogue prompt
    coplas.write_text(
        "palo\ttext\n"
        "soleá\tLa luna de Triana / se asoma a la ventana\n"
        "tangos\tPor la calle del Pozo / va mi gitana cantando\n"
        "bulería\tQue me lleven a Cádiz / que allí me quiero morir\n"
        "fandango\tMi mare me lo decía / no te vayas a la fragua\n"
        "seguiriya\tDe noche yo me levanto / con las fatigas de siempre\n"
        "alegrías\tA la orillita del mar / se peina mi morena\n",
        encoding="utf-8",
    )
    res = cante.build_synth_corpus(out, lyrics=coplas, n=6, seed=0, jobs=2, progress=False)
    assert not res["failed"]
    return res["manifest"]


def _smoke(tmp, manifest, **over):
    split = "train"
    cfg = dict(
        name="smoke",
        model="base",
        train=[{"manifest": str(manifest), "split": split}],
        eval={"manifest": str(manifest), "split": split, "max_items": 2},
        steps=4,
        batch_size=2,
        warmup_steps=1,
        save_every=2,
        log_every=1,
        cached_layers=4,
        lr=1e-4,
        seed=0,
        output_dir=str(tmp / "out"),
    )
    cfg.update(over)
    return _write_config(tmp / "smoke.yaml", **cfg)


@pytest.mark.parametrize(
    "change,needle",
    [
        ({"stepz": 3}, "unknown key 'stepz'"),
        ({"steps": "many"}, "steps must be an integer"),
        ({"precision": "fp8"}, "precision must be one of"),
        ({"lr": "fast"}, "lr must be a number"),
        (
            {"train": [{"manifest": "nowhere.jsonl"}]},
            "train\\[0\\].manifest .*nowhere.jsonl not found",
        ),
        ({"train": [{"manifest": "x", "wieght": 2}]}, "unknown key train\\[0\\].wieght"),
        ({"train": []}, "'train' needs at least one source"),
    ],
)
def test_bad_config_names_the_key(tmp_path, tiny_corpus, change, needle):
    path = _smoke(tmp_path, tiny_corpus, **change)
    with pytest.raises(training.ConfigError, match=needle) as info:
        training.load_config(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "value,needle",
    [
        ([0.5, 1.0], "speed_perturb must be \\[low, high\\] with 0.8 <= low <= high <= 1.25"),
        ([1.1, 0.9], "speed_perturb must be"),
        ([0.9, 1.1, 1.2], "speed_perturb must be"),
        ("fast", "speed_perturb must be"),
        ([0.9, True], "speed_perturb must be"),
    ],
)
def test_speed_perturb_config_names_the_range(tmp_path, tiny_corpus, value, needle):
    path = _smoke(tmp_path, tiny_corpus, speed_perturb=value, cached_layers=0)
    with pytest.raises(training.ConfigError, match=needle) as info:
        training.load_config(path)
    assert str(path) in str(info.value) and "got" in str(info.value)


def test_speed_perturb_needs_the_audio_not_cached_activations(tmp_path, tiny_corpus):
    path = _smoke(tmp_path, tiny_corpus, speed_perturb=[0.9, 1.1], cached_layers=2)
    with pytest.raises(training.ConfigError, match="set cached_layers: 0"):
        training.load_config(path)
    cfg = training.load_config(
        _smoke(tmp_path, tiny_corpus, speed_perturb=[1, 1.1], cached_layers=0)
    )
    assert cfg.speed_perturb == [1.0, 1.1] and isinstance(cfg.speed_perturb[0], float)
    assert training.load_config(_smoke(tmp_path, tiny_corpus)).speed_perturb is None


@pytest.mark.model
def test_a_speed_perturbed_stage_trains_on_the_clips_played_at_the_drawn_speeds(
    tmp_path, tiny_corpus, monkeypatch
):
    """Each clip of a step reaches the feature extractor played at its slot's drawn speed, and its
    timestamped label ends where the voice ends in the played clip."""
    from flamenco_lib.audio import load_audio
    from flamenco_lib.training import loop

    fed, timed = [], []
    real_features, real_collate = batches._features, loop.collate_labels
    monkeypatch.setattr(
        batches, "_features", lambda p, audios: fed.append(audios) or real_features(p, audios)
    )
    monkeypatch.setattr(
        loop, "collate_labels", lambda *a, **kw: timed.append(kw["times"]) or real_collate(*a, **kw)
    )
    cfg = training.load_config(
        _smoke(
            tmp_path,
            tiny_corpus,
            steps=2,
            cached_layers=0,
            speed_perturb=[0.85, 1.2],
            timestamp_share=1.0,
            eval=None,
        )
    )
    training.train_stage(cfg, progress=False)
    from flamenco_lib.data.manifest import read_manifest

    rows = [r for r in read_manifest(tiny_corpus) if r["split"] == "train"]
    assert len(fed) == 2
    for step, (audios, times) in enumerate(zip(fed, timed)):
        speeds = batches.speed_factors(0, step, 2, [0.85, 1.2])
        pairs = training.batch_indices(0, step, [1.0], [len(rows)], 2)
        for (_, i), audio, span, f in zip(pairs, audios, times, speeds):
            n = len(load_audio(rows[i]["audio_path"]))
            assert abs(len(audio) - n / f) <= 2 + n * 1e-4, (len(audio), n, f)
            assert span[1] == pytest.approx(rows[i]["duration_s"] / f, rel=1e-3)


def test_spec_augment_masks_bands_within_each_clip_as_transformers_draws_them():
    from transformers.models.wav2vec2.modeling_wav2vec2 import _compute_mask_indices

    x = torch.rand(4, 80, 3000) + 1.0  # no zero anywhere before masking
    frames = [300, 1000, 3000, 40]
    spec = {"time": 0.2, "freq": 0.2}
    y = batches.spec_augment(x, frames, spec, seed=0, step=3)
    assert not torch.equal(x, y) and (x > 0).all()  # a new tensor; x unchanged
    for i, n in enumerate(frames):
        assert torch.equal(y[i, :, n:], x[i, :, n:])  # the padding is never masked
        zero = y[i, :, :n] == 0
        cols, rows = zero.all(0), zero.all(1)  # masked frames, masked Mel channels
        assert torch.equal(zero, cols[None, :] | rows[:, None])  # only whole bands
        assert cols.any() or n < 50  # 0.2 of a clip's frames: about 0.2 * n / 10 masks
    # a pure function of (seed, step, slot): a rank's slice draws what the whole batch draws
    again = batches.spec_augment(x[2:], frames[2:], spec, seed=0, step=3, first=2)
    assert torch.equal(again, y[2:])
    assert not torch.equal(batches.spec_augment(x, frames, spec, seed=0, step=4), y)
    assert batches.spec_augment(x, frames, None, seed=0, step=3) is x
    # on average the share asked for is masked, as transformers' SpecAugment (wav2vec2, Whisper)
    ones = torch.ones(800, 80, 1000)
    ours = batches.spec_augment(ones, [1000] * 800, {"time": 0.05, "freq": 0.1}, seed=1, step=0)
    np.random.seed(0)  # transformers draws from numpy's global generator
    hf_time = np.mean([_compute_mask_indices((8, 1000), 0.05, 10).mean() for _ in range(300)])
    hf_freq = np.mean([_compute_mask_indices((8, 80), 0.1, 10).mean() for _ in range(300)])
    assert (ours == 0).all(1).float().mean().item() == pytest.approx(hf_time, abs=0.004)
    assert (ours == 0).all(2).float().mean().item() == pytest.approx(hf_freq, abs=0.01)


@pytest.mark.parametrize(
    "value",
    [{"time": 0.6}, {"time": -0.1}, {"times": 0.1}, {}, {"freq": True}, [0.05, 0.1], "yes"],
)
def test_spec_augment_config_names_what_it_wants(tmp_path, tiny_corpus, value):
    path = _smoke(tmp_path, tiny_corpus, spec_augment=value, cached_layers=0)
    with pytest.raises(training.ConfigError, match="spec_augment must be a mapping") as info:
        training.load_config(path)
    assert str(path) in str(info.value) and "got" in str(info.value)


def test_spec_augment_needs_the_features_not_cached_activations(tmp_path, tiny_corpus):
    path = _smoke(tmp_path, tiny_corpus, spec_augment={"time": 0.05}, cached_layers=2)
    with pytest.raises(training.ConfigError, match="set cached_layers: 0") as info:
        training.load_config(path)
    assert str(path) in str(info.value)
    cfg = training.load_config(
        _smoke(tmp_path, tiny_corpus, spec_augment={"freq": 0}, cached_layers=0)
    )
    assert cfg.spec_augment == {"freq": 0.0} and isinstance(cfg.spec_augment["freq"], float)
    assert training.load_config(_smoke(tmp_path, tiny_corpus)).spec_augment is None


@pytest.mark.model
def test_a_spec_augmented_stage_trains_on_the_masked_features(
    tmp_path, tiny_corpus, monkeypatch, base
):
    """What reaches the model is each step's clips' features masked as spec_augment draws them
    for that step (and not the features unmasked)."""
    from flamenco_lib.training import loop

    seen = []
    real_step = loop._step
    monkeypatch.setattr(
        loop,
        "_step",
        lambda acc, w, o, p, cfg, x, *a: (
            seen.append(x.clone()) or real_step(acc, w, o, p, cfg, x, *a)
        ),
    )
    spec = {"time": 0.3, "freq": 0.3}
    cfg = training.load_config(
        _smoke(tmp_path, tiny_corpus, steps=2, cached_layers=0, spec_augment=spec, eval=None)
    )
    training.train_stage(cfg, progress=False)
    from flamenco_lib.data.manifest import read_manifest

    rows = [r for r in read_manifest(tiny_corpus) if r["split"] == "train"]
    processor = base[2]
    assert len(seen) == 2
    for step, x in enumerate(seen):
        pairs = training.batch_indices(0, step, [1.0], [len(rows)], 2)
        feats, _, frames = batches.played_features(
            processor, [rows[i] for _, i in pairs], [1.0, 1.0]
        )
        assert torch.equal(x, batches.spec_augment(feats, frames, spec, 0, step))
        assert not torch.equal(x, feats) and (x == 0).all(1).any()


def test_profiles_override_and_project_configs_are_valid(tmp_path, tiny_corpus):
    path = _smoke(tmp_path, tiny_corpus, profiles={"smoke": {"steps": 2, "eval": {"max_items": 1}}})
    cfg = training.load_config(path, profile="smoke")
    assert (
        cfg.steps == 2 and cfg.eval.max_items == 1 and cfg.eval.split == "train"
    )  # nested keys merge
    assert training.load_config(path, profile="cpu").steps == 4
    with pytest.raises(training.ConfigError, match="unknown profile"):
        training.load_config(path, profile="tpu")
    # the project's stage configs parse (their manifests may not be built yet: that is the only error allowed)
    for f in sorted((project_root() / "configs").glob("stage*.yaml")):
        for profile in paths.PROFILES:
            try:
                cfg = training.load_config(f, profile=profile)
            except training.ConfigError as err:
                assert "not found; build it first" in str(err), err
        # every stage that trains the decoder keeps teaching timestamps (long-form decoding)
        raw = yaml.safe_load(f.read_text(encoding="utf-8"))
        if not (raw.get("soft_prompt") or raw.get("freeze_decoder")):
            assert raw.get("timestamp_share", 0) >= 0.1, f
    with pytest.raises(training.ConfigError, match="timestamp_share must be a probability"):
        training.load_config(_smoke(tmp_path, tiny_corpus, timestamp_share=1.5))


def test_precision_auto_is_bf16_only_with_native_bf16(tmp_path, tiny_corpus):
    assert (
        training.auto_precision("flags\t: fpu sse2 avx2 avx512f avx512_bf16 avx512vl\n") == "bf16"
    )
    assert training.auto_precision("flags\t: fpu sse2 avx2 amx_bf16 amx_tile\n") == "bf16"
    assert (
        training.auto_precision("flags\t: fpu sse2 avx2 avx512f avx512bw\n") == "fp32"
    )  # emulated: slower
    cfg = training.load_config(_smoke(tmp_path, tiny_corpus, precision="auto"))
    assert cfg.precision == training.auto_precision() and cfg.precision in ("fp32", "bf16")


def test_flamenco_precision_decides_instead_of_the_machine(tmp_path, tiny_corpus, monkeypatch):
    for forced in ("fp32", "bf16"):
        monkeypatch.setenv("FLAMENCO_PRECISION", forced)
        assert training.auto_precision() == forced
        assert training.load_config(_smoke(tmp_path, tiny_corpus, precision="auto")).precision == (
            forced
        )
    # the CPU's flags, when given, are still read as they are
    assert training.auto_precision("flags\t: fpu sse2 avx2 amx_bf16\n") == "bf16"
    monkeypatch.setenv("FLAMENCO_PRECISION", "fp16")
    with pytest.raises(training.ConfigError, match="FLAMENCO_PRECISION='fp16': use fp32 or bf16"):
        training.auto_precision()


# ----------------------------------------------------------------------------- model


@pytest.mark.model
def test_encoder_prefix_then_suffix_is_the_encoder(base, real_speech):
    _, model, processor = base
    x = processor.feature_extractor(
        real_speech[: 16000 * 5], sampling_rate=16000, return_tensors="pt"
    ).input_features
    with torch.no_grad():
        full = model.model.encoder(x).last_hidden_state
        for k in (0, 2, 6):
            split = training.encoder_suffix(
                model.model.encoder, training.encoder_prefix(model.model.encoder, x, k), k
            )
            torch.testing.assert_close(split, full, rtol=1e-4, atol=1e-4)


def test_drawn_items_are_the_items_of_the_batches():
    weights, sizes = [0.7, 0.3], [50, 20]
    need = training.drawn_items(3, range(2, 9), weights, sizes, 8)
    pairs = {p for step in range(2, 9) for p in training.batch_indices(3, step, weights, sizes, 8)}
    assert need == [{i for s, i in pairs if s == 0}, {i for s, i in pairs if s == 1}]
    assert len(need[0]) < sizes[0]  # 7 steps of 8 cannot draw every clip: those are never computed


def test_batches_of_an_unbalanced_source_are_those_runs_before_balance_drew():
    # a run trained (and fingerprinted) before sources could be balanced resumes on its batches
    weights, sizes = [0.6, 0.4], [50, 7]
    for step in (0, 5, 89):
        rng = np.random.default_rng([3, step, 7])
        src = rng.choice(2, size=8, p=np.asarray(weights) / sum(weights))
        want = [(int(s), int(rng.integers(sizes[s]))) for s in src]
        assert training.batch_indices(3, step, weights, sizes, 8) == want


def test_a_balanced_source_draws_each_singer_equally_often():
    rows = [{"id": f"p{i}", "singer": "protagonist"} for i in range(90)]
    rows += [{"id": f"b{i}", "singer": "b"} for i in range(8)] + [{"id": "e0", "singer": "e"}]
    ordered, size = training.grouped(rows, "singer")
    assert size == (8, 1, 90) and [r["singer"] for r in ordered][8:10] == ["e", "protagonist"]
    assert training.grouped(rows, None) == (rows, 99)
    weights, sizes = [1.0, 1.0], [size, 5]
    drawn = [
        (s, i) for step in range(300) for s, i in training.batch_indices(0, step, weights, sizes, 8)
    ]
    singers = [ordered[i]["singer"] for s, i in drawn if s == 0]
    shares = {v: singers.count(v) / len(singers) for v in ("protagonist", "b", "e")}
    assert all(abs(share - 1 / 3) < 0.05 for share in shares.values()), shares  # not 90/99
    assert {i for s, i in drawn if s == 0} >= set(range(9))  # every row of the rare singers
    assert {i for s, i in drawn if s == 1} == set(range(5))  # the plain source as before
    with pytest.raises(KeyError, match="'x1' has no field 'singer'"):
        training.grouped([*rows, {"id": "x1"}], "singer")


def test_read_sources_balances_a_source_by_its_field(tmp_path, tiny_corpus):
    from flamenco_lib.data.manifest import read_manifest

    source = {"manifest": str(tiny_corpus), "split": "train", "balance": "singer"}
    cfg = training.load_config(_smoke(tmp_path, tiny_corpus, train=[source]))
    (rows,), (size,) = training.read_sources(cfg)
    singers = [r["singer"] for r in read_manifest(tiny_corpus) if r["split"] == "train"]
    assert sorted(singers) == [r["singer"] for r in rows]
    assert size == tuple(singers.count(v) for v in sorted(set(singers)))
    missing = training.load_config(
        _smoke(tmp_path, tiny_corpus, train=[{**source, "balance": "speaker"}])
    )
    with pytest.raises(training.ConfigError, match="has no field 'speaker'") as info:
        training.read_sources(missing)
    assert str(tmp_path / "smoke.yaml") in str(info.value) and str(tiny_corpus) in str(info.value)
    with pytest.raises(training.ConfigError, match=r"train\[0\]\.balance must name a manifest"):
        training.load_config(_smoke(tmp_path, tiny_corpus, train=[{**source, "balance": 3}]))


@pytest.mark.model
def test_activation_cache_computes_each_clip_once_per_frozen_prefix(tmp_path, tiny_corpus, base):
    from flamenco_lib.data.manifest import read_manifest
    from flamenco_lib.models import load_whisper

    _, model, processor = base
    rows = read_manifest(tiny_corpus)[:3]
    store = training.ActivationCache(model, 4, tmp_path)
    assert store.fill(processor, rows[:2], progress=False) == 2
    assert store.fill(processor, rows, progress=False) == 1  # only the new clip
    assert len(list(store.folder.glob("*.npy"))) == 3
    from flamenco_lib.audio import load_audio

    x = batches._features(processor, [load_audio(rows[2]["audio_path"])])
    with torch.no_grad():
        want = training.encoder_prefix(model.model.encoder, x, 4)[0].numpy()
    got = store.get(rows[2])
    assert got.dtype == np.float16 and got.shape == (1500, 512)
    np.testing.assert_allclose(got.astype(np.float32), want, rtol=2e-3, atol=2e-2)
    # another k, or other frozen weights, is another folder; the same frozen weights share it
    assert training.ActivationCache(model, 2, tmp_path).folder != store.folder
    other, _ = load_whisper("base")
    assert training.ActivationCache(other, 4, tmp_path).folder == store.folder
    with torch.no_grad():
        other.model.encoder.layers[1].fc1.weight.add_(1.0)
    assert training.ActivationCache(other, 4, tmp_path).folder != store.folder
    assert (
        training.ActivationCache(other, 1, tmp_path).folder
        == training.ActivationCache(model, 1, tmp_path).folder
    )


def _trainable(path):
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def test_deterministic_kernels_are_asked_for_while_training_only():
    """Training turns deterministic kernels on and gives the caller's setting back, also after an error."""
    assert not torch.are_deterministic_algorithms_enabled()
    with training.deterministic_kernels():
        assert (
            torch.are_deterministic_algorithms_enabled()
            and torch.is_deterministic_algorithms_warn_only_enabled()
        )
    assert not torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)  # a caller that wants them strict keeps them strict
    try:
        with pytest.raises(RuntimeError, match="inside"):
            with training.deterministic_kernels():
                raise RuntimeError("inside")
        assert (
            torch.are_deterministic_algorithms_enabled()
            and not torch.is_deterministic_algorithms_warn_only_enabled()
        )
    finally:
        torch.use_deterministic_algorithms(False)


@pytest.mark.model
def test_resume_reaches_the_same_model_and_the_logged_wer_is_evaluates(
    tmp_path, tiny_corpus, monkeypatch
):
    # an activation cache of this test's own: the project's data/cache is shared by other tests
    # and earlier sessions (a clip's key is its path and size, and pytest reuses tmp paths)
    monkeypatch.setattr(batches, "cache_dir", lambda: tmp_path / "cache")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = training.train_stage(
        training.load_config(_smoke(tmp_path / "a", tiny_corpus)), progress=False
    )
    cfg_b = training.load_config(_smoke(tmp_path / "b", tiny_corpus))
    stopped = training.train_stage(cfg_b, stop_after=2, progress=False)
    assert stopped["stopped_at"] == 2 and not (tmp_path / "b" / "out" / "final").exists()
    assert (tmp_path / "b" / "out" / "checkpoint-000002").exists()
    b = training.train_stage(cfg_b, resume=True, progress=False)
    # the activation cache holds the clips the 4 batches drew, not the whole training split
    from flamenco_lib.data.manifest import read_manifest

    train_rows = [r for r in read_manifest(tiny_corpus) if r["split"] == "train"]
    drawn = training.drawn_items(0, range(4), [1.0], [len(train_rows)], 2)[0]
    from flamenco_lib.models import load_whisper

    store = training.ActivationCache(load_whisper("base")[0], 4, tmp_path / "cache" / "activations")
    assert len(drawn) < len(train_rows)
    assert {i for i, r in enumerate(train_rows) if store.path(r).exists()} == drawn

    wa, wb = (
        _trainable(tmp_path / "a" / "out" / "final"),
        _trainable(tmp_path / "b" / "out" / "final"),
    )
    assert wa.keys() == wb.keys()
    for name in wa:
        torch.testing.assert_close(wa[name], wb[name], rtol=0, atol=0, msg=name)
    assert [x["loss"] for x in a["log"] if "loss" in x] == [
        x["loss"] for x in b["log"] if "loss" in x
    ]
    assert a["eval_wer"] == b["eval_wer"]
    # training changed the model: the frozen part did not move, the trained part did
    from safetensors.torch import load_file

    from flamenco_lib.models import build_offline_base

    orig = load_file(str(build_offline_base(verbose=False) / "model.safetensors"))
    key = "model.encoder.layers.0.fc1.weight"
    torch.testing.assert_close(wa[key], orig[key], rtol=0, atol=0)
    assert not torch.equal(
        wa["model.encoder.layers.5.fc1.weight"], orig["model.encoder.layers.5.fc1.weight"]
    )

    # the WER logged by training is what the evaluation runner reports for the saved model
    m = evaluation.evaluate_manifest(
        str(tmp_path / "a" / "out" / "final"),
        tiny_corpus,
        split="train",
        out=tmp_path / "eval",
        max_items=2,
        progress=False,
    )
    assert m["wer"] == a["eval_wer"]
    saved = json.loads((tmp_path / "a" / "out" / "train_log.json").read_text())
    assert saved["eval_wer"] == a["eval_wer"] and saved["steps"] == 4


def test_a_fine_tuned_model_still_predicts_timestamps(tmp_path, tiny_corpus, speech_prompts):
    """Trained like the smoke stage 1 with a share of timestamped labels, the model still times
    what it hears (sequential long-form decoding and every client's timestamps need it): on
    three real utterances one after another, time tokens around each segment's text, increasing,
    the last one near the end of the audio."""
    from flamenco_lib.audio import load_audio
    from flamenco_lib.models import load_whisper

    cfg = training.load_config(_smoke(tmp_path, tiny_corpus, timestamp_share=0.2, lr=5e-5))
    training.train_stage(cfg, progress=False)
    model, processor = load_whisper(str(tmp_path / "out" / "final"))
    audio = np.concatenate([load_audio(p["path"]) for p in speech_prompts[:3]])[: 30 * 16000]
    seconds = len(audio) / 16000
    feats = processor(audio, sampling_rate=16000, return_tensors="pt").input_features
    seq = model.generate(feats, language="es", task="transcribe", return_timestamps=True)[0]
    first = model.generation_config.no_timestamps_token_id + 1
    times = [(int(t) - first) * 0.02 for t in seq if int(t) >= first]
    assert len(times) >= 2 and times == sorted(times), times
    assert times[0] <= 1.0 and 0.5 * seconds <= times[-1] <= seconds + 1.0, (times, seconds)
    offsets = processor.tokenizer.decode(seq, output_offsets=True)["offsets"]
    assert offsets and all(o["text"].strip() for o in offsets)
    assert all(o["timestamp"][0] < o["timestamp"][1] for o in offsets), offsets


def _free_port() -> int:
    """A TCP port nobody listens on now (a fixed one collides with a second test run)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.model
def test_two_processes_with_gloo(tmp_path, tiny_corpus):
    cfg = _smoke(tmp_path, tiny_corpus, steps=2, save_every=2)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(project_root())}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            str(_free_port()),
            "-m",
            "flamenco_lib",
            "train",
            "--config",
            str(cfg),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        cwd=project_root(),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = json.loads((tmp_path / "out" / "train_log.json").read_text())
    assert log["world_size"] == 2 and log["steps"] == 2
    assert all(np.isfinite(x["loss"]) for x in log["log"] if "loss" in x)
    assert (tmp_path / "out" / "final" / "model.safetensors").exists()
    # the CLI saved the stage's fingerprint: run_stage (make report) would not train it again
    from flamenco_lib import pipeline

    assert pipeline.why_train(training.load_config(cfg, profile="cpu")) is None


@pytest.mark.model
def test_two_fresh_processes_train_the_same_weights(tmp_path, tiny_corpus):
    """The same config in two processes gives bitwise the same model (report tables reproduce).
    Without deterministic kernels the decoder's position embeddings differed in the last bits
    (their gradient is accumulated across threads), and a cpu stage 2 trained again moved its
    cante WER from 23.20% to 23.24%."""
    from safetensors.torch import load_file

    finals = []
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        cfg = _smoke(tmp_path / run, tiny_corpus, steps=2, save_every=2, batch_size=4, eval=None)
        proc = subprocess.run(
            [sys.executable, "-m", "flamenco_lib", "train", "--config", str(cfg)],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=project_root(),
            env={**os.environ, "PYTHONPATH": str(project_root())},
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        finals.append(load_file(str(tmp_path / run / "out" / "final" / "model.safetensors")))
    a, b = finals
    assert a.keys() == b.keys()
    assert [k for k in a if not torch.equal(a[k], b[k])] == []


def _train_prompted(tmp_path, corpus, **kw):
    """Two steps of a prompted stage (``prompt_drop`` 0.5 unless given); returns its summary."""
    cfg = _smoke(tmp_path, corpus, steps=2, save_every=2, **{"prompt_drop": 0.5, **kw})
    return training.train_stage(training.load_config(cfg), progress=False)


@pytest.mark.model
def test_prompted_stage_trains_and_evaluates_with_prompts(tmp_path, tiny_corpus, capsys):
    from flamenco_lib.cli import main

    summary = _train_prompted(tmp_path, tiny_corpus, prompt_kinds=["palo", "lexicon"])
    assert not torch.are_deterministic_algorithms_enabled()  # the setting does not outlive training
    assert (
        summary["prompt_kinds"] == ["palo", "lexicon"] and summary["lexicon"]
    )  # words of the training lyrics
    preds = [
        json.loads(x)
        for x in (tmp_path / "out" / "eval" / "step-000002" / "predictions.jsonl")
        .read_text()
        .splitlines()
    ]
    assert all(p["prompt"] and p["prompt"].startswith(p["palo"][:1].upper()) for p in preds)
    # the prompt is not part of the transcript
    assert not any(p["hypothesis"].startswith(p["prompt"]) for p in preds)
    with pytest.raises(training.ConfigError, match="prompt_kinds must be a list"):
        training.load_config(_smoke(tmp_path, tiny_corpus, prompt_kinds=["rhyme"]))
    assert (
        main(
            [
                "evaluate",
                "--model",
                str(tmp_path / "out" / "final"),
                "--manifest",
                str(tiny_corpus),
                "--split",
                "train",
                "--max-items",
                "2",
                "--prompt-kinds",
                "palo",
                "--out",
                str(tmp_path / "ev"),
            ]
        )
        == 0
    )
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert m["decoding"]["prompts"] and m["prompt_kinds"] == ["palo"]


@pytest.mark.model
def test_catalogue_prompts_train_and_decode_in_two_passes(tmp_path, tiny_corpus):
    from flamenco_lib.data.lyrics import read_lyrics
    from flamenco_lib.data.manifest import read_manifest

    lyrics = tiny_corpus.parent / "coplas.tsv"
    texts = {c.id: c.text for c in read_lyrics(lyrics)}
    _train_prompted(
        tmp_path, tiny_corpus, prompt_kinds=["catalogue"], prompt_drop=0.0, catalogue=str(lyrics)
    )
    rows = {r["id"]: r for r in read_manifest(tiny_corpus)}
    step_preds = tmp_path / "out" / "eval" / "step-000002" / "predictions.jsonl"
    for p in map(json.loads, step_preds.read_text().splitlines()):  # evaluation: the true copla
        assert p["prompt"] == texts[rows[p["id"]]["copla_id"]] + "."

    def decode(name, **kw):
        m = evaluation.evaluate_manifest(
            str(tmp_path / "out" / "final"),
            tiny_corpus,
            split="train",
            out=tmp_path / name,
            max_items=3,
            progress=False,
            **kw,
        )
        read = lambda f: [json.loads(x) for x in (tmp_path / name / f).read_text().splitlines()]  # noqa: E731
        first = (
            read("first_pass.jsonl") if (tmp_path / name / "first_pass.jsonl").exists() else None
        )
        return m, first, read("predictions.jsonl")

    def run(name, **kw):  # the catalogue prompt, two passes
        return decode(name, prompt_kinds=["catalogue"], catalogue=lyrics, **kw)

    m, first, preds = run("ev")
    c = m["catalogue"]
    assert c["n"] == 3 and c["coplas"] == len(texts) and 0 <= c["top1"] <= c["topk"] <= 1
    for f, p in zip(first, preds):  # the second pass is prompted with the first pass's best letra
        assert f["id"] == p["id"] and f["found"] and p["prompt"] == texts[f["found"][0]] + "."
    # new lyrics: the evaluated coplas are not in the catalogue, so no prompt is the sung copla
    m, first, preds = run("ev-left-out", leave_out_evaluated=True)
    sung = {rows[p["id"]]["copla_id"] for p in preds}
    assert m["catalogue"]["n"] == 0 and m["catalogue"]["coplas"] == len(texts) - len(sung)
    assert all(p["prompt"] != texts[rows[p["id"]]["copla_id"]] + "." for p in preds)
    # the control: another copla of the catalogue, drawn at random, with no first pass
    m, first, preds = run("ev-mismatched", mismatched=True)
    assert m["catalogue"]["mismatched"] and first is None
    assert all(p["prompt"][:-1] in texts.values() for p in preds)
    assert all(p["prompt"] != texts[rows[p["id"]]["copla_id"]] + "." for p in preds)
    with pytest.raises(training.ConfigError, match="prompt_pick must be 'all' or 'one'"):
        training.load_config(_smoke(tmp_path, tiny_corpus, prompt_pick="some"))
    # previous="own" decodes each recording's lines in order; these clips are recordings of
    # their own, so no line has a line before it: the prompt is the palo alone
    m, _, preds = decode("ev-own", prompt_kinds=["palo", "previous"], previous="own")
    assert m["previous"] == "own" and m["n_utterances"] == 3
    assert all(p["prompt"] == p["palo"][:1].upper() + p["palo"][1:] + "." for p in preds)


def test_soft_prompt_loss_is_the_text_prompt_loss(base, real_speech):
    """A soft prompt initialised from a text prompt gives the training loss of that text prompt:
    the same decoder layout and no loss on the prompt positions."""
    from flamenco_lib.soft_prompt import SoftPrompt

    _, model, processor = base
    tok = processor.tokenizer
    prompt, texts = "Soleá. luna fragua Triana", ["la luna de triana", "mi mare en la fragua"]
    feats = processor.feature_extractor(
        [real_speech[:32000], real_speech[:48000]], sampling_rate=16000, return_tensors="pt"
    ).input_features
    with_text = training.collate_labels(tok, texts, prompts=[prompt, prompt])
    plain = training.collate_labels(tok, texts)
    soft = SoftPrompt.from_text(model, tok, prompt)
    with torch.no_grad():
        want = training.UpperWhisper(model, 0)(
            feats, with_text["decoder_input_ids"], with_text["labels"]
        )
        got = training.UpperWhisper(model, 0, soft=soft, tokenizer=tok)(
            feats, plain["decoder_input_ids"], plain["labels"]
        )
        unprompted = training.UpperWhisper(model, 0)(
            feats, plain["decoder_input_ids"], plain["labels"]
        )
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert not torch.isclose(got, unprompted)  # the prompt matters, so the equality says something


@pytest.mark.model
def test_soft_prompt_stage_trains_only_the_prompt(tmp_path, tiny_corpus, base):
    from flamenco_lib.soft_prompt import FILENAME, SoftPrompt

    with pytest.raises(training.ConfigError, match="soft_prompt and prompt_kinds"):
        training.load_config(_smoke(tmp_path, tiny_corpus, soft_prompt=4, prompt_kinds=["palo"]))
    cfg = training.load_config(
        _smoke(
            tmp_path, tiny_corpus, steps=3, save_every=3, soft_prompt=4, cached_layers=6, lr=1e-2
        )
    )
    summary = training.train_stage(cfg, progress=False)
    final = tmp_path / "out" / "final"
    assert (
        summary["trainable_params"] == 4 * 512
        and summary["trainable_params"] < 0.01 * summary["total_params"]
    )
    # the model did not move; the prompt did
    from safetensors.torch import load_file

    from flamenco_lib.models import build_offline_base

    orig = load_file(str(build_offline_base(verbose=False) / "model.safetensors"))
    trained = _trainable(final)
    for key in (
        "model.decoder.layers.0.fc1.weight",
        "model.encoder.layers.5.fc1.weight",
        "proj_out.weight",
    ):
        if key in trained:
            torch.testing.assert_close(trained[key], orig[key], rtol=0, atol=0)
    soft = SoftPrompt.load(final / FILENAME)
    start = SoftPrompt.from_text(base[1], base[2].tokenizer, " ".join(summary["lexicon"]), k=4)
    assert soft.k == 4 and not torch.equal(soft.embeddings, start.embeddings)
    # the evaluation runner finds the soft prompt next to the model, and reports the logged WER
    m = evaluation.evaluate_manifest(
        str(final), tiny_corpus, split="train", out=tmp_path / "eval", max_items=2, progress=False
    )
    assert m["decoding"]["soft_prompt"] == 4 and m["soft_prompt_k"] == 4
    assert m["wer"] == summary["eval_wer"]


@pytest.mark.model
def test_gpu_profile_code_path_full_bf16_checkpointed(tmp_path, tiny_corpus):
    """The gpu profile's settings (whole model trained, bf16 autocast, gradient checkpointing)
    run end to end; here on CPU, where accelerate's bf16 autocast also works."""
    cfg = training.load_config(
        _smoke(
            tmp_path,
            tiny_corpus,
            steps=1,
            save_every=1,
            cached_layers=0,
            precision="bf16",
            gradient_checkpointing=True,
        )
    )
    summary = training.train_stage(cfg, progress=False)
    assert (
        summary["trainable_params"] == summary["total_params"] - 1500 * 512
    )  # all but the sinusoids
    assert np.isfinite(summary["log"][0]["loss"])
    from safetensors.torch import load_file

    from flamenco_lib.models import build_offline_base

    orig = load_file(str(build_offline_base(verbose=False) / "model.safetensors"))
    trained = _trainable(tmp_path / "out" / "final")
    assert not torch.equal(
        trained["model.encoder.conv1.weight"], orig["model.encoder.conv1.weight"]
    )
    assert (
        trained["model.encoder.conv1.weight"].dtype == torch.float32
    )  # weights stay fp32 (autocast)


@pytest.mark.model
def test_lora_trains_adapters_of_the_upper_layers_and_saves_plain_whisper(
    tmp_path, tiny_corpus, base
):
    with pytest.raises(training.ConfigError, match="lora.r must be an integer"):
        training.load_config(_smoke(tmp_path, tiny_corpus, lora={"r": 0}))
    with pytest.raises(training.ConfigError, match="lora must be a mapping"):
        training.load_config(_smoke(tmp_path, tiny_corpus, lora={"rank": 4}))
    cfg = training.load_config(
        _smoke(
            tmp_path,
            tiny_corpus,
            steps=2,
            save_every=2,
            lr=1e-3,
            lora={"r": 4, "target_modules": ["q_proj", "v_proj"]},
        )
    )
    summary = training.train_stage(cfg, progress=False)
    # adapters (r x in + out x r) on q_proj and v_proj of encoder layers 4-5 and of every decoder layer
    _, model, _ = base
    expected = sum(
        4 * (m.in_features + m.out_features)
        for name, m in model.named_modules()
        if name.split(".")[-1] in ("q_proj", "v_proj")
        and not any(f"encoder.layers.{i}." in name for i in range(4))
    )
    assert summary["trainable_params"] == expected
    final = _trainable(tmp_path / "out" / "final")
    assert not any("lora" in key for key in final)  # merged: a plain Whisper folder
    orig = {n: p.detach() for n, p in model.named_parameters()}
    for key in (
        "model.encoder.layers.0.self_attn.q_proj.weight",
        "model.decoder.layers.0.fc1.weight",
        "model.decoder.layers.0.self_attn.k_proj.weight",
    ):
        torch.testing.assert_close(final[key], orig[key], rtol=0, atol=0)  # frozen or not adapted
    assert not torch.equal(
        final["model.decoder.layers.0.self_attn.q_proj.weight"],
        orig["model.decoder.layers.0.self_attn.q_proj.weight"],
    )
    m = evaluation.evaluate_manifest(
        str(tmp_path / "out" / "final"),
        tiny_corpus,
        split="train",
        out=tmp_path / "eval",
        max_items=2,
        progress=False,
    )
    assert m["wer"] == summary["eval_wer"]


@pytest.mark.model
def test_freeze_decoder_trains_the_upper_encoder_only(tmp_path, tiny_corpus, base):
    with pytest.raises(training.ConfigError, match="freeze_decoder must be true or false"):
        training.load_config(_smoke(tmp_path, tiny_corpus, freeze_decoder="yes"))
    with pytest.raises(training.ConfigError, match="lora and freeze_decoder"):
        training.load_config(_smoke(tmp_path, tiny_corpus, freeze_decoder=True, lora={"r": 4}))
    cfg = training.load_config(
        _smoke(tmp_path, tiny_corpus, steps=2, save_every=2, lr=1e-3, freeze_decoder=True)
    )
    summary = training.train_stage(cfg, progress=False)
    _, model, _ = base
    upper = [f"model.encoder.layers.{i}." for i in (4, 5)] + ["model.encoder.layer_norm."]
    expected = sum(
        p.numel() for n, p in model.named_parameters() if any(n.startswith(u) for u in upper)
    )
    assert summary["trainable_params"] == expected
    final = _trainable(tmp_path / "out" / "final")
    orig = {n: p.detach() for n, p in model.named_parameters()}
    for key in ("model.decoder.layers.0.fc1.weight", "model.decoder.embed_tokens.weight"):
        torch.testing.assert_close(final[key], orig[key], rtol=0, atol=0)
    key = "model.encoder.layers.5.fc1.weight"
    assert not torch.equal(final[key], orig[key])


def test_config_paths_under_data_follow_the_data_folder(tmp_path, monkeypatch, tiny_corpus):
    # Colab points FLAMENCO_DATA at Drive: corpora, checkpoints and the previous stage move with it
    import shutil

    data = tmp_path / "drive"
    (data / "corpora" / "mine").mkdir(parents=True)
    shutil.copy(tiny_corpus, data / "corpora" / "mine" / "manifest.jsonl")
    (data / "checkpoints" / "stage1" / "final").mkdir(parents=True)
    (data / "checkpoints" / "stage1" / "final" / "config.json").write_text("{}")
    monkeypatch.setenv("FLAMENCO_DATA", str(data))
    path = _write_config(
        tmp_path / "c.yaml",
        name="x",
        model="data/checkpoints/stage1",
        train=[{"manifest": "data/corpora/mine/manifest.jsonl"}],
        output_dir="data/checkpoints/x",
        wise_ft={"model": "data/checkpoints/stage1", "alpha": 0.8},
    )
    cfg = training.load_config(path)
    assert cfg.train[0].manifest == str(data / "corpora" / "mine" / "manifest.jsonl")
    assert cfg.output_dir == str(data / "checkpoints" / "x")
    assert cfg.model == str(data / "checkpoints" / "stage1" / "final")
    assert cfg.wise_ft == {"model": cfg.model, "alpha": 0.8}  # resolved as `model` is


def test_a_checkpoint_that_finds_no_room_is_one_error_and_keeps_the_one_before(
    tmp_path, monkeypatch
):
    import collections
    import errno

    from flamenco_lib import errors
    from flamenco_lib.training import loop

    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    first = loop._save_checkpoint(tmp_path, 10, model, optimizer, [])
    before = (first / "trainable.pt").read_bytes()
    usage = collections.namedtuple("usage", "total used free")

    def full(*a, **k):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 508612736")

    monkeypatch.setattr(loop.torch, "save", full)
    monkeypatch.setattr(errors.shutil, "disk_usage", lambda p: usage(10**12, 10**12, 2 * 10**6))
    with pytest.raises(
        errors.DiskFullError, match="no room to write the checkpoint of step 20"
    ) as e:
        loop._save_checkpoint(tmp_path, 20, model, optimizer, [])
    assert str(tmp_path) in str(e.value) and "make clean-cache" in str(e.value)
    assert isinstance(e.value, errors.FlamencoError)
    # the checkpoint before is untouched and nothing half-written is left
    assert [p.name for p in tmp_path.iterdir()] == [first.name]
    assert (first / "trainable.pt").read_bytes() == before

    # with room left, the same error is not a full disk: it passes unchanged
    monkeypatch.setattr(errors.shutil, "disk_usage", lambda p: usage(10**12, 0, 10**11))
    with pytest.raises(RuntimeError, match="unexpected pos") as e:
        loop._save_checkpoint(tmp_path, 30, model, optimizer, [])
    assert not isinstance(e.value, errors.DiskFullError)

    def nospace(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(loop.torch, "save", nospace)  # the system says so: whatever is left
    with pytest.raises(errors.DiskFullError, match="step 40"):
        loop._save_checkpoint(tmp_path, 40, model, optimizer, [])


def test_wise_ft_keeps_a_share_of_the_fine_tuning():
    base = {"w": torch.zeros(3), "b": torch.ones(2, dtype=torch.bfloat16)}
    tuned = {"w": torch.tensor([1.0, -2.0, 4.0]), "b": torch.full((2,), 3.0, dtype=torch.bfloat16)}
    for alpha, want_w, want_b in ((1.0, [1.0, -2.0, 4.0], 3.0), (0.0, [0.0] * 3, 1.0),
                                  (0.75, [0.75, -1.5, 3.0], 2.5)):  # fmt: skip
        mixed = model_parts.wise_ft(tuned, base, alpha)
        torch.testing.assert_close(mixed["w"], torch.tensor(want_w))
        assert mixed["b"].dtype == torch.bfloat16 and mixed["b"].tolist() == [want_b] * 2
    with pytest.raises(ValueError, match="differ in names or shapes"):
        model_parts.wise_ft({"w": torch.zeros(4)}, {"w": torch.zeros(3)}, 0.5)


@pytest.mark.parametrize(
    "value,needle",
    [
        ({"model": "base"}, "wise_ft must be a mapping"),
        ({"model": "base", "alpha": 0}, "0 < alpha <= 1"),
        ({"model": "base", "alpha": 1.5}, "0 < alpha <= 1"),
        ({"model": "", "alpha": 0.8}, "wise_ft must be"),
        (0.8, "wise_ft must be"),
    ],
)
def test_wise_ft_config_names_what_it_needs(tmp_path, tiny_corpus, value, needle):
    path = _smoke(tmp_path, tiny_corpus, wise_ft=value)
    with pytest.raises(training.ConfigError, match=needle) as info:
        training.load_config(path)
    assert str(path) in str(info.value)
    with pytest.raises(training.ConfigError, match="soft_prompt stage trains none"):
        training.load_config(
            _smoke(tmp_path, tiny_corpus, soft_prompt=4, wise_ft={"model": "base", "alpha": 0.8})
        )


@pytest.mark.model
def test_wise_ft_stage_saves_the_weights_moved_back_toward_the_base(tmp_path, tiny_corpus, base):
    # the same run twice (same seed, same batches): once as trained, once moved halfway back
    runs = {}
    for name, wise in (("plain", None), ("wise", {"model": "base", "alpha": 0.5})):
        (tmp_path / name).mkdir()
        extra = {"wise_ft": wise} if wise else {}
        cfg = training.load_config(_smoke(tmp_path / name, tiny_corpus, steps=2, **extra))
        training.train_stage(cfg, progress=False)
        runs[name] = _trainable(tmp_path / name / "out" / "final")
    _, model, _ = base
    orig = {n: p.detach() for n, p in model.named_parameters()}
    plain, wise = runs["plain"], runs["wise"]
    for key in ("model.encoder.layers.5.fc1.weight", "model.decoder.embed_tokens.weight"):
        assert not torch.equal(plain[key], orig[key])  # trained (the embedding is the output too)
        torch.testing.assert_close(wise[key], orig[key] + 0.5 * (plain[key] - orig[key]))
    frozen = "model.encoder.layers.0.fc1.weight"  # cached_layers 4: never trained, so unmoved
    torch.testing.assert_close(wise[frozen], orig[frozen], rtol=0, atol=0)
